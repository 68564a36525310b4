"""Airflow: load every Enterprise Manager of an estate file every 15 minutes, one task per EM.

Copy this file into the DAGs folder of an Airflow (2.6+ or 3) whose workers have veeam-etl
installed from its repository (`pip install /path/to/veeam-etl`, or a wheel built from it: the
package is on no index) and the environment the estate file needs:
VEEAM_ETL_DB and every variable its `password_env` keys name (from the worker's secrets, not
from Airflow Variables). Each task is `veeam-etl run --config ESTATE --only NAME`: its own lock,
watermarks and run record, its own retry and log in the Airflow UI. Exit 75 (another run holds
that EM's lock) marks the task skipped, not failed.

VEEAM_ETL_ESTATE (default /opt/airflow/veeam-etl/estate.toml) is read when the DAG is parsed, for
the EM names only; when it cannot be read, the DAG has one task that loads the whole estate.
"""

import os
import shlex
import tomllib
from datetime import datetime, timedelta

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.bash import BashOperator

ESTATE = os.environ.get("VEEAM_ETL_ESTATE", "/opt/airflow/veeam-etl/estate.toml")
LOAD_ONE = "veeam-etl --log-format json run --config {estate} --only {name}"
LOAD_ALL = "veeam-etl --log-format json run --config {estate} --parallel 4"


def em_names(path: str) -> list[str]:
    """The [[em]] names of the estate file, or [] when it cannot be read here."""
    try:
        with open(path, "rb") as f:
            return [em["name"] for em in tomllib.load(f).get("em", [])]
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return []


with DAG(
    dag_id="veeam_etl",
    description="Veeam Enterprise Manager history into the warehouse",
    schedule="*/15 * * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,  # each run reads from its watermarks: missed ticks need no backfill
    max_active_runs=1,
    max_active_tasks=4,  # EMs loaded at once
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2), "execution_timeout": timedelta(hours=2)},
    tags=["veeam"],
) as dag:
    names = em_names(ESTATE)
    for name in names or [None]:
        command = (
            LOAD_ONE.format(estate=shlex.quote(ESTATE), name=shlex.quote(name))
            if name
            else LOAD_ALL.format(estate=shlex.quote(ESTATE))
        )
        BashOperator(
            task_id=f"load_{name}".replace("-", "_").replace(".", "_") if name else "load_estate",
            bash_command=command,
            append_env=True,  # the worker's VEEAM_ETL_DB and EM password variables
            skip_on_exit_code=75,
        )
