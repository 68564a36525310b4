"""A seeded fake Veeam Backup Enterprise Manager served over real HTTP (stdlib only): `World` is the
estate and its ground truth, `Quirks` switches EM behaviours, `Simulator` serves a world at `.url`.
Nothing here imports the rest of `etl`: the simulator is an independent reading of the EM format, so
a misreading in the client cannot hide behind a shared parser."""

from .faults import HANDLED, Faults
from .server import RequestContext, Simulator
from .world import Quirks, World

__all__ = ["HANDLED", "Faults", "Quirks", "RequestContext", "Simulator", "World"]
