"""Every run setting reaches the run: for each entry of `settings.SETTINGS`, its `run` flag and its
estate-file key each change the `Options` the pipeline receives (through the CLI, and through
`run --config` and etl.fleet), against a real simulator over a real socket; and `--sweep-hours 0`
sweeps on every run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from etl import cli, db, pipeline, schema, settings
from etl.settings import SETTINGS, Setting
from etl.simulator import Simulator, World
from helpers import cli as run_cli

TINY = {
    "servers": 1,
    "jobs": 1,
    "backup_jobs": 1,
    "agent_jobs": 0,
    "copy_jobs": 0,
    "vms_per_job": 2,
    "days": 1,
}


def changed(s: Setting, by: int = 1) -> Any:
    """A value of `s` other than its default (`by` steps away), inside its range."""
    if s.type is bool:
        return not s.default
    value = s.default + by
    if s.high is not None and value > s.high:
        value = s.default - by
    return s.type(value)


def flag_args(s: Setting, value: Any) -> list[str]:
    return [s.flag] if s.type is bool else [s.flag, str(value)]


def toml_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


@pytest.fixture(scope="module")
def sim():
    with Simulator(World(seed=77, **TINY)) as s:
        yield s


@pytest.fixture
def received(monkeypatch) -> list[pipeline.Options]:
    """The Options of every pipeline.run call (which then runs for real)."""
    seen: list[pipeline.Options] = []
    real = pipeline.run

    def spy(*args, **kwargs):
        seen.append(kwargs["options"])
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "run", spy)
    return seen


def invoke(*args: str) -> None:
    result = CliRunner().invoke(cli.main, list(args), env={"VEEAM_EM_PASSWORD": "demo", "SIM_PW": "demo"})
    assert result.exit_code == 0, result.output + repr(result.exception)


def assert_only(opts: pipeline.Options, s: Setting, value: Any) -> None:
    """`opts` carries `value` in the field `s` sets, and every other setting's default."""
    defaults = settings.options({})
    have = settings.field_value(opts, s.target)
    assert have == s.option_value(value), f"{s.name}: Options.{s.target} is {have!r}"
    assert have != settings.field_value(defaults, s.target), f"{s.name}: the test value is the default"
    for other in SETTINGS:
        if other is not s:
            assert settings.field_value(opts, other.target) == settings.field_value(defaults, other.target), (
                f"{s.name} changed Options.{other.target}"
            )


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_each_flag_and_estate_key_changes_the_run(setting, sim, received, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'w.db'}"
    value = changed(setting)

    invoke("run", "--url", sim.url, "--user", "demo", "--db", db_url, *flag_args(setting, value))
    assert len(received) == 1
    assert_only(received[0], setting, value)

    def estate(value: Any) -> str:
        path = tmp_path / "estate.toml"
        path.write_text(
            f'[defaults]\nuser = "demo"\npassword_env = "SIM_PW"\n\n[[em]]\nname = "em1"\nurl = "{sim.url}"\n'
            f"{setting.name} = {toml_value(value)}\n"
        )
        return str(path)

    invoke("run", "--config", estate(value), "--db", db_url)
    assert len(received) == 2 and received[1].source == "em1"
    assert_only(received[1], setting, value)

    # the flag given with --config overrides the estate file for every EM: the file says another
    # value (for a flag that can only turn a setting on, the default, written out)
    in_file = setting.default if setting.type is bool else changed(setting, by=2)
    invoke("run", "--config", estate(in_file), "--db", db_url, *flag_args(setting, value))
    assert_only(received[2], setting, value)


def test_settings_default_to_what_options_default_to():
    """A setting's declared default is the product's default: `Options()` holds it in the field the
    setting names, so a flag left out and a flag given its default run the same."""
    plain = pipeline.Options()
    for s in SETTINGS:
        assert settings.field_value(plain, s.target) == s.option_value(s.default), s.name


def test_options_do_not_share_the_retry_policy_they_were_given():
    given = pipeline.RetryPolicy(attempts=7)
    opts = settings.options({"retries": 3}, retry=given)
    assert opts.retry.attempts == 3 and given.attempts == 7


def _sweeps(db_url: str) -> list[int]:
    eng = db.engine(db_url)
    try:
        with eng.connect() as conn:
            runs = schema.etl_runs
            return list(conn.scalars(select(runs.c.sweep_requests).order_by(runs.c.id)))
    finally:
        eng.dispose()


def _deleted_points(db_url: str) -> int:
    eng = db.engine(db_url)
    try:
        with eng.connect() as conn:
            t = schema.restore_points
            return len(conn.scalars(select(t.c.uid).where(t.c.deleted_at.is_not(None))).all())
    finally:
        eng.dispose()


def test_sweep_hours_zero_sweeps_on_every_run(db_url):
    world = World(seed=78, retention_days=1, **TINY)
    with Simulator(world) as sim:
        base = ("run", "--url", sim.url, "--user", "demo", "--db", db_url)
        first = run_cli(*base)  # a full load: swept
        assert first.returncode == 0, first.stderr
        world.advance(timedelta(days=1))  # a day of new points; the oldest retire from EM
        default = run_cli(*base)  # the last sweep is minutes old: not due under the default 24 h
        assert default.returncode == 0, default.stderr
        assert _deleted_points(db_url) == 0
        every = run_cli(*base, "--sweep-hours", "0")
        assert every.returncode == 0, every.stderr
        again = run_cli(*base, "--sweep-hours", "0")
        assert again.returncode == 0, again.stderr
        swept = _sweeps(db_url)
        assert swept[1] == 0 and swept[2] > 0 and swept[3] > 0, swept
        assert _deleted_points(db_url) > 0  # the points retention removed are marked
