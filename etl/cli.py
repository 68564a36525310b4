"""Command line: click wiring only. Reads flags and environment, checks them (etl.config, db.warehouse),
builds objects, calls one core function, prints, and maps errors to exit codes (0 ok, 1 failed,
2 usage/config, 75 locked, 130/143 interrupted by SIGINT/SIGTERM). Every error ends in one line on
stderr, in the log format (text or JSON).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from . import config, db, logs, pipeline, registry, settings, stopping, views
from .errors import ConfigError, Interrupted, VeeamEtlError

DEFAULT_DB = "sqlite:///veeam.db"
DEMO_DB = "sqlite:///veeam-demo.db"
DEMO_ORIGIN = "http://em01.demo.local:9399"  # what the demo's EM writes into its links, whatever its port

db_option = click.option(
    "--db",
    "db_url",
    envvar="VEEAM_ETL_DB",
    default=DEFAULT_DB,
    show_default=True,
    help="SQLAlchemy URL of the warehouse [env VEEAM_ETL_DB].",
)
schema_option = click.option(
    "--db-schema",
    envvar="VEEAM_ETL_DB_SCHEMA",
    default=None,
    help="PostgreSQL schema to use (search_path) [env VEEAM_ETL_DB_SCHEMA].",
)


def _fail(exc: VeeamEtlError) -> None:
    click.echo(logs.line(str(exc)), err=True)
    sys.exit(exc.exit_code)


# -v and --log-format belong before the command (`veeam-etl -v run`); every command takes them after
# its name as well (`veeam-etl run -v`): counts add up, a format after the command wins.
VERBOSE_HELP = "More log output (-vv for debug)."
LOG_FORMAT_HELP = "Log lines for humans or for log collectors [env VEEAM_ETL_LOG_FORMAT]."


def _log_settings(ctx: click.Context) -> dict:
    return ctx.find_root().meta.setdefault("veeam_etl.log", {"verbose": 0, "format": "text"})


def _log_option_after_command(ctx: click.Context, param: click.Parameter, value) -> None:
    settings = _log_settings(ctx)
    if param.name == "verbose":
        settings["verbose"] += value
    elif value is not None:
        settings["format"] = value
    logs.setup(settings["verbose"], settings["format"])


def _log_options_after_command() -> list[click.Option]:
    return [
        click.Option(
            ["-v", "--verbose"],
            count=True,
            expose_value=False,
            callback=_log_option_after_command,
            help=VERBOSE_HELP,
        ),
        click.Option(
            ["--log-format"],
            type=click.Choice(["text", "json"]),
            expose_value=False,
            callback=_log_option_after_command,
            help=LOG_FORMAT_HELP.replace(" [env", " (overrides the one before the command) [env"),
        ),
    ]


def _format_asked(args: list[str]) -> str | None:
    """The --log-format in raw arguments or the environment, for errors found before options are read."""
    fmt = os.environ.get("VEEAM_ETL_LOG_FORMAT")
    for i, arg in enumerate(args):
        if arg == "--log-format" and i + 1 < len(args):
            fmt = args[i + 1]
        elif arg.startswith("--log-format="):
            fmt = arg.partition("=")[2]
    return fmt if fmt in ("text", "json") else None


def _on_signal(signum: int, _frame) -> None:
    """SIGINT and SIGTERM end the command like Ctrl-C (in this, the main thread, and in every thread
    that loads: etl.stopping); a second signal ends the process at once."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    stopping.request(signum)  # every other loading thread stops at its next request
    raise Interrupted(signum)


