"""etl_runs.refused: the query types EM refused to the account (HTTP 403)

A restricted account (a Portal User cannot read jobs) gets 403 on some query types; the run skips
them and records which, with the EM role that reads each, as JSON. Existing runs get NULL (nothing
refused): every row is kept as it is.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-14 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("etl_runs") as batch_op:
        batch_op.add_column(sa.Column("refused", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("etl_runs") as batch_op:
        batch_op.drop_column("refused")
