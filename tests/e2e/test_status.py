"""`veeam-etl status`: the sources that load, apart from those that never loaded anything (a mistyped
--url), and one watermark per source, backup server and type, named by its server."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from etl import db, pipeline, schema
from etl.simulator import Simulator, World
from helpers import cli

TYPO = "https://em-typo.example.com:9398/api"  # tried once, a month ago


def _section(text: str, title: str) -> list[str]:
    """The lines under a heading of the status text, up to the next heading."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return lines[start + 1 : end]


def test_never_loaded_sources_are_listed_apart_and_age_out(db_url):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        mistyped = f"http://127.0.0.1:{closed.getsockname()[1]}/api"
    with Simulator(World(seed=5, servers=2, jobs=2, vms_per_job=2, days=2)) as sim:
        loaded = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url)
        assert loaded.returncode == 0, loaded.stderr
        good = pipeline.source_name(sim.url)
    assert cli("run", "--url", mistyped, "--user", "demo", "--db", db_url).returncode == 1
    eng = db.engine(db_url)
    month_ago = datetime.now(UTC) - timedelta(days=30)
    with eng.begin() as conn:
        conn.execute(
            insert(schema.etl_runs).values(
                source=TYPO,
                started_at=month_ago,
                finished_at=month_ago,
                status="failed",
                mode="full",
                rows_inserted=0,
                rows_updated=0,
                parents_from_links=0,
                requests=3,
                retries=2,
                quarantined=0,
                foreign_links=0,
                error="giving up after 3 attempts: cannot resolve the host name em-typo.example.com",
            )
        )
    eng.dispose()

    done = cli("status", "--db", db_url)
    assert done.returncode == 0, done.stderr
    loading = "\n".join(_section(done.stdout, "latest run per source:"))
    never = "\n".join(_section(done.stdout, "sources that never loaded anything"))
    assert good in loading and " succeeded " in loading and mistyped not in loading and TYPO not in loading
    assert mistyped in never and "cannot connect" in never  # tried today: listed, with its error
    assert TYPO not in done.stdout.split("recent runs:")[0]  # a month old: counted, not listed
    assert "and 1 more not tried for 7 days" in never
    as_json = json.loads(cli("status", "--db", db_url, "--json").stdout)
    flags = {s["source"]: s["never_loaded"] for s in as_json["sources"]}
    assert flags == {good: False, pipeline.source_name(mistyped): True, TYPO: True}

    # watermarks: one per backup server and type, each line naming its server
    marks = [line.split() for line in _section(done.stdout, "watermarks") if line.startswith("    ")]
    assert {m[0] for m in marks} == {"vbr01.lab.local", "vbr02.lab.local"}, marks
    assert len({(m[0], m[1]) for m in marks}) == len(marks)  # no two lines alike
