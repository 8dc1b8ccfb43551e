"""The Celery application (DESIGN.md "Processes": one worker path, broker chosen by env)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

from numpay.core import broker

broker.register()

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "numpay.settings.dev")

app = Celery("numpay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def close_old_connections_around_task(sender: Any = None, task: Any = None, **kwargs: Any) -> None:
    """Before and after each task run by a worker: Django's ``close_old_connections()`` (the request cycle's
    rule: close a connection older than ``CONN_MAX_AGE``, one that fails its health check, or one left in a
    transaction), in place of Celery's unconditional close (``CELERY_DB_REUSE_MAX`` in the settings).

    Eager tasks (``task.apply()``, ``CELERY_TASK_ALWAYS_EAGER``) run inside the caller's transaction and are
    left alone, as Celery's own fix-up does.
    """
    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


task_prerun.connect(close_old_connections_around_task, weak=False, dispatch_uid="numpay-db-prerun")
task_postrun.connect(close_old_connections_around_task, weak=False, dispatch_uid="numpay-db-postrun")
