"""Declaring from a message: the message's text, held by the declare form's view id while the form is
open, when it is too long for the form's private_metadata.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_texts",
        sa.Column("key", sa.String(191), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_held_texts"),
    )
    op.create_index("ix_held_texts_held_at", "held_texts", ["held_at"])


def downgrade() -> None:
    op.drop_index("ix_held_texts_held_at", table_name="held_texts")
    op.drop_table("held_texts")
