"""The estate file (etl.estate): parsing, validation messages, secrets, options, and `run --config` usage errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click
import pytest

from etl import cli, estate, fleet, pipeline, settings
from etl.errors import ConfigError
from helpers import cli as run_cli

GOOD = """
parallel = 3

[defaults]
user = 'LAB\\svc-etl'
password_env = "VEEAM_EM_PASSWORD"
ca_bundle = "certs/ca.pem"
page_size = 200
lookback = 2

[[em]]
name = "em-lon"
url = "https://em-lon.example.com:9398/api"

[[em]]
name = "em-nyc"
url = "https://em-nyc.example.com:9398/api"
user = "other"
password_file = "secrets/nyc"
insecure = true
retries = 3
timeout = 30
full_refresh = true

[schedule]
cron = "*/10 * * * *"
timezone = "Europe/London"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(estate.EstateError) as caught:
        estate.parse(text, "/etc/veeam/estate.toml")
    assert caught.value.exit_code == 2
    return caught.value.problems


def test_a_good_file_merges_defaults_and_resolves_paths():
    fleet_file = estate.parse(GOOD, "/etc/veeam/estate.toml")
    assert fleet_file.names() == ["em-lon", "em-nyc"]
    assert (fleet_file.parallel, fleet_file.cron, fleet_file.timezone) == (3, "*/10 * * * *", "Europe/London")
    lon, nyc = (em.connection for em in fleet_file.ems)
    assert (
        lon.user == "LAB\\svc-etl" and lon.password_env == "VEEAM_EM_PASSWORD" and lon.password_file is None
    )
    assert lon.ca_bundle == Path("/etc/veeam/certs/ca.pem") and lon.insecure is False
    assert fleet_file.ems[0].run_settings == {"page_size": 200, "lookback": 2.0}
    # the EM's own choice of each pair replaces the one [defaults] made
    assert (
        nyc.user == "other"
        and nyc.password_env is None
        and nyc.password_file == Path("/etc/veeam/secrets/nyc")
    )
    assert nyc.ca_bundle is None and nyc.insecure is True
    assert fleet_file.ems[1].run_settings == {
        "page_size": 200,
        "lookback": 2.0,
        "retries": 3,
        "timeout": 30.0,
        "full_refresh": True,
    }


def test_options_become_pipeline_options_named_by_the_em():
    lon, nyc = estate.parse(GOOD).ems
    opts = nyc.options()
    assert isinstance(opts, pipeline.Options)
    assert (opts.source, opts.page_size, opts.timeout, opts.full_refresh) == ("em-nyc", 200, 30.0, True)
    assert opts.lookback == timedelta(hours=2) and opts.retry.attempts == 3
    assert opts.concurrency == pipeline.Options().concurrency  # not set: the product's default
    overridden = lon.options({"page_size": 50, "concurrency": 2})
    assert (overridden.page_size, overridden.concurrency, overridden.source) == (50, 2, "em-lon")


def test_a_password_value_is_refused_and_never_echoed():
    found = problems(
        '[defaults]\npassword = "Hunter2!"\n[[em]]\nname = "a"\nurl = "https://a/api"\nuser = "u"\n'
        'password_env = "P"\npassword = "Zebra9?"\n'
    )
    assert len(found) == 2
    assert found[0].startswith(
        "/etc/veeam/estate.toml: [defaults]: key 'password': a password is never written"
    )
    assert found[1].startswith("/etc/veeam/estate.toml: em 'a': key 'password'")
    assert not any("Hunter2" in p or "Zebra9" in p for p in found)


