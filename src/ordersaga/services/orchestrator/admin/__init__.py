"""The orchestrator's admin HTTP API: find sagas, read their timelines, act on them."""