@contextlib.contextmanager
def _signals_interrupt():
    """_on_signal for SIGINT and SIGTERM while the block runs (in the main thread; elsewhere signals
    are not ours to handle), the previous handlers afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, _on_signal)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _Group(click.Group):
    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.params.extend(_log_options_after_command())
        super().add_command(cmd, name)

    def main(self, args=None, prog_name=None, **extra):
        """Runs the command with SIGINT and SIGTERM handled alike (_on_signal), and reports click's own
        usage errors (unknown option, bad value, missing option) as one line, exit 2."""
        args = sys.argv[1:] if args is None else list(args)
        extra.pop("standalone_mode", None)
        with _signals_interrupt():
            try:
                code = super().main(args, prog_name, standalone_mode=False, **extra)
            except click.exceptions.NoArgsIsHelpError as exc:
                exc.show()
                sys.exit(exc.exit_code)
            except click.ClickException as exc:
                ctx = getattr(exc, "ctx", None)
                hint = (
                    f" (see `{ctx.command_path} --help`)" if isinstance(exc, click.UsageError) and ctx else ""
                )
                click.echo(logs.line(exc.format_message() + hint, fmt=_format_asked(args)), err=True)
                sys.exit(exc.exit_code)
            except click.Abort as exc:  # Ctrl-C or Ctrl-D at a prompt
                interrupt = exc.__context__ if isinstance(exc.__context__, KeyboardInterrupt) else None
                click.echo(logs.line(str(interrupt or "") or "aborted", level="warning"), err=True)
                sys.exit(getattr(interrupt, "exit_code", 128 + signal.SIGINT) if interrupt else 1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except VeeamEtlError as exc:
            _fail(exc)
        except SQLAlchemyError as exc:  # e.g. the warehouse is unreachable: a message, not a traceback
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            click.echo(
                logs.line(f"the warehouse failed: {type(exc).__name__}: {detail[0] if detail else ''}"),
                err=True,
            )
            sys.exit(1)
        except KeyboardInterrupt as exc:
            click.echo(logs.line(str(exc) or "interrupted by SIGINT", level="warning"), err=True)
            sys.exit(getattr(exc, "exit_code", 128 + signal.SIGINT))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", count=True, help=VERBOSE_HELP)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    envvar="VEEAM_ETL_LOG_FORMAT",
    help=LOG_FORMAT_HELP,
)
@click.version_option(package_name="veeam-etl")
@click.pass_context
def main(ctx: click.Context, verbose: int, log_format: str) -> None:
    """Load Veeam Backup Enterprise Manager backup and replication history into a SQL warehouse you own.

    Exit codes: 0 done, 1 failed, 2 usage or configuration error, 75 another run holds the lock,
    130 interrupted by SIGINT (Ctrl-C), 143 by SIGTERM.
    """
    _log_settings(ctx).update(verbose=verbose, format=log_format)
    logs.setup(verbose, log_format)


@main.command()
@db_option
@schema_option
def migrate(db_url: str, db_schema: str | None) -> None:
    """Bring the warehouse schema to head (Alembic) and (re)create the reporting views.

    Reads VEEAM_ETL_DB.
    """
    eng = db.warehouse(db_url, db_schema, mode="migrate")
    db.migrate(eng)
    click.echo(f"warehouse {db.masked(db_url)} is at revision {db.current(eng)}")


def _password(password_file: str | None) -> str:
    if password_file:
        try:
            return Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read --password-file {password_file}: {exc.strerror}") from None
    password = os.environ.get("VEEAM_EM_PASSWORD")
    if password:
        return password
    if sys.stdin.isatty():
        return click.prompt("Enterprise Manager password", hide_input=True)
    raise ConfigError(
        "no password: set VEEAM_EM_PASSWORD, use --password-file, or run on a terminal to be asked"
    )


def _verify(ca_bundle: str | None, insecure: bool) -> bool | str:
    if insecure:
        logging.getLogger("etl").warning(
            "TLS certificate verification is OFF (--insecure): anyone on the path can read the EM password"
        )
        return False
    if ca_bundle:
        return config.ca_bundle(ca_bundle)
    return True


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--since {value!r} is not an ISO date or date-time") from None
    instant = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    now = datetime.now(UTC)
    if instant > now:  # nothing was created after it yet: the run would read nothing and succeed
        raise ConfigError(
            f"--since {value} is in the future (it is {now:%Y-%m-%d %H:%M}Z now): give an instant in the "
            "past, e.g. --since 2025-08-01 (UTC unless an offset is given)"
        )
    return instant


def _table_of(type_name: str) -> str | None:
    """The warehouse table of an EM entity type (None for a type the loader does not know)."""
    entry = registry.TYPES.get(type_name)
    return entry.table if entry else None


class _Progress:
    """One self-overwriting status line on a terminal (logs.STATUS: log lines are written above it,
    never over it); silent when stderr is not a TTY. It shows the rows written to the table of the
    type being loaded and, labelled as such, the total of all tables."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()

    def line(self, summary: pipeline.Summary, type_name: str) -> str:
        def written(counts: dict[str, int]) -> int:
            return counts["inserted"] + counts["updated"]

        counts = summary.tables.get(_table_of(type_name) or "")
        total = sum(written(c) for c in summary.tables.values())
        mine = f"{written(counts):>9} rows written" if counts is not None else " " * 22
        return f"  {type_name:<20}{mine}, {total:>9} in all tables, {summary.requests:>6} requests"

    def __call__(self, summary: pipeline.Summary, type_name: str) -> None:
        if self.enabled:
            logs.STATUS.show(self.line(summary, type_name))

    def done(self) -> None:
        logs.STATUS.end()


