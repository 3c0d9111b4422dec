"""Diagnostic runs, the watchdog's samples and its alert episodes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "diagnostic_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("check", sa.String(32), nullable=False),
        sa.Column("requested_by", sa.String(32), nullable=True),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("headline", sa.Text(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name="fk_diagnostic_runs_incident_id_incidents", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_diagnostic_runs"),
    )
    op.create_index("ix_diagnostic_runs_incident", "diagnostic_runs", ["incident_id"])

    op.create_table(
        "watchdog_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("taken_at", Timestamp, nullable=False),
        sa.Column("in_use", sa.Integer(), nullable=True),
        sa.Column("usable", sa.Integer(), nullable=True),
        sa.Column("idle_in_transaction", sa.Integer(), nullable=True),
        sa.Column("oldest_idle_in_transaction_seconds", sa.Integer(), nullable=True),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_watchdog_samples"),
    )
    op.create_index("ix_watchdog_samples_target_time", "watchdog_samples", ["target", "taken_at"])

    op.create_table(
        "watchdog_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("open_key", sa.String(64), nullable=True),
        sa.Column("opened_at", Timestamp, nullable=False),
        sa.Column("cleared_at", Timestamp, nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=True),
        sa.Column("slack_ts", sa.String(32), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name="fk_watchdog_alerts_incident_id_incidents", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_watchdog_alerts"),
        sa.UniqueConstraint("open_key", name="uq_watchdog_alerts_open_key"),
    )
    op.create_index("ix_watchdog_alerts_target", "watchdog_alerts", ["target"])


def downgrade() -> None:
    op.drop_index("ix_watchdog_alerts_target", table_name="watchdog_alerts")
    op.drop_table("watchdog_alerts")
    op.drop_index("ix_watchdog_samples_target_time", table_name="watchdog_samples")
    op.drop_table("watchdog_samples")
    op.drop_index("ix_diagnostic_runs_incident", table_name="diagnostic_runs")
    op.drop_table("diagnostic_runs")
