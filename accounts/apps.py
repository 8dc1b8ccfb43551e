from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, allauth adapters (later: phone/SMS, passkeys)."""

    name = "accounts"
