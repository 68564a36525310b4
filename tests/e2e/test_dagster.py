"""Dagster (the optional extra): an estate file becomes assets that load real simulators over loopback."""

from __future__ import annotations

import pytest

dg = pytest.importorskip("dagster", reason="the Dagster integration needs `pip install 'veeam-etl[dagster]'`")

from etl import db, orchestration  # noqa: E402
from etl.simulator import fleet as sim_fleet  # noqa: E402
from helpers import assert_equal_to_truth, dump  # noqa: E402

SIZE = {"servers": 2, "jobs": 3, "vms_per_job": 4, "days": 3}


def _estate(path, sims, bad_url=None) -> None:
    text = '[defaults]\nuser = "demo"\npassword_env = "DAGSTER_TEST_EM_PW"\npage_size = 50\n'
    text += "".join(f'\n[[em]]\nname = "site-{i}"\nurl = "{sim.url}"\n' for i, sim in enumerate(sims, 1))
    if bad_url:
        text += f'\n[[em]]\nname = "site-bad"\nurl = "{bad_url}"\npassword_env = "DAGSTER_TEST_BAD_PW"\n'
    text += '\n[schedule]\ncron = "*/20 * * * *"\n'
    path.write_text(text)


def _materializations(result, key):
    return [e.materialization for e in result.get_asset_materialization_events() if e.asset_key == key]


def test_materialize_two_ems_in_process(db_url, tmp_path, monkeypatch):
    if db_url.startswith("postgresql"):  # a password in the URL must never reach the metadata
        db_url = db_url.replace("://postgres@", "://postgres:Pw-in-the-url@")
    monkeypatch.setenv("DAGSTER_TEST_EM_PW", "demo")
    monkeypatch.setenv("DAGSTER_TEST_BAD_PW", "wrong")
    with sim_fleet.serving(2, seed=71, **SIZE) as sims:
        estate = tmp_path / "estate.toml"
        _estate(estate, sims, bad_url=sims[0].url)
        defs = orchestration.definitions(estate, warehouse=orchestration.Warehouse(url=db_url))
        dg.Definitions.validate_loadable(defs)
        (schedule,) = defs.schedules
        assert (schedule.name, schedule.cron_schedule) == (orchestration.SCHEDULE, "*/20 * * * *")
        assert schedule.job_name == orchestration.JOB
        assets = list(defs.assets)
        keys = [a.key for a in assets]
        assert keys == [dg.AssetKey(["veeam_etl", n]) for n in ("site_1", "site_2", "site_bad")]

        result = dg.materialize(
            assets, resources={"warehouse": orchestration.Warehouse(url=db_url)}, raise_on_error=False
        )
        assert not result.success  # site-bad failed ...
        failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert len(failures) == 1
        error = failures[0].step_failure_data.user_failure_data
        assert error.description.startswith("site-bad: Enterprise Manager refused the logon of user 'demo'")
        # ... and the two good ones loaded, exactly, each as its own source
        eng = db.engine(db_url)
        for i, sim in enumerate(sims, 1):
            assert_equal_to_truth(eng, sim.truth(), source=f"site-{i}")
            (mat,) = _materializations(result, dg.AssetKey(["veeam_etl", f"site_{i}"]))
            meta = {k: v.value for k, v in mat.metadata.items()}
            truth = sim.truth()
            assert meta["source"] == f"site-{i}"
            for table, rows in truth.items():
                assert meta[f"rows/{table}"] == len(rows), table
            assert meta["rows_inserted"] == sum(len(rows) for rows in truth.values())
            assert meta["requests"] > 0 and meta["duration_s"] > 0 and meta["run_id"] >= 1
            assert meta["warehouse"] == db.masked(db_url) and "Pw-in-the-url" not in str(meta)
        assert not _materializations(result, dg.AssetKey(["veeam_etl", "site_bad"]))

        # the next materialization is incremental and changes nothing
        again = dg.materialize(assets[:2], resources={"warehouse": orchestration.Warehouse(url=db_url)})
        assert again.success
        for i in (1, 2):
            (mat,) = _materializations(again, dg.AssetKey(["veeam_etl", f"site_{i}"]))
            assert mat.metadata["rows_inserted"].value == 0 and mat.metadata["rows_updated"].value == 0
        eng.dispose()


