"""What the warehouse works out after the pages of a run are loaded, where EM's entities say nothing.

- `jobs_by_links`, `map_jobs`: a backup's or replica's job, which no entity names: first from EM's
  own links (the points its job's tasks link), then, for what is left, from EM's answer to
  `type=…&filter=JobUid==<job>` (em-backup-side.md §5, §9) — asked only for rows new to the
  warehouse, so a quiet run asks nothing; `job_uid_source` says which (`link`, `query`, or
  `parent` for an agent child backup given its parent's job);
- `infer_restore_points`: a backup task's VM restore point when EM gives no `Related` link
  (em-backup-side.md §14), marked `inferred`; a link EM gave is never overwritten;
- `sweep`: retention — objects EM no longer lists get `deleted_at` (once EM did not return them
  asked by UID), and lose it if they come back. Rows are never deleted;
- `new_parents`, `held_in_window`: what the run loop asks the warehouse (parents new in this run,
  rows an incremental window must overlap).
Uses the run's client and warehouse; knows the tables through etl.registry and etl.schema.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from datetime import datetime

from sqlalchemy import Connection, Engine, Table, and_, exists, func, literal, or_, select, text, update
from sqlalchemy.sql.elements import ColumnElement

from . import batched, crawl, registry, schema
from .client import EMClient
from .registry import EntityType

log = logging.getLogger(__name__)


def _unsettled(table: Table, source: str, complete: bool = False):
    """Rows this run wrote, or a run that did not succeed (killed, interrupted: it never got to
    reconcile them). Rows of succeeded runs were reconciled then and are not looked at again; with
    `complete`, only runs EM refused nothing (HTTP 403) count as settled: a run that could not read
    the jobs could not give backups and replicas theirs."""
    runs = schema.etl_runs
    settled = select(runs.c.id).where(runs.c.source == source, runs.c.status == "succeeded")
    if complete:
        settled = settled.where(runs.c.refused.is_(None))
    return table.c.run_id.not_in(settled)


def jobs_by_links(conn: Connection, entity_type: EntityType, source: str) -> int:
    """Fill `job_uid` of replicas and backups whose job the warehouse can tell: a replica holds the
    replica points its job's task sessions link (`Related`), a backup the restore points whose VM
    restore points its job's backup tasks made (linked, or inferred where EM gives no link). Only
    jobs the warehouse holds (not placeholders: a copy worker's "job" is not the copy job), and
    only where every such task names the same job. Returns rows filled. What is left is asked
    for with `map_jobs`."""
    if entity_type.table == "replicas":
        owner = schema.vm_replica_points.c.replica_uid
        p, t, s = schema.vm_replica_points, schema.replica_task_sessions, schema.replica_job_sessions
        pairs = select(owner, s.c.job_uid).select_from(
            p.join(t, t.c.replica_point_uid == p.c.uid).join(s, s.c.uid == t.c.job_session_uid)
        )
    elif entity_type.table == "backups":
        r, v = schema.restore_points, schema.vm_restore_points
        t, s = schema.backup_task_sessions, schema.backup_job_sessions
        owner = r.c.backup_uid
        pairs = select(owner, s.c.job_uid).select_from(
            r.join(v, v.c.restore_point_uid == r.c.uid)
            .join(t, t.c.vm_restore_point_uid == v.c.uid)
            .join(s, s.c.uid == t.c.job_session_uid)
        )
    else:
        return 0
    table, jobs = schema.table(entity_type.table), schema.jobs
    if conn.execute(_unmapped(table, source).limit(1)).first() is None:
        return 0  # the usual case after the first load: no join over the points at all
    pairs = (
        pairs.join(jobs, jobs.c.uid == s.c.job_uid)
        .where(jobs.c.placeholder.is_(False), owner.in_(_unmapped(table, source)))
        .distinct()
    )
    found: dict[str, set[str]] = {}
    for uid, job in conn.execute(pairs):
        found.setdefault(uid, set()).add(job)
    filled = 0
    for uid, named in found.items():
        if len(named) == 1:
            filled += conn.execute(
                update(table)
                .where(table.c.uid == uid, table.c.job_uid.is_(None))
                .values(job_uid=named.pop(), job_uid_source="link")
            ).rowcount
    return filled


def _unmapped(table: Table, source: str):
    """uids of rows without a job that this run (or one that did not succeed, or was refused some
    type) wrote."""
    return select(table.c.uid).where(
        table.c.source == source,
        _unsettled(table, source, complete=True),
        table.c.job_uid.is_(None),
        table.c.placeholder.is_(False),
    )


def map_jobs(
    eng: Engine,
    client: EMClient,
    pool: Executor,
    entity_type: EntityType,
    source: str,
    run_id: int,
) -> int:
    """Fill `job_uid` of rows of `entity_type` without one that this run (or one that did not
    succeed) wrote, from EM's answer to `type=<type>&filter=JobUid==<job>` (em-backup-side.md §5,
    §9) for the jobs of the declared job types on the same backup servers.

    Jobs that own no row yet are asked one by one (a new backup most often belongs to a new job);
    then a child backup takes its parent's job (ParentBackup is the agent job's container, a
    ChildBackup one machine of it: em-backup-side.md §5);
    only if rows are still left are the other jobs of their backup servers asked, UIDS_PER_QUERY
    OR-ed per query and a group that answers a wanted row halved until one job is left — so a
    backup no job owns (its job deleted) costs a request or two, not one per job. Returns how
    many rows got their job.
    """
    assert entity_type.job_types is not None
    table, jobs = schema.table(entity_type.table), schema.jobs
    with eng.connect() as conn:
        unmapped = conn.execute(
            select(table.c.uid, table.c.backup_server_uid).where(table.c.uid.in_(_unmapped(table, source)))
        ).all()
        if not unmapped:
            return 0
        candidates = conn.execute(
            select(
                jobs.c.uid,
                jobs.c.backup_server_uid,
                exists(select(table.c.uid).where(table.c.job_uid == jobs.c.uid)),
            ).where(
                jobs.c.source == source,
                jobs.c.placeholder.is_(False),
                jobs.c.backup_server_uid.in_({server for _, server in unmapped if server}),
                jobs.c.job_type.in_(entity_type.job_types),
            )
        ).all()
    wanted = {uid for uid, _ in unmapped}
    server_of = dict(unmapped)
    asked = 0

    def members(group: list[str]) -> list[str]:  # nearly always one page: a job has a backup or two
        flt = ",".join(f"JobUid=={crawl.literal(job)}" for job in group)
        return [uid for chunk in crawl.uids(client, None, entity_type, flt) for uid in chunk]

    def assign(groups: list[list[str]]) -> int:
        nonlocal asked
        filled = 0
        while groups and wanted:
            split: list[list[str]] = []
            asked += len(groups)
            for group, uids in zip(groups, pool.map(members, groups), strict=True):
                hits = wanted.intersection(uids)
                if not hits:
                    continue
                if len(group) > 1:
                    split += [group[: len(group) // 2], group[len(group) // 2 :]]
                    continue
                wanted.difference_update(hits)
                with eng.begin() as conn:
                    for chunk in batched(sorted(hits), schema.IN_LIST):
                        filled += conn.execute(
                            update(table)
                            .where(table.c.uid.in_(chunk), table.c.job_uid.is_(None))
                            .values(job_uid=group[0], job_uid_source="query", run_id=run_id)
                        ).rowcount
            groups = split
        return filled

    mapped = assign([[job] for job, _, owns in candidates if not owns])
    if wanted and "parent_backup_uid" in table.c:
        with eng.begin() as conn:
            mapped += _jobs_from_parents(conn, table, wanted, run_id)
    if wanted:  # the jobs of the servers of the rows left, a group per server and UIDS_PER_QUERY
        servers = {server_of[uid] for uid in wanted}
        owning: dict[str, list[str]] = {}
        for job, server, owns in candidates:
            if owns and server in servers:
                owning.setdefault(server, []).append(job)
        mapped += assign(
            [list(c) for jobs_of in owning.values() for c in batched(jobs_of, crawl.UIDS_PER_QUERY)]
        )
    log.info(
        "%s: %d of %d new rows mapped to their job (%d queries)", table.name, mapped, len(unmapped), asked
    )
    return mapped


def _jobs_from_parents(conn: Connection, table: Table, wanted: set[str], run_id: int) -> int:
    """A child backup without a job takes its parent backup's; `wanted` loses the rows filled.
    Returns rows filled."""
    parent = table.alias("parent")
    filled = 0
    for chunk in batched(sorted(wanted), schema.IN_LIST):
        rows = conn.execute(
            select(table.c.uid, parent.c.job_uid)
            .join(parent, parent.c.uid == table.c.parent_backup_uid)
            .where(table.c.uid.in_(chunk), table.c.job_uid.is_(None), parent.c.job_uid.is_not(None))
        ).all()
        for uid, job_uid in rows:
            filled += conn.execute(
                update(table)
                .where(table.c.uid == uid)
                .values(job_uid=job_uid, job_uid_source="parent", run_id=run_id)
            ).rowcount
            wanted.discard(uid)
    return filled


def infer_restore_points(conn: Connection, source: str, run_id: int, now: datetime) -> int:
    """Link backup tasks EM gave no `Related` restore-point link to the VM restore point they made.

    A task that finished Success or Warning made the VM restore point of the same VM on the same
    backup server created within the task's window (em-backup-side.md §14): the VM is matched by
    `vm_uid` = `hierarchy_obj_ref`, or, for tasks without `VmUid` (older servers), by name (the
    point's VmName, VmDisplayName or the `<vm>@` prefix of its Name). The newest such point wins.
    Only tasks this run (or one that did not succeed) wrote, or whose window holds a point such a
    run wrote, are looked at. Two statements, each one an index serves: points by
    (hierarchy_obj_ref, creation time), and by (backup server, creation time). Returns how many
    tasks were linked.
    """
    t, v = schema.backup_task_sessions, schema.vm_restore_points
    first_new_point = conn.scalar(
        select(func.min(v.c.creation_time_utc)).where(v.c.source == source, _unsettled(v, source))
    )
    if isinstance(first_new_point, str):  # SQLite aggregates lose the column type
        first_new_point = schema.UTCDateTime().process_result_value(
            datetime.fromisoformat(first_new_point), None
        )
    ends = func.coalesce(t.c.end_time_utc, now)
    concerned = (
        _unsettled(t, source)
        if first_new_point is None
        else or_(_unsettled(t, source), ends >= first_new_point)
    )
    in_window = and_(
        v.c.placeholder.is_(False),
        v.c.creation_time_utc >= t.c.creation_time_utc,
        v.c.creation_time_utc <= ends,
    )
    # a hierarchy reference names one VM of one vCenter or host; a name, one VM of one backup server
    same_name = and_(
        v.c.backup_server_uid == t.c.backup_server_uid,
        or_(
            v.c.vm_name == t.c.vm_display_name,
            v.c.vm_display_name == t.c.vm_display_name,
            func.substr(v.c.name, 1, func.length(t.c.vm_display_name) + 1)
            == t.c.vm_display_name + literal("@"),
        ),
    )
    linked = 0
    for has_uid, same_vm in ((True, v.c.hierarchy_obj_ref == t.c.vm_uid), (False, same_name)):
        candidates = and_(same_vm, in_window)
        point = (
            select(v.c.uid).where(candidates).order_by(v.c.creation_time_utc.desc(), v.c.uid.desc()).limit(1)
        )
        linked += conn.execute(
            update(t)
            .where(
                t.c.source == source,
                t.c.vm_restore_point_uid.is_(None),
                t.c.vm_uid.is_not(None) if has_uid else t.c.vm_uid.is_(None),
                t.c.state == "Completed",
                t.c.result.in_(("Success", "Warning")),
                concerned,
                exists(select(v.c.uid).where(candidates)),
            )
            .values(
                vm_restore_point_uid=point.scalar_subquery(), vm_restore_point_link="inferred", run_id=run_id
            )
            .execution_options(synchronize_session=False)
        ).rowcount
    if linked:
        log.info("inferred the VM restore point of %d backup tasks", linked)
    return linked


def swept_types() -> list[EntityType]:
    """The types retention removes from EM (their tables have `deleted_at`)."""
    return [t for t in registry.TYPES.values() if "deleted_at" in schema.table(t.table).c]


def sweep(
    eng: Engine,
    entity_type: EntityType,
    source: str,
    run_id: int,
    now: datetime,
    pages: Iterable[list[str]],
    lookup: Callable[[list[str]], set[str]],
    within: ColumnElement[bool] | None = None,
) -> tuple[int, int]:
    """Mark rows of `source` EM no longer lists as deleted (`deleted_at` = now) and clear the mark of
    those it lists again; `pages` yields the listed uids, `within` narrows the rows looked at (a
    slice the verification read again). A uid list is not a proof of absence (EM pages by offset
    into a result it changes: crawl.pages), so a row the lists lack is a candidate only: `lookup`
    asks EM for the candidates by UID (loading what it returns) and gives back the uids it
    returned; only the others are marked. Rows this run wrote were listed by definition and are
    left alone, but for placeholders (recorded because EM answered 404). Returns (marked deleted,
    brought back)."""
    table = schema.table(entity_type.table)
    seen = f"veeam_etl_seen_{table.name}"
    live = [
        table.c.source == source,
        table.c.deleted_at.is_(None),
        or_(table.c.run_id != run_id, table.c.placeholder.is_(True)),
    ]
    if within is not None:
        live.append(within)
    with eng.begin() as conn:
        conn.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {seen} (uid VARCHAR(200) PRIMARY KEY)"))
        conn.execute(text(f"DELETE FROM {seen}"))
        for uids in pages:
            for chunk in batched(dict.fromkeys(uids), schema.IN_LIST):
                conn.execute(text(f"INSERT INTO {seen} (uid) VALUES (:uid)"), [{"uid": u} for u in chunk])
        listed = select(text("uid")).select_from(text(seen))
        candidates = list(conn.scalars(select(table.c.uid).where(*live, table.c.uid.not_in(listed))))
        back_where = [table.c.source == source, table.c.deleted_at.is_not(None), table.c.uid.in_(listed)]
        if within is not None:
            back_where.append(within)
        back = conn.execute(update(table).where(*back_where).values(deleted_at=None, run_id=run_id)).rowcount
        conn.execute(text(f"DELETE FROM {seen}"))
    found = lookup(candidates) if candidates else set()
    gone_uids = sorted(set(candidates) - found)
    gone = 0
    with eng.begin() as conn:
        for chunk in batched(gone_uids, schema.IN_LIST):
            gone += conn.execute(
                update(table)
                .where(table.c.uid.in_(chunk), table.c.deleted_at.is_(None))
                .values(deleted_at=now)
            ).rowcount
    if gone or back or found:
        log.info(
            "%s: %d no longer listed by EM (deleted_at set), %d listed again, %d missing from its uid "
            "lists but returned by UID",
            table.name,
            gone,
            back,
            len(found),
        )
    return gone, back


def new_parents(
    conn: Connection, parent: EntityType, source: str, now: datetime
) -> list[tuple[str, str | None, datetime | None]]:
    """(uid, backup server, creation instant or None) of the rows of `parent` that this run (whose
    load instant is `now`) added to the warehouse, placeholders left out."""
    table = schema.table(parent.table)
    at = table.c[parent.time_column] if parent.time_column else literal(None)
    query = select(table.c.uid, table.c.backup_server_uid, at).where(
        table.c.source == source, table.c.first_loaded_at >= now
    )
    if "placeholder" in table.c:
        query = query.where(table.c.placeholder.is_(False))
    return [(uid, server, _instant(when)) for uid, server, when in conn.execute(query)]


def held_in_window(
    conn: Connection,
    entity_type: EntityType,
    source: str,
    starts: dict[str, datetime | None] | datetime | None,
    limit: int,
) -> list[str]:
    """Up to `limit` uids (newest first) of live rows of `entity_type` (not placeholders, not marked
    deleted) the warehouse holds inside an incremental window: created at or after the window's
    start on a backup server it names (`starts`: per server, None read whole; or one instant)."""
    assert entity_type.time_column is not None
    table = schema.table(entity_type.table)
    at = table.c[entity_type.time_column]
    if isinstance(starts, dict):
        inside = or_(
            *(
                and_(table.c.backup_server_uid == server, at >= start)
                for server, start in starts.items()
                if start is not None
            )
        )
    elif starts is not None:
        inside = at >= starts
    else:
        return []
    where = [table.c.source == source, inside]
    if "placeholder" in table.c:
        where.append(table.c.placeholder.is_(False))
    if "deleted_at" in table.c:
        where.append(table.c.deleted_at.is_(None))
    return list(conn.scalars(select(table.c.uid).where(*where).order_by(at.desc()).limit(limit)))


def _instant(value) -> datetime | None:
    """An instant read back from an aggregate or a literal column (SQLite gives text)."""
    if isinstance(value, str):
        return schema.UTCDateTime().process_result_value(datetime.fromisoformat(value), None)
    return value
