"""What every service's ``env.py`` runs: the migrations, on the connection it was handed."""

from alembic import context
from sqlalchemy import Connection, MetaData


def run_migrations(metadata: MetaData) -> None:
    """Run the migrations alembic was asked for against ``metadata``'s database.

    The connection comes from :mod:`ordersaga.db.migrate` (``config.attributes``), which
    owns the engine and the transaction: alembic is only a guest here.
    """
    if context.is_offline_mode():
        raise RuntimeError("offline (--sql) migrations are not supported: run them online")
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "no database connection: run migrations with `ordersaga db upgrade [SERVICE]`"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters a table by copying it; batch mode makes later migrations do that.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
