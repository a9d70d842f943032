"""Migrations of the orchestrator service's database."""
