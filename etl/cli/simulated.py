"""`simulate` and `demo`: simulated Enterprise Managers (etl.demo) on this machine, to try the
loader and for the tests.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click

from .. import db
from ..errors import ConfigError
from . import output
from .group import main

DEMO_DB = "sqlite:///veeam-demo.db"


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
def simulate(host, port, user, password, accounts, ems, **world) -> None:
    """Serve a simulated Enterprise Manager over HTTP until stopped (Ctrl-C).

    A seeded, deterministic estate of backup, agent, file-share, copy and replication jobs with their
    sessions, tasks, restore points (VM and agent computer) and replica points, backups, files and
    repositories, and EM's documented quirks: --days of history up to today's UTC midnight, then the
    day so far to the start of the current hour, so a restarted simulator serves the same history.
    POST /admin/advance?hours=H moves its clock forward. Reads no environment variables.
    """
    from .. import demo as demo_mod
    from ..simulator import fleet as sim_fleet

    extra = [demo_mod.account(a) for a in accounts]
    try:
        sims = demo_mod.start_simulators(
            datetime.now(UTC),
            ems,
            host=host,
            port=port,
            user=user,
            password=password,
            accounts=extra,
            **world,
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
    from .. import demo as demo_mod

    def serving(url: str) -> None:
        click.echo(f"simulated Enterprise Manager at {url}")
        click.echo(
            "  it sends what real EMs send, quirks included, on purpose: the warnings below (values EM "
            "does not document, parents known only from a link) show how the loader handles them"
        )

    def loaded(summary) -> None:
        click.echo(output.summary(summary))

    eng = db.warehouse(db_url, mode="write")
    done = demo_mod.run(eng, seed, report_path, on_serving=serving, on_loaded=loaded)
    click.echo(f"report: {done.report}")
    click.echo(f"warehouse: {db.masked(db_url)}; look at it again with:")
    where = demo_mod.db_argument(db_url)
    click.echo(f"  veeam-etl report --db {where}")
    click.echo(f"  veeam-etl status --db {where}")
