"""The run summary is the run's etl_runs row, by name: every column a run fills is the Summary field or
property of the same name (but `counts`, the JSON of `tables`), and what a run records is read back
as the summary said it (etl.runs)."""

from __future__ import annotations

import json
from dataclasses import fields

from sqlalchemy import select

from etl import db, runs, schema
from etl.completeness import Bucket, Count, Verification
from etl.runs import RECORDED, Summary

# written when the run starts (or by the lock), not from the summary
STARTED = {"id", "source", "started_at", "finished_at", "mode", "error", "host", "pid"}


def test_every_column_a_run_fills_is_a_summary_field_or_property_of_the_same_name():
    columns = {c.name for c in schema.etl_runs.columns}
    summary = Summary(run_id=1, source="s", mode="full")
    assert set(summary.record()) == columns - STARTED
    assert set(RECORDED) == columns - STARTED - {"counts", "refused"}  # counts: `tables`, refused: as JSON
    named = {f.name for f in fields(Summary)}
    for name in (*RECORDED, "refused"):
        assert name in named or isinstance(getattr(Summary, name, None), property), name
    assert {"source", "mode"} <= named  # the columns written when it starts, too


def test_what_a_run_records_is_what_its_summary_says(db_url):
    eng = db.engine(db_url)
    db.migrate(eng)
    run_id = runs.start_run(eng, "s", "incremental")
    summary = Summary(run_id, "s", "incremental", status="succeeded", parents_from_links=3, requests=40)
    summary.tables["backups"] = {"inserted": 5, "updated": 2}
    summary.refused["Job"] = "Portal Administrator"
    bucket = Bucket("RestorePoint")
    summary.verification = Verification("s", schema.now_utc(), schema.now_utc(), [Count(bucket, 2, 2)], [])
    summary.verification.requests = 7
    with eng.begin() as conn:
        runs.finish_run(conn, summary)
    with eng.connect() as conn:
        row = conn.execute(select(schema.etl_runs).where(schema.etl_runs.c.id == run_id)).mappings().one()
    for name in RECORDED:
        assert row[name] == getattr(summary, name), name
    assert (row["rows_inserted"], row["rows_updated"], row["verify_compared"], row["verify_requests"]) == (
        5,
        2,
        1,
        7,
    )
    assert json.loads(row["counts"]) == summary.tables
    assert json.loads(row["refused"]) == [{"type": "Job", "role": "Portal Administrator"}]
    assert row["finished_at"] is not None and row["error"] is None
    eng.dispose()


def test_a_run_that_starts_records_zero_counts_by_the_schemas_defaults(db_url):
    eng = db.engine(db_url)
    db.migrate(eng)
    run_id = runs.start_run(eng, "s", "full")
    with eng.connect() as conn:
        row = conn.execute(select(schema.etl_runs).where(schema.etl_runs.c.id == run_id)).mappings().one()
    zeros = [c.name for c in schema.etl_runs.columns if getattr(c.default, "arg", None) == 0]
    assert zeros and all(row[name] == 0 for name in zeros)
    assert (row["status"], row["mode"], row["refused"], row["verify_compared"]) == (
        "running",
        "full",
        None,
        None,
    )
    eng.dispose()
