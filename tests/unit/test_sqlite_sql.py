"""PostgreSQL statement text as the SQLite driver route runs it."""

import pytest

from ordersaga.db.driver import sqlite_sql


@pytest.mark.parametrize(
    ("postgresql", "sqlite"),
    [
        (
            "UPDATE stock SET quantity = quantity - $2 WHERE product_id = $1 AND quantity >= $2",
            "UPDATE stock SET quantity = quantity - ?2 WHERE product_id = ?1 AND quantity >= ?2",
        ),
        (
            "SELECT product_id FROM stock WHERE product_id = ANY($1) "
            "ORDER BY product_id FOR UPDATE",
            "SELECT product_id FROM stock WHERE product_id IN "
            "(SELECT value FROM json_each(?1)) ORDER BY product_id",
        ),
        (
            "SELECT id FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            "SELECT id FROM outbox ORDER BY id LIMIT ?1",
        ),
        (
            "SELECT saga_id FROM saga_instances WHERE saga_id = ANY($1) AND version = $12",
            "SELECT saga_id FROM saga_instances WHERE saga_id IN "
            "(SELECT value FROM json_each(?1)) AND version = ?12",
        ),
    ],
)
def test_postgresql_text_is_rewritten_for_sqlite(postgresql: str, sqlite: str) -> None:
    assert sqlite_sql(postgresql) == sqlite