def print_summary(summary: pipeline.Summary) -> None:
    click.echo(
        f"run {summary.run_id} {summary.status}: {summary.mode} load of {summary.source} "
        f"in {summary.duration_s:.1f} s"
    )
    click.echo(f"  {'table':<24}{'inserted':>10}{'updated':>10}")
    for table, counts in summary.tables.items():
        click.echo(f"  {table:<24}{counts['inserted']:>10}{counts['updated']:>10}")
    click.echo(
        f"  parents fetched by link: {summary.parents_fetched}, recorded from links: "
        f"{summary.parents_from_links}, quarantined: {summary.quarantined}, new undocumented values: {summary.new_values}"
    )
    if summary.refused:
        refused = ", ".join(f"{t} (needs the EM role {role})" for t, role in summary.refused.items())
        click.echo(f"  refused by EM (HTTP 403), skipped: {refused}")
    filled = ", ".join(f"{column} {n}" for column, n in summary.worked_out.items() if n)
    if filled:
        click.echo(f"  worked out (no link in EM's entities): {filled}")
    deleted = ", ".join(f"{table} {c['deleted']}" for table, c in summary.swept.items() if c["deleted"])
    back = ", ".join(f"{table} {c['back']}" for table, c in summary.swept.items() if c["back"])
    if deleted or back:
        click.echo(f"  retention: no longer in EM: {deleted or 'none'}; back in EM: {back or 'none'}")
    v = summary.verification
    if v is not None:
        click.echo(
            f"  completeness check: {len(v.counts)} counts compared, {len(v.differences)} differed, "
            f"{v.reloaded} rows reloaded"
        )
    click.echo(
        f"  requests: {summary.requests} ({summary.sweep_requests} for the retention sweep"
        + (f", {v.requests} for the completeness check" if v is not None else "")
        + f"), retries: {summary.retries}, links to other origins refused: {summary.foreign_links}"
    )


def _options(*decorators):
    """Apply click option decorators in the order written (the first one listed in --help first)."""

    def apply(f):
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


def _int(bound: float | None) -> int | None:
    return None if bound is None else int(bound)


def _setting_option(setting: settings.Setting):
    """A click option from a run setting of the core: its flag, range, default and help."""
    if setting.type is bool:
        return click.option(setting.flag, is_flag=True, help=setting.help)
    kind: click.ParamType = (
        click.IntRange(_int(setting.low), _int(setting.high))
        if setting.type is int
        else click.FloatRange(setting.low, setting.high)
    )
    return click.option(
        setting.flag, type=kind, default=setting.default, show_default=True, help=setting.help
    )


# Which Enterprise Manager, as whom, trusting what: shared by `run`, `verify` and `check`.
em_connection_options = _options(
    click.option(
        "--url",
        envvar="VEEAM_EM_URL",
        help="Enterprise Manager API base, e.g. https://em01:9398/api [env VEEAM_EM_URL].",
    ),
    click.option("--user", envvar="VEEAM_EM_USER", help="EM account [env VEEAM_EM_USER]."),
    click.option(
        "--password-file",
        type=click.Path(dir_okay=False),
        help="Read the EM password from this file (else VEEAM_EM_PASSWORD, else a prompt on a terminal).",
    ),
    click.option(
        "--ca-bundle",
        envvar="VEEAM_EM_CA_BUNDLE",
        type=click.Path(dir_okay=False),
        help="PEM file of CAs to trust for EM's certificate [env VEEAM_EM_CA_BUNDLE].",
    ),
    click.option("--insecure", is_flag=True, help="Do not verify EM's TLS certificate (warns; avoid)."),
    click.option(
        "--allow-cleartext",
        is_flag=True,
        help="Accept a plain http:// URL to another machine: the password crosses the network "
        "unencrypted (a lab only; warns on every run). Loopback needs no flag.",
    ),
)
# ... and into which warehouse, under which name: `run` and `verify`.
em_options = _options(
    em_connection_options,
    db_option,
    schema_option,
    click.option("--source-name", help="Name of this EM in the warehouse (default: its URL)."),
)
settings_options = _options(*(_setting_option(s) for s in settings.SETTINGS))


