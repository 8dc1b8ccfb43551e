"""allauth adapter: the signup hook provisions the user's wallet by an explicit service call."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.db import transaction

from wallets.claims import wallet_claim_confirm
from wallets.services import wallet_provision


class AccountAdapter(DefaultAccountAdapter):
    """Customises allauth (pages and headless API alike) without copying its views."""

    def save_user(self, request: Any, user: Any, form: Any, commit: bool = True) -> Any:
        """Save the new user and provision exactly one custodial wallet for them (idempotent)."""
        with transaction.atomic():
            user = super().save_user(request, user, form, commit=commit)
            if commit:
                wallet_provision(user=user)
        return user

    def confirm_email(self, request: Any, email_address: Any) -> bool:
        """Confirm the address; a wallet paid by email before sign-up becomes spendable by its owner."""
        confirmed = super().confirm_email(request, email_address)
        if confirmed:
            wallet_claim_confirm(user=email_address.user, email=email_address.email)
        return confirmed
