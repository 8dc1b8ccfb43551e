from __future__ import annotations

from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    """Payments: the state machine, authorize -> approve -> sign, submission through the relayer's outbox."""

    name = "payments"

    def ready(self) -> None:
        from relayer import outbox

        from . import checks  # noqa: F401 - registers the system checks
        from .submission import PaymentOutbox

        outbox.register(PaymentOutbox())
