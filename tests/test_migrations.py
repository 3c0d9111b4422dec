"""The Alembic history builds the schema the models describe, on SQLite and PostgreSQL, and can go back."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from storage.database import current_revision, downgrade, make_engine, migrate
from storage.models import Base


def test_migrations_match_the_models_and_downgrade_cleanly(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine)
        assert current_revision(engine) == "0013"
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
            assert diff == []
            assert connection.execute(text("SELECT value FROM counters WHERE name = 'incident'")).scalar_one() == 0
        downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate(engine)  # and forward again, as `serve` does at every start
        assert current_revision(engine) == "0013"
    finally:
        engine.dispose()


def _markdown_compression(engine: Engine) -> str:
    with engine.connect() as connection:
        return str(connection.execute(text(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = 'postmortems'::regclass AND attname = 'markdown'")).scalar_one())


def test_a_postmortems_markdown_is_compressed_with_lz4_on_postgresql_and_back_to_the_default_on_downgrade(postgres_url: str) -> None:
    """0013: on a server built with LZ4 (this one is: Debian's PostgreSQL 15), new drafts are stored with
    it; the downgrade puts the column back to the server's default compression."""
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            values = connection.execute(text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")).scalar()
        assert values and "lz4" in values, "this PostgreSQL has no LZ4: the migration would leave pglz"
        migrate(engine)
        assert _markdown_compression(engine) == "l"
        downgrade(engine, "0012")
        assert _markdown_compression(engine) == ""  # the default: default_toast_compression decides
        migrate(engine)
        assert _markdown_compression(engine) == "l"
    finally:
        engine.dispose()
