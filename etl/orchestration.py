"""Dagster definitions for an estate file (etl.estate): one asset per Enterprise Manager loading it
through etl.fleet, one job that materializes them all, one schedule from the file's [schedule].
Needs the optional extra (`pip install '.[dagster]'`); what it defines and records: docs/dagster.md.
"""

# no `from __future__ import annotations`: Dagster reads the asset function's annotations at runtime
import os
import re
from pathlib import Path

import dagster as dg

from . import db, fleet
from .client import redact_url
from .errors import ConfigError, LockHeld, VeeamEtlError
from .estate import EM, Estate, load

GROUP = "veeam_etl"
JOB = "veeam_etl_estate"
SCHEDULE = "veeam_etl_schedule"


class Warehouse(dg.ConfigurableResource):
    """The warehouse every EM loads into: a SQLAlchemy URL (SQLite or PostgreSQL) and an optional
    PostgreSQL schema (empty: VEEAM_ETL_DB_SCHEMA, else the URL's default)."""

    url: str
    db_schema: str = ""

    def schema_name(self) -> str | None:
        return self.db_schema or os.environ.get("VEEAM_ETL_DB_SCHEMA") or None


def asset_name(em_name: str) -> str:
    """The Dagster asset name of an EM: letters, digits and `_` kept, anything else `_`."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", em_name)
    return name if name[:1].isalpha() or name[:1] == "_" else f"em_{name}"


def em_asset(em: EM, group: str = GROUP) -> dg.AssetsDefinition:
    """The asset that loads one EM: key `veeam_etl/<asset_name>`. Each EM is its own source with its
    own freshness, and each asset one step, so a failing EM fails its step only. A failed load is a
    `dagster.Failure` with the product's message; a lock held by another run ends the step without
    a materialization (the next tick loads it). The password is read when the step runs."""
    url = redact_url(em.connection.url)

    @dg.asset(
        name=asset_name(em.name),
        key_prefix=[GROUP],
        group_name=group,
        description=f"Enterprise Manager {em.name!r} ({url}) in the warehouse, source {em.name!r}",
        metadata={"source": em.name, "em_url": url},
        kinds={"python"},
        output_required=False,
    )
    def load(context: dg.AssetExecutionContext, warehouse: Warehouse):
        masked = db.masked(warehouse.url)
        try:
            summary = fleet.run_one(warehouse.url, em, db_schema=warehouse.schema_name())
        except LockHeld as exc:
            context.log.warning(f"{em.name}: not loaded this time: {exc}")
            return
        except VeeamEtlError as exc:
            raise dg.Failure(
                description=f"{em.name}: {exc}",
                metadata={"source": em.name, "error": type(exc).__name__, "warehouse": masked},
            ) from None
        tables = {t: c["inserted"] + c["updated"] for t, c in summary.tables.items()}
        yield dg.MaterializeResult(
            metadata={
                "source": summary.source,
                "run_id": summary.run_id,
                "rows_inserted": sum(c["inserted"] for c in summary.tables.values()),
                "rows_updated": sum(c["updated"] for c in summary.tables.values()),
                "rows_by_table": dg.MetadataValue.json(summary.tables),
                **{f"rows/{t}": n for t, n in tables.items()},
                "requests": summary.requests,
                "duration_s": dg.MetadataValue.float(round(summary.duration_s, 3)),
                "warehouse": masked,
            }
        )

    return load


def definitions(
    estate: str | os.PathLike | Estate,
    *,
    warehouse: Warehouse | None = None,
    executor: dg.ExecutorDefinition | None = None,
    schedule_running: bool = False,
) -> dg.Definitions:
    """Dagster Definitions for an estate file (or an already loaded `etl.estate.Estate`): a code
    location's definitions.py holds ``defs = definitions("/etc/veeam-etl/estate.toml")``.

    `warehouse` defaults to VEEAM_ETL_DB (read when a step runs); `executor` defaults to the
    multiprocess executor with `max_concurrent` = the file's `parallel` (pass
    `dagster_k8s.k8s_job_executor` for one pod per EM). Raises EstateError/ConfigError (exit 2 on
    the command line) for a bad estate file or two EM names that map to one asset name.
    """
    if not isinstance(estate, Estate):
        estate = load(Path(estate))
    names: dict[str, str] = {}
    for em in estate.ems:
        other = names.setdefault(asset_name(em.name), em.name)
        if other != em.name:
            raise ConfigError(
                f"{estate.path}: em {em.name!r} and em {other!r} both become the Dagster asset "
                f"{asset_name(em.name)!r}: rename one"
            )
    assets = [em_asset(em) for em in estate.ems]
    # SQLite has one writer, and a batch holds it while its pages arrive: one step at a time there
    url = os.environ.get("VEEAM_ETL_DB", "") if warehouse is None else str(warehouse.url)
    width = 1 if url.startswith("sqlite") else estate.parallel
    job = dg.define_asset_job(
        JOB,
        selection=dg.AssetSelection.groups(GROUP),
        executor_def=executor or dg.multiprocess_executor.configured({"max_concurrent": width}),
        description=f"Load every Enterprise Manager of {estate.path}",
    )
    schedule = dg.ScheduleDefinition(
        name=SCHEDULE,
        job=job,
        cron_schedule=estate.cron,
        execution_timezone=estate.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING
        if schedule_running
        else dg.DefaultScheduleStatus.STOPPED,
    )
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        schedules=[schedule],
        resources={"warehouse": warehouse or Warehouse(url=dg.EnvVar("VEEAM_ETL_DB"))},
    )
