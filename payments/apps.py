from __future__ import annotations

from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    """Payments: the state machine, authorize -> approve -> sign, submission through the relayer's outbox."""

    name = "payments"

    def ready(self) -> None:
        from allauth.mfa import signals

        from relayer import outbox

        from . import checks  # noqa: F401 - registers the system checks
        from .protection_submission import WalletProtectionOutbox, passkey_registered
        from .submission import PaymentOutbox

        outbox.register(PaymentOutbox())
        outbox.register(WalletProtectionOutbox())
        signals.authenticator_added.connect(passkey_registered, dispatch_uid="numpay_wallet_protect")
