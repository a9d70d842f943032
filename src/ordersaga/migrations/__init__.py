"""Alembic migrations, one history per service, since each service owns its database.

``ordersaga.migrations.<service>`` holds that service's ``env.py`` and ``versions/``.
There is no ``alembic.ini``: :mod:`ordersaga.db.migrate` builds the configuration in
code and hands alembic a connection. A new revision, after changing a service's tables::

    from alembic import command
    from ordersaga.db.migrate import alembic_config
    from ordersaga.services.registry import service
    config = alembic_config(service("stock"))
    command.revision(config, "what changed", autogenerate=True, rev_id="0004")

run with ``connection`` in the config's ``attributes`` set to a connection to a database
at the previous revision; then read and tidy what it wrote.
"""
