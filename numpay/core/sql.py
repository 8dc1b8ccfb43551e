"""Hand-written SQL for the few statements every payment runs (issue 13: half the Python CPU of a payment was
Django building the same SQL again for each request). The ORM stays everywhere else; a hot statement is
written here once, as a constant string, with table and column names taken from the models (so a renamed
table fails loudly at import, not silently at run time) and parameters prepared by the fields themselves
(so the same statement runs on PostgreSQL and SQLite).

Reads only, except where the owning module says otherwise (:func:`execute`; e.g. the relayer's sponsorship
reservation) (the payment state machine keeps its monopoly on
``Payment.status`` and ``PaymentEvent``: CONVENTIONS.md).
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError


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


def execute(sql: str, params: Sequence[Any]) -> int:
    """Run one writing statement on the default connection. :returns: its row count."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def fetchone(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """Run one statement on the default connection and return its first row (``None``: no row)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


class CompiledSelect:
    """A queryset of one fixed shape (say "this payment with its token, wallet and sender, ``FOR UPDATE``")
    whose SQL Django compiles once per database vendor, then runs again with new parameter values, the rows
    turned into model instances (``select_related`` ones included) exactly as ``QuerySet.__iter__`` does.

    ``build(*values)`` returns the queryset; it is called once per vendor with sentinel values (one per entry
    of ``params``: ``(model, field)``, the field the value is compared with) to find where each value sits in
    the compiled parameters; :meth:`all` / :meth:`first` then put the caller's values there, prepared by those
    fields (:func:`value`). The shape must not depend on the values (no ``__in`` lists of varying length).
    Measured (bench/README.md, issue 13): compiling a four-table ``select_related`` cost more Python CPU than
    running it.

    Raises ``ImproperlyConfigured`` at the first call if a sentinel is not found exactly once in the compiled
    parameters, and ``TransactionManagementError`` for a ``select_for_update`` shape outside a transaction
    (as Django does).
    """

    def __init__(self, build: Callable[..., QuerySet[Any]], params: Sequence[tuple[type[Model], str]]) -> None:
        self._build = build
        self._params = list(params)
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _compile(self) -> _Compiled:
        with self._lock:
            compiled = self._compiled.get(connection.vendor)
            if compiled is not None:
                return compiled
            sentinels = [_sentinel(model._meta.get_field(field)) for model, field in self._params]
            queryset = self._build(*sentinels)
            compiler = queryset.query.get_compiler(using=queryset.db)
            sql, template = compiler.as_sql()
            positions = []
            for (model, field), sentinel in zip(self._params, sentinels, strict=True):
                prepared = value(model, field, sentinel)
                found = [index for index, param in enumerate(template) if type(param) is type(prepared)
                         and param == prepared]
                if len(found) != 1:
                    raise ImproperlyConfigured(f"CompiledSelect: the value for {model.__name__}.{field} appears "
                                               f"{len(found)} times in the compiled parameters (must be once)")
                positions.append(found[0])
            klass_info, select = compiler.klass_info, compiler.select
            start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            fields = [column[0] for column in select[0:compiler.col_count]]
            compiled = _Compiled(
                sql=sql, template=list(template), positions=positions, model=klass_info["model"],
                init_list=[column[0].target.attname for column in select[start:end]], start=start, end=end,
                populators=get_related_populators(klass_info, select, queryset.db),
                converters=sorted(compiler.get_converters(fields).items()),
                for_update=bool(queryset.query.select_for_update) and connection.features.has_select_for_update,
                db=queryset.db)
            self._compiled[connection.vendor] = compiled
            return compiled

    def all(self, *values: Any) -> list[Any]:
        """The instances the queryset built with ``values`` would give, in its order."""
        compiled = self._compiled.get(connection.vendor) or self._compile()
        params = list(compiled.template)
        for position, (model, field), raw in zip(compiled.positions, self._params, values, strict=True):
            params[position] = value(model, field, raw)
        if compiled.for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        instances = []
        for fetched in rows:
            row = list(fetched)
            for position, (converters, expression) in compiled.converters:
                for converter in converters:
                    row[position] = converter(row[position], expression, connection)
            instance = compiled.model.from_db(compiled.db, compiled.init_list, row[compiled.start:compiled.end])
            for populator in compiled.populators:
                populator.populate(row, instance)
            instances.append(instance)
        return instances

    def first(self, *values: Any) -> Any | None:
        """The first instance of :meth:`all`, or ``None`` (build the queryset with ``[:1]`` for one row)."""
        found = self.all(*values)
        return found[0] if found else None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    template: list[Any]
    positions: list[int]
    model: type[Model]
    init_list: list[str]
    start: int
    end: int
    populators: list[Any]
    converters: list[tuple[int, tuple[list[Any], Any]]]
    for_update: bool
    db: str


def _sentinel(model_field: Any) -> Any:
    """A value of ``model_field``'s type (a foreign key: its target's) that no real parameter equals."""
    target = getattr(model_field, "target_field", model_field)
    internal = target.get_internal_type()
    if internal == "UUIDField":
        return uuid.uuid4()
    if internal in ("AutoField", "BigAutoField", "IntegerField", "BigIntegerField", "PositiveIntegerField",
                    "PositiveBigIntegerField", "SmallAutoField", "SmallIntegerField", "PositiveSmallIntegerField"):
        return secrets.randbelow(2**31 - 2**20) + 2**20
    if internal in ("CharField", "TextField", "EmailField", "SlugField"):
        return f"numpay-sentinel-{secrets.token_hex(8)}"
    raise ImproperlyConfigured(f"CompiledSelect: no sentinel for a {internal}")
