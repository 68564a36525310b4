"""`veeam-etl demo` twice: the second run finds nothing changed (a stable source, stable hrefs, the same
estate), and the commands the demo prints to look at its warehouse again work as printed."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime

from sqlalchemy import select

from etl import db, registry
from etl.demo import DEMO_ORIGIN
from helpers import cli


def _hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _demo(tmp_path) -> tuple[str, datetime, datetime]:
    """(the demo's stdout, the clock hour when it started, the clock hour when it ended)."""
    start = _hour()
    done = cli("demo", "--db", "sqlite:///demo.db", "--report", "demo.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout, start, _hour()


def _changed(summary: str) -> tuple[int, int]:
    """(inserted, updated) summed over the table lines of a run summary."""
    rows = re.findall(r"^  (\w+)\s+(\d+)\s+(\d+)$", summary, re.MULTILINE)
    assert len(rows) == len(registry.tables()), summary
    return sum(int(i) for _, i, _ in rows), sum(int(u) for _, _, u in rows)


def test_demo_rerun_changes_nothing_and_prints_how_to_look_again(tmp_path):
    first, _, previous = _demo(tmp_path)
    inserted, updated = _changed(first)
    assert inserted > 0 and updated == 0
    # the warnings a first load prints come with the word that the simulated EM sends them on purpose
    assert "quirks included, on purpose: the warnings below" in first.splitlines()[1], first
    # a rerun in the same clock hour serves the same estate; in the next hour sessions may have finished
    # (real changes), so compare two runs that both fell in one hour
    for _ in range(2):
        again, start, end = _demo(tmp_path)
        if start == end == previous:
            break
        previous = end
    assert "incremental load of demo" in again
    assert _changed(again) == (0, 0), again

    eng = db.engine(f"sqlite:///{tmp_path}/demo.db")
    with eng.connect() as conn:
        for table in registry.tables():
            hrefs = conn.scalars(select(table.c.href).where(table.c.href.is_not(None))).all()
            assert hrefs and all(h.startswith(DEMO_ORIGIN + "/api/") for h in hrefs), table.name
    eng.dispose()

    commands = [line.strip() for line in again.splitlines() if line.strip().startswith("veeam-etl ")]
    assert [c.split()[1] for c in commands] == ["report", "status"], again
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    report, status = (cli(*shlex.split(c)[1:], cwd=elsewhere) for c in commands)
    assert report.returncode == 0 and "Veeam backup & replication report" in report.stdout, report.stderr
    assert status.returncode == 0 and re.search(r"^\s+2 succeeded\s+incremental", status.stdout, re.M), status
    assert list(elsewhere.iterdir()) == []


def test_the_summary_of_a_load_is_printed_even_when_the_report_cannot_be_written(tmp_path):
    """The load is committed before the report is written: a report path that cannot be written is an
    error (exit 2), but the run summary of what was loaded still comes first."""
    done = cli("demo", "--db", "sqlite:///demo.db", "--report", "no-such-dir/demo.html", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "cannot write the report to" in done.stderr and "no-such-dir/demo.html" in done.stderr
    assert re.search(r"^run 1 succeeded: full load of demo", done.stdout, re.M), done.stdout
    inserted, _ = _changed(done.stdout)
    assert inserted > 0
