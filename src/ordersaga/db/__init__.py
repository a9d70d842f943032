"""Database plumbing shared by the services: engines, column types, common tables."""
