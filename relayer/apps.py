from __future__ import annotations

from django.apps import AppConfig


class RelayerConfig(AppConfig):
    """Fee payers, sponsorship budgets, transaction validation, submission and confirmation."""

    name = "relayer"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