def test_a_password_put_into_password_env_is_not_echoed():
    (found,) = problems(
        '[[em]]\nname = "a"\nurl = "https://a/api"\nuser = "u"\npassword_env = "s3cr3t pass!"\n'
    )
    assert "em 'a': key 'password_env': must be the NAME of an environment variable" in found
    assert "s3cr3t" not in found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[em]]\nname = "a"\nurl = "https://a/api"\nuser = "u"\npasword_env = "P"\n',
            [
                "em 'a': key 'pasword_env': unknown key (did you mean 'password_env'?)",
                "em 'a': no password_env",
            ],
        ),
        (
            '[[em]]\nname = "a"\nurl = "https://a/api"\nuser = "u"\npassword_env = "P"\npage-size = 10\n',
            ["em 'a': key 'page-size': unknown key (did you mean 'page_size'?)"],
        ),
        (
            '[defaults]\nuser = "u"\npassword_env = "P"\n[[em]]\nname = "a"\nurl = "https://a/api"\n'
            '[[em]]\nname = "a"\nurl = "https://b/api"\n',
            ["em 'a': key 'name': duplicate name (also em #1)"],
        ),
        (
            '[[em]]\nname = "a"\npassword_env = "P"\n',
            ["em 'a': key 'url': missing", "em 'a': key 'user': missing"],
        ),
        ('[[em]]\nurl = "https://a/api"\nuser = "u"\npassword_env = "P"\n', ["em #1: key 'name': missing"]),
        (
            '[[em]]\nname = "a"\nurl = "https://a/api"\nuser = "u"\npassword_env = "P"\npassword_file = "f"\n',
            ["em 'a': keys 'password_env' and 'password_file': give one of them, not both"],
        ),
        (
            '[[em]]\nname = "a"\nurl = "https://a/api"\nuser = "u"\npassword_env = "P"\n'
            'ca_bundle = "ca.pem"\ninsecure = true\n',
            ["em 'a': keys 'ca_bundle' and 'insecure': give one of them, not both"],
        ),
        (
            '[[em]]\nname = "a"\nurl = "em01:9398"\nuser = "u"\npassword_env = "P"\n',
            ["em 'a': key 'url' em01:9398 has no scheme"],
        ),
        (
            '[[em]]\nname = "a"\nurl = "https://a/api"\nuser = "u"\npassword_env = "P"\n'
            'page_size = 0\nconcurrency = "4"\ntimeout = 0.5\nfull_refresh = 1\nretries = 2.5\n',
            [
                "key 'page_size': must be from 1 to 10000, not 0",
                "key 'concurrency': must be a whole number, not '4'",
                "key 'timeout': must be at least 1, not 0.5",
                "key 'full_refresh': must be true or false, not 1",
                "key 'retries': must be a whole number, not 2.5",
            ],
        ),
        (
            '[defaults]\nname = "x"\nurl = "https://a/api"\n[[em]]\nname = "a"\nurl = "https://a/api"\n'
            'user = "u"\npassword_env = "P"\n',
            [
                "[defaults]: key 'name': belongs in each [[em]] table, not in [defaults]",
                "[defaults]: key 'url': belongs in each [[em]] table",
            ],
        ),
        ('emm = 1\n[[em]]\nname = "a"\n', ["key 'emm': unknown key (did you mean 'em'?)"]),
        ("parallel = 0\n", ["key 'parallel': must be a whole number from 1 to 64"]),
        (
            '[schedule]\ncron = "every 15 minutes"\n',
            ["[schedule]: key 'cron': 'every 15 minutes' is not a five-field"],
        ),
        (
            '[schedule]\ntimezone = "Mars/Olympus"\n',
            ["[schedule]: key 'timezone': 'Mars/Olympus' is not an IANA"],
        ),
        ("", ["[[em]]: no Enterprise Manager listed"]),
        ('[[em]]\nname = "a"\nurl = "https://a/api"\n[em]\n', ["not valid TOML"]),
    ],
)
def test_every_problem_names_the_file_the_em_and_the_key(text, expected):
    found = problems(text)
    assert all(p.startswith("/etc/veeam/estate.toml: ") for p in found), found
    for fragment in expected:
        assert any(fragment in p for p in found), (fragment, found)


def test_select_keeps_file_order_and_refuses_unknown_names():
    fleet_file = estate.parse(GOOD, "estate.toml")
    assert fleet_file.select(["em-nyc", "em-lon"]).names() == ["em-lon", "em-nyc"]
    assert fleet_file.select([]).names() == ["em-lon", "em-nyc"]
    with pytest.raises(ConfigError, match=r"no \[\[em\]\] named 'em-par' \(the file has: em-lon, em-nyc\)"):
        fleet_file.select(["em-nyc", "em-par"])


