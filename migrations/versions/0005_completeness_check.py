"""completeness check recorded in etl_runs

`etl_runs` gets what the completeness check (etl.verify, now part of `run`) compared, found and
reloaded: `verify_compared`, `verify_differing`, `verify_reloaded`, `verify_requests`. They are NULL
for a run that made no check, so every run recorded before this revision keeps its row as it was
and reads as "not checked".

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-14 09:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("verify_compared", "verify_differing", "verify_reloaded", "verify_requests")


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("etl_runs", schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("etl_runs", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
