"""Alembic environment.

The logbook calls Alembic with an open connection in ``config.attributes["connection"]``, made
with foreign keys off. Run by hand (``alembic -c alembic.ini revision --autogenerate``) it opens
the URL in alembic.ini instead.
"""

from alembic import context
from sqlalchemy import create_engine

from logbook.db.models import metadata

config = context.config


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite alters tables by rebuilding them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
        _run(conn)
        conn.commit()
