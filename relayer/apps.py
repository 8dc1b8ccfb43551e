from __future__ import annotations

from django.apps import AppConfig


class RelayerConfig(AppConfig):
    """Fee payers, sponsorship budgets, transaction validation, submission and confirmation."""

    name = "relayer"
