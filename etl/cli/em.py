"""`run`, `verify` and `check`: the commands that read Enterprise Manager, one EM from the
connection flags or every EM of an estate file (--config).
"""

from __future__ import annotations

import json
import sys

import click

from .. import db, estate, fleet, logs, pipeline, settings
from ..errors import ConfigError
from . import output
from .group import main
from .options import (
    credentials,
    em_connection_options,
    em_options,
    given,
    option_group,
    refuse_per_em_flags,
    setting_option,
    settings_options,
)


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
@click.pass_context
def run(
    ctx,
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
    since_at = settings.since(since)
    if config_path is not None:
        refuse_per_em_flags(ctx)
        overrides = {n: ctx.params[n] for n in estate.OVERRIDE_FLAGS if n in given(ctx)}
        if "since" in overrides:
            overrides["since"] = since_at
        selected = estate.load(config_path).select(only)
        result = fleet.run_estate(
            db_url, selected, db_schema=db_schema, parallel=parallel, overrides=overrides
        )
        click.echo(fleet.render(result))
        if result.interrupted is not None:  # every EM's run is recorded and its lock released
            raise result.interrupted
        sys.exit(result.exit_code)
    if parallel is not None or only:
        raise ConfigError("--parallel and --only go with --config")
    logon = credentials(url, user, password_file, ca_bundle, insecure, allow_cleartext, or_config=True)
    options = settings.options(tuning, since=since_at, source=source_name)
    eng = db.warehouse(db_url, db_schema, mode="write")
    progress = output.Progress()
    try:
        summary = pipeline.run(
            eng,
            logon.url,
            logon.user,
            logon.password,
            verify=logon.verify,
            options=options,
            progress=progress,
        )
    finally:
        progress.done()
    click.echo(output.summary(summary))


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
@click.pass_context
def verify(
    ctx,
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
    from .. import verify as verify_mod

    unused = [settings.BY_NAME[n].flag for n in _REPAIR_ONLY if n in given(ctx)]
    if unused and not repair:  # the counts read no page and write nothing: these would change nothing
        raise ConfigError(
            f"{', '.join(unused)} only {'apply' if len(unused) > 1 else 'applies'} to the reload of --repair: "
            "add --repair, or drop them"
        )
    logon = credentials(url, user, password_file, ca_bundle, insecure, allow_cleartext)
    options = settings.options(tuning, source=source_name)
    eng = db.warehouse(db_url, db_schema, mode="write" if repair else "read")
    days = days or options.verify_days
    args = (eng, logon.url, logon.user, logon.password)
    result = verify_mod.verify(*args, verify=logon.verify, days=days, repair=repair, options=options)
    click.echo(verify_mod.render(result))
    if result.repaired is not None:
        click.echo(output.summary(result.repaired))
        result = verify_mod.verify(*args, verify=logon.verify, days=days, options=options)
        click.echo(verify_mod.render(result))
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
@option_group(*(setting_option(settings.BY_NAME[name]) for name in _CHECK_SETTINGS))
@click.pass_context
def check(
    ctx, url, user, password_file, ca_bundle, insecure, allow_cleartext, config_path, only, fmt, **tuning
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
    from .. import check as check_mod

    if config_path is not None:
        refuse_per_em_flags(ctx)
        overrides = {n: tuning[n] for n in _CHECK_SETTINGS if n in given(ctx)}
        reports = check_mod.check_estate(estate.load(config_path).select(only), overrides)
    else:
        if only:
            raise ConfigError("--only goes with --config")
        logon = credentials(url, user, password_file, ca_bundle, insecure, allow_cleartext, or_config=True)
        options = settings.options(tuning)
        reports = [
            check_mod.check(logon.url, logon.user, logon.password, verify=logon.verify, options=options)
        ]
    click.echo(
        json.dumps(check_mod.to_json(reports), indent=2) if fmt == "json" else check_mod.render(reports)
    )
    for r in reports:
        if r.error:
            click.echo(logs.line(f"{r.name}: {r.error}", level="error"), err=True)
    sys.exit(check_mod.exit_code(reports))
