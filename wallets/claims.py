"""Wallets for email addresses that have no Numpay account yet ("pay anyone by email").

Paying an email nobody has signed up with reserves a smart wallet for that address at once (a fresh custody
key, its vault address; no config on-chain) and the payment goes there. The address's owner gets an email;
when they sign up with it, :func:`wallets.services.wallet_provision` gives them that wallet, and once they
confirm the address (allauth's email confirmation, :func:`wallet_claim_confirm`) they can spend from it.
Until then nobody can: a wallet with a ``claim_email`` never signs (``payments.services.payment_terms``).
The sender may take an unclaimed payment back after ``NUMPAY_UNCLAIMED_RECLAIM_DAYS``
(``payments.reclaims``).

Whether an email has an account is therefore never revealed to a sender: a payment to any well-formed
email address is accepted the same way.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from . import custody
from .models import Wallet, WalletKey
from .smart import smart_wallet_addresses

logger = logging.getLogger(__name__)


def normalize_email(email: str) -> str:
    """The form a claim is stored and matched in: stripped, lower-case."""
    return (email or "").strip().lower()


def wallet_reserve_for_email(*, email: str) -> Wallet:
    """The wallet waiting for ``email``'s owner, created now if there is none (idempotent; a concurrent
    call returns the winner's wallet). Call it for an email no user has.

    :returns: a smart wallet with ``user=None`` and ``claim_email`` set; its vault can receive at once.
    """
    claim_email = normalize_email(email)
    existing = Wallet.objects.filter(claim_email=claim_email).first()
    if existing is not None:
        return existing
    wallet_id = uuid.uuid4()
    authority, envelope = custody.new_keypair_envelope(wallet_id=wallet_id)
    config, vault = smart_wallet_addresses(authority=authority)
    try:
        with transaction.atomic():
            wallet = Wallet.objects.create(id=wallet_id, user=None, claim_email=claim_email, address=vault,
                                           kind=Wallet.Kind.SMART, authority=authority, config_address=config,
                                           custody=Wallet.Custody.CUSTODIAL)
            WalletKey.objects.create(wallet=wallet, ciphertext=envelope.ciphertext,
                                     wrapped_data_key=envelope.wrapped_data_key, kek_id=envelope.kek_id)
    except IntegrityError:
        return Wallet.objects.get(claim_email=claim_email)
    logger.info("Reserved smart wallet %s for an email without an account", vault)
    return wallet


def wallet_take_reserved(*, user: Any) -> Wallet | None:
    """Give ``user`` the wallet reserved for their email, if there is one (called by
    :func:`wallets.services.wallet_provision` at sign-up). It stays unspendable until the email is
    confirmed; when it already is, the claim completes now.

    :returns: the wallet, or ``None`` when nothing was reserved for the address.
    """
    claim_email = normalize_email(getattr(user, "email", ""))
    if not claim_email:
        return None
    taken = Wallet.objects.filter(claim_email=claim_email, user__isnull=True).update(user=user)
    if not taken:
        return None
    wallet = Wallet.objects.get(claim_email=claim_email)
    if _email_is_verified(user=user, email=claim_email):
        wallet_claim_confirm(user=user, email=claim_email)
        wallet.refresh_from_db()
    return wallet


def wallet_claim_confirm(*, user: Any, email: str) -> bool:
    """The user confirmed ``email``: the wallet reserved for it, which they hold, becomes fully theirs.

    :returns: whether a claim completed.
    """
    return bool(Wallet.objects.filter(user=user, claim_email=normalize_email(email)).update(claim_email=""))


def _email_is_verified(*, user: Any, email: str) -> bool:
    from allauth.account.models import EmailAddress

    return EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()


def unclaimed_payment_notify(*, email: str, sender_email: str, ui_amount: str, symbol: str) -> None:
    """Tell ``email``'s owner they received money on Numpay and how to use it (sent once per landed
    payment, after commit)."""
    signup = f"{settings.NUMPAY_PUBLIC_URL.rstrip('/')}/accounts/signup/"
    send_mail(
        subject=f"You received {ui_amount} {symbol} on Numpay",
        message=(f"You received {ui_amount} {symbol} from {sender_email} — sign up to use it.\n\n"
                 f"Sign up with this email address ({email}) at {signup} and confirm it: the money is in your "
                 "wallet.\n"),
        from_email=None, recipient_list=[email])
