"""The Alembic history builds the schema the models describe, on SQLite and PostgreSQL, and can go back."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from storage.database import current_revision, downgrade, make_engine, migrate
from storage.models import Base


def test_migrations_match_the_models_and_downgrade_cleanly(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine)
        assert current_revision(engine) == "0012"
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
            assert diff == []
            assert connection.execute(text("SELECT value FROM counters WHERE name = 'incident'")).scalar_one() == 0
        downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate(engine)  # and forward again, as `serve` does at every start
        assert current_revision(engine) == "0012"
    finally:
        engine.dispose()
