"""`veeam-etl check`: a preflight of one Enterprise Manager, or each EM of an estate file: logon, EM's
API versions and its backup servers' VBR versions, a count of every query type the loader reads or
EM's refusal of it (with the EM role that reads it: etl.registry), and the TLS in use. It changes
nothing and never touches the warehouse; a refused type is listed, not fatal."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from . import crawl, registry
from .client import redact_url
from .errors import AccessDenied, ConfigError, SourceError
from .estate import EM, Credentials, Estate
from .settings import Options

log = logging.getLogger(__name__)

OK, FAILED, CONFIG = "ok", "failed", "config"  # a report's status: exit 0, 1, 2


@dataclass
class TypeAccess:
    """One query type: how many entities EM lists, or that it refused the account (`refused`, with
    the EM `role` that reads the type), or why counting failed (`error`)."""

    type: str
    table: str
    role: str
    count: int | None = None
    refused: bool = False
    error: str | None = None


@dataclass
class Server:
    """A backup server EM manages; `vbr_version` is the Veeam Backup & Replication version."""

    uid: str
    name: str | None
    vbr_version: str | None


@dataclass
class Report:
    """What `check` found about one EM. `status`: ok (a load could proceed), failed (it could not:
    logon refused, unreachable, a type that could not be read), config (a configuration error)."""

    name: str
    url: str
    user: str | None
    tls: str  # how the connection is protected (see `tls_mode`)
    status: str = OK
    error: str | None = None
    logged_on: bool = False
    api_versions: list[str] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    types: list[TypeAccess] = field(default_factory=list)
    requests: int = 0
    duration_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return {OK: 0, FAILED: 1, CONFIG: 2}[self.status]

    @property
    def refused(self) -> list[TypeAccess]:
        return [t for t in self.types if t.refused]


def tls_mode(url: str, verify: bool | str) -> str:
    """The protection of a connection to `url` with `verify` (True, False or a CA bundle path)."""
    if urlsplit(url).scheme.lower() == "http":
        return "plain HTTP: no TLS, the password and every answer cross the network readable"
    if verify is False:
        return "TLS with certificate verification OFF (--insecure)"
    if isinstance(verify, str):
        return f"TLS, certificate verified against the CA bundle {verify}"
    return "TLS, certificate verified against the system trust store"


def check(
    url: str,
    user: str,
    password: str,
    *,
    verify: bool | str = True,
    options: Options | None = None,
    name: str | None = None,
    transport=None,
) -> Report:
    """Preflight one EM (see the module docstring). Never raises for what EM answers: a refused
    logon, an unreachable EM or a type that cannot be read is the report's `status` and `error`.
    Raises ConfigError for an unusable URL or CA bundle."""
    opts = options or Options()
    started = time.monotonic()
    report = Report(name or redact_url(url), redact_url(url), user, tls_mode(url, verify))
    fetcher = crawl.Fetcher(url, user, password, verify=verify, options=opts, transport=transport)
    try:
        with fetcher:
            report.logged_on = True
            report.api_versions = list(fetcher.client.api_versions)
            report.types = list(fetcher.map(lambda t: _access(fetcher, t), registry.TYPES.values()))
            if not any(t.type == registry.BACKUP_SERVER.name and t.refused for t in report.types):
                report.servers = _servers(fetcher)
    except SourceError as exc:
        report.status, report.error = FAILED, str(exc)
    failed = [t for t in report.types if t.error]
    if failed and report.status == OK:
        report.status = FAILED
        report.error = f"{failed[0].type} could not be counted: {failed[0].error}"
    report.requests = fetcher.requests
    report.duration_s = time.monotonic() - started
    return report


def _access(fetcher: crawl.Fetcher, entity_type: registry.EntityType) -> TypeAccess:
    access = TypeAccess(entity_type.name, entity_type.table, entity_type.role)
    try:
        access.count = fetcher.count(entity_type)
    except AccessDenied:
        access.refused = True
    except SourceError as exc:
        access.error = str(exc)
    return access


def _servers(fetcher: crawl.Fetcher) -> list[Server]:
    """The backup servers EM lists, with their VBR versions (their entities' `Version`)."""
    found: list[Server] = []
    for page in fetcher.pages(registry.BACKUP_SERVER):
        for uid, name, version in zip(
            page.rows.column("uid"), page.rows.column("name"), page.rows.column("version"), strict=True
        ):
            found.append(Server(uid, name, version))
    return found


def check_estate(estate: Estate, overrides: dict | None = None, parallel: int | None = None) -> list[Report]:
    """`check` each EM of `estate` (its options, then `overrides`), at most `parallel` (default: the
    file's) at once; reports in file order. A missing secret or CA bundle is that EM's `config`
    report. Secrets are read here, in one thread, before any check starts."""
    ready: list[tuple[EM, Credentials] | Report] = []
    for em in estate.ems:
        try:
            ready.append((em, em.connection.open()))
        except ConfigError as exc:
            url = redact_url(em.connection.url)
            ready.append(Report(em.name, url, em.connection.user, "-", CONFIG, str(exc)))

    def one(item: tuple[EM, Credentials] | Report) -> Report:
        if isinstance(item, Report):
            return item
        em, logon = item
        try:
            return check(
                logon.url,
                logon.user,
                logon.password,
                verify=logon.verify,
                options=em.options(overrides),
                name=em.name,
            )
        except ConfigError as exc:
            url = redact_url(logon.url)
            return Report(em.name, url, logon.user, tls_mode(logon.url, logon.verify), CONFIG, str(exc))

    with ThreadPoolExecutor(max(1, min(parallel or estate.parallel, len(ready)))) as pool:
        return list(pool.map(one, ready))


def exit_code(reports: list[Report]) -> int:
    """2 when any EM has a configuration error, else 1 when a load of any could not proceed, else 0."""
    codes = {r.exit_code for r in reports}
    return 2 if 2 in codes else 1 if 1 in codes else 0


def to_json(reports: list[Report]) -> dict:
    """The reports as plain data: {"ems": [...], "exit_code": n}."""
    ems = []
    for r in reports:
        data = asdict(r)
        data["could_load"] = r.status == OK
        ems.append(data)
    return {"ems": ems, "exit_code": exit_code(reports)}


def render(reports: list[Report]) -> str:
    """The reports as text for a terminal: one block per EM."""
    return "\n\n".join(_render_one(r) for r in reports)


def _render_one(r: Report) -> str:
    lines = [f"check {r.name}{f' ({r.url})' if r.url != r.name else ''} as {r.user}"]
    if r.status == CONFIG:
        lines.append(f"  configuration error: {r.error}")
        return "\n".join(lines)
    lines.append(f"  TLS              {r.tls}")
    lines.append(f"  logon            {'ok' if r.logged_on else 'failed'}")
    if not r.logged_on:
        lines.append(f"  error            {r.error}")
        lines.append("  a load could not proceed")
        return "\n".join(lines)
    versions = ", ".join(r.api_versions) or "not told"
    lines.append(f"  EM API versions  {versions}")
    if r.servers:
        servers = ", ".join(f"{s.name or s.uid} (VBR {s.vbr_version or '?'})" for s in r.servers)
        lines.append(f"  backup servers   {servers}")
    lines.append(f"  {'query type':<20}{'table':<24}{'entities':>10}  readable")
    for t in r.types:
        if t.refused:
            what = f"{'-':>10}  no: EM refused it (HTTP 403); the EM role {t.role} reads it"
        elif t.error:
            what = f"{'-':>10}  error: {t.error[:200]}"
        else:
            what = f"{t.count:>10}  yes"
        lines.append(f"  {t.type:<20}{t.table:<24}{what}")
    readable = sum(1 for t in r.types if t.count is not None)
    if r.status == OK:
        verdict = f"a load could proceed: {readable} of {len(r.types)} query types readable"
        if r.refused:
            roles = sorted({t.role for t in r.refused})
            verdict += (
                f"; the run would skip {', '.join(t.type for t in r.refused)} (needs {', '.join(roles)})"
            )
    else:
        verdict = f"a load could not proceed: {r.error}"
    lines.append(f"  {verdict}")
    lines.append(f"  {r.requests} requests in {r.duration_s:.1f} s; nothing was changed")
    return "\n".join(lines)
