"""The bot's own store: SQLAlchemy models, the queries the domain needs, and Alembic migrations."""
