"""A flaky or hostile Enterprise Manager, end to end over a real socket: every fault class alone and
all together, over several seeds, must leave the warehouse equal to the ground truth (adjusted for
the entities EM sent unreadable or linked to another origin); a source that stays down fails the run
cleanly and changes nothing; a DOCTYPE page fails it without a byte of the entity in the warehouse.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from sqlalchemy import MetaData, Table, func, inspect, select

from etl import db, pipeline, registry, schema
from etl.client import EMClient, RetryPolicy
from etl.errors import HostileDocument, SourceError
from etl.simulator import HANDLED, Faults, Quirks, Simulator, World
from helpers import assert_equal_to_truth, cli, dump

FAST = RetryPolicy(attempts=8, base=0.01, cap=0.2, total=30)
OPTIONS = {"page_size": 10, "retry": FAST, "timeout": 1.0}
SEEDS = (1, 2, 5)  # small worlds that have hidden job sessions and deleted replica points
QUIRKS = Quirks(parents_only_by_link=True, deleted_point=True)  # parents are also fetched by link

# fault class -> Faults switches. Rates are per request (or per entity for corrupt/foreign_links).
MATRIX = {
    "503+Retry-After": {"unavailable": 0.3},
    "429+Retry-After": {"throttle": 0.3},
    "500": {"server_error": 0.3},
    "slower-than-timeout": {"slow": 0.15},
    "connection-reset": {"reset": 0.3},
    "truncated-body": {"truncate": 0.3},
    "short-body": {"short_body": 0.3},
    "malformed-xml": {"malformed": 0.3},
    "token-expires-after-n": {"token_requests": 17},  # > 2 x threads (2 x concurrency 4): see Faults
    "logon-503": {"logon_unavailable": 2},
    "corrupt-fields": {"corrupt": 0.06},
    "foreign-links": {"foreign_links": 0.5},
    "all-together": {
        "unavailable": 0.05,
        "throttle": 0.05,
        "server_error": 0.05,
        "slow": 0.03,
        "reset": 0.05,
        "truncate": 0.05,
        "short_body": 0.05,
        "malformed": 0.05,
        "token_requests": 17,
        "logon_unavailable": 1,
        "corrupt": 0.04,
        "foreign_links": 0.5,
    },
}


def small_world(seed: int, quirks: Quirks = QUIRKS) -> World:
    return World(seed=seed, servers=2, jobs=3, vms_per_job=4, days=3, quirks=quirks)


def expected(sim: Simulator, faults: Faults):
    """(truth, {quarantined href: (entity type, uid)}, foreign links refused) for a complete run.

    The rule under test: an unreadable entity is quarantined and never written; a parent that is
    quarantined, gone (404) or linked on another origin is recorded from the child's link as a
    placeholder (href and name as the link says), so its children still load.
    """
    w, origin = sim.world, sim.origin
    truth = sim.truth()
    quarantine: dict[str, tuple[str, str | None]] = {}
    refused = 0

    def bad(obj) -> str | None:
        return faults.corruption(obj.kind, obj.guid)

    def quarantined(obj) -> None:
        quarantine[w.href(obj.kind, obj.guid, True, origin)] = (
            obj.kind,
            None if bad(obj) == "uid" else obj.uid,
        )

    def placeholder(table: str, obj, href: str) -> None:
        some = next(iter(truth[table].values()))
        truth[table][obj.uid] = {
            **dict.fromkeys(some),
            "uid": obj.uid,
            "href": href,
            "name": obj.name,
            "placeholder": True,
        }

    def foreign(href: str) -> str:
        return faults.foreign_origin + href[len(origin) :]

    # task sessions: the unreadable ones are quarantined and absent
    for t in w.tasks:
        if bad(t):
            quarantined(t)
            del truth["replica_task_sessions"][t.uid]
    tasks = [t for t in w.tasks if not bad(t)]

    # replica points: from the query, else by the tasks' Related links
    served = {p.guid for p in w.points}
    needed = {p.guid: p for t in tasks if (p := w.related_point(t)) is not None}
    truth["vm_replica_points"] = {u: r for u, r in truth["vm_replica_points"].items() if not r["placeholder"]}
    for p in w.points:
        if bad(p):
            quarantined(p)
            del truth["vm_replica_points"][p.uid]
    for guid, p in needed.items():
        if guid in served and not bad(p):
            continue
        href = w.href("VmReplicaPoint", guid, True, origin)
        if faults.is_foreign(guid):
            refused += guid not in served  # a point quarantined from its page is not asked for again
            placeholder("vm_replica_points", p, foreign(href))
        else:  # 404 (deleted) or quarantined again when fetched
            placeholder("vm_replica_points", p, href)

    # job sessions: from the query, else by the tasks' Up links
    listed = {js.guid for js in w.queryable_job_sessions()}
    needed_js = {t.js.guid for t in tasks}
    for js in w.job_sessions:
        if js.guid in listed and bad(js):
            quarantined(js)
        if js.guid in listed and not bad(js):
            continue
        if js.guid not in needed_js:
            truth["replica_job_sessions"].pop(js.uid, None)
            continue
        href = w.href("ReplicaJobSession", js.guid, False, origin)
        if faults.is_foreign(js.guid):
            refused += js.guid not in listed  # quarantined from its page: not asked for again
            placeholder("replica_job_sessions", js, foreign(href))
        elif bad(js):
            quarantined(js)
            placeholder("replica_job_sessions", js, href)
        # else: a hidden session fetched by its link: the truth's row

    # backup servers: needed by every real row that names one
    real_js = {
        js.guid
        for js in w.job_sessions
        if js.uid in truth["replica_job_sessions"]
        and not truth["replica_job_sessions"][js.uid]["placeholder"]
    }
    needed_servers = (
        {js.job.server.guid for js in w.job_sessions if js.guid in real_js}
        | {t.js.job.server.guid for t in tasks}
        | {p.task.js.job.server.guid for p in w.points if not bad(p)}
    )
    for s in w.servers:
        if s.deleted or not bad(s):
            continue
        quarantined(s)
        if s.guid in needed_servers:
            placeholder("backup_servers", s, w.href("BackupServer", s.guid, False, origin))
        else:
            del truth["backup_servers"][s.uid]
    return truth, quarantine, refused


def quarantine_rows(eng) -> dict[str, dict]:
    with eng.connect() as conn:
        return {r["href"]: dict(r) for r in conn.execute(select(schema.etl_quarantine)).mappings()}


def assert_no_duplicates(eng) -> None:
    with eng.connect() as conn:
        for table in registry.tables():
            total = conn.scalar(select(func.count()).select_from(table))
            distinct = conn.scalar(select(func.count(func.distinct(table.c.uid))))
            assert total == distinct, f"{table.name}: {total} rows for {distinct} uids"


def run_and_check(eng, sim: Simulator, faults: Faults, **options) -> pipeline.Summary:
    summary = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(**{**OPTIONS, **options}))
    truth, quarantine, refused = expected(sim, faults)
    assert summary.status == "succeeded"
    assert_equal_to_truth(eng, truth)
    assert_no_duplicates(eng)
    rows = quarantine_rows(eng)
    assert {h: (r["entity_type"], r["uid"]) for h, r in rows.items()} == quarantine
    for r in rows.values():
        assert r["run_id"] == summary.run_id and r["error"] and 0 < len(r["excerpt"]) <= 2000
    assert summary.quarantined == len(quarantine)  # each entity once, however often it was met
    assert summary.foreign_links == refused
    assert sim.requests_by_kind["logoff"] == 1, "the client always logs off"
    return summary


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fault", MATRIX)
def test_fault_matrix(fault, seed, tmp_path, trap):
    switches = MATRIX[fault]
    faults = Faults(seed=seed, foreign_origin=trap.origin, **switches)
    with Simulator(small_world(seed), faults=faults) as sim:
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        summary = run_and_check(eng, sim, faults)
        eng.dispose()
    fired = {name for name, count in faults.fired.items() if count}
    if fault == "all-together":
        assert len(fired) >= 8, fired
    else:
        assert fired == set(switches), f"{fault} never fired: {dict(faults.fired)}"
    per_request = set(switches) & {
        "unavailable",
        "throttle",
        "server_error",
        "slow",
        "reset",
        "truncate",
        "short_body",
        "malformed",
        "logon_unavailable",
    }
    if per_request:
        assert summary.retries > 0
    assert trap.hits == [], "a link to another origin was requested"


def test_all_faults_together_on_both_databases(db_url, trap):
    faults = Faults(seed=7, foreign_origin=trap.origin, **MATRIX["all-together"])
    with Simulator(small_world(1), faults=faults) as sim:
        eng = db.engine(db_url)
        run_and_check(eng, sim, faults, concurrency=4)  # 8 threads
        # a second, clean run over the same estate changes nothing
        before = dump(eng)
        sim.faults = Faults(seed=7, foreign_origin=trap.origin, corrupt=0.04, foreign_links=0.5)
        again = pipeline.run(
            eng, sim.url, "demo", "demo", options=pipeline.Options(**OPTIONS, full_refresh=True)
        )
        assert again.status == "succeeded" and dump(eng) == before
        eng.dispose()
    assert trap.hits == []


def test_token_expiring_every_few_requests_under_many_threads(tmp_path):
    faults = Faults(seed=3, token_requests=13)  # > 2 x threads (6: 2 x concurrency 3)
    with Simulator(small_world(2), faults=faults) as sim:
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        summary = run_and_check(eng, sim, faults, concurrency=3, page_size=4)
        eng.dispose()
    assert faults.fired["token_requests"] >= 2
    assert sim.requests_by_kind["logon"] == faults.fired["token_requests"] + 1  # one re-logon per expiry
    assert summary.retries == 0  # a re-logon is not a retry


def test_idle_token_expiry_logs_on_again_once_and_repeats():
    faults = Faults(token_idle=0.2)
    with Simulator(small_world(1), faults=faults) as sim:
        with EMClient(sim.url, "demo", "demo", retry=FAST, timeout=2) as client:
            first = client.get(client.query_url("BackupServer"))
            time.sleep(0.35)
            second = client.get(client.query_url("BackupServer"))
        assert sim.requests_by_kind["logon"] == 2 and faults.fired["token_idle"] == 1
        assert sim.requests_by_kind["logoff"] == 1
    assert len(first) == len(second)


def test_faults_are_deterministic_per_seed():
    keys = [("GET", "/api/query", f"type=ReplicaTaskSession&page={k}") for k in range(1, 40)]
    a, b, c = (Faults(seed=s, unavailable=0.3) for s in (1, 1, 2))
    assert [a._choose(k, 0) for k in keys] == [b._choose(k, 0) for k in keys]
    assert [a._choose(k, 0) for k in keys] != [c._choose(k, 0) for k in keys]
    assert Faults(seed=4, corrupt=0.5).corruption("BackupServer", "AB-1") == Faults(
        seed=4, corrupt=0.5
    ).corruption("BackupServer", "ab-1")
    with pytest.raises(ValueError, match="at most 1"):
        Faults(unavailable=0.6, throttle=0.6)


def test_faults_never_touch_logon_or_logoff_unless_switched():
    faults = Faults(seed=1, unavailable=0.5, reset=0.5)  # every data request would fail at first
    with (
        Simulator(small_world(1), faults=faults) as sim,
        EMClient(sim.url, "demo", "demo", retry=RetryPolicy(attempts=1), timeout=2) as client,
    ):
        assert client.session.token  # root and logon answered on the first try
    assert sim.requests_by_kind["logon"] == 1 and sim.requests_by_kind["logoff"] == 1


def test_logon_503_is_retried():
    faults = Faults(logon_unavailable=3)
    with (
        Simulator(small_world(1), faults=faults) as sim,
        EMClient(sim.url, "demo", "demo", retry=FAST) as client,
    ):
        assert client.session.token and client.retries == 3
    assert sim.requests_by_kind["logon"] == 4


# --- a source that stays down -------------------------------------------------------------------


def last_run(eng) -> dict:
    with eng.connect() as conn:
        return dict(
            conn.execute(select(schema.etl_runs).order_by(schema.etl_runs.c.id.desc())).mappings().first()
        )


def test_source_that_answers_503_forever_fails_and_changes_nothing(db_url):
    with Simulator(small_world(1, Quirks())) as sim:
        eng = db.engine(db_url)
        pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=20))
        before = dump(eng, with_meta=True)
        sim.faults = Faults(down=True)
        done = cli(
            "run", "--url", sim.url, "--user", "demo", "--db", db_url, "--retries", "3", "--full-refresh"
        )
        assert done.returncode == 1, done.stderr
        assert sim.faults.fired["down"] == 3  # three attempts at the first query, then the run ends
        assert "giving up after 3 attempts" in done.stderr and "HTTP 503" in done.stderr
        assert sim.url in done.stderr and "Traceback" not in done.stderr
        assert dump(eng, with_meta=True) == before
        failed = last_run(eng)
        assert failed["status"] == "failed" and "HTTP 503" in failed["error"]
        assert sim.requests_by_kind["logoff"] == 2  # logged off after the failure too
        eng.dispose()


def test_source_that_is_gone_fails_and_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path}/w.db"
    sim = Simulator(small_world(1, Quirks())).start()
    eng = db.engine(url)
    pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(page_size=20))
    before = dump(eng, with_meta=True)
    sim.stop()
    done = cli("run", "--url", sim.url, "--user", "demo", "--db", url, "--retries", "2")
    assert done.returncode == 1, done.stderr
    assert "giving up after 2 attempts" in done.stderr and "ConnectError" in done.stderr
    assert "Traceback" not in done.stderr
    assert dump(eng, with_meta=True) == before
    assert last_run(eng)["status"] == "failed"
    eng.dispose()


# --- hostile documents end to end -----------------------------------------------------------------


def warehouse_text(eng) -> str:
    """Every value of every column of every table (entity, bookkeeping, Alembic), as one string."""
    parts = []
    with eng.connect() as conn:
        for name in inspect(conn).get_table_names():
            table = schema.metadata.tables.get(name)
            if table is None:
                table = Table(name, MetaData(), autoload_with=conn)
            for row in conn.execute(select(table)):
                parts.extend(str(v) for v in row)
    return "\n".join(parts)


def test_xxe_file_never_reaches_the_warehouse(db_url, tmp_path):
    marker = f"XXE-MARKER-{uuid.uuid4().hex}"
    secret = tmp_path / "secret.txt"
    secret.write_text(marker)
    faults = Faults(seed=2, doctype=0.2, xxe_target=secret.as_uri())
    with Simulator(small_world(1, Quirks()), faults=faults) as sim:
        done = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url, "--page-size", "10")
    assert faults.fired["doctype"] >= 1
    assert done.returncode == 1, done.stderr
    assert "DOCTYPE" in done.stderr and sim.url in done.stderr and "Traceback" not in done.stderr
    eng = db.engine(db_url)
    with eng.connect() as conn:  # pages before the hostile one were committed: the grep has rows to search
        assert conn.scalar(select(func.count()).select_from(schema.backup_servers)) > 0
    text = warehouse_text(eng)
    assert marker not in text and "DOCTYPE" in last_run(eng)["error"]
    eng.dispose()
    if db_url.startswith("sqlite"):
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("warehouse.db*"))
        assert marker.encode() not in raw


def test_external_dtd_and_entity_never_fetched(tmp_path, trap):
    faults = Faults(seed=1, doctype=1.0, xxe_target=f"{trap.origin}/evil.dtd")
    with Simulator(small_world(1, Quirks()), faults=faults) as sim:
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        with pytest.raises(HostileDocument, match="DOCTYPE"):
            pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(**OPTIONS))
        eng.dispose()
    assert faults.fired["doctype"] == 1  # refused at once: a DOCTYPE is not retried
    assert trap.hits == []


# --- the retry policy itself ------------------------------------------------------------------------


def test_retry_after_is_honoured_up_to_the_cap_and_jitter_is_bounded(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("etl.stopping.sleep", slept.append)  # the client waits there
    script = [
        (503, {"Retry-After": "1"}),
        (429, {"Retry-After": "120"}),
        (503, {}),
        (502, {}),
        (503, {"Retry-After": "0.5"}),
        (200, {}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        status, headers = script.pop(0)
        return httpx.Response(
            status,
            headers=headers,
            content=b'<Error Message="busy"/>'
            if status != 200
            else b'<QueryResult xmlns="http://www.veeam.com/ent/v1.0"/>',
        )

    policy = RetryPolicy(attempts=8, base=0.1, cap=5, total=60)
    client = EMClient(
        "http://em:9399/api", "demo", "pw", retry=policy, transport=httpx.MockTransport(handler)
    )
    client.session.token = "t"
    client.get("http://em:9399/api/query")
    assert slept[0] == 1.0 and slept[1] == 5  # Retry-After, then capped
    # between half and all of the doubling step: the wait grows whatever the dice say
    assert 0.1 * 2**2 / 2 <= slept[2] <= 0.1 * 2**2 and 0.1 * 2**3 / 2 <= slept[3] <= 0.1 * 2**3
    assert slept[4] == 0.5 and client.retries == 5


def test_transport_http_and_parse_failures_share_one_budget(monkeypatch):
    monkeypatch.setattr("etl.stopping.sleep", lambda s: None)
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) % 3 == 0:
            raise httpx.ReadError("reset", request=request)
        if len(calls) % 3 == 1:
            return httpx.Response(200, content=b'<QueryResult xmlns="http://www.veeam.com/ent/v1.0"><Ent')
        return httpx.Response(503)

    client = EMClient(
        "http://em:9399/api",
        "demo",
        "pw",
        retry=RetryPolicy(attempts=5, base=0, cap=0),
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(SourceError, match="giving up after 5 attempts"):
        client.document("http://em:9399/api/query")
    assert len(calls) == 5


def test_total_time_budget_stops_retrying(monkeypatch):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(503, headers={"Retry-After": "1"})

    client = EMClient(
        "http://em:9399/api",
        "demo",
        "pw",
        retry=RetryPolicy(attempts=50, base=0, cap=1, total=1.5),
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(SourceError, match="giving up after 2 attempts") as raised:
        client.get("http://em:9399/api/query")
    assert len(calls) == 2  # the 1.5 s budget ends it, not the 50 attempts
    # why it stopped while attempts were left: EM's wait would pass the retry time
    assert "EM's Retry-After asked for 1 s; it would pass the retry time of 1.5 s, --retry-time" in str(
        raised.value
    )


def test_giving_up_on_a_retry_after_past_the_retry_time_says_what_em_asked_for_and_the_cap():
    budget = RetryPolicy(attempts=20, cap=15, total=120).budget()
    with pytest.raises(SourceError) as raised:
        for _ in range(20):
            budget.started -= 20  # each wait, as if slept
            budget.spend(SourceError("HTTP 503: busy"), retry_after=600)
    assert (
        "EM's Retry-After asked for 600 s, waits capped at 15 s; it would pass the retry time of 120 s"
        in (str(raised.value))
    )


def test_a_body_that_drips_in_slower_than_the_timeout_is_abandoned():
    class Drip(Faults):
        def intercept(self, ctx):
            if ctx.kind != "query":
                return None
            self._fire("drip")
            h = ctx.handler
            h.close_connection = True
            h.send_response(200)
            h.send_header("Content-Length", "4000")
            h.end_headers()
            try:
                for _ in range(40):  # each piece well inside the timeout, the whole far beyond it
                    h.wfile.write(b" " * 100)
                    h.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass  # the client hung up, as it should
            return HANDLED

    with (
        Simulator(small_world(1, Quirks()), faults=Drip()) as sim,
        EMClient(sim.url, "demo", "demo", retry=RetryPolicy(attempts=2, base=0, cap=0), timeout=1) as client,
    ):
        with pytest.raises(SourceError, match="still arriving after 1 s"):
            client.get(client.query_url("BackupServer"))
        assert sim.faults.fired["drip"] == 2  # abandoned on each of the 2 attempts, not read to the end


# --- unreadable entities ------------------------------------------------------------------------------


def test_corrupt_entities_are_quarantined_and_their_children_still_load(db_url):
    faults = Faults(seed=18, corrupt=0.08)  # a seed that also corrupts one of the two servers
    with Simulator(small_world(1, Quirks()), faults=faults) as sim:
        eng = db.engine(db_url)
        summary = run_and_check(eng, sim, faults)  # warehouse == truth minus the corrupted, as placeholders
        w = sim.world
        bad = {
            o.uid: (o, faults.corruption(o.kind, o.guid))
            for o in [*w.servers, *w.job_sessions, *w.tasks, *w.points]
            if faults.corruption(o.kind, o.guid)
        }
        assert {o.kind for o, _ in bad.values()} == {
            "BackupServer",
            "ReplicaJobSession",
            "ReplicaTaskSession",
            "VmReplicaPoint",
        }
        assert len({mode for _, mode in bad.values()}) >= 4  # port, date, enum, size, missing UID ...
        got = dump(eng)
        rows = quarantine_rows(eng)
        with eng.connect() as conn:
            recorded = conn.scalar(
                select(schema.etl_runs.c.quarantined).where(schema.etl_runs.c.id == summary.run_id)
            )
        assert recorded == summary.quarantined > 0
        table_of = {
            "BackupServer": "backup_servers",
            "ReplicaJobSession": "replica_job_sessions",
            "ReplicaTaskSession": "replica_task_sessions",
            "VmReplicaPoint": "vm_replica_points",
        }
        children = 0
        for uid, (obj, mode) in bad.items():
            href = w.href(obj.kind, obj.guid, True, sim.origin)
            assert rows[href]["entity_type"] == obj.kind and rows[href]["uid"] == (
                None if mode == "uid" else uid
            )
            row = got[table_of[obj.kind]].get(uid)
            if row is not None:  # never half-written: only a placeholder from a child's link
                assert row["placeholder"] is True and row["name"] == obj.name
                assert all(
                    v is None for k, v in row.items() if k not in ("uid", "href", "name", "placeholder")
                )
            if obj.kind == "ReplicaJobSession":
                kids = [t for t in obj.tasks if t.uid in got["replica_task_sessions"]]
                assert kids and all(
                    got["replica_task_sessions"][t.uid]["job_session_uid"] == uid for t in kids
                )
                children += len(kids)
            if obj.kind == "BackupServer":
                kids = [r for r in got["replica_job_sessions"].values() if r["backup_server_uid"] == uid]
                assert kids
                children += len(kids)
        assert children > 0
        eng.dispose()
