"""Pages sent to teams, and APScheduler's job table (escalations, later reminders and the watchdog).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(32), nullable=True),
        sa.Column("requested_at", Timestamp, nullable=False),
        sa.Column("escalated_from_id", sa.Integer(), nullable=True),
        sa.Column("deliveries", sa.JSON(), nullable=True),
        sa.Column("sent_at", Timestamp, nullable=True),
        sa.Column("acknowledged_at", Timestamp, nullable=True),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.Column("escalated_at", Timestamp, nullable=True),
        sa.Column("resolved_at", Timestamp, nullable=True),
        sa.Column("slack_ts", sa.String(32), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name="fk_pages_incident_id_incidents", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["escalated_from_id"], ["pages.id"], name="fk_pages_escalated_from_id_pages", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_pages"),
    )
    op.create_index("ix_pages_incident_team", "pages", ["incident_id", "team"])
    op.create_index("ix_pages_dedup_key", "pages", ["dedup_key"])

    op.create_table(
        "apscheduler_jobs",
        sa.Column("id", sa.Unicode(191), nullable=False),
        sa.Column("next_run_time", sa.Float(25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_apscheduler_jobs"),
    )
    op.create_index("ix_apscheduler_jobs_next_run_time", "apscheduler_jobs", ["next_run_time"])


def downgrade() -> None:
    op.drop_index("ix_apscheduler_jobs_next_run_time", table_name="apscheduler_jobs")
    op.drop_table("apscheduler_jobs")
    op.drop_index("ix_pages_dedup_key", table_name="pages")
    op.drop_index("ix_pages_incident_team", table_name="pages")
    op.drop_table("pages")
