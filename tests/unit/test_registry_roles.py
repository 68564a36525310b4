"""Which EM role reads which type is declared once, in etl.registry, and agrees with em-api.md
("Roles: what an account may read"): the job types need a Portal Administrator, a Portal User reads
every other type the loader reads. The simulator's own reading of the spec agrees."""

from __future__ import annotations

from etl import registry
from etl.simulator.accounts import PORTAL_USER, REFUSED_TYPES

SPEC_ADMIN_ONLY = {"Job", "AgentBackupJob", "NasJob", "ObjectInJob"}  # em-api.md, "Roles"


def test_the_job_types_need_a_portal_administrator_and_the_rest_a_portal_user():
    for t in registry.TYPES.values():
        expected = registry.PORTAL_ADMINISTRATOR if t.name in SPEC_ADMIN_ONLY else registry.PORTAL_USER
        assert t.role == expected, t.name


def test_the_simulator_refuses_a_portal_user_what_the_registry_says_needs_more():
    refused = REFUSED_TYPES[PORTAL_USER]
    for t in registry.TYPES.values():
        assert (t.name.lower() in refused) == (t.role == registry.PORTAL_ADMINISTRATOR), t.name
