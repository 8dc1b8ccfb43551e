from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, allauth adapters (email, phone/SMS, social, passkeys), the outbox of sent messages."""

    name = "accounts"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from .passkeys import install

        install()
