"""Indexes that create on every database the project runs on (PostgreSQL in production, SQLite embedded)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.expressions import OrderBy


class PortableIndex(models.Index):
    """``models.Index`` whose ``NULLS FIRST`` on an ascending expression (``NULLS LAST`` on a descending one) is
    left out on SQLite, which refuses it in ``CREATE INDEX`` ("unsupported use of NULLS FIRST") and sorts NULL
    below every value anyway, so the index it gets orders the same rows the same way. On PostgreSQL (NULL above
    every value by default) the modifier is kept: the index then matches ``ORDER BY ... NULLS FIRST``.

    Source: SQLite, "The ORDER BY clause" (NULLs are smaller than any other value) and "CREATE INDEX" (no NULLS
    modifier); PostgreSQL, "Indexes and ORDER BY".

    :raises ImproperlyConfigured: on SQLite, for a modifier that would change the order there (``NULLS LAST``
        ascending, ``NULLS FIRST`` descending).
    """

    def create_sql(self, model: type[models.Model], schema_editor: Any, using: str = "", **kwargs: Any) -> Any:
        if schema_editor.connection.vendor != "sqlite" or not self.expressions:
            return super().create_sql(model, schema_editor, using=using, **kwargs)
        plain = self.clone()
        plain.expressions = tuple(_sqlite_order(expression, self.name) for expression in self.expressions)
        return models.Index.create_sql(plain, model, schema_editor, using=using, **kwargs)


def _sqlite_order(expression: Any, name: str) -> Any:
    if not isinstance(expression, OrderBy) or (not expression.nulls_first and not expression.nulls_last):
        return expression
    if bool(expression.nulls_first) == (not expression.descending):
        return OrderBy(expression.expression, descending=expression.descending)
    raise ImproperlyConfigured(f"index {name}: SQLite cannot order NULLs that way in an index")
