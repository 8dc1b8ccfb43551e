from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting pieces: errors, money, the chain client, API plumbing."""

    name = "numpay.core"
    label = "numpay_core"
