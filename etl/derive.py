"""What the warehouse works out by itself, in SQL: the jobs of backups and replicas from EM's links,
the VM restore points of backup tasks EM gives no link for, retention marks, and what the run plans
from (parents new in this run, rows a window must overlap). SQL only: no client, no HTTP, no
etl.crawl; what EM is asked for these (job queries, UID lookups) the pipeline asks and passes in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, Engine, Table, and_, exists, func, literal, or_, select, text, update
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from . import chunks, registry, schema
from .registry import EntityType

log = logging.getLogger(__name__)


def _unsettled(table: Table, source: str, complete: bool = False):
    """Rows this run wrote, or a run that did not succeed (killed, interrupted: it never got to
    work them out). Rows of succeeded runs were worked out then and are not looked at again; with
    `complete`, only runs EM refused nothing (HTTP 403) count as settled: a run that could not read
    the jobs could not give backups and replicas theirs."""
    runs = schema.etl_runs
    settled = select(runs.c.id).where(runs.c.source == source, runs.c.status == "succeeded")
    if complete:
        settled = settled.where(runs.c.refused.is_(None))
    return table.c.run_id.not_in(settled)


# --- the jobs of backups and replicas (em-backup-side.md §5, §9) ------------------------------------


def _parent_column(child: EntityType, parent: EntityType) -> str | None:
    """The column of `child` its declared parent of type `parent` is held in, if it declares one."""
    return next((p.column for p in child.parents if p.type_name == parent.name), None)


def _job_links(entity_type: EntityType):
    """(the column naming a row of `entity_type`, the job column, the join) along the declared
    `jobs_linked_through` path: each step joined by the parent one of the two types declares."""
    path = [registry.TYPES[name] for name in entity_type.jobs_linked_through]
    prev_type, prev = path[0], schema.table(path[0].table)
    owner = prev.c[str(_parent_column(prev_type, entity_type))]
    joined: FromClause = prev
    for step in path[1:]:
        table = schema.table(step.table)
        down = _parent_column(step, prev_type)  # the next type names the one before (a task its point)
        on = (
            table.c[down] == prev.c.uid
            if down is not None
            else table.c.uid == prev.c[str(_parent_column(prev_type, step))]
        )
        joined = joined.join(table, on)
        prev_type, prev = step, table
    return owner, prev.c[str(_parent_column(prev_type, registry.JOB))], joined


def jobs_by_links(conn: Connection, entity_type: EntityType, source: str) -> int:
    """Fill `job_uid` of rows of `entity_type` whose job EM's links tell, along the type's
    `jobs_linked_through` declaration (a replica holds the replica points its job's task sessions
    link, a backup the restore points whose VM restore points its job's backup tasks made, linked
    or inferred). Only jobs the warehouse holds (not placeholders: a copy worker's "job" is not the
    copy job), and only where every such task names the same job. Returns rows filled; what is left
    is asked of EM (`unmapped`, `set_jobs`)."""
    if not entity_type.jobs_linked_through:
        return 0
    table, jobs = schema.table(entity_type.table), schema.jobs
    if conn.execute(_unmapped(table, source).limit(1)).first() is None:
        return 0  # the usual case after the first load: no join over the points at all
    owner, job, joined = _job_links(entity_type)
    pairs = (
        select(owner, job)
        .select_from(joined)
        .join(jobs, jobs.c.uid == job)
        .where(jobs.c.placeholder.is_(False), owner.in_(_unmapped(table, source)))
        .distinct()
    )
    found: dict[str, set[str]] = {}
    for uid, named in conn.execute(pairs):
        found.setdefault(uid, set()).add(named)
    filled = 0
    for uid, named_jobs in found.items():
        if len(named_jobs) == 1:
            filled += conn.execute(
                update(table)
                .where(table.c.uid == uid, table.c.job_uid.is_(None))
                .values(job_uid=named_jobs.pop(), job_uid_source="link")
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


def unmapped(conn: Connection, entity_type: EntityType, source: str) -> list[tuple[str, str | None]]:
    """(uid, backup server) of the rows of `entity_type` still without a job that this run (or one
    that did not succeed, or was refused some type) wrote."""
    table = schema.table(entity_type.table)
    query = select(table.c.uid, table.c.backup_server_uid).where(table.c.uid.in_(_unmapped(table, source)))
    return [(uid, server) for uid, server in conn.execute(query)]


def job_candidates(
    conn: Connection, entity_type: EntityType, source: str, servers: set[str | None]
) -> list[tuple[str, str | None, bool]]:
    """(job uid, backup server, whether it owns a row of `entity_type` already) of the jobs of the
    type's `job_types` on `servers` (placeholders left out): the jobs EM may be asked for them."""
    table, jobs = schema.table(entity_type.table), schema.jobs
    assert entity_type.job_types is not None
    query = select(
        jobs.c.uid, jobs.c.backup_server_uid, exists(select(table.c.uid).where(table.c.job_uid == jobs.c.uid))
    ).where(
        jobs.c.source == source,
        jobs.c.placeholder.is_(False),
        jobs.c.backup_server_uid.in_({server for server in servers if server}),
        jobs.c.job_type.in_(entity_type.job_types),
    )
    return [(uid, server, bool(owns)) for uid, server, owns in conn.execute(query)]


