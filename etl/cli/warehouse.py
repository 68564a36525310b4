"""`migrate`, `status`, `report` and `metrics`: the commands that work on the warehouse alone and
never ask Enterprise Manager anything.
"""

from __future__ import annotations

import json

import click

from .. import db, views
from ..errors import ConfigError
from .group import main
from .options import db_option, schema_option


@main.command()
@db_option
@schema_option
def migrate(db_url: str, db_schema: str | None) -> None:
    """Bring the warehouse schema to head (Alembic) and (re)create the reporting views.

    Reads VEEAM_ETL_DB. Exit codes: 0 at head, 1 the warehouse refused the upgrade (rolled back: it
    stays at the revision it had), 2 usage or configuration error, 75 another process kept
    migrating it for 30 s.
    """
    eng = db.warehouse(db_url, db_schema, mode="migrate")
    db.migrate(eng)
    click.echo(f"warehouse {db.masked(db_url)} is at revision {db.current(eng)}")


@main.command()
@db_option
@schema_option
@click.option("--limit", type=int, default=10, show_default=True, help="How many recent runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(db_url, db_schema, limit, as_json) -> None:
    """Recent runs, their outcome and counts, the incremental watermarks, and the values EM sent that
    its documentation does not list. Reads VEEAM_ETL_DB."""
    from .. import status as status_mod

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
    from .. import report as report_mod

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
    from .. import metrics as metrics_mod

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
