"""Alembic environment: migrates the connection handed over by `storage.database.migrate`, or, when run
by the `alembic` command during development, the store named by DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from storage.database import make_engine
from storage.models import Base

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    from bot.config import Environment

    engine = make_engine(Environment.from_mapping(os.environ).database_url)
    with engine.begin() as own_connection:
        run_migrations(own_connection)
