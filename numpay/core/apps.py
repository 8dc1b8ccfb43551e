from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting pieces: errors, money, the chain client, API plumbing."""

    name = "numpay.core"
    label = "numpay_core"

    def ready(self) -> None:
        from . import checks, schema  # noqa: F401 - registers the system checks and OpenAPI extensions
