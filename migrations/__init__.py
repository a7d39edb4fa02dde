"""Alembic migrations for the logbook database (installed as ``logbook.migrations``)."""
