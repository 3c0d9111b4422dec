"""When each change was shown in Slack, so one acknowledged but not yet posted when the process died
is posted at the next start.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("timeline_entries") as batch:
        batch.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
    # Everything recorded before this revision was shown (or will never be): nothing to catch up on.
    op.execute("UPDATE timeline_entries SET published_at = occurred_at")


def downgrade() -> None:
    with op.batch_alter_table("timeline_entries") as batch:
        batch.drop_column("published_at")