def _em(url, user, password_file, ca_bundle, insecure, allow_cleartext) -> tuple[str, str, str, bool | str]:
    """(url, user, password, TLS verification) of one EM from the flags, checked; the password is
    registered as a secret so that no log line carries it."""
    if not url or not user:
        raise click.UsageError(f"Missing option '--{'url' if not url else 'user'}'.")
    url = config.em_url(url)
    if config.cleartext(url, allowed=allow_cleartext):
        logging.getLogger("etl").warning(
            "%s is plain HTTP (--allow-cleartext): the EM password and session token cross the network "
            "unencrypted; use https:// (port 9398)",
            url,
        )
    verify = _verify(ca_bundle, insecure)
    password = _password(password_file)
    logs.secret(password)
    logs.public(user)  # shown as it is, even when the password equals it
    return url, user, password, verify


@main.command()
@em_options
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Estate file (TOML) listing several EMs: load them all (docs/fleet.md). Excludes --url/--user.",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    help="With --config: EMs loaded at once (default: the file's `parallel`, else 4; 1 on SQLite).",
)
@click.option("--only", multiple=True, metavar="NAME", help="With --config: load only this EM (repeatable).")
@click.option("--since", help="Read sessions created at or after this ISO date/date-time (UTC unless given).")
@settings_options
def run(
    url,
    user,
    password_file,
    db_url,
    db_schema,
    ca_bundle,
    insecure,
    allow_cleartext,
    source_name,
    config_path,
    parallel,
    only,
    since,
    **tuning,
) -> None:
    """Crawl one Enterprise Manager and upsert into the warehouse (migrates an empty one first).

    Reads VEEAM_EM_URL, VEEAM_EM_USER, VEEAM_EM_PASSWORD, VEEAM_EM_CA_BUNDLE, VEEAM_ETL_DB and
    VEEAM_ETL_DB_SCHEMA. Exit codes: 0 loaded, 1 failed (nothing inconsistent committed),
    2 usage or configuration error, 75 another run holds the lock for this warehouse and EM,
    130/143 interrupted (SIGINT/SIGTERM). With --config: every EM of the estate file (VEEAM_EM_URL
    and VEEAM_EM_USER are ignored), one row each; 0 all loaded, 1 any failed, 75 when the only
    problem is locks held by other runs.
    """
    if tuning["full_refresh"] and since:
        raise ConfigError("--full-refresh and --since exclude each other")
    since_at = _since(since)
    if config_path is not None:
        _run_estate(config_path, parallel, only, db_url, db_schema)
        return
    if parallel is not None or only:
        raise ConfigError("--parallel and --only go with --config")
    if not url or not user:
        raise click.UsageError(
            f"Missing option '--{'url' if not url else 'user'}' (or --config ESTATE.toml)."
        )
    url, user, password, verify = _em(url, user, password_file, ca_bundle, insecure, allow_cleartext)
    options = settings.options(tuning, since=since_at, source=source_name)
    eng = db.warehouse(db_url, db_schema, mode="write")
    progress = _Progress()
    try:
        summary = pipeline.run(eng, url, user, password, verify=verify, options=options, progress=progress)
    finally:
        progress.done()
    print_summary(summary)


# settings that only the reload of `verify --repair` uses (the counts use timeout, retries, concurrency)
_REPAIR_ONLY = ("page_size", "batch_rows", "lookback", "full_refresh", "sweep_hours")


