"""etl.pipeline and etl.store: how pages become transactions (the shape that lets fetching and loading
overlap)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from etl import crawl, db, logs, parents, pipeline, registry, runs, schema, store, transform
from etl.errors import SourceError
from etl.load import Loader
from etl.simulator import Simulator, World


def test_pages_are_stored_as_they_arrive_and_committed_in_transactions_of_about_batch_rows(
    tmp_path, monkeypatch
):
    events: list[tuple[str, object]] = []
    pages, upsert, heartbeat = crawl.Fetcher.pages, Loader.upsert, runs.heartbeat

    def logged_pages(*args, **kwargs):
        for page in pages(*args, **kwargs):
            if page.rows.values:  # an empty page has nothing to write
                events.append(("page", page.rows.table))
            yield page

    def logged_upsert(self, rows):
        events.append(("rows", len(rows.values)))
        return upsert(self, rows)

    def logged_heartbeat(*args):
        events.append(("commit", None))
        return heartbeat(*args)

    monkeypatch.setattr(crawl.Fetcher, "pages", logged_pages)
    monkeypatch.setattr(Loader, "upsert", logged_upsert)
    monkeypatch.setattr(runs, "heartbeat", logged_heartbeat)
    world = World(
        seed=5, servers=2, jobs=4, vms_per_job=5, days=4, backup_jobs=0, agent_jobs=0, copy_jobs=0, nas_jobs=0
    )
    with Simulator(world) as sim:
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=20, batch_rows=50))
        eng.dispose()

    # every page is written before the next one is taken from the crawl
    kinds = [kind for kind, _ in events if kind != "commit"]
    assert kinds[:2] == ["page", "rows"] and "page,page" not in ",".join(kinds)
    # a transaction is whole pages: at least batch_rows rows, less than one page more (the last of a query: fewer)
    transactions, rows = [], 0
    for kind, value in events[events.index(("page", "backup_servers")) :]:  # (starting the run beats once)
        if kind == "rows":
            rows += value
        elif kind == "commit":
            if rows:  # a query that answered nothing commits no rows
                transactions.append(rows)
            rows = 0
    # three pages of 20 reach 50 rows; the last transaction of each query holds what is left
    expected = []
    truth = world.truth()
    for entity_type in registry.TYPES.values():  # the rows each type's own query gives, in load order
        n = sum(1 for row in truth[entity_type.table].values() if not row.get("placeholder"))
        # jobs come from `type=Job` here
        n = n if entity_type not in (registry.AGENT_BACKUP_JOB, registry.NAS_JOB) else 0
        expected += [60] * (n // 60) + ([n % 60] if n % 60 else [])
    assert transactions == expected and world.stats()["replica_task_sessions"] > 120


def test_remembered_parents_are_only_a_cache_and_forgotten_once_no_type_to_load_names_them(
    tmp_path, monkeypatch
):
    from helpers import assert_equal_to_truth

    monkeypatch.setattr(parents, "KNOWN_LIMIT", 1)  # every page finds its parents in the warehouse again
    sizes: list[tuple[str, int, int]] = []
    load = store.Store.load

    def logged(self, entity_type, *args, **kwargs):
        loaded = load(self, entity_type, *args, **kwargs)
        known = self.parents.known
        sizes.append((entity_type.name, len(known["vm_replica_points"]), len(known["backup_job_sessions"])))
        return loaded

    monkeypatch.setattr(store.Store, "load", logged)
    world = World(seed=8, servers=2, jobs=3, vms_per_job=4, days=3)
    with Simulator(world) as sim:
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=7))
        assert_equal_to_truth(eng, world.truth())
        eng.dispose()
    after = {name: (points, sessions) for name, points, sessions in sizes}
    assert after["VmReplicaPoint"][0] > 0  # the replica task sessions still to load name them
    # once the replica side is loaded nothing names a replica point: forgotten on the next type
    assert after["BackupJobSession"] == (0, after["BackupJobSession"][1]) and after["BackupJobSession"][1] > 0


def test_each_query_asks_for_its_first_page_while_the_query_before_it_is_stored(tmp_path, monkeypatch):
    events: list[tuple[str, str]] = []
    fetch_page, upsert = crawl.Fetcher._entities, Loader.upsert

    def logged_fetch(self, url, entity_type, workers=None):
        for k in ("1", "2"):
            if f"page={k}&" in url + "&" and "filter=" not in url:
                events.append((f"page {k}", entity_type.table))
        return fetch_page(self, url, entity_type, workers)

    def logged_upsert(self, rows):
        events.append(("store", rows.table))
        return upsert(self, rows)

    monkeypatch.setattr(crawl.Fetcher, "_entities", logged_fetch)
    monkeypatch.setattr(Loader, "upsert", logged_upsert)
    world = World(seed=6, servers=2, jobs=3, vms_per_job=4, days=3)
    with Simulator(world) as sim:
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=5))
        eng.dispose()

    def last_store(table):
        return max(i for i, e in enumerate(events) if e == ("store", table))

    def first_page(table):
        return events.index(("page 1", table))

    # the backup servers are stored before anything else is asked: the windows are per server
    assert first_page("jobs") > last_store("backup_servers")
    # from then on, the next query's page 1 is asked before the query before it is stored whole
    assert first_page("replica_task_sessions") < last_store("vm_replica_points")
    assert first_page("vm_restore_points") < last_store("backup_files")
    # (agent restore points, one short page here, may be stored before the thread asking for the next
    # query's page 1 has started: the order is asserted across the long queries)
    assert first_page("agent_restore_points") < last_store("vm_restore_points")
    # and its next pages as soon as its page 1 tells how many there are
    assert events.index(("page 2", "vm_restore_points")) < last_store("backup_files")


def test_a_failed_run_records_its_error_without_a_registered_secret(tmp_path, monkeypatch):
    """The error of a failed run is stored in etl_runs.error as the log shows it: secrets masked."""
    monkeypatch.setattr(logs, "_SECRETS", set())
    monkeypatch.setattr(logs, "_PUBLIC", set())
    password = "pw-Fa1led-Run-9"
    logs.secret(password)

    class Refusing:
        def __init__(self, *args, **kwargs):
            raise SourceError(f"EM echoed the request body: user=demo&password={password}")

    monkeypatch.setattr(pipeline, "Fetcher", Refusing)
    eng = db.engine(f"sqlite:///{tmp_path}/w.db")
    try:
        with pytest.raises(SourceError):
            pipeline.run(eng, "https://em.example.com:9398/api", "demo", password)
        with eng.connect() as conn:
            (error,) = conn.execute(select(schema.etl_runs.c.error)).one()
    finally:
        eng.dispose()
    assert error == "EM echoed the request body: user=demo&password=***"


def test_each_commit_records_the_rows_the_run_has_committed(db_url):
    """A run killed without a chance to write its summary (SIGKILL, a power cut) is taken over as
    "abandoned" by the next one: its etl_runs row must count the rows it did commit, not 0, so every
    transaction writes the run's counts along with its rows."""
    import json

    world = World(
        seed=5, servers=2, jobs=4, vms_per_job=5, days=4, backup_jobs=0, agent_jobs=0, copy_jobs=0, nas_jobs=0
    )
    seen: list[tuple[object, object]] = []
    with Simulator(world) as sim:
        eng = db.engine(db_url)
        r = schema.etl_runs.c

        def progress(summary, type_name):
            with eng.connect() as conn:
                row = conn.execute(
                    select(r.rows_inserted, r.rows_updated, r.counts).where(r.id == summary.run_id)
                ).one()
            recorded = {
                t: c for t, c in json.loads(row.counts or "{}").items() if c["inserted"] or c["updated"]
            }
            committed = {t: dict(c) for t, c in summary.tables.items() if c["inserted"] or c["updated"]}
            seen.append(
                (
                    (row.rows_inserted, row.rows_updated, recorded),
                    (summary.rows_inserted, summary.rows_updated, committed),
                )
            )

        pipeline.run(
            eng,
            sim.url,
            "demo",
            "demo",
            options=pipeline.Options(page_size=20, batch_rows=50),
            progress=progress,
        )
        eng.dispose()
    assert len(seen) > 3 and seen[0][1][0] > 0
    for recorded, committed in seen:
        assert recorded == committed


def test_a_wrong_pages_count_on_page_1_does_not_page_on_forever(tmp_path, monkeypatch):
    """Page 1 telling far more pages than EM holds (a bogus or stale PagesCount) must not have the
    run ask empty pages up to that count: it stops at the first empty page past the end the pages
    themselves tell, and still loads everything."""
    paging = transform.parse.paging

    def inflated(root, url):
        p = paging(root, url)
        return p._replace(pages=300) if p.page == 1 and (p.pages or 0) > 1 else p  # EM could say 10**9

    monkeypatch.setattr(transform.parse, "paging", inflated)
    world = World(
        seed=5, servers=2, jobs=4, vms_per_job=5, days=4, backup_jobs=0, agent_jobs=0, copy_jobs=0, nas_jobs=0
    )
    with Simulator(world) as sim:
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        summary = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=20))
        with eng.connect() as conn:
            tasks = conn.scalar(select(func.count()).select_from(schema.replica_task_sessions))
        eng.dispose()
    assert summary.status == "succeeded" and summary.requests < 300  # 76; ~930 paging on to 300 pages
    assert tasks == len(world.truth()["replica_task_sessions"])
