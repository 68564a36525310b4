"""The `veeam-etl` click group: -v and --log-format before or after the command, SIGINT and SIGTERM
handled alike, and the one place errors become a line on stderr (text or JSON) and an exit code
(0 ok, 1 failed, 2 usage/config, 75 locked, 130/143 interrupted by SIGINT/SIGTERM).
"""

from __future__ import annotations

import os
import signal
import sys

import click
from sqlalchemy.exc import SQLAlchemyError

from .. import logs, stopping
from ..errors import VeeamEtlError

# -v and --log-format belong before the command (`veeam-etl -v run`); every command takes them after
# its name as well (`veeam-etl run -v`): counts add up, a format after the command wins.
VERBOSE_HELP = "More log output (-vv for debug)."
LOG_FORMAT_HELP = "Log lines for humans or for log collectors [env VEEAM_ETL_LOG_FORMAT]."


def _log_settings(ctx: click.Context) -> dict:
    return ctx.find_root().meta.setdefault("veeam_etl.log", {"verbose": 0, "format": "text"})


def _log_option_after_command(ctx: click.Context, param: click.Parameter, value) -> None:
    chosen = _log_settings(ctx)
    if param.name == "verbose":
        chosen["verbose"] += value
    elif value is not None:
        chosen["format"] = value
    logs.setup(chosen["verbose"], chosen["format"])


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


class _Group(click.Group):
    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.params.extend(_log_options_after_command())
        super().add_command(cmd, name)

    def main(self, args=None, prog_name=None, **extra):
        """Runs the command with SIGINT and SIGTERM handled alike (etl.stopping.handling_signals), and
        reports click's own usage errors (unknown option, bad value, missing option) as one line, exit 2."""
        args = sys.argv[1:] if args is None else list(args)
        extra.pop("standalone_mode", None)
        with stopping.handling_signals():
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
            click.echo(logs.line(str(exc)), err=True)
            sys.exit(exc.exit_code)
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