@main.command()
@em_options
@click.option(
    "--days",
    type=click.FloatRange(min=0.01),
    default=None,
    help="Compare the sessions and points created in this many days before the last run "
    "(default: --verify-days, 7).",
)
@click.option(
    "--repair",
    is_flag=True,
    help="Run a repair load: the retention sweep, the same check, and exactly what differs read again.",
)
@settings_options
def verify(
    url,
    user,
    password_file,
    db_url,
    db_schema,
    ca_bundle,
    insecure,
    allow_cleartext,
    source_name,
    days,
    repair,
    **tuning,
):
    """Does the warehouse hold what Enterprise Manager holds? The completeness check, by hand.

    Compares EM's counts with the warehouse's per type over the last --days (restore points and
    backup files also over all time), drilling down to backup servers, then days or backups, only
    where totals differ, and prints what differs. `run` makes the same check every --verify-hours
    and reloads what differs in the same run. Exit codes: 0 equal, 1 some differ (with --repair:
    still differ after the reload), 2 usage, 75 the repair found another run holding the lock.
    """
    from . import verify as verify_mod

    if not repair:  # the counts read no page and write nothing: these would change nothing
        ctx = click.get_current_context()
        unused = [
            settings.BY_NAME[n].flag
            for n in _REPAIR_ONLY
            if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE
        ]
        if unused:
            raise ConfigError(
                f"{', '.join(unused)} only {'apply' if len(unused) > 1 else 'applies'} to the reload of --repair: "
                "add --repair, or drop them"
            )
    url, user, password, tls = _em(url, user, password_file, ca_bundle, insecure, allow_cleartext)
    options = settings.options(tuning, source=source_name)
    eng = db.warehouse(db_url, db_schema, mode="write" if repair else "read")
    result = verify_mod.verify(
        eng, url, user, password, verify=tls, days=days or options.verify_days, repair=repair, options=options
    )
    click.echo(verify_mod.render(result))
    if result.repaired is not None:
        print_summary(result.repaired)
        again = verify_mod.verify(
            eng, url, user, password, verify=tls, days=days or options.verify_days, options=options
        )
        click.echo(verify_mod.render(again))
        result = again
    sys.exit(1 if result.differences else 0)


# the run settings that shape how `check` talks to EM (the others concern loading)
_CHECK_SETTINGS = ("concurrency", "timeout", "retries", "retry_time")


@main.command()
@em_connection_options
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Estate file (TOML): check each EM it lists. Excludes --url/--user.",
)
@click.option("--only", multiple=True, metavar="NAME", help="With --config: check only this EM (repeatable).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Text for a terminal, or JSON for scripts.",
)
@_options(*(_setting_option(settings.BY_NAME[name]) for name in _CHECK_SETTINGS))
def check(
    url, user, password_file, ca_bundle, insecure, allow_cleartext, config_path, only, fmt, **tuning
) -> None:
    """Preflight: can a load of Enterprise Manager proceed? Changes nothing; no warehouse needed.

    Logs on, shows EM's API versions and the VBR version of each backup server, counts every query
    type the loader reads and lists those EM refuses to the account (HTTP 403) with the EM role
    that reads them, and the TLS in use. Reads VEEAM_EM_URL, VEEAM_EM_USER, VEEAM_EM_PASSWORD and
    VEEAM_EM_CA_BUNDLE. Exit codes: 0 a load could proceed (refused types are listed, not fatal),
    1 it could not (logon refused, EM unreachable, a type that could not be read), 2 usage or
    configuration error. With --config: every EM of the estate file, the worst exit code wins
    (2, then 1).
    """
    from . import check as check_mod

    ctx = click.get_current_context()
    given = {
        name
        for name in ctx.params
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    }
    if config_path is not None:
        clash = [
            f"--{n.replace('_', '-')}"
            for n in ("url", "user", "password_file", "ca_bundle", "insecure", "allow_cleartext")
            if n in given
        ]
        if clash:
            raise click.UsageError(
                f"--config excludes {', '.join(clash)} (each EM sets them in the estate file)."
            )
        from . import fleet

        estate = fleet.load(config_path).select(only)
        overrides = {n: tuning[n] for n in _CHECK_SETTINGS if n in given}
        reports = check_mod.check_estate(estate, overrides)
    else:
        if only:
            raise ConfigError("--only goes with --config")
        if not url or not user:
            raise click.UsageError(
                f"Missing option '--{'url' if not url else 'user'}' (or --config ESTATE.toml)."
            )
        url, user, password, verify = _em(url, user, password_file, ca_bundle, insecure, allow_cleartext)
        reports = [check_mod.check(url, user, password, verify=verify, options=settings.options(tuning))]
    if fmt == "json":
        click.echo(json.dumps(check_mod.to_json(reports), indent=2))
    else:
        click.echo(check_mod.render(reports))
    code = check_mod.exit_code(reports)
    for r in reports:
        if r.error:
            click.echo(logs.line(f"{r.name}: {r.error}", level="error"), err=True)
    sys.exit(code)


