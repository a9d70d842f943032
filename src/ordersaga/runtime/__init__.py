"""Ways to run the system: embedded (one process) and one process per service."""
