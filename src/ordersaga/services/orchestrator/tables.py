"""The orchestrator's tables: saga instances, their history, the operators' audit trail,
outbox and inbox."""

from sqlalchemy import MetaData

from ordersaga.db.naming import NAMING_CONVENTION
from ordersaga.messaging.inbox import inbox_table
from ordersaga.messaging.outbox import outbox_table
from ordersaga.saga.audit import audit_table
from ordersaga.saga.store import saga_tables

metadata = MetaData(naming_convention=NAMING_CONVENTION)

saga_instances, saga_history = saga_tables(metadata)
operator_actions = audit_table(metadata)
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
