"""Several simulated Enterprise Managers at once, each its own estate on its own port: `start(n, ...)`
serves worlds of consecutive seeds, `estate_toml(sims)` writes an estate file listing them for
`veeam-etl run --config`. Like the rest of the simulator, nothing here imports the rest of `etl`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from .accounts import Account
from .faults import Faults
from .server import Simulator
from .world import World


def start(
    n: int,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int = 1,
    user: str = "demo",
    password: str = "demo",  # noqa: S107 - the demo account
    faults: list[Faults | None] | None = None,
    accounts: Iterable[Account] = (),
    **world: Any,
) -> list[Simulator]:
    """Start `n` simulators; world i has seed `seed + i` and the size keywords in `world`
    (servers, jobs, vms_per_job, days, runs_per_day, now, ...). `faults[i]`, when given, is
    simulator i's fault hook; every simulator accepts `accounts` besides `user`. Raises OSError
    when a port is taken (the ones started are stopped)."""
    accounts = tuple(accounts)
    sims: list[Simulator] = []
    try:
        for i in range(n):
            sim = Simulator(
                World(seed=seed + i, **world),
                host=host,
                port=port + i if port else 0,
                user=user,
                password=password,
                faults=faults[i] if faults else None,
                accounts=accounts,
            )
            sims.append(sim.start())
    except BaseException:
        stop(sims)
        raise
    return sims


def stop(sims: list[Simulator]) -> None:
    for sim in sims:
        sim.stop()


@contextlib.contextmanager
def serving(n: int, **kwargs: Any) -> Iterator[list[Simulator]]:
    """`start(n, **kwargs)` as a context manager that stops them all on exit."""
    sims = start(n, **kwargs)
    try:
        yield sims
    finally:
        stop(sims)


def estate_toml(
    sims: list[Simulator],
    user: str = "demo",
    password_env: str = "VEEAM_EM_PASSWORD",  # noqa: S107 - a variable name
) -> str:
    """An estate file for these simulators: EMs named em1, em2, ... sharing user and password_env."""
    lines = ["[defaults]", f'user = "{user}"', f'password_env = "{password_env}"']
    for i, sim in enumerate(sims, 1):
        lines += ["", "[[em]]", f'name = "em{i}"', f'url = "{sim.url}"']
    return "\n".join(lines) + "\n"