# run options an estate file may also set: on the command line they apply to every EM of the file
_ESTATE_OVERRIDES = (*settings.BY_NAME, "since")
# per-EM settings that only the estate file can give
_ESTATE_EXCLUDES = (
    "url",
    "user",
    "password_file",
    "ca_bundle",
    "insecure",
    "allow_cleartext",
    "source_name",
)


def _run_estate(config_path, parallel, only, db_url, db_schema) -> None:
    """`run --config`: every EM of the estate file; flags given on the command line override it."""
    from . import fleet

    ctx = click.get_current_context()
    given = {
        name
        for name in ctx.params
        if ctx.get_parameter_source(name)
        in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.PROMPT)
    }
    clash = [f"--{n.replace('_', '-')}" for n in _ESTATE_EXCLUDES if n in given]
    if clash:
        raise click.UsageError(
            f"--config excludes {', '.join(clash)} (each EM sets them in the estate file)."
        )
    overrides = {n: ctx.params[n] for n in _ESTATE_OVERRIDES if n in given}
    if "since" in overrides:
        overrides["since"] = _since(overrides["since"])
    estate = fleet.load(config_path).select(only)

    def done(outcome) -> None:  # one log line per EM as it ends, for long runs watched on a terminal
        logging.getLogger("etl.fleet").info(
            "em %s: %s in %.1f s", outcome.name, outcome.status, outcome.duration_s
        )

    result = fleet.run_estate(
        db_url, estate, db_schema=db_schema, parallel=parallel, overrides=overrides, on_done=done
    )
    click.echo(fleet.render(result))
    if result.interrupted is not None:  # every EM's run is recorded and its lock released
        raise result.interrupted
    sys.exit(result.exit_code)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=9399,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the simulated estate.")
@click.option("--servers", type=int, default=3, show_default=True, help="Backup servers.")
@click.option("--jobs", type=int, default=6, show_default=True, help="Replication jobs.")
@click.option("--backup-jobs", type=int, default=6, show_default=True, help="Backup jobs.")
@click.option("--agent-jobs", type=int, default=2, show_default=True, help="Agent backup jobs.")
@click.option("--copy-jobs", type=int, default=2, show_default=True, help="Backup copy jobs.")
@click.option("--nas-jobs", type=int, default=1, show_default=True, help="File-share (NAS) backup jobs.")
@click.option(
    "--retention-days",
    type=click.FloatRange(min=0, min_open=True),
    help="Restore and replica points older than this disappear from EM as its clock advances.",
)
@click.option("--vms-per-job", type=int, default=10, show_default=True, help="VMs per job.")
@click.option("--days", type=int, default=14, show_default=True, help="Days of history.")
@click.option("--runs-per-day", type=int, default=2, show_default=True, help="Job runs per day.")
@click.option("--user", default="demo", show_default=True, help="Account the simulator accepts.")
@click.option("--password", default="demo", show_default=True, help="Password the simulator accepts.")
@click.option(
    "--account",
    "accounts",
    multiple=True,
    metavar="USER:PASSWORD:ROLE",
    help="Another account it accepts, with an EM role: PortalAdministrator, PortalUser or "
    "VMRestoreOperator (answered 403 for what the role may not read). Repeatable.",
)
@click.option(
    "--ems",
    type=click.IntRange(1, 100),
    default=1,
    show_default=True,
    help="Serve this many EMs (seeds --seed, --seed+1, ...; ports from --port on, or free ports with --port 0).",
)
def simulate(
    host,
    port,
    seed,
    servers,
    jobs,
    backup_jobs,
    agent_jobs,
    copy_jobs,
    nas_jobs,
    retention_days,
    vms_per_job,
    days,
    runs_per_day,
    user,
    password,
    accounts,
    ems,
) -> None:
    """Serve a simulated Enterprise Manager over HTTP until stopped (Ctrl-C).

    A seeded, deterministic estate of backup, agent, file-share, copy and replication jobs with their
    sessions, tasks, restore points (VM and agent computer) and replica points, backups, files and
    repositories, and EM's documented quirks: --days of history up to today's UTC midnight, then the
    day so far to the start of the current hour, so a restarted simulator serves the same history.
    POST /admin/advance?hours=H moves its clock forward. Reads no environment variables.
    """
    from .simulator import fleet as sim_fleet

    extra = [_sim_account(a) for a in accounts]
    try:
        sims = _start_simulators(
            datetime.now(UTC),
            ems,
            host=host,
            port=port,
            seed=seed,
            user=user,
            password=password,
            servers=servers,
            jobs=jobs,
            backup_jobs=backup_jobs,
            agent_jobs=agent_jobs,
            copy_jobs=copy_jobs,
            nas_jobs=nas_jobs,
            retention_days=retention_days,
            vms_per_job=vms_per_job,
            days=days,
            runs_per_day=runs_per_day,
            accounts=extra,
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (try --port 0 for any free port)"
        ) from None
    users = ", ".join([f"{user} (PortalAdministrator)", *(f"{a.user} ({a.role})" for a in extra)])
    for sim in sims:
        click.echo(f"simulated Enterprise Manager at {sim.url} (users {users}); Ctrl-C to stop", err=False)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim_fleet.stop(sims)


