"""Reads of the accounts app: a user's sign-in methods (for the account page and lock-out protection), their
passkeys, and a passkey's public key (for verifying its signatures outside allauth)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256

from .models import User


@dataclass(frozen=True)
class SignInMethod:
    """One way a user can sign in.

    :ivar kind: ``email``, ``phone``, ``social`` or ``passkey``.
    :ivar label: what the user sees (the address, the number, the provider's name).
    :ivar key: identifies the method within its kind (email address pk, ``phone``, social account pk,
        passkey (``mfa.Authenticator``) pk).
    :ivar verified: whether the user proved it (a verified email, a phone confirmed by SMS, a social login).
    """

    kind: str
    label: str
    key: str
    verified: bool


def sign_in_methods(*, user: User) -> list[SignInMethod]:
    """Every sign-in method of ``user``: email addresses (by password or emailed code), the phone number
    (by SMS code or password) when verified, connected social accounts, and passkeys."""
    from allauth.account.models import EmailAddress
    from allauth.mfa.models import Authenticator
    from allauth.socialaccount.models import SocialAccount

    methods = [SignInMethod("email", address.email, str(address.pk), address.verified)
               for address in EmailAddress.objects.filter(user=user).order_by("-primary", "email")]
    if user.phone and user.phone_verified:
        methods.append(SignInMethod("phone", user.phone, "phone", True))
    for account in SocialAccount.objects.filter(user=user).order_by("provider", "pk"):
        methods.append(SignInMethod("social", account.get_provider().name, str(account.pk), True))
    for authenticator in Authenticator.objects.filter(user=user, type=Authenticator.Type.WEBAUTHN).order_by("pk"):
        methods.append(SignInMethod("passkey", authenticator.wrap().name, str(authenticator.pk), True))
    return methods


@dataclass(frozen=True)
class WalletPasskeyOwners:
    """Which of a user's passkeys own their wallet on-chain (protected mode, :mod:`payments.protection`).

    :ivar protected: the wallet's switch to protected mode landed (its first passkey is an owner).
    :ivar owners: ``mfa.Authenticator`` pks the wallet config holds as owners (confirmed on-chain).
    :ivar pending: pks being written as owners now, or being taken off (a ``WalletProtection`` signed or
        submitted, not landed).
    :ivar removing: of ``pending``, the pks being taken off the wallet (:mod:`payments.passkey_removals`).
    :ivar removed: pks taken off the wallet (no longer owners; never owners again).
    :ivar changing: an owner change (addition, limits or removal) is in flight or held: no other may start now.
    :ivar without_limits: of ``owners``, the pks with no on-chain limits written by Numpay (made owners before
        owners got the first passkey's limits, :mod:`payments.passkey_limits`): such a passkey approves payments
        only jointly with another owner, so the page offers "Let this passkey approve payments on its own".
    """

    protected: bool
    owners: frozenset[int]
    pending: frozenset[int]
    removing: frozenset[int] = frozenset()
    removed: frozenset[int] = frozenset()
    changing: bool = False
    without_limits: frozenset[int] = frozenset()


def wallet_passkey_owners(*, user: User) -> WalletPasskeyOwners:
    """The owner passkeys of ``user``'s wallet (:class:`WalletPasskeyOwners`; all empty without a wallet)."""
    from payments.models import WalletProtection  # payments imports accounts: call back inside the function
    from payments.protection import PROTECTED, onchain_passkey_ids, wallet_mode
    from wallets.models import Wallet

    wallet = Wallet.objects.filter(user=user).first()
    if wallet is None:
        return WalletPasskeyOwners(protected=False, owners=frozenset(), pending=frozenset())
    pending = WalletProtection.objects.filter(wallet=wallet, authenticator__isnull=False,
                                              status__in=WalletProtection.CHANGE_PENDING_STATUSES)
    removals = WalletProtection.objects.filter(wallet=wallet, authenticator__isnull=False,
                                               kind=WalletProtection.Kind.REMOVE_PASSKEY)
    owners = onchain_passkey_ids(wallet)
    limited = {row.authenticator_id for row in WalletProtection.objects.filter(
        wallet=wallet, authenticator__isnull=False, status=WalletProtection.Status.CONFIRMED).exclude(
        kind=WalletProtection.Kind.REMOVE_PASSKEY).only("kind", "authenticator_id", "limits")
        if row.kind == WalletProtection.Kind.PROTECT
        or any(action.get("action") == "set_limits" for action in (row.limits or {}).get("actions", []))}
    return WalletPasskeyOwners(
        protected=wallet_mode(wallet) == PROTECTED, owners=frozenset(owners),
        without_limits=frozenset(owners - limited),
        pending=frozenset(pending.values_list("authenticator_id", flat=True)),
        removing=frozenset(removals.filter(status__in=WalletProtection.IN_FLIGHT_STATUSES)
                           .values_list("authenticator_id", flat=True)),
        removed=frozenset(removals.filter(status=WalletProtection.Status.CONFIRMED)
                          .values_list("authenticator_id", flat=True)),
        changing=WalletProtection.objects.filter(wallet=wallet,
                                                 status__in=WalletProtection.CHANGE_PENDING_STATUSES).exists())


def passkey_owns_wallet(*, user: User, authenticator_id: int) -> bool:
    """Whether the passkey ``authenticator_id`` (an ``mfa.Authenticator`` pk) is an owner authority of
    ``user``'s wallet config on-chain (:func:`payments.protection.onchain_passkey_ids`), or is being written
    there now (:func:`wallet_passkey_owners`).

    Such a passkey must not be removed from the account: the chain would still accept its signatures (whoever
    holds the device keeps owning the wallet) while Numpay could no longer verify or use it.
    """
    owners = wallet_passkey_owners(user=user)
    return authenticator_id in owners.owners or authenticator_id in owners.pending


def sign_in_method_removal_refusal(*, user: User, kind: str, key: str) -> str | None:
    """Why method (``kind``, ``key``) of ``user`` cannot be removed, as an error code of
    :mod:`numpay.core.errors`, or ``None`` when it can.

    ``last_sign_in_method``: nothing else would let them sign in (:func:`can_remove_sign_in_method`);
    ``passkey_owns_wallet``: the passkey is an owner of their wallet on-chain (:func:`passkey_owns_wallet`).
    """
    if not can_remove_sign_in_method(user=user, kind=kind, key=key):
        return "last_sign_in_method"
    if kind == "passkey" and passkey_owns_wallet(user=user, authenticator_id=int(key)):
        return "passkey_owns_wallet"
    return None


def can_remove_sign_in_method(*, user: User, kind: str, key: str) -> bool:
    """Whether removing method (``kind``, ``key``) leaves ``user`` at least one other way to sign in.

    allauth also keeps the last social account of a user without a usable password
    (``allauth.socialaccount.internal.flows.connect.validate_disconnect``); the page says so too.
    A passkey never stands in for the last email, phone or social account (a lost device would lock the
    owner of a custodial wallet out): those need another of them, so a passkey can always be removed.
    """
    methods = sign_in_methods(user=user)
    if kind == "social" and not user.has_usable_password() and not any(
            method.kind == "social" and method.key != key for method in methods):
        return False
    others = [method for method in methods if (method.kind, method.key) != (kind, key)]
    if kind != "passkey":
        others = [method for method in others if method.kind != "passkey"]
    return bool(others)


@dataclass(frozen=True)
class Passkey:
    """One registered passkey, as the account page and the API show it.

    :ivar id: the ``mfa.Authenticator`` pk (allauth's pages and headless API address it by this).
    :ivar credential_id: the WebAuthn credential id (raw bytes).
    :ivar created_at / last_used_at: registration, last accepted sign-in (``None`` when never used).
    :ivar sign_count: the authenticator's signature counter at its last accepted ceremony.
    :ivar transports: what the browser reported at registration (``internal``, ``hybrid``, ``usb``...).
    :ivar backed_up: synced by its provider (the BS flag at the last accepted ceremony).
    """

    id: int
    name: str
    credential_id: bytes
    created_at: datetime
    last_used_at: datetime | None
    sign_count: int
    transports: tuple[str, ...]
    backed_up: bool


def passkeys(*, user: User) -> list[Passkey]:
    """The passkeys of ``user``, oldest first."""
    from allauth.mfa.models import Authenticator

    from .models import PasskeyState

    rows = list(Authenticator.objects.filter(user=user, type=Authenticator.Type.WEBAUTHN).order_by("created_at", "pk"))
    states = {state.authenticator_id: state for state in PasskeyState.objects.filter(authenticator__in=rows)}
    result = []
    for row in rows:
        wrapped = row.wrap()
        data = wrapped.authenticator_data
        state = states.get(row.pk)
        transports = row.data.get("credential", {}).get("response", {}).get("transports") or []
        result.append(Passkey(
            id=row.pk, name=wrapped.name, credential_id=bytes(data.credential_data.credential_id),
            created_at=row.created_at, last_used_at=row.last_used_at,
            sign_count=state.sign_count if state else data.counter,
            transports=tuple(str(transport) for transport in transports),
            backed_up=state.backed_up if state else data.is_backed_up()))
    return result


def passkey_cose_public_key(*, authenticator: Any) -> bytes:
    """The passkey's public key exactly as its authenticator sent it at registration: the COSE_Key bytes of
    the attested credential data (WebAuthn Level 3, 6.5.1), what ``webauthn.verify_authentication_response``
    (py_webauthn) takes as ``credential_public_key``."""
    credential = authenticator.wrap().authenticator_data.credential_data
    return bytes(credential)[18 + len(credential.credential_id):]


def passkey_public_key(*, authenticator: Any) -> ec.EllipticCurvePublicKey:
    """The P-256 public key of a passkey (an ``mfa.Authenticator`` of type ``webauthn``), from its COSE key.

    Verify a WebAuthn assertion with it as ``key.verify(signature, authenticatorData + sha256(clientDataJSON),
    ec.ECDSA(hashes.SHA256()))``; ``key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)`` is the
    33-byte form Solana's secp256r1 precompile takes. Only ES256 keys can be registered (:mod:`accounts.passkeys`).

    :raises ValueError: the credential is not an ES256 (COSE alg -7, P-256) key.
    """
    cose = authenticator.wrap().authenticator_data.credential_data.public_key
    if not isinstance(cose, ES256) or cose.get(-1) != 1:
        raise ValueError("Not an ES256 (P-256) passkey.")
    x, y = int.from_bytes(cose[-2], "big"), int.from_bytes(cose[-3], "big")
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
