"""The embedded Celery broker: kombu's SQLAlchemy transport on an SQLite file, polling every 0.1 s.

kombu's SQLAlchemy transport hands every transport option to ``create_engine``, so its polling interval
(1 s by default) cannot be set through ``broker_transport_options``. This subclass only changes that
default; it is registered as the ``numpay-sqla`` alias, used as ``numpay-sqla+sqlite:///var/broker.sqlite3``.
"""

from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport


class EmbeddedSQLiteTransport(SQLAlchemyTransport):
    """kombu's SQLAlchemy transport with a 0.1 s polling interval."""

    polling_interval = 0.1


def register() -> None:
    """Make ``numpay-sqla+<sqlalchemy url>`` resolvable by kombu (idempotent)."""
    TRANSPORT_ALIASES["numpay-sqla"] = "numpay.core.broker:EmbeddedSQLiteTransport"
