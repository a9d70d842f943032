"""The wire contract: topic names, message models and statuses. No I/O here."""
