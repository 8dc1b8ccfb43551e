"""The Celery application (DESIGN.md "Processes": one worker path, broker chosen by env)."""

from __future__ import annotations

import os

from celery import Celery

from numpay.core import broker

broker.register()

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "numpay.settings.dev")

app = Celery("numpay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
