"""Postmortem versions, follow-ups, and when an incident was last reminded to post a status update.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:  # batch: SQLite cannot ALTER much in place
        batch.add_column(sa.Column("status_reminded_at", Timestamp, nullable=True))

    op.create_table(
        "postmortems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(32), nullable=True),
        sa.Column("requested_at", Timestamp, nullable=False),
        sa.Column("drafted_at", Timestamp, nullable=True),
        sa.Column("markdown", sa.Text(), nullable=True),
        sa.Column("template", sa.Text(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("file_id", sa.String(32), nullable=True),
        sa.Column("permalink", sa.Text(), nullable=True),
        sa.Column("uploaded_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name="fk_postmortems_incident_id_incidents", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_postmortems"),
        sa.UniqueConstraint("incident_id", "version", name="uq_postmortems_incident_version"),
    )

    op.create_table(
        "followups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.String(32), nullable=True),
        sa.Column("created_by", sa.String(32), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("done_at", Timestamp, nullable=True),
        sa.Column("done_by", sa.String(32), nullable=True),
        sa.Column("reminded_at", Timestamp, nullable=True),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name="fk_followups_incident_id_incidents", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_followups"),
    )
    op.create_index("ix_followups_incident", "followups", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_followups_incident", table_name="followups")
    op.drop_table("followups")
    op.drop_table("postmortems")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("status_reminded_at")