def _sim_account(value: str):
    """A simulator account from USER:PASSWORD:ROLE (the password may hold colons). Raises ConfigError."""
    from .simulator.accounts import Account

    user, _, rest = value.partition(":")
    password, _, role = rest.rpartition(":")
    if not user or not password or not role:
        raise ConfigError(f"--account wants USER:PASSWORD:ROLE, e.g. viewer:secret:PortalUser (got {user}:…)")
    try:
        return Account(user, password, role)
    except ValueError as exc:
        raise ConfigError(f"--account {user}: {exc}") from None


@main.command()
@click.option("--db", "db_url", default=DEMO_DB, show_default=True, help="Warehouse to load into.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the simulated estate.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    default="veeam-report.html",
    show_default=True,
    help="Write the HTML report of the loaded warehouse here.",
)
def demo(db_url, seed, report_path) -> None:
    """The whole job on embedded defaults: start a simulated EM, load it into a local SQLite file
    and print the summary. Reads no environment variables.

    A rerun loads the same estate (two weeks up to today's UTC midnight, then the day so far to the
    current hour; links always name em01.demo.local), so it shows only what changed since, like a
    scheduled run.
    """
    from .simulator import Simulator

    eng = db.warehouse(db_url, mode="write")
    world = _demo_world(seed, datetime.now(UTC))
    with Simulator(world, user="demo", password="demo") as sim:  # noqa: S106 - the simulator's demo account
        click.echo(f"simulated Enterprise Manager at {sim.url}")
        click.echo(
            "  it sends what real EMs send, quirks included, on purpose: the warnings below (values EM "
            "does not document, parents known only from a link) show how the loader handles them"
        )
        summary = pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(source="demo"))
    print_summary(summary)
    from . import report

    click.echo(f"report: {report.write(eng, 'html', report_path)}")
    click.echo(f"warehouse: {db.masked(db_url)}; look at it again with:")
    where = _demo_db_argument(db_url)
    click.echo(f"  veeam-etl report --db {where}")
    click.echo(f"  veeam-etl status --db {where}")


def _anchor(now: datetime) -> tuple[datetime, timedelta]:
    """Where a simulated estate starts and how far it is advanced: `now`'s UTC midnight, and the time
    from it to the start of `now`'s hour. Two simulators started in the same hour serve the same
    history; one started later has only added to it (the clock of a restart moves no entity)."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight, now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - midnight


def _start_simulators(now: datetime, ems: int, **kwargs) -> list:
    """`veeam-etl simulate`'s EMs (etl.simulator.fleet.start), their estates anchored by `_anchor`."""
    from .simulator import fleet as sim_fleet

    midnight, advance = _anchor(now)
    sims = sim_fleet.start(ems, now=midnight, **kwargs)
    for sim in sims:
        sim.world.advance(advance)
    return sims


