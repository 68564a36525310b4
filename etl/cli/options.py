"""Options several commands share: the warehouse (--db, --db-schema), the EM connection flags and
the credentials they give (etl.estate.Connection), and one click option per run setting, built
from etl.settings.SETTINGS.
"""

from __future__ import annotations

import sys

import click

from .. import estate, settings

DEFAULT_DB = "sqlite:///veeam.db"

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


def option_group(*decorators):
    """Apply click option decorators in the order written (the first one listed in --help first)."""

    def apply(f):
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


def _whole(bound: float | None) -> int | None:
    return None if bound is None else int(bound)


def setting_option(setting: settings.Setting):
    """A click option from a run setting of the core: its flag, range, default and help."""
    if setting.type is bool:
        return click.option(setting.flag, is_flag=True, help=setting.help)
    kind: click.ParamType = (
        click.IntRange(_whole(setting.low), _whole(setting.high))
        if setting.type is int
        else click.FloatRange(setting.low, setting.high)
    )
    return click.option(
        setting.flag, type=kind, default=setting.default, show_default=True, help=setting.help
    )


# Which Enterprise Manager, as whom, trusting what: shared by `run`, `verify` and `check`.
em_connection_options = option_group(
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
em_options = option_group(
    em_connection_options,
    db_option,
    schema_option,
    click.option("--source-name", help="Name of this EM in the warehouse (default: its URL)."),
)
settings_options = option_group(*(setting_option(s) for s in settings.SETTINGS))


def given(ctx: click.Context) -> set[str]:
    """The parameters the command line gave (not a default, not the environment)."""
    typed = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.PROMPT)
    return {name for name in ctx.params if ctx.get_parameter_source(name) in typed}


def refuse_per_em_flags(ctx: click.Context) -> None:
    """With --config, the connection flags (and --source-name) belong to each EM of the file."""
    clash = [f"--{n.replace('_', '-')}" for n in estate.PER_EM_FLAGS if n in given(ctx)]
    if clash:
        raise click.UsageError(
            f"--config excludes {', '.join(clash)} (each EM sets them in the estate file)."
        )


def _ask_password() -> str:
    return click.prompt("Enterprise Manager password", hide_input=True)


def credentials(url, user, password_file, ca_bundle, insecure, allow_cleartext, or_config: bool = False):
    """The credentials the connection flags give (etl.estate.Connection: checked, warned about, the
    password asked for on a terminal when no file or VEEAM_EM_PASSWORD gives it)."""
    if not url or not user:
        also = " (or --config ESTATE.toml)" if or_config else ""
        raise click.UsageError(f"Missing option '--{'url' if not url else 'user'}'{also}.")
    connection = estate.Connection.from_flags(url, user, password_file, ca_bundle, insecure, allow_cleartext)
    return connection.open(ask=_ask_password if sys.stdin.isatty() else None)
