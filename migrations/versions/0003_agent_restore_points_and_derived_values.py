"""agent restore points, derived values marked, undocumented values remembered

- agent_restore_points: an agent computer's restore point (EM's `AgentRestorePoint`), apart from
  VM restore points;
- backups.job_uid_source and replicas.job_uid_source: where the loader found the job EM's entity
  does not name (`query`, `link`, `parent`). Rows whose job was found before this revision keep it;
  how it was found was not recorded, so their source stays NULL;
- etl_undocumented_values: the enum values EM sent that its documentation does not list, recorded
  when first seen, so each is warned about once per warehouse (not on every run);
- a free space EM reported as -1 (object storage: unknown), kept until now in repositories and
  repository_space, becomes NULL like an unknown capacity. Every row is kept.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 12:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "agent_restore_points",
        sa.Column("uid", sa.String(length=200), nullable=False),
        sa.Column("href", sa.Text(), nullable=True),
        sa.Column("restore_point_uid", sa.String(length=200), nullable=True),
        sa.Column("backup_file_uid", sa.String(length=200), nullable=True),
        sa.Column("backup_server_uid", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("computer_name", sa.String(length=500), nullable=True),
        sa.Column("creation_time_utc", sa.DateTime(timezone=True), nullable=True),
        sa.Column("algorithm", sa.String(length=50), nullable=True),
        sa.Column("point_type", sa.String(length=50), nullable=True),
        sa.Column("placeholder", sa.Boolean(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("first_loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["backup_file_uid"], ["backup_files.uid"], name=op.f("fk_agent_restore_points_backup_file_uid")
        ),
        sa.ForeignKeyConstraint(
            ["backup_server_uid"],
            ["backup_servers.uid"],
            name=op.f("fk_agent_restore_points_backup_server_uid"),
        ),
        sa.ForeignKeyConstraint(
            ["restore_point_uid"],
            ["restore_points.uid"],
            name=op.f("fk_agent_restore_points_restore_point_uid"),
        ),
        sa.PrimaryKeyConstraint("uid", name=op.f("pk_agent_restore_points")),
    )
    with op.batch_alter_table("agent_restore_points", schema=None) as batch_op:
        batch_op.create_index(
            "ix_agent_restore_points_server_computer_time",
            ["backup_server_uid", "computer_name", "creation_time_utc"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_agent_restore_points_restore_point_uid"), ["restore_point_uid"], unique=False
        )

    op.create_table(
        "etl_undocumented_values",
        sa.Column("entity_type", sa.String(length=100), nullable=False),
        sa.Column("column_name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["etl_runs.id"], name=op.f("fk_etl_undocumented_values_run_id")),
        sa.PrimaryKeyConstraint(
            "entity_type", "column_name", "value", name=op.f("pk_etl_undocumented_values")
        ),
    )

    for table in ("backups", "replicas"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("job_uid_source", sa.String(length=20), nullable=True))

    # -1 is EM's "unknown" (object storage reports it as free space too): NULL, as for capacity
    for table in ("repositories", "repository_space"):
        t = sa.table(table, sa.column("capacity", sa.BigInteger()), sa.column("free_space", sa.BigInteger()))
        op.execute(t.update().where(t.c.free_space < 0).values(free_space=None))
        op.execute(t.update().where(t.c.capacity < 0).values(capacity=None))


def downgrade() -> None:
    """Downgrade schema (unknown sizes stay NULL: the views read NULL and -1 alike)."""
    for table in ("replicas", "backups"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("job_uid_source")
    op.drop_table("etl_undocumented_values")
    with op.batch_alter_table("agent_restore_points", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_restore_points_restore_point_uid"))
        batch_op.drop_index("ix_agent_restore_points_server_computer_time")
    op.drop_table("agent_restore_points")
