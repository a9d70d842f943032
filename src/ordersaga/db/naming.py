"""How constraints and indexes are named, so migrations can refer to them by name.

Without a convention each database invents its own names for unnamed primary keys,
unique constraints and indexes (``stock_pkey``, ``idempotency_key``...), and a later
migration that drops or alters one would need a different name per database. CHECK
constraints are always named explicitly where they are declared.
"""

NAMING_CONVENTION: dict[str, str] = {
    "pk": "pk_%(table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
}
