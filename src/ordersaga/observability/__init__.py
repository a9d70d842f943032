"""What an operator sees of a running system: traces, logs and metrics."""
