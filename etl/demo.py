"""Simulated Enterprise Managers for `veeam-etl simulate` and `veeam-etl demo`, through the
simulator's public API: estates anchored to the clock hour (a restart serves the same history), and
the demo's whole job (serve, load, write the report).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from . import db, pipeline, report
from .errors import ConfigError
from .settings import Options
from .simulator import Quirks, Simulator, World
from .simulator import fleet as sim_fleet
from .simulator.accounts import Account

DEMO_ORIGIN = "http://em01.demo.local:9399"  # what the demo's EM writes into its links, whatever its port
DEMO_USER = DEMO_PASSWORD = "demo"  # noqa: S105 - the account the demo's simulated EM accepts
DEMO_SOURCE = "demo"


def anchor(now: datetime) -> tuple[datetime, timedelta]:
    """Where a simulated estate starts and how far it is advanced: `now`'s UTC midnight, and the time
    from it to the start of `now`'s hour. Two simulators started in the same hour serve the same
    history; one started later has only added to it (the clock of a restart moves no entity)."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight, now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - midnight


def start_simulators(now: datetime, ems: int, **kwargs) -> list[Simulator]:
    """`veeam-etl simulate`'s EMs (etl.simulator.fleet.start with `kwargs`), their estates anchored
    by `anchor`. Raises OSError when a port is taken."""
    midnight, advance = anchor(now)
    sims = sim_fleet.start(ems, now=midnight, **kwargs)
    for sim in sims:
        sim.world.advance(advance)
    return sims


def account(value: str) -> Account:
    """A simulator account from USER:PASSWORD:ROLE (the password may hold colons). Raises ConfigError."""
    user, _, rest = value.partition(":")
    password, _, role = rest.rpartition(":")
    if not user or not password or not role:
        raise ConfigError(f"--account wants USER:PASSWORD:ROLE, e.g. viewer:secret:PortalUser (got {user}:…)")
    try:
        return Account(user, password, role)
    except ValueError as exc:
        raise ConfigError(f"--account {user}: {exc}") from None


def world(seed: int, now: datetime) -> World:
    """The demo's estate: anchored by `anchor`, with links on DEMO_ORIGIN, so two demos in the same
    hour serve identical data and a later one only adds to it and finishes what was running (hrefs
    never name the random port it happens to listen on)."""
    midnight, advance = anchor(now)
    estate = World(seed=seed, now=midnight, quirks=Quirks(public_origin=DEMO_ORIGIN))
    estate.advance(advance)
    return estate


@dataclass
class Demo:
    """What a demo did: the run's summary and the HTML report it wrote (absolute path)."""

    summary: pipeline.Summary
    report: Path


def run(
    eng: Engine,
    seed: int,
    report_path: str,
    on_serving: Callable[[str], None],
    on_loaded: Callable[[pipeline.Summary], None],
) -> Demo:
    """Serve the demo's estate (`world`) on a free loopback port, load it into `eng` as source
    "demo", and write the HTML report to `report_path`. `on_serving(url)` is called once the
    simulated EM listens, before the load; `on_loaded(summary)` once the load is committed, before
    the report is written (a report that cannot be written does not hide what was loaded). Raises
    as pipeline.run and report.write."""
    with Simulator(world(seed, datetime.now(UTC)), user=DEMO_USER, password=DEMO_PASSWORD) as sim:
        on_serving(sim.url)
        summary = pipeline.run(eng, sim.url, DEMO_USER, DEMO_PASSWORD, options=Options(source=DEMO_SOURCE))
    on_loaded(summary)
    return Demo(summary, report.write(eng, "html", report_path))


def db_argument(db_url: str) -> str:
    """--db for later commands on the demo's warehouse: a SQLite path made absolute (they may run
    elsewhere), a password masked; quoted for a POSIX shell."""
    path = db.sqlite_file(db_url)
    return shlex.quote(f"sqlite:///{path}" if path is not None else db.masked(db_url))
