from __future__ import annotations

from django.apps import AppConfig


class RecoveryConfig(AppConfig):
    """Guardians, recovery requests, approvals and timelocks (to come: see the recovery issue)."""

    name = "recovery"
