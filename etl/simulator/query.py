"""The `/api/query` service: filter language (parse + evaluate), sorting and paging.

Grammar: `expr := and (',' and)*`, `and := term (';' term)*`, `term := '(' expr ')' | Name OP value`;
so `;` (AND) binds tighter than `,` (OR). See `FILTER_DOC` for value semantics.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from . import query_backup
from .clock import parse_ts
from .entities import BackupServer, EmObject, ReplicationEntity
from .world import EXTRA_STATES, World

FILTER_DOC = """\
Values are bare tokens (no spaces or ;,()"=!<>) or double-quoted strings ("" for a quote).
Strings compare case-insensitively for every operator. Numbers compare numerically, booleans are
true/false (false < true). Date-times must be UTC ISO instants ending in Z with 0-7 fraction digits
and compare at 100 ns precision. Enums compare by documented index (Result: None=-1 < Success <
Warning < Failed). Enum values are written bare (State!=Stopped), as every documented example writes
them; a quoted enum value is rejected with 400. A missing value (e.g. EndTime of a running session)
satisfies only `!=`. Unknown parameters, operators, enum names or malformed values are rejected
with 400."""

# Documented job-session states, then the VBR states EM passes through (world.EXTRA_STATES, which
# the filter knows whether or not the estate shows them).
JS_STATES = ("Starting", "Working", "Stopping", "Pausing", "Resuming", "Stopped", *EXTRA_STATES)
JS_STATE_INDEX = {n: i for i, n in enumerate(JS_STATES)}
TASK_STATES = ("Pending", "InProgress", "Completed")
JOB_TYPES = (
    "Backup",
    "Replica",
    "Copy",
    "BackupSync",
    "EndpointBackup",
    "ImmediateBackupCopyWorker",
    "NasBackup",
)
REPLICA = JOB_TYPES.index("Replica")
RESULT_ENUM = ("Success", "Warning", "Failed")
ALGORITHMS = ("Full", "Incremental", "ReversedIncremental", "SyntheticFull")
POINT_TYPES = ("Full", "Increment", "ReverseIncrement", "Snapshot")
TOKEN_RE = re.compile(
    r'\s*(?:(?P<op>==|!=|<=|>=|<|>)|(?P<punct>[();,])|"(?P<str>(?:[^"]|"")*)"'
    r'|(?P<word>[^\s;,()"=!<>]+))'
)


# A filter parameter: (its canonical name, its kind, the getter of its value from an object). The
# kind is ("str",), ("uid",), ("int",), ("float",), ("bool",), ("date",) or ("enum", {name: index});
# a value is what compares (a casefolded string, a number, ticks, an enum index) or None (missing).
ParamKind = tuple[Any, ...]
Getter = Callable[[Any], Any]
Param = tuple[str, ParamKind, Getter]
Params = dict[str, Param]  # lower-case name -> parameter
Predicate = Callable[[Any], bool]
Page = tuple[str, Sequence[EmObject], bool, int, int, int, list[tuple[str, str]]]


class QueryError(ValueError):
    """Malformed query: the server answers 400 with this message."""


def _enum(names: Sequence[str]) -> ParamKind:
    return ("enum", {n.lower(): i for i, n in enumerate(names)})


def _server(o: ReplicationEntity) -> BackupServer:
    if o.kind == "ReplicaJobSession":
        return o.job.server
    if o.kind == "ReplicaTaskSession":
        return o.js.job.server
    if o.kind == "VmReplicaPoint":
        return o.task.js.job.server
    return o


def _common() -> Params:
    return {"uid": ("UID", ("str",), lambda o: o.uid), "name": ("Name", ("str",), lambda o: o.name)}


def params_for(kind: str, w: World) -> Params:
    """{lower-case filter name: (canonical name, kind, getter(obj) -> comparable | None)}."""
    if kind in query_backup.KINDS:
        return query_backup.params_for(kind, w)
    p = _common()
    misread = w.quirks.misread_server_filter  # compared with the bare GUID: a urn matches nothing
    srv = {
        "backupserveruid": (
            "BackupServerUid",
            ("str",),
            (lambda o: _server(o).guid) if misread else (lambda o: _server(o).uid),
        ),
        "backupservername": ("BackupServerName", ("str",), lambda o: _server(o).name),
    }
    if kind == "BackupServer":
        p.update(
            {
                "description": ("Description", ("str",), lambda o: o.description),
                "ipordnsname": ("IpOrDnsName", ("str",), lambda o: o.name),
                "port": ("Port", ("int",), lambda o: o.port),
                "version": ("Version", ("str",), lambda o: o.version),
            }
        )
    elif kind == "ReplicaJobSession":
        p.update(srv)
        p.update(
            {
                "jobtype": ("JobType", _enum(JOB_TYPES), lambda o: REPLICA),
                "jobuid": ("JobUid", ("str",), lambda o: f"urn:veeam:Job:{o.job.guid}"),
                "jobname": ("JobName", ("str",), lambda o: o.job.name),
                "creationtime": ("CreationTime", ("date",), lambda o: o.start),
                "endtime": ("EndTime", ("date",), lambda o: w.js_state(o)[3]),
                "state": ("State", _enum(JS_STATES), lambda o: JS_STATE_INDEX[w.js_state(o)[0]]),
                "result": ("Result", _enum(RESULT_ENUM), lambda o: _res(w.js_state(o)[1])),
                "isretry": ("IsRetry", ("bool",), lambda o: o.is_retry),
            }
        )
    elif kind == "ReplicaTaskSession":
        p.update(srv)
        p.update(
            {
                "creationtime": ("CreationTime", ("date",), lambda o: o.created),
                "endtime": ("EndTime", ("date",), lambda o: w.task_state(o)[2]),
                "state": ("State", _enum(TASK_STATES), lambda o: TASK_STATES.index(w.task_state(o)[0])),
                "result": ("Result", _enum(RESULT_ENUM), lambda o: _res(w.task_state(o)[1])),
                "reason": ("Reason", ("str",), lambda o: o.reason if w.task_state(o)[2] is not None else ""),
                "totalsize": ("TotalSize", ("int",), lambda o: o.js.job.vms[o.vm][2]),
                "jobsessionuid": ("JobSessionUid", ("str",), lambda o: o.js.uid),
                "jobuid": ("JobUid", ("str",), lambda o: f"urn:veeam:Job:{o.js.job.guid}"),
                "jobname": ("JobName", ("str",), lambda o: o.js.job.name),
                "vmdisplayname": ("VmDisplayName", ("str",), lambda o: o.vm_name),
            }
        )
    elif kind == "VmReplicaPoint":
        p.update(srv)
        p.update(
            {
                "creationtime": ("CreationTime", ("date",), lambda o: o.created),
                "type": ("Type", _enum(POINT_TYPES), lambda o: POINT_TYPES.index(o.point_type)),
                "algorithm": ("Algorithm", _enum(ALGORITHMS), lambda o: ALGORITHMS.index(o.algorithm)),
                "replicauid": ("ReplicaUid", ("str",), lambda o: w.backup.replica_of[o.task.js.job.guid].uid),
                "replicaname": ("ReplicaName", ("str",), lambda o: o.task.js.job.name),
                "vmdisplayname": ("VmDisplayName", ("str",), lambda o: o.task.vm_name),
            }
        )
    return p


def _res(r: int | None) -> int:
    return -1 if r is None else r


def parse_date(text: str) -> int:
    """Ticks of a filter's date-time (clock.parse_ts). Raises QueryError."""
    try:
        return parse_ts(text)
    except ValueError as e:
        raise QueryError(str(e)) from None


def _coerce(kind: ParamKind, name: str, raw: str) -> Any:
    k = kind[0]
    if k == "str":
        return raw.casefold()
    if k == "uid":  # getters give the bare GUID; a urn of any type prefix names the same GUID
        return raw.casefold().rsplit(":", 1)[-1]
    if k == "float":
        try:
            return float(raw)
        except ValueError:
            raise QueryError(f"{name}: {raw!r} is not a number") from None
    if k == "int":
        try:
            return int(raw)
        except ValueError:
            raise QueryError(f"{name}: {raw!r} is not an integer") from None
    if k == "bool":
        if raw.lower() not in ("true", "false"):
            raise QueryError(f"{name}: {raw!r} is not true/false")
        return raw.lower() == "true"
    if k == "date":
        return parse_date(raw)
    if raw.lower() == "none" and name == "Result":
        return -1
    try:
        return kind[1][raw.lower()]
    except KeyError:
        raise QueryError(f"{name}: unknown value {raw!r}") from None


_OPS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def tokenize(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"Unexpected character {text[pos : pos + 10]!r} at {pos}")
        pos = m.end()
        for kind in ("op", "punct", "str", "word"):
            if m.group(kind) is not None:
                val = m.group(kind)
                out.append((kind, val.replace('""', '"') if kind == "str" else val))
                break
    return out


def parse_filter(text: str, params: Params) -> Predicate | None:
    """Compile a filter to a predicate `f(obj) -> bool` (None for an empty filter); raises QueryError."""
    toks = tokenize(text)
    pos = 0

    def peek() -> tuple[str, str]:
        return toks[pos] if pos < len(toks) else ("end", "")

    def expr() -> Predicate:
        nonlocal pos
        terms = [conj()]
        while peek() == ("punct", ","):
            pos += 1
            terms.append(conj())
        if len(terms) == 1:
            return terms[0]
        return _dispatch(terms) or (lambda o: any(t(o) for t in terms))

    def conj() -> Predicate:
        nonlocal pos
        terms = [term()]
        while peek() == ("punct", ";"):
            pos += 1
            terms.append(term())
        if len(terms) == 1:
            return terms[0]
        pred = lambda o: all(t(o) for t in terms)  # noqa: E731 - a predicate that carries its parts
        pred.parts = terms  # type: ignore[attr-defined]
        return pred

    def _dispatch(alternatives: list[Predicate]) -> Predicate | None:
        """`(P==a;…),(P==b;…),…` — every alternative led by an equality on one string parameter, as a
        per-server window is — as one dict lookup instead of trying each alternative in turn."""
        found: list[tuple[Getter, Any] | None] = [
            getattr(getattr(a, "parts", [a])[0], "equals", None) for a in alternatives
        ]
        keys = [k for k in found if k is not None]
        if len(keys) != len(found) or len({get for get, _ in keys}) != 1:
            return None
        get = keys[0][0]
        rest: dict[Any, list[list[Predicate]]] = {}
        for (_, want), alt in zip(keys, alternatives, strict=True):
            parts = getattr(alt, "parts", [alt])[1:]
            rest.setdefault(want, []).append(parts)

        def pred(o: Any) -> bool:
            v = get(o)
            for parts in rest.get(v.casefold() if v is not None else None, ()):
                if all(t(o) for t in parts):
                    return True
            return False

        return pred

    def term() -> Predicate:
        nonlocal pos
        tok = peek()
        if tok == ("punct", "("):
            pos += 1
            inner = expr()
            if peek() != ("punct", ")"):
                raise QueryError("Missing ')' in filter")
            pos += 1
            return inner
        if tok[0] != "word":
            raise QueryError(f"Expected a filter parameter, got {tok[1]!r}")
        spec = params.get(tok[1].lower())
        if spec is None:
            raise QueryError(f"Unknown filter parameter {tok[1]!r}")
        pos += 1
        op = peek()
        if op[0] != "op":
            raise QueryError(f"Expected an operator after {tok[1]}")
        pos += 1
        val = peek()
        if val[0] not in ("word", "str"):
            raise QueryError(f"Expected a value after {tok[1]}{op[1]}")
        pos += 1
        name, kind, get = spec
        if kind[0] == "enum" and val[0] == "str":
            raise QueryError(
                f'{name}: enum values are written bare ({name}{op[1]}{val[1]}), not quoted ("{val[1]}")'
            )
        want, fn = _coerce(kind, name, val[1]), _OPS[op[1]]
        is_str, is_ne = kind[0] == "str", op[1] == "!="

        def pred(o: Any) -> bool:
            v = get(o)
            if v is None:
                return is_ne
            return fn(v.casefold() if is_str else v, want)

        if is_str and op[1] == "==":
            pred.equals = (get, want)  # type: ignore[attr-defined]  # for _dispatch
        return pred

    if not toks:
        return None
    pred = expr()
    if pos != len(toks):
        raise QueryError(f"Unexpected {toks[pos][1]!r} in filter")
    return pred


def sort_key(get: Getter, kind: ParamKind) -> Callable[[Any], tuple[int, Any, str]]:
    """Sort by a parameter's value (missing values first), then by GUID."""
    if kind[0] == "str":
        return lambda o: (0, "", o.guid) if get(o) is None else (1, get(o).casefold(), o.guid)
    return lambda o: (0, 0, o.guid) if get(o) is None else (1, get(o), o.guid)


class QueryEngine:
    """Runs queries against a world; caches the filtered+sorted list per (type, filter, sort)."""

    TYPES = {
        "backupserver": "BackupServer",
        "replicajobsession": "ReplicaJobSession",
        "replicatasksession": "ReplicaTaskSession",
        "vmreplicapoint": "VmReplicaPoint",
        **query_backup.TYPES,
    }

    def __init__(self, world: World, max_cached: int = 256):
        self.w = world
        self._params: dict[str, Params] = {}
        self._misread = world.quirks.misread_server_filter
        self._cache: dict[tuple[str, str, str, bool], list[EmObject]] = {}
        self._gen = world.generation
        self.max_cached = max_cached

    def params(self, kind: str) -> Params:
        """The filter parameters of `kind` (built again when `quirks.misread_server_filter` is switched)."""
        if self._misread != self.w.quirks.misread_server_filter:
            self._misread = self.w.quirks.misread_server_filter
            self._params.clear()
            self._cache.clear()
        if kind not in self._params:
            self._params[kind] = params_for(kind, self.w)
        return self._params[kind]

    def source(self, kind: str) -> Sequence[EmObject]:
        """What a query of `kind` ranges over: what EM lists now."""
        w = self.w
        if kind in query_backup.KINDS:
            return query_backup.source(kind, w)
        if kind == "BackupServer":
            return w.visible_servers()
        if kind == "ReplicaJobSession":
            return w.queryable_job_sessions()
        return w.tasks if kind == "ReplicaTaskSession" else w.points

    def select(self, kind: str, flt: str, sort_by: str | None, desc: bool) -> list[EmObject]:
        """The objects of `kind` that the filter selects, sorted; cached until the world changes."""
        if self._gen != self.w.generation:
            self._cache.clear()
            self._gen = self.w.generation
        params = self.params(kind)
        key = (kind, flt, (sort_by or "").lower(), desc)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        pred = parse_filter(flt, params)
        objs = self.source(kind)
        objs = [o for o in objs if pred(o)] if pred else list(objs)
        if sort_by:
            spec = params.get(sort_by.lower())
            if spec is None:
                raise QueryError(f"Unknown sort parameter {sort_by!r}")
            objs.sort(key=sort_key(spec[2], spec[1]), reverse=desc)
        if len(self._cache) >= self.max_cached:
            self._cache.clear()
        self._cache[key] = objs
        return objs

    def run(self, q: dict[str, str], api: str) -> Page:
        """Parse query-string params (lower-case keys); returns (kind, page objs, entity?, page, size,
        pages_count, [(rel, href)])."""
        raw_type = q.get("type")
        if not raw_type:
            raise QueryError("Query parameter 'type' is required")
        kind = self.TYPES.get(raw_type.lower())
        if kind is None:
            raise QueryError(f"Unsupported query type {raw_type!r}")
        fmt = (q.get("format") or "References").lower()
        if fmt not in ("entities", "references"):
            raise QueryError(f"Unknown format {q.get('format')!r}")
        try:
            size = int(q.get("pagesize") or 100)
            page = int(q.get("page") or 1)
        except ValueError:
            raise QueryError("pageSize and page must be integers") from None
        if size <= 0 or page <= 0:
            raise QueryError("pageSize and page must be positive")
        if q.get("sortasc") and q.get("sortdesc"):
            raise QueryError("Use either sortAsc or sortDesc")
        sort_by, desc = (q["sortdesc"], True) if q.get("sortdesc") else (q.get("sortasc"), False)
        flt = q.get("filter") or ""
        objs = self.select(kind, flt, sort_by, desc)
        count = -(-len(objs) // size)
        if count == 0 and not self.w.quirks.bare_empty_results:
            count = 1  # em-samples/query-empty-list.xml: page 1 of 1, an empty wrapper
        # paging links repeat the query as asked (em-samples/query-references-page.xml: no format)
        given = f"&format={quote(q['format'], safe='')}" if q.get("format") else ""
        base = f"{api}/query?type={quote(raw_type, safe='')}{given}&pageSize={size}"
        tail = (f"&filter={quote(flt, safe='')}" if flt else "") + (
            f"&{'sortDesc' if desc else 'sortAsc'}={quote(sort_by, safe='')}" if sort_by else ""
        )
        if count == 0:  # em-samples/query-empty-entities.xml: PagesCount="0" and no paging links
            return kind, [], fmt == "entities", page, size, 0, []
        links = [("First", f"{base}&page=1{tail}")]
        if page < count:
            links.append(("Next", f"{base}&page={page + 1}{tail}"))
        links.append(("Last", f"{base}&page={count}{tail}"))
        return kind, objs[(page - 1) * size : page * size], fmt == "entities", page, size, count, links