def set_jobs(conn: Connection, entity_type: EntityType, owners: dict[str, set[str]], run_id: int) -> int:
    """Give the rows of `entity_type` that are still without a job the job EM listed them under
    (`owners`: job uid -> row uids; `job_uid_source` "query"). Returns rows filled."""
    table = schema.table(entity_type.table)
    filled = 0
    for job, uids in owners.items():
        for chunk in chunks(sorted(uids), schema.IN_LIST):
            filled += conn.execute(
                update(table)
                .where(table.c.uid.in_(chunk), table.c.job_uid.is_(None))
                .values(job_uid=job, job_uid_source="query", run_id=run_id)
            ).rowcount
    return filled


def jobs_from_parents(conn: Connection, entity_type: EntityType, wanted: set[str], run_id: int) -> int:
    """A row without a job takes its parent's of the same type (an agent ChildBackup its
    ParentBackup's: em-backup-side.md §5; `job_uid_source` "parent"), for types that declare such
    a parent; `wanted` loses the rows filled. Returns rows filled."""
    column = _parent_column(entity_type, entity_type)
    if column is None:
        return 0
    table = schema.table(entity_type.table)
    parent = table.alias("parent")
    filled = 0
    for chunk in chunks(sorted(wanted), schema.IN_LIST):
        rows = conn.execute(
            select(table.c.uid, parent.c.job_uid)
            .join(parent, parent.c.uid == table.c[column])
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


# --- VM restore points EM gives no link for (em-backup-side.md §14) ---------------------------------


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
    first_new_point = _instant(
        conn.scalar(
            select(func.min(v.c.creation_time_utc)).where(v.c.source == source, _unsettled(v, source))
        )
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


# --- retention: rows EM no longer lists ---------------------------------------------------------------


def swept_types() -> list[EntityType]:
    """The types retention removes from EM (their tables have `deleted_at`)."""
    return [t for t in registry.TYPES.values() if "deleted_at" in schema.table(t.table).c]


def has_placeholders(conn: Connection, entity_type: EntityType) -> bool:
    """Whether the table of `entity_type` holds rows known only from a link."""
    table = schema.table(entity_type.table)
    return conn.execute(select(table.c.uid).where(table.c.placeholder.is_(True)).limit(1)).first() is not None


def unlisted(
    eng: Engine,
    entity_type: EntityType,
    source: str,
    run_id: int,
    listed: Iterable[list[str]],
    within: ColumnElement[bool] | None = None,
) -> tuple[list[str], int]:
    """Compare the live rows of `source` (`within` narrows them: a slice the completeness check read
    again) with the uids EM lists (`listed`, consumed here, a list at a time): clear the `deleted_at`
    mark of rows listed again, and return the live rows the lists lack. A uid list is not a proof
    of absence (EM pages by offset into a result it changes: etl.crawl), so those are candidates
    only, to be asked of EM by UID before `mark_deleted`. Rows this run wrote were listed by
    definition and are left out, but for placeholders (recorded because EM answered 404). Returns
    (candidates, rows brought back)."""
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
        for uids in listed:
            for chunk in chunks(dict.fromkeys(uids), schema.IN_LIST):
                conn.execute(text(f"INSERT INTO {seen} (uid) VALUES (:uid)"), [{"uid": u} for u in chunk])
        in_lists = select(text("uid")).select_from(text(seen))
        candidates = list(conn.scalars(select(table.c.uid).where(*live, table.c.uid.not_in(in_lists))))
        back_where = [table.c.source == source, table.c.deleted_at.is_not(None), table.c.uid.in_(in_lists)]
        if within is not None:
            back_where.append(within)
        back = conn.execute(update(table).where(*back_where).values(deleted_at=None, run_id=run_id)).rowcount
        conn.execute(text(f"DELETE FROM {seen}"))
    return candidates, back


def mark_deleted(eng: Engine, entity_type: EntityType, uids: list[str], now: datetime) -> int:
    """Mark rows EM no longer lists, nor returns asked by UID, as deleted (`deleted_at` = now).
    Rows are never deleted. Returns rows marked."""
    table = schema.table(entity_type.table)
    gone = 0
    with eng.begin() as conn:
        for chunk in chunks(uids, schema.IN_LIST):
            gone += conn.execute(
                update(table)
                .where(table.c.uid.in_(chunk), table.c.deleted_at.is_(None))
                .values(deleted_at=now)
            ).rowcount
    return gone


# --- what the run plans from ------------------------------------------------------------------------------


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
