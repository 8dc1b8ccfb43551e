from __future__ import annotations

from django.apps import AppConfig


class RecoveryConfig(AppConfig):
    """Guardians, recovery requests, approvals and timelocks (issue 10): see :mod:`recovery.services`."""

    name = "recovery"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from relayer import outbox

        from . import checks  # noqa: F401 - registers the system checks
        from .services import GUARDIAN_SYNC_OUTBOX, RECOVERY_OUTBOXES

        for kind in (GUARDIAN_SYNC_OUTBOX, *RECOVERY_OUTBOXES):
            outbox.register(kind)
