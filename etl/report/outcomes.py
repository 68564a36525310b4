"""What a session's outcome reads as in every part of the report: "running" (or its State) until EM says
the session has finished, then its Result as EM sent it, known or not.

Which State means finished is the registry's (`EntityType.final_state`); nothing here lists types.
"""

from __future__ import annotations

from .. import registry

# EM's session State is an open set: it mirrors Veeam Backup & Replication's session records, whose
# states (Idle, Pending, WaitingRepository, Postprocessing, ...) EM's REST reference does not list and
# which grow with VBR versions. So a session is finished when its State is its type's final state
# (Stopped for job sessions, Completed for task sessions), never because its State is missing from some
# list of running ones.
FINISHED_STATES = frozenset(t.final_state for t in registry.TYPES.values() if t.final_state)
# Unfinished states that read simply as "running"; any other unfinished state is shown as EM sent it.
RUNNING_STATES = frozenset({"Starting", "Working", "InProgress", "Resuming"})
RUNNING = "running"
NO_RESULT = "no result"


def finished(state: str | None) -> bool:
    """True when a session's State says it has ended (Stopped or Completed)."""
    return state in FINISHED_STATES


def status(state: str | None, result: str | None) -> str:
    """What a session's outcome reads as in every summary.

    Not finished (State other than Stopped/Completed, whatever Result says): "running" for
    Starting/Working/InProgress/Resuming or no State, else the State as EM sent it
    (e.g. "WaitingRepository"). Finished: the Result as EM sent it, known or not (an unknown value is
    never read as success); EM's "None" or no Result reads "no result".
    """
    if not finished(state):
        return RUNNING if state is None or state in RUNNING_STATES else str(state)
    return NO_RESULT if result is None or result == "None" else str(result)
