"""etl.derive's declarations: the path along which EM's links tell a backup's or a replica's job is
declared on the type (`jobs_linked_through`) and every step of it is a declared parent relation."""

from __future__ import annotations

import pytest
from sqlalchemy.sql.util import find_tables

from etl import derive, registry

OWNED = [t for t in registry.TYPES.values() if t.job_types is not None]


def _linked(a: registry.EntityType, b: registry.EntityType) -> bool:
    return any(p.type_name == a.name for p in b.parents) or any(p.type_name == b.name for p in a.parents)


@pytest.mark.parametrize("entity_type", OWNED, ids=lambda t: t.name)
def test_each_type_with_jobs_declares_the_links_that_tell_them(entity_type):
    path = [registry.TYPES[name] for name in entity_type.jobs_linked_through]
    assert path, entity_type.name
    steps = [entity_type, *path]
    assert all(_linked(a, b) for a, b in zip(steps, steps[1:], strict=False))
    assert path[-1].final_state is not None  # it ends at the job sessions, which name their job
    assert any(p.type_name == registry.JOB.name for p in path[-1].parents)
    owner, job, joined = derive._job_links(entity_type)
    assert owner.table.name == path[0].table and job.name == "job_uid" and job.table.name == path[-1].table
    assert sorted(table.name for table in find_tables(joined)) == sorted(t.table for t in path)


def test_no_other_type_declares_a_path():
    assert all(not t.jobs_linked_through for t in registry.TYPES.values() if t.job_types is None)
