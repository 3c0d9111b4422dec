"""Captured channel messages on timeline entries (ts, thread, files, edits, deletion, key-event marks),
and the people table for display names.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("timeline_entries") as table:
        table.add_column(sa.Column("channel_id", sa.String(32), nullable=True))
        table.add_column(sa.Column("slack_ts", sa.String(32), nullable=True))
        table.add_column(sa.Column("thread_ts", sa.String(32), nullable=True))
        table.add_column(sa.Column("permalink", sa.Text(), nullable=True))
        table.add_column(sa.Column("files", sa.JSON(), nullable=True))
        table.add_column(sa.Column("edited_at", Timestamp, nullable=True))
        table.add_column(sa.Column("earlier_texts", sa.JSON(), nullable=True))
        table.add_column(sa.Column("deleted_at", Timestamp, nullable=True))
        table.add_column(sa.Column("key_marks", sa.JSON(), nullable=True))
        table.create_unique_constraint("uq_timeline_entries_channel_ts", ["channel_id", "slack_ts"])

    op.create_table(
        "people",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_people"),
    )


def downgrade() -> None:
    op.drop_table("people")
    with op.batch_alter_table("timeline_entries") as table:
        table.drop_constraint("uq_timeline_entries_channel_ts", type_="unique")
        for column in ("key_marks", "deleted_at", "earlier_texts", "edited_at", "files", "permalink", "thread_ts", "slack_ts", "channel_id"):
            table.drop_column(column)
