"""Messaging: the broker port, its adapters, the outbox, the inbox and the consumer loop."""
