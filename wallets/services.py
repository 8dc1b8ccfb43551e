"""Writes for wallets: provisioning, signing, KEK rotation, the localnet faucet."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from solders.signature import Signature

from numpay.core import rowcache
from numpay.core.errors import ApplicationError, NotFoundError
from numpay.core.sql import CompiledSelect

from . import custody
from .claims import normalize_email, wallet_take_reserved
from .lock_objects import wallet_key_qs_select_for_update
from .models import TOKENS_CACHE, Token, Wallet, WalletKey
from .smart import smart_wallet_addresses

logger = logging.getLogger(__name__)


def wallet_provision(*, user: object) -> Wallet:
    """Give ``user`` exactly one custodial smart wallet; return the existing one if it is already there.

    A fresh custody key (envelope-encrypted) is the wallet's creator and owner authority; its address is
    the vault derived from it (``wallets.smart``), so the user can receive at once. Nothing is written
    on-chain: the config is created with the wallet's first outgoing payment.

    When someone paid the user's email before they signed up, the wallet reserved for it is theirs instead
    (``wallets.claims``): spendable once the email is confirmed.

    Idempotent under retries and concurrent calls: the unique constraint on ``Wallet.user`` decides,
    and the loser of a race returns the winner's wallet.

    :returns: the user's :class:`Wallet`.
    """
    existing = Wallet.objects.filter(user=user).first()
    if existing is not None:
        return existing
    reserved = wallet_take_reserved(user=user)
    if reserved is not None:
        return reserved
    wallet_id = uuid.uuid4()
    authority, envelope = custody.new_keypair_envelope(wallet_id=wallet_id)
    config, vault = smart_wallet_addresses(authority=authority)
    try:
        with transaction.atomic():
            wallet = Wallet.objects.create(id=wallet_id, user=user, address=vault, kind=Wallet.Kind.SMART,
                                           authority=authority, config_address=config,
                                           custody=Wallet.Custody.CUSTODIAL)
            WalletKey.objects.create(wallet=wallet, ciphertext=envelope.ciphertext,
                                     wrapped_data_key=envelope.wrapped_data_key, kek_id=envelope.kek_id)
    except IntegrityError:
        return Wallet.objects.get(user=user)
    logger.info("Provisioned smart wallet %s for user %s", vault, getattr(user, "pk", None))
    return wallet


def wallets_provision_bulk(*, users: Sequence[Any], batch_size: int = 500) -> int:
    """Give many users their wallet at once (imports, back-fills): the same wallets as :func:`wallet_provision`
    (a fresh custody key per wallet, envelope-encrypted, bound to the wallet's id), written ``batch_size`` at a
    time in one transaction each instead of one transaction per wallet (the commit, not the key wrapping, is
    what a wallet costs: ``bench/scale.py``).

    Users who already have a wallet are skipped; a user for whose email a wallet is reserved
    (``wallets.claims``) goes through :func:`wallet_provision`, which gives them that one. Safe against a
    concurrent :func:`wallet_provision`: a batch that meets a wallet created meanwhile is redone user by user.

    :param users: user objects (saved).
    :returns: how many wallets were created.
    """
    created = 0
    for start in range(0, len(users), batch_size):
        batch = list(users[start:start + batch_size])
        have = set(Wallet.objects.filter(user__in=batch).values_list("user_id", flat=True))
        emails = {normalize_email(getattr(user, "email", "") or ""): user for user in batch if user.pk not in have}
        reserved = set(Wallet.objects.filter(claim_email__in=[e for e in emails if e], user__isnull=True)
                       .values_list("claim_email", flat=True))
        fresh = [user for user in batch if user.pk not in have
                 and normalize_email(getattr(user, "email", "") or "") not in reserved]
        for email in reserved:
            wallet_provision(user=emails[email])
            created += 1
        wallets, keys = [], []
        for user in fresh:
            wallet_id = uuid.uuid4()
            authority, envelope = custody.new_keypair_envelope(wallet_id=wallet_id)
            config, vault = smart_wallet_addresses(authority=authority)
            wallets.append(Wallet(id=wallet_id, user=user, address=vault, kind=Wallet.Kind.SMART, authority=authority,
                                  config_address=config, custody=Wallet.Custody.CUSTODIAL))
            keys.append(WalletKey(wallet_id=wallet_id, ciphertext=envelope.ciphertext,
                                  wrapped_data_key=envelope.wrapped_data_key, kek_id=envelope.kek_id))
        try:
            with transaction.atomic():
                Wallet.objects.bulk_create(wallets)
                WalletKey.objects.bulk_create(keys)
            created += len(wallets)
        except IntegrityError:  # someone provisioned one of them meanwhile: one by one (idempotent)
            for user in fresh:
                had = Wallet.objects.filter(user=user).exists()
                wallet_provision(user=user)
                created += 0 if had else 1
    logger.info("Provisioned %d smart wallets in bulk", created)
    return created


def wallet_sign(*, wallet: Wallet, message: bytes, envelope: WalletKey | None = None) -> Signature:
    """Sign a serialized Solana message with the wallet's custodial key (via :func:`custody.sign`): the
    keypair wallet's own key, or the smart wallet's owner authority (``wallet.signing_address``).

    :param envelope: the wallet's key row, read by the caller in its transaction together with the wallet's
        row lock (:func:`wallets.lock_objects.wallet_qs_select_for_update_with_key`): one read less. If it no
        longer decrypts (its KEK was rotated and removed since), the row is read again. Without it, it is read.
    :raises ApplicationError: ``wallet_frozen`` when the wallet is frozen.
    :raises custody.CustodyError: the envelope does not decrypt.
    """
    if wallet.status != Wallet.Status.ACTIVE:
        raise ApplicationError("wallet_frozen", "This wallet is frozen; contact support.", status=403)
    if envelope is not None and envelope.wallet_id == wallet.pk:
        try:
            return custody.sign(wallet_id=wallet.id, address=wallet.signing_address, ciphertext=envelope.ciphertext,
                                wrapped_data_key=envelope.wrapped_data_key, kek_id=envelope.kek_id, message=message)
        except custody.CustodyError:
            pass  # read again below: the answer is the stored row's
    key = WalletKey.objects.get(wallet=wallet)
    return custody.sign(wallet_id=wallet.id, address=wallet.signing_address, ciphertext=key.ciphertext,
                        wrapped_data_key=key.wrapped_data_key, kek_id=key.kek_id, message=message)


def kek_rotate(*, batch_size: int = 100) -> int:
    """Re-wrap every data key not yet under the current KEK. Resumable: each batch commits on its own,
    rows already re-wrapped are skipped, and concurrent runs split the work (``SKIP LOCKED``).

    :returns: how many envelopes were re-wrapped.
    :raises custody.CustodyError: an envelope's KEK is no longer configured or it was tampered with.
    """
    current = custody.get_kek_provider().current_key_id()
    total = 0
    while True:
        with transaction.atomic():
            batch = list(wallet_key_qs_select_for_update().exclude(kek_id=current).select_related("wallet")
                         .order_by("pk")[:batch_size])
            if not batch:
                return total
            for key in batch:
                key.kek_id, key.wrapped_data_key = custody.rewrap_data_key(
                    wallet_id=key.wallet_id, address=key.wallet.signing_address, kek_id=key.kek_id,
                    wrapped=bytes(key.wrapped_data_key))
                key.rotated_at = timezone.now()
                key.save(update_fields=["kek_id", "wrapped_data_key", "rotated_at"])
            total += len(batch)


def token_get(*, symbol: str) -> Token:
    """The active token ``symbol`` (case-insensitive) on this cluster (cached across processes until a
    Token row is written: :mod:`numpay.core.rowcache`).

    :raises ApplicationError: ``unknown_token`` (400).
    """
    cluster, wanted = settings.SOLANA_CLUSTER, (symbol or "").strip()
    # every payment reads it: from the shared cache, forgotten on any Token write (WalletsConfig.ready)
    token = rowcache.cached(TOKENS_CACHE, f"{cluster}:{wanted.lower()}", lambda: Token.objects.filter(
        cluster=cluster, symbol__iexact=wanted, is_active=True).first())
    if token is None:
        raise ApplicationError("unknown_token", f"Numpay does not support the token {symbol!r} here.",
                               extra={"field": "token"})
    return token


_WALLET_OF_USER = CompiledSelect(lambda user_id: Wallet.objects.filter(user_id=user_id).order_by("pk")[:1],
                                 params=[(Wallet, "user")])


def wallet_for_user(*, user: object) -> Wallet:
    """The user's wallet (every payment reads it: its SQL is compiled once, :data:`_WALLET_OF_USER`).
    :raises NotFoundError: ``wallet_not_found``."""
    wallet = _WALLET_OF_USER.first(getattr(user, "pk", user))
    if wallet is None:
        raise NotFoundError("wallet_not_found")
    return wallet
