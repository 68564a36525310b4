"""End to end over a real loopback socket: simulator → `veeam-etl run` → warehouse equals the estate."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import func, select

from etl import db, pipeline, registry, schema
from etl.simulator import Quirks, Simulator, World
from helpers import assert_equal_to_truth, cli, dump


def test_cli_run_twice_equals_truth_and_changes_nothing(db_url):
    world = World(seed=7, servers=2, jobs=4, vms_per_job=6, days=5)
    with Simulator(world) as sim:
        first = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert first.returncode == 0, first.stderr
        assert "replica_task_sessions" in first.stdout and "requests:" in first.stdout
        eng = db.engine(db_url)
        assert_equal_to_truth(eng, world.truth())
        before = dump(eng, with_meta=True)
        second = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert second.returncode == 0, second.stderr
        assert dump(eng, with_meta=True) == before  # no value and no count changed
        with eng.connect() as conn:
            statuses = (
                conn.execute(select(schema.etl_runs.c.status).order_by(schema.etl_runs.c.id)).scalars().all()
            )
        assert statuses == ["succeeded", "succeeded"]
        eng.dispose()


QUIRKS = {
    "em-defaults": Quirks(),
    "bom-prefixed-shuffled-unknown": Quirks(
        bom=True,
        prefixed_namespace=True,
        shuffle_attributes=True,
        unknown_elements=True,
        xml_declaration=False,
    ),
    "no-related-links-no-vmname": Quirks(related_links=False, vm_name=False, misspelled_hrefs=False),
    "parents-only-by-link": Quirks(parents_only_by_link=True),
    "deleted-parents-404": Quirks(deleted_server=True, deleted_point=True),
    "em-writes-own-hostname": Quirks(public_origin="http://em01.lab.local:9399"),
}


@pytest.mark.parametrize("name", QUIRKS)
def test_quirks_load_equal_to_truth(name, tmp_path):
    world = World(seed=3, servers=3, jobs=4, vms_per_job=5, days=4, quirks=QUIRKS[name])
    with Simulator(world) as sim:
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        summary = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=37))
        assert_equal_to_truth(eng, world.truth())
        if name == "parents-only-by-link":
            assert summary.parents_fetched == world.stats()["hidden_job_sessions"] > 0
        if name == "deleted-parents-404":
            # the deleted server, the deleted points, and the jobs EM answers 404 for (copy workers,
            # per-computer agent jobs): each recorded from a link
            jobs_404 = sum(1 for row in world.truth()["jobs"].values() if row["placeholder"])
            assert summary.parents_from_links == 1 + world.stats()["deleted_points"] + jobs_404
        eng.dispose()


def test_demo_command(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "etl", "demo", "--db", f"sqlite:///{tmp_path}/demo.db"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert "run 1 succeeded" in done.stdout
    eng = db.engine(f"sqlite:///{tmp_path}/demo.db")
    with eng.connect() as conn:
        for table in registry.tables():
            assert conn.scalar(select(func.count()).select_from(table)) > 0, table.name
    eng.dispose()


def test_bad_password_is_a_clear_error(tmp_path):
    with Simulator(World(seed=1, jobs=1, vms_per_job=1, days=1)) as sim:
        done = cli(
            "run",
            "--url",
            sim.url,
            "--user",
            "demo",
            "--db",
            f"sqlite:///{tmp_path}/w.db",
            password="wrong-pass-123",
        )
    assert done.returncode == 1
    assert "refused the logon" in done.stderr and "Traceback" not in done.stderr
    assert "wrong-pass-123" not in done.stderr + done.stdout


def test_missing_password_is_usage_error(tmp_path):
    done = cli(
        "run",
        "--url",
        "http://127.0.0.1:9/api",
        "--user",
        "demo",
        "--db",
        f"sqlite:///{tmp_path}/w.db",
        password=None,
    )
    assert done.returncode == 2 and "VEEAM_EM_PASSWORD" in done.stderr


def test_simulate_command_in_one_process_run_in_another(tmp_path):
    """The README's two-shell walk-through: `veeam-etl simulate --port P`, then `veeam-etl run`."""
    import json
    import urllib.request
    from datetime import datetime

    sim = subprocess.Popen(
        [sys.executable, "-m", "etl", "simulate", "--port", "0", "--jobs", "3", "--days", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = sim.stdout.readline().split(" at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api")
        db_url = f"sqlite:///{tmp_path}/w.db"
        done = cli("run", "--url", url, "--user", "demo", "--db", db_url)
        assert done.returncode == 0, done.stderr
        with urllib.request.urlopen(url.removesuffix("/api") + "/admin/truth") as answer:  # noqa: S310 - loopback
            raw = json.load(answer)
        instants = {
            name for rows in raw.values() for row in rows.values() for name in row if name.endswith("_utc")
        }
        truth = {
            t: {
                uid: {k: datetime.fromisoformat(v) if k in instants and v else v for k, v in row.items()}
                for uid, row in rows.items()
            }
            for t, rows in raw.items()
        }
        assert_equal_to_truth(db.engine(db_url), truth)
    finally:
        sim.terminate()
        sim.wait(timeout=30)
