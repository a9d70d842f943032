"""Column types that keep their meaning on every database the services run on."""

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Integer, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# An autoincrementing key: BIGINT where it matters, SQLite's rowid alias on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Money(TypeDecorator[Decimal]):
    """``NUMERIC(12,2)``; on SQLite, which has no exact decimal, whole cents in an INTEGER.

    SQL arithmetic (``balance - :amount``) stays exact on SQLite too, because the bound
    value is converted to cents like the column.
    """

    impl = Numeric(12, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Integer())
        return dialect.type_descriptor(Numeric(12, 2, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = Decimal(value)
        return int(amount * 100) if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / 100).quantize(Decimal("0.01"))
        return Decimal(value).quantize(Decimal("0.01"))