def test_secrets_come_from_the_variable_or_the_file(tmp_path, monkeypatch):
    (tmp_path / "pw").write_text("from-file\n")
    text = (
        '[defaults]\nuser = "u"\n'
        '[[em]]\nname = "env"\nurl = "https://a/api"\npassword_env = "FLEET_TEST_PW"\n'
        '[[em]]\nname = "file"\nurl = "https://a/api"\npassword_file = "pw"\nca_bundle = "missing.pem"\n'
        '[[em]]\nname = "nofile"\nurl = "https://a/api"\npassword_file = "nope"\n'
    )
    env, file, nofile = (em.connection for em in estate.parse(text, tmp_path / "estate.toml").ems)
    monkeypatch.delenv("FLEET_TEST_PW", raising=False)
    with pytest.raises(
        ConfigError, match="em 'env': environment variable FLEET_TEST_PW .password_env. is not set"
    ):
        env.password()
    monkeypatch.setenv("FLEET_TEST_PW", "from-env")
    assert env.password() == "from-env" and env.tls() is True
    assert file.password() == "from-file"
    with pytest.raises(ConfigError, match="em 'file': ca_bundle .*missing.pem: no such file"):
        file.tls()
    with pytest.raises(ConfigError, match="em 'nofile': cannot read password_file"):
        nofile.password()


def test_estate_options_are_the_run_flags_with_the_same_ranges():
    params = {p.name: p for p in cli.run.params}
    for s in settings.SETTINGS:
        assert s.name in estate.EM_KEYS and s.name in estate.DEFAULT_KEYS, s.name
        param = params[s.name]
        assert f"--{s.name.replace('_', '-')}" in param.opts
        if s.type is bool:
            assert param.is_flag, s.name
            continue
        assert isinstance(param.type, click.IntRange if s.type is int else click.FloatRange), s.name
        assert (param.type.min, param.type.max) == (s.low, s.high), s.name
    # the flags `run --config` takes as overrides for every EM are real options of `run`
    assert set(estate.OVERRIDE_FLAGS) <= set(params) and set(estate.PER_EM_FLAGS) <= set(params)
    assert set(settings.BY_NAME) <= set(estate.OVERRIDE_FLAGS)


def test_exit_code_of_a_fleet_run():
    def result(*statuses):
        return fleet.Result([fleet.Outcome(f"em{i}", s) for i, s in enumerate(statuses)], 0.0, 4)

    assert result("succeeded", "succeeded").exit_code == 0
    assert result("succeeded", "locked").exit_code == 75
    assert result("locked", "failed", "succeeded").exit_code == 1
    text = fleet.render(result("succeeded", "failed"))
    assert text.splitlines()[-1].startswith("total") and "2 EMs: 1 succeeded, 1 failed; 4 at a time" in text


def test_cli_usage_errors_exit_2(tmp_path):
    estate_file = tmp_path / "estate.toml"
    estate_file.write_text(
        '[[em]]\nname = "a"\nurl = "https://a/api"\nuser = "u"\npassword_env = "P"\nretries = 0\n'
    )
    db = f"sqlite:///{tmp_path / 'w.db'}"
    bad = run_cli("run", "--config", str(estate_file), "--db", db)
    assert bad.returncode == 2
    assert f"{estate_file}: em 'a': key 'retries': must be from 1 to 100, not 0" in bad.stderr
    estate_file.write_text('[[em]]\nname = "a"\nurl = "https://a/api"\nuser = "u"\npassword_env = "P"\n')
    for args, message in (
        (["--only", "b"], "no [[em]] named 'b'"),
        (["--url", "https://x/api"], "--config excludes --url"),
        (["--insecure"], "--config excludes --insecure"),
    ):
        done = run_cli("run", "--config", str(estate_file), "--db", db, *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
    done = run_cli("run", "--parallel", "2", "--url", "https://x/api", "--user", "u", "--db", db)
    assert done.returncode == 2 and "--parallel and --only go with --config" in done.stderr
    done = run_cli("run", "--user", "u", "--db", db)
    assert done.returncode == 2 and "Missing option '--url'" in done.stderr
    assert not (tmp_path / "w.db").exists()  # nothing was touched
