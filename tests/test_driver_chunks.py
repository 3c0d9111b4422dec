"""storage.timeline.driver_chunks, the driver-level reader under every timeline read and draft: its rows in
chunks, in order, on both stores, whatever the count against the chunk's size (a short chunk is the last);
a caller may stop early; an error in a later chunk is raised as SQLAlchemy raises it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, exc

from storage.database import make_engine
from storage.timeline import driver_chunks, marker

CHUNK = 5


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def numbers(engine: Engine) -> str:
    """1..count, one per row, in order, on either store; the bound is its one parameter."""
    return (f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {marker(engine.dialect)}) "
            "SELECT i FROM n ORDER BY i")


@pytest.mark.parametrize("count", [1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 2])
def test_every_row_comes_once_in_order_in_chunks_of_the_size_asked(engine: Engine, count: int) -> None:
    with engine.connect() as connection:
        chunks = list(driver_chunks(connection, numbers(engine), [count], CHUNK))
    assert [len(c) for c in chunks] == [CHUNK] * (count // CHUNK) + ([count % CHUNK] if count % CHUNK else [])
    assert [row[0] for c in chunks for row in c] == list(range(1, count + 1))


def test_a_caller_that_stops_early_leaves_a_usable_connection(engine: Engine) -> None:
    with engine.connect() as connection:
        reading = driver_chunks(connection, numbers(engine), [100], CHUNK)
        assert [row[0] for row in next(reading)] == [1, 2, 3, 4, 5]
        reading.close()  # a template that stopped reading, say: its cursor is closed
        again = [row[0] for c in driver_chunks(connection, numbers(engine), [7], CHUNK) for row in c]
    assert again == list(range(1, 8))


def test_an_error_in_a_later_chunk_reaches_the_caller_as_sqlalchemy_raises_it(postgres_url: str) -> None:
    """Division by zero at the 13th row: on PostgreSQL in the third FETCH of the server-side cursor.
    (SQLite divides by zero to NULL.)"""
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            sql = "SELECT 1 / (i - 13) FROM generate_series(1, 40) AS i"  # no sort: each FETCH computes its rows
            reading = driver_chunks(connection, sql, [], CHUNK)
            assert len(next(reading)) == CHUNK and len(next(reading)) == CHUNK
            with pytest.raises(exc.DataError, match="division by zero"):
                next(reading)
    finally:
        engine.dispose()
