"""Revisions of the orchestrator service's schema, oldest first."""
