"""What PagerDuty and Opsgenie report about pages: their events (one row per provider and event id, so
redeliveries are recognised), and on each page when its state last changed and when its escalation is due.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("pages") as batch:
        batch.add_column(sa.Column("state_changed_at", Timestamp, nullable=True))
        batch.add_column(sa.Column("escalation_due_at", Timestamp, nullable=True))
    op.create_table(
        "page_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(64), nullable=True),
        sa.Column("occurred_at", Timestamp, nullable=False),
        sa.Column("received_at", Timestamp, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(["page_id"], ["pages.id"], name="fk_page_events_page_id_pages", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_page_events"),
        sa.UniqueConstraint("provider", "event_id", name="uq_page_events_provider"),
    )
    op.create_index("ix_page_events_ref", "page_events", ["provider", "ref"])


def downgrade() -> None:
    op.drop_index("ix_page_events_ref", table_name="page_events")
    op.drop_table("page_events")
    with op.batch_alter_table("pages") as batch:
        batch.drop_column("escalation_due_at")
        batch.drop_column("state_changed_at")
