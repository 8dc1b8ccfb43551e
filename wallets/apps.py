from __future__ import annotations

from django.apps import AppConfig


class WalletsConfig(AppConfig):
    """Wallets, key custody, tokens, balances, payments."""

    name = "wallets"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
