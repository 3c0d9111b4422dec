"""Charts in the postmortem: the PNGs drawn for a version (one per diagnostics target the watchdog
sampled during the incident), stored with its Markdown so that an upload resumed after a restart sends
the charts that were drafted.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "postmortem_charts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("postmortem_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("caption", sa.Text(), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["postmortem_id"], ["postmortems.id"], name="fk_postmortem_charts_postmortem_id_postmortems",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_postmortem_charts"),
        sa.UniqueConstraint("postmortem_id", "filename", name="uq_postmortem_charts_postmortem_filename"),
    )


def downgrade() -> None:
    op.drop_table("postmortem_charts")