def _demo_world(seed: int, now: datetime):
    """The demo's estate: anchored by `_anchor`, with links on DEMO_ORIGIN, so two demos in the same
    hour serve identical data and a later one only adds to it and finishes what was running (hrefs
    never name the random port it happens to listen on)."""
    from .simulator import Quirks, World

    midnight, advance = _anchor(now)
    world = World(seed=seed, now=midnight, quirks=Quirks(public_origin=DEMO_ORIGIN))
    world.advance(advance)
    return world


def _demo_db_argument(db_url: str) -> str:
    """--db for later commands on the demo's warehouse: a SQLite path made absolute (they may run
    elsewhere), a password masked; quoted for a POSIX shell."""
    path = db.sqlite_file(db_url)
    return shlex.quote(f"sqlite:///{path}" if path is not None else db.masked(db_url))


@main.command()
@db_option
@schema_option
@click.option("--limit", type=int, default=10, show_default=True, help="How many recent runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(db_url, db_schema, limit, as_json) -> None:
    """Recent runs, their outcome and counts, the incremental watermarks, and the values EM sent that
    its documentation does not list. Reads VEEAM_ETL_DB."""
    from . import status as status_mod

    eng = db.warehouse(db_url, db_schema, mode="read")
    data = status_mod.collect(eng, limit)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(status_mod.render(data))


@main.command()
@db_option
@schema_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "html"]),
    default="table",
    show_default=True,
    help="Terminal tables, CSV, JSON, or one self-contained HTML page.",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file (required for html).")
@click.option(
    "--view",
    type=click.Choice(list(views.public())),
    help="One reporting view in full (table, csv, json). Without it: the summary as tables, or as JSON "
    "with every section; csv needs --view (one table per invocation).",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows of --view.")
def report(db_url, db_schema, fmt, out, view, limit) -> None:
    """The reporting views as tables, CSV, JSON, or an HTML page with charts. Reads VEEAM_ETL_DB.

    Without --view: the summary (headline figures, jobs, machines needing attention, newest failures).
    """
    from . import report as report_mod

    if fmt == "html" and not out:
        raise ConfigError("--format html needs --out FILE")
    eng = db.warehouse(db_url, db_schema, mode="read")
    if out:
        click.echo(f"report: {report_mod.write(eng, fmt, out, view, limit)}", err=True)
    else:
        click.echo(report_mod.render(eng, fmt, view, limit), nl=False)


@main.command()
@db_option
@schema_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write to this file atomically instead of standard output (node_exporter's textfile "
    "collector reads files ending in .prom).",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Serve GET /metrics at this address until stopped, reading the warehouse on every scrape "
    "(e.g. 127.0.0.1:9469, [::1]:9469, :9469 for every interface).",
)
def metrics(db_url, db_schema, out, listen) -> None:
    """The warehouse as Prometheus metrics (text exposition): RPO per protected machine, last result and
    last success per job, repository capacity and free space, the loader's health per source.

    Reads only; a warehouse that does not exist is an error. Reads VEEAM_ETL_DB. Alert rules and a
    Grafana dashboard: deploy/prometheus/, deploy/grafana/, docs/alerting.md. Exit codes: 0 written,
    1 the warehouse could not be read, 2 usage or configuration error, 130/143 --listen stopped by
    SIGINT/SIGTERM.
    """
    from . import metrics as metrics_mod

    if out and listen:
        raise ConfigError("--out and --listen exclude each other")
    address = metrics_mod.listen_address(listen) if listen else None
    eng = db.warehouse(db_url, db_schema, mode="read")
    if address is not None:
        httpd = metrics_mod.server(eng, *address)
        host, port = httpd.socket.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        click.echo(
            f"serving the metrics of {db.masked(db_url)} at http://{shown}:{port}/metrics; Ctrl-C to stop",
            err=True,
        )
        try:
            httpd.serve_forever()
        finally:
            httpd.server_close()
    elif out:
        metrics_mod.write(eng, out)
    else:
        click.echo(metrics_mod.exposition(eng).decode("utf-8"), nl=False)


if __name__ == "__main__":
    main()
