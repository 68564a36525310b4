"""A backup's job, which no entity names (em-backup-side.md §5): the warehouse asks EM's `JobUid`
filter only for rows left without one, asks few questions to find it, and says how it found it
(`job_uid_source`)."""

from __future__ import annotations

import math

from sqlalchemy import select, update

from etl import db, pipeline, registry, schema
from etl.crawl import Fetcher
from etl.simulator import Simulator, World

UNSETTLED_RUN = 10**9  # no run of that id succeeded: its rows are looked at again
BACKUP = registry.TYPES["Backup"]


def forget(eng, uid: str, **values) -> None:
    """Make a loaded backup look like one a run wrote but did not get to map."""
    with eng.begin() as conn:
        conn.execute(
            update(schema.backups)
            .where(schema.backups.c.uid == uid)
            .values(job_uid=None, job_uid_source=None, run_id=UNSETTLED_RUN, **values)
        )


def map_jobs(eng, sim, source: str) -> tuple[int, int]:
    """(rows mapped, requests asked)."""
    with Fetcher(sim.url, "demo", "demo", options=pipeline.Options(concurrency=2)) as fetcher:
        before = fetcher.requests
        mapped = pipeline.map_jobs(eng, fetcher, BACKUP, source, UNSETTLED_RUN)
        return mapped, fetcher.requests - before


def job_of(eng, uid: str) -> tuple[str | None, str | None]:
    """(job_uid, job_uid_source) of backup `uid`."""
    with eng.connect() as conn:
        b = schema.backups.c
        return tuple(conn.execute(select(b.job_uid, b.job_uid_source).where(b.uid == uid)).one())


def test_each_backup_gets_its_job_with_few_jobuid_queries(db_url):
    world = World(seed=4, servers=1, jobs=1, vms_per_job=2, days=2, backup_jobs=30, agent_jobs=2, copy_jobs=2)
    with Simulator(world) as sim:
        eng = db.engine(db_url)
        source = pipeline.run(eng, sim.url, "demo", "demo").source
        truth = world.truth()["backups"]
        jobs = sum(
            1 for j in world.truth()["jobs"].values() if not j["placeholder"] and j["job_type"] != "Replica"
        )
        assert jobs >= 34
        child = next(u for u, r in truth.items() if r["backup_type"] == "ChildBackup")
        standard = next(u for u, r in truth.items() if r["backup_type"] == "Standard" and r["job_uid"])
        orphan = next(u for u, r in truth.items() if r["job_uid"] is None)

        # a job that owns no backup yet is asked first, alone
        forget(eng, standard)
        assert map_jobs(eng, sim, source) == (1, 1)
        assert job_of(eng, standard) == (truth[standard]["job_uid"], "query")

        # a child backup takes its parent's job: no request
        forget(eng, child)
        assert map_jobs(eng, sim, source) == (1, 0)
        assert job_of(eng, child) == (truth[child]["job_uid"], "parent")

        # without the parent link, its job already owns backups: the jobs are asked in groups and
        # the group that answers is halved down to the one job
        forget(eng, child, parent_backup_uid=None)
        mapped, asked = map_jobs(eng, sim, source)
        assert mapped == 1 and job_of(eng, child) == (truth[child]["job_uid"], "query")
        assert asked <= math.ceil(jobs / 40) + 2 * math.ceil(math.log2(40)) < jobs

        # a backup no job owns (its job deleted) costs one query per group of its server's jobs
        forget(eng, orphan)
        assert map_jobs(eng, sim, source) == (0, math.ceil(jobs / 40))
        assert job_of(eng, orphan) == (None, None)
        eng.dispose()


def test_a_job_found_by_links_is_marked_link_and_a_later_load_keeps_how_it_was_found(tmp_path):
    """The first run maps a backup job's backup from the restore points its tasks made (`link`); a
    run that loads the backup again (EM sends no job) keeps both the job and its source."""
    world = World(seed=4, servers=1, jobs=1, vms_per_job=2, days=2, backup_jobs=2, agent_jobs=1, copy_jobs=1)
    with Simulator(world) as sim:
        eng = db.engine(f"sqlite:///{tmp_path}/w.db")
        pipeline.run(eng, sim.url, "demo", "demo")
        truth = world.truth()["backups"]
        standard = next(u for u, r in truth.items() if r["backup_type"] == "Standard" and r["job_uid"])
        assert job_of(eng, standard) == (truth[standard]["job_uid"], "link")
        pipeline.run(eng, sim.url, "demo", "demo", options=pipeline.Options(full_refresh=True))
        assert job_of(eng, standard) == (truth[standard]["job_uid"], "link")
        eng.dispose()
