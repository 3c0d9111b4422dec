"""Incidents, role assignments, timeline entries, processed Slack requests, the incident counter.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )
    op.bulk_insert(counters, [{"name": "incident", "value": 0}])

    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reporter_id", sa.String(32), nullable=False),
        sa.Column("declared_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("resolved_at", Timestamp, nullable=True),
        sa.Column("closed_at", Timestamp, nullable=True),
        sa.Column("resolution_summary", sa.Text(), nullable=True),
        sa.Column("channel_id", sa.String(32), nullable=True),
        sa.Column("channel_name", sa.String(80), nullable=True),
        sa.Column("summary_ts", sa.String(32), nullable=True),
        sa.Column("announcement_ts", sa.String(32), nullable=True),
        sa.Column("provisioned_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
        sa.UniqueConstraint("channel_id", name="uq_incidents_channel_id"),
        sa.UniqueConstraint("number", name="uq_incidents_number"),
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])

    op.create_table(
        "role_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("assigned_by", sa.String(32), nullable=False),
        sa.Column("assigned_at", Timestamp, nullable=False),
        sa.Column("ended_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_role_assignments_incident_id_incidents", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_role_assignments"),
    )
    op.create_index("ix_role_assignments_incident_role", "role_assignments", ["incident_id", "role"])

    op.create_table(
        "timeline_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("occurred_at", Timestamp, nullable=False),
        sa.Column("actor_id", sa.String(32), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_timeline_entries_incident_id_incidents", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_timeline_entries"),
    )
    op.create_index("ix_timeline_entries_incident_time", "timeline_entries", ["incident_id", "occurred_at"])

    op.create_table(
        "slack_requests",
        sa.Column("key", sa.String(191), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("received_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_slack_requests_incident_id_incidents", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("key", name="pk_slack_requests"),
    )


def downgrade() -> None:
    op.drop_table("slack_requests")
    op.drop_index("ix_timeline_entries_incident_time", table_name="timeline_entries")
    op.drop_table("timeline_entries")
    op.drop_index("ix_role_assignments_incident_role", table_name="role_assignments")
    op.drop_table("role_assignments")
    op.drop_index("ix_incidents_status", table_name="incidents")
    op.drop_table("incidents")
    op.drop_table("counters")
