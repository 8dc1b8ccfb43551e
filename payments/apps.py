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
        self._invalidate_policies_on_writes()

    @staticmethod
    def _invalidate_policies_on_writes() -> None:
        """``rules_for``'s cache: a policy, a group (its name is in the decision) or a user's groups changed."""
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from numpay.core import rowcache

        from .models import POLICIES_CACHE, SpendingPolicy

        receiver = rowcache.invalidator(POLICIES_CACHE)
        for model in (SpendingPolicy, Group):
            post_save.connect(receiver, sender=model, weak=False, dispatch_uid=f"numpay_policies_save_{model.__name__}")
            post_delete.connect(receiver, sender=model, weak=False,
                                dispatch_uid=f"numpay_policies_delete_{model.__name__}")
        m2m_changed.connect(receiver, sender=get_user_model().groups.through, weak=False,
                            dispatch_uid="numpay_policies_groups")
