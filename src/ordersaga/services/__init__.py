"""The four services: order, orchestrator, stock and payment."""