def test_asset_names_that_collide_are_refused(tmp_path):
    estate = tmp_path / "estate.toml"
    estate.write_text(
        '[defaults]\nuser = "u"\npassword_env = "P"\n'
        '[[em]]\nname = "em-lon"\nurl = "https://a/api"\n[[em]]\nname = "em.lon"\nurl = "https://b/api"\n'
    )
    with pytest.raises(orchestration.ConfigError, match="both become the Dagster asset 'em_lon'"):
        orchestration.definitions(estate)
    assert orchestration.asset_name("9-site") == "em_9_site"


def test_a_held_lock_ends_the_step_without_a_materialization(tmp_path, monkeypatch):
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from etl import schema

    monkeypatch.setenv("DAGSTER_TEST_EM_PW", "demo")
    db_url = f"sqlite:///{tmp_path / 'w.db'}"
    eng = db.engine(db_url)
    db.migrate(eng)
    now = datetime.now(UTC)
    with eng.begin() as conn:  # a live run of site-1 on another host
        conn.execute(
            insert(schema.etl_locks).values(
                source="site-1", run_id=None, host="other-host", pid=4242, acquired_at=now, heartbeat_at=now
            )
        )
    with sim_fleet.serving(1, seed=81, **SIZE) as sims:
        estate = tmp_path / "estate.toml"
        _estate(estate, sims)
        defs = orchestration.definitions(estate, warehouse=orchestration.Warehouse(url=db_url))
        result = dg.materialize(
            list(defs.assets), resources={"warehouse": orchestration.Warehouse(url=db_url)}
        )
        assert result.success
        assert not _materializations(result, dg.AssetKey(["veeam_etl", "site_1"]))
        assert all(not rows for rows in dump(eng, source="site-1").values())
    eng.dispose()


def test_dagster_dev_serves_the_definitions_as_docs_dagster_md_says(tmp_path):
    """`dagster dev -f definitions.py` (docs/dagster.md) starts with what the `dagster` extra installs
    and shows one asset per EM of the estate file."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    estate = tmp_path / "estate.toml"
    estate.write_text(
        '[defaults]\nuser = "u"\npassword_env = "P"\n'
        '[[em]]\nname = "em-lon"\nurl = "https://em-lon.example.com:9398/api"\n'
        '[[em]]\nname = "em-nyc"\nurl = "https://em-nyc.example.com:9398/api"\n'
    )
    (tmp_path / "definitions.py").write_text(
        f"from etl.orchestration import definitions\n\ndefs = definitions({str(estate)!r})\n"
    )
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    home = tmp_path / "dagster-home"
    home.mkdir()
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    proc = subprocess.Popen(
        [dagster, "dev", "-f", "definitions.py", "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path,
        env={**os.environ, "DAGSTER_HOME": str(home), "VEEAM_ETL_DB": f"sqlite:///{tmp_path}/w.db"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its webserver, daemon and code server end with it
    )
    query = "{ assetNodes { assetKey { path } } }"
    try:
        nodes = None
        for _ in range(600):  # until it answers (it starts three processes), or it exits
            if proc.poll() is not None:
                break
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=5)
                nodes = answer.json()["data"]["assetNodes"]
                if nodes:
                    break
            except (httpx.HTTPError, KeyError, TypeError, ValueError):
                pass
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.terminate()  # dagster dev stops its webserver, daemon and code servers
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    assert nodes, f"dagster dev never served the definitions (exit {proc.returncode}):\n{output[-3000:]}"
    assert sorted(n["assetKey"]["path"] for n in nodes) == [["veeam_etl", "em_lon"], ["veeam_etl", "em_nyc"]]
