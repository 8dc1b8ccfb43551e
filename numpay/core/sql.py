"""Hand-written SQL for the few statements every payment runs (issue 13: half the Python CPU of a payment was
Django building the same SQL again for each request). The ORM stays everywhere else; a hot statement is
written here once, as a constant string, with table and column names taken from the models (so a renamed
table fails loudly at import, not silently at run time) and parameters prepared by the fields themselves
(so the same statement runs on PostgreSQL and SQLite).

Reads only, except where the owning module says otherwise (the payment state machine keeps its monopoly on
``Payment.status`` and ``PaymentEvent``: CONVENTIONS.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model


def table(model: type[Model]) -> str:
    """The quoted table name of ``model``."""
    return connection.ops.quote_name(model._meta.db_table)


def column(model: type[Model], field: str) -> str:
    """The quoted column name of ``model``'s field ``field`` (``"wallet"`` -> ``"wallet_id"``)."""
    return connection.ops.quote_name(model._meta.get_field(field).column)


def value(model: type[Model], field: str, raw: Any) -> Any:
    """``raw`` as the database expects it for ``model``'s field ``field`` (a foreign key: its target's type)."""
    model_field = model._meta.get_field(field)
    target = getattr(model_field, "target_field", model_field)
    return target.get_db_prep_value(raw, connection, prepared=False)


def moment(at: datetime) -> Any:
    """A timezone-aware datetime as the database expects it in a comparison with a DateTimeField."""
    return connection.ops.adapt_datetimefield_value(at)


def placeholders(items: Sequence[Any] | Iterable[Any]) -> str:
    """``%s, %s, ...`` for an ``IN (...)`` list of ``items`` (at least one)."""
    count = len(items) if isinstance(items, Sequence) else sum(1 for _ in items)
    return ", ".join(["%s"] * count)


def fetchall(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run one statement on the default connection and return its rows."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def fetchone(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """Run one statement on the default connection and return its first row (``None``: no row)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()
