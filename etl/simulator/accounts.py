"""The accounts a simulated EM accepts and what each one's EM role may read (em-api.md, "Roles: what
an account may read"): a Portal User may not read jobs, a VM Restore Operator not backup servers,
backup job sessions or backup task sessions either; refusals answer EM's 403 body
(em-samples/error-403-access-denied.xml). Like the rest of the simulator, nothing of `etl` here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PORTAL_ADMINISTRATOR = "PortalAdministrator"
PORTAL_USER = "PortalUser"
VM_RESTORE_OPERATOR = "VMRestoreOperator"

_JOBS = frozenset({"job", "agentbackupjob", "nasjob", "objectinjob"})
# Query types (lower case) each role may not query.
REFUSED_TYPES: dict[str, frozenset[str]] = {
    PORTAL_ADMINISTRATOR: frozenset(),
    PORTAL_USER: _JOBS,
    VM_RESTORE_OPERATOR: _JOBS | {"backupserver", "backupjobsession", "backuptasksession"},
}
# The resources of each query type: the path under /api/ (lower case) of its collection, whose
# entities and child collections lie below it.
RESOURCES: dict[str, tuple[str, ...]] = {
    "backupserver": ("backupservers",),
    "job": ("jobs",),
    "agentbackupjob": ("agents", "jobs"),
    "nasjob": ("nas", "jobs"),
    "backupjobsession": ("backupsessions",),
    "backuptasksession": ("backuptasksessions",),
    "replicajobsession": ("replicasessions",),
    "replicatasksession": ("replicatasksessions",),  # and Veeam's misspelling, below
    "vmreplicapoint": ("vmreplicapoints",),
    "repository": ("repositories",),
    "backup": ("backups",),
    "restorepoint": ("restorepoints",),
    "vmrestorepoint": ("vmrestorepoints",),
    "agentrestorepoint": ("agents", "agentrestorepoints"),
    "backupfile": ("backupfiles",),
    "replica": ("replicas",),
}
ALIASES = {"repicatasksessions": "replicatasksessions"}


def role_name(text: str) -> str:
    """The role a name stands for, however it is written ("Portal User", "portaluser", "PortalUser").
    Raises ValueError for a name that is not a role."""
    wanted = text.replace(" ", "").lower()
    for role in REFUSED_TYPES:
        if role.lower() == wanted:
            return role
    raise ValueError(f"unknown EM role {text!r} (roles: {', '.join(REFUSED_TYPES)})")


@dataclass(frozen=True)
class Account:
    """An EM account: its credentials and its role. `refused`, when given, replaces the role's set
    of refused query types (any case), for tests of what a refused type must not break."""

    user: str
    password: str
    role: str = PORTAL_ADMINISTRATOR
    refused: frozenset[str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", role_name(self.role))
        if self.refused is not None:
            object.__setattr__(self, "refused", frozenset(t.lower() for t in self.refused))

    def __repr__(self) -> str:
        return f"Account({self.user!r}, role={self.role!r})"

    @property
    def refused_types(self) -> frozenset[str]:
        return REFUSED_TYPES[self.role] if self.refused is None else self.refused

    def may_query(self, type_name: str) -> bool:
        return type_name.lower() not in self.refused_types

    def may_get(self, segments: Sequence[str]) -> bool:
        """Whether the account may GET the resource at /api/<segments>."""
        path = [ALIASES.get(s.lower(), s.lower()) for s in segments]
        for type_name in self.refused_types:
            prefix = RESOURCES.get(type_name)
            if prefix and tuple(path[: len(prefix)]) == prefix:
                return False
        return True
