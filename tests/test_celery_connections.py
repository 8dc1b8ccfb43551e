"""A Celery worker keeps its database connection between tasks the way a web process keeps it between
requests (``CONN_MAX_AGE``), instead of Celery's fix-up closing it before and after every task
(``CELERY_DB_REUSE_MAX`` in numpay/settings/base.py; the cost measured in bench/README.md: a new PostgreSQL
backend per task)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from numpay.celery import app, close_old_connections_around_task

pytestmark = pytest.mark.django_db(transaction=True)


def task(*, eager: bool = False) -> SimpleNamespace:
    """What the ``task_prerun`` / ``task_postrun`` signals hand over: the task, with its request."""
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


def test_celerys_own_per_task_close_leaves_the_connection_open() -> None:
    connection.ensure_connection()
    raw = connection.connection
    fixup = DjangoWorkerFixup(app)
    for _ in range(3):  # what Celery's fix-up runs before and after every task
        fixup.close_database()
    assert connection.connection is raw


def test_a_connection_younger_than_conn_max_age_survives_a_task_and_an_older_one_is_closed(monkeypatch) -> None:  # noqa: ANN001
    connection.close()
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    connection.ensure_connection()  # close_at = now + 60 s
    raw = connection.connection
    close_old_connections_around_task(task=task())
    close_old_connections_around_task(task=task())
    assert connection.connection is raw

    connection.close_at = time.monotonic() - 1  # past CONN_MAX_AGE
    close_old_connections_around_task(task=task())
    assert connection.connection is None


def test_with_conn_max_age_zero_every_task_gets_a_new_connection() -> None:
    assert connection.settings_dict["CONN_MAX_AGE"] == 0  # the default, and the tests' setting
    connection.ensure_connection()
    assert connection.connection is not None
    close_old_connections_around_task(task=task())
    assert connection.connection is None


def test_an_eager_task_leaves_its_callers_connection_alone() -> None:
    connection.ensure_connection()
    raw = connection.connection
    close_old_connections_around_task(task=task(eager=True))
    assert connection.connection is raw
