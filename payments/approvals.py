"""The passkey step-up of a payment awaiting approval (issue 9 items 3 and 5; DESIGN.md "Passkeys, policies,
recovery, sessions" and invariant 2 "Approve, then sign").

1. :func:`approval_options` (``POST /api/v1/payments/{id}/approval-options``) issues a
   :class:`~payments.models.PaymentApproval`: a fresh 32-byte nonce and a short expiry, and WebAuthn request
   options whose challenge is :func:`approval_challenge`, a SHA-256 digest of exactly what is approved
   (wallet, recipient, mint, amount, network fee, payment, nonce, expiry). Only the challenge's hash is
   stored. ``allowCredentials`` lists the user's passkeys that have not approved this payment yet.
2. :func:`approval_submit` (``POST /api/v1/payments/{id}/approve``) takes the assertion: the challenge it
   signed names the approval (by hash); under the payment's row lock it checks that approval (this payment,
   this user, unused, unexpired), that the payment still awaits approval, that the passkey is one of the
   user's and has not approved this payment yet, recomputes the challenge from the payment, and verifies
   the assertion over the same stored credential (:func:`accounts.passkeys.verify_assertion`: RP ID and
   origins from settings, UV required, signature counter advanced). The approval is then used. Once the
   decision's ``approvals_required`` distinct passkeys have approved, the payment is signed with a fresh
   blockhash and submitted (:func:`payments.services.payment_approve`), in the same transaction.

Every refusal raises a registered code and changes nothing (the transaction rolls back: no approval used,
no counter advanced, the payment untouched). Cancelling (:func:`payments.services.payment_cancel`) or the
expiry sweep ends the payment and releases its reservation; its open approvals can no longer be used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from solders.pubkey import Pubkey

from accounts import passkeys as passkey_rules
from accounts.app_settings import app_settings as accounts_settings
from numpay.core.errors import ApplicationError, ConflictError, NotFoundError
from numpay.core.solana import ChainClient

from . import app_settings, protection
from .lock_objects import payment_qs_select_for_update
from .models import Payment, PaymentApproval
from .secure_payment import SPC_ICON, secure_payment_details

Status = Payment.Status

#: Domain separation of :func:`approval_challenge` (a digest of this form is never anything else).
CHALLENGE_DOMAIN = b"numpay:payment-approval:v1"
NONCE_BYTES = 32


def b64u(data: bytes) -> str:
    """base64url without padding (the JSON form of WebAuthn's binary fields)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    """Inverse of :func:`b64u`. :raises ValueError: not base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, TypeError) as error:
        raise ValueError("not base64url") from error


def _field(data: bytes) -> bytes:
    return struct.pack("<H", len(data)) + data


def approval_challenge(*, payment: Payment, nonce: bytes, expires_at: datetime) -> bytes:
    """The 32-byte WebAuthn challenge approving exactly ``payment`` (pure, deterministic).

    ``SHA-256(CHALLENGE_DOMAIN || len16 || wallet address || len16 || recipient address || len16 || mint
    ("SOL" for SOL) || amount u64 LE || network fee u64 LE || payment id (16 bytes) || nonce (32 bytes) ||
    expires_at (UNIX seconds, i64 LE))``; a length-prefixed field can never be mistaken for its neighbour.

    :param nonce: the approval's 32 random bytes. :param expires_at: the approval's expiry (aware).
    """
    token = payment.token
    message = b"".join((
        CHALLENGE_DOMAIN, _field(payment.wallet.address.encode()), _field(payment.recipient_address.encode()),
        _field(b"SOL" if token.is_native else token.mint.encode()),
        struct.pack("<QQ", payment.amount, payment.network_fee), payment.id.bytes, nonce,
        struct.pack("<q", int(expires_at.timestamp()))))
    return hashlib.sha256(message).digest()


def onchain_approval_challenge(*, payment: Payment, onchain_nonce: int, expires_at: datetime) -> bytes:
    """The challenge of a protected wallet's payment: the wallet program's own
    (:func:`wallets.program.approval_challenge`, docs/wallet-program.md "Passkey approvals") over the exact
    ``execute`` that will be submitted (:func:`payments.transactions.payment_execute_instruction`), the config's
    ``onchain_nonce`` and ``expires_at`` (UNIX seconds): the program recomputes it from the transaction, so the
    passkey's signature moves exactly this payment, once, before ``expires_at``."""
    from relayer.services import fee_payer_pubkey
    from wallets.program import approval_challenge as program_challenge
    from wallets.smart import wallet_program_id

    from .transactions import payment_execute_instruction

    return program_challenge(wallet_program_id(), Pubkey.from_string(payment.wallet.config_address), onchain_nonce,
                             int(expires_at.timestamp()),
                             payment_execute_instruction(payment=payment, fee_payer=fee_payer_pubkey()))


def _challenge_for(payment: Payment, approval: PaymentApproval) -> bytes:
    if approval.onchain_nonce is None:
        return approval_challenge(payment=payment, nonce=bytes(approval.nonce), expires_at=approval.expires_at)
    return onchain_approval_challenge(payment=payment, onchain_nonce=approval.onchain_nonce,
                                      expires_at=approval.expires_at)


def challenge_hash(challenge: bytes) -> str:
    """What is stored of a challenge: SHA-256, hex."""
    return hashlib.sha256(challenge).hexdigest()


def step_up_ttl_seconds() -> int:
    """Seconds an approval challenge stays usable: ``PAYMENTS_STEP_UP_TTL_SECONDS``, default the passkey
    ceremonies' ``WEBAUTHN_CHALLENGE_TIMEOUT_SECONDS`` (never past the payment's own ``expires_at``)."""
    return app_settings.step_up_ttl_seconds(default=accounts_settings.WEBAUTHN_CHALLENGE_TIMEOUT_SECONDS)


@dataclass(frozen=True)
class Progress:
    """How far a payment's step-up is. :ivar received: distinct passkeys that approved;
    :ivar required: distinct passkeys the policy decision asks for (0, 1 or 2)."""

    received: int
    required: int


def approvals_required(payment: Payment) -> int:
    """Distinct passkey approvals the payment's stored policy decision asks for (0 when none)."""
    return int((payment.policy_decision or {}).get("approvals_required") or 0)


def approval_progress(payment: Payment) -> Progress:
    """The payment's :class:`Progress` (a read)."""
    received = PaymentApproval.objects.filter(payment=payment, used_at__isnull=False).count()
    return Progress(received=received, required=approvals_required(payment))


@dataclass(frozen=True)
class ApprovalOptions:
    """An issued approval and the WebAuthn request options for it.

    :ivar public_key: ``PublicKeyCredentialRequestOptions`` in its JSON form (base64url challenge and ids)
        for ``navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(...)})``.
    """

    approval: PaymentApproval
    public_key: dict[str, Any]
    progress: Progress
    #: :func:`secure_payment_details` plus the icon's static path, or ``None``.
    secure_payment: dict[str, Any] | None = None


def _own_payment(*, user: Any, payment_id: uuid.UUID | str, lock: bool = False) -> Payment:
    try:
        pk = uuid.UUID(str(payment_id))
    except ValueError:
        raise NotFoundError("payment_not_found", "No such payment.") from None
    queryset = payment_qs_select_for_update() if lock else Payment.objects.all()
    payment = (queryset.select_related("wallet", "token")
               .filter(pk=pk, sender=user, reclaim_of__isnull=True).first())
    if payment is None:
        raise NotFoundError("payment_not_found", "No such payment.")
    return payment


def _check_awaiting(payment: Payment, *, now: datetime) -> None:
    if payment.status != Status.AWAITING_APPROVAL:
        if approvals_required(payment) == 0:
            raise ConflictError("approval_not_needed", "This payment does not need a passkey approval.")
        raise ConflictError("payment_not_approvable", "This payment is not waiting for an approval any more.")
    if payment.expires_at is not None and payment.expires_at <= now:
        raise ConflictError("payment_expired", "This payment expired before it was approved; nothing left your "
                            "wallet.")


def _approved_authenticator_ids(payment: Payment) -> set[int]:
    return set(PaymentApproval.objects.filter(payment=payment, used_at__isnull=False)
               .values_list("authenticator_id", flat=True))


def _config_nonce(payment: Payment, *, client: ChainClient | None) -> int:
    """The protected wallet's config nonce, read from the chain now.

    :raises ChainUnavailableError: the chain could not be read (also when the config is not there).
    """
    from numpay.core.errors import ChainUnavailableError
    from numpay.core.solana import get_chain_client
    from wallets.smart import wallet_config_read

    config = wallet_config_read(client=client or get_chain_client(), wallet=payment.wallet)
    if config is None:
        raise ChainUnavailableError("The wallet could not be read from the network; try again.")
    return config.nonce


def approval_options(*, user: Any, payment_id: uuid.UUID | str, client: ChainClient | None = None) -> ApprovalOptions:
    """Issue a single-use, short-lived approval of ``user``'s payment ``payment_id`` and its request options.

    :raises NotFoundError: ``payment_not_found`` (not a payment ``user`` sent).
    :raises ConflictError: ``approval_not_needed``, ``payment_not_approvable`` (not ``awaiting_approval``),
        ``payment_expired``, ``passkeys_insufficient`` (fewer registered passkeys than distinct approvals
        needed, or every passkey of the user already approved; in a protected wallet only the passkeys its
        config holds count), ``wallet_protection_pending`` (the switch to protected mode is on its way: retry).
    :raises ChainUnavailableError: a protected wallet's config could not be read.

    A protected wallet's challenge is the wallet program's (:func:`onchain_approval_challenge`, with the
    config's nonce read now); a custodial one's is :func:`approval_challenge`.
    """
    from accounts.selectors import passkeys

    now = timezone.now()
    payment = _own_payment(user=user, payment_id=payment_id)
    _check_awaiting(payment, now=now)
    progress = approval_progress(payment)
    registered = passkeys(user=user)
    onchain_nonce = None
    if protection.protection_in_flight(payment.wallet):
        raise ConflictError("wallet_protection_pending", "Your passkey is being added to your wallet on the "
                            "network; try again in a few seconds.")
    if protection.wallet_mode(payment.wallet) == protection.PROTECTED:
        # the chain checks the approval: only the passkeys the wallet's config holds can give it
        owners = protection.onchain_passkey_ids(payment.wallet)
        registered = [passkey for passkey in registered if passkey.id in owners]
        onchain_nonce = _config_nonce(payment, client=client)
    done = _approved_authenticator_ids(payment)
    remaining = [passkey for passkey in registered if passkey.id not in done]
    if len(registered) < progress.required or not remaining:
        raise ConflictError("passkeys_insufficient", f"This payment needs {progress.required} different passkey"
                            f"{'s' if progress.required > 1 else ''}; you have {len(registered)}. Add a passkey on "
                            "your account page, or cancel the payment.")
    expires_at = now + timedelta(seconds=step_up_ttl_seconds())
    if payment.expires_at is not None:
        expires_at = min(expires_at, payment.expires_at)
    expires_at = expires_at.replace(microsecond=0)
    if onchain_nonce is not None:
        # a joint approval: every passkey signs the same challenge (one expiry, one nonce in the transaction)
        shared = (PaymentApproval.objects.filter(payment=payment, onchain_nonce=onchain_nonce, expires_at__gt=now)
                  .order_by("created_at").first())
        if shared is not None:
            expires_at = shared.expires_at
    approval = PaymentApproval(payment=payment, user=user, nonce=os.urandom(NONCE_BYTES), expires_at=expires_at,
                               onchain_nonce=onchain_nonce)
    challenge = _challenge_for(payment, approval)
    approval.challenge_hash = challenge_hash(challenge)
    approval.save(force_insert=True)
    public_key = {
        "challenge": b64u(challenge),
        "rpId": accounts_settings.WEBAUTHN_RP_ID,
        "timeout": max(1, int((expires_at - now).total_seconds())) * 1000,
        "userVerification": "required",
        "allowCredentials": [{"type": "public-key", "id": b64u(passkey.credential_id),
                              **({"transports": list(passkey.transports)} if passkey.transports else {})}
                             for passkey in remaining],
    }
    # A protected wallet's transaction carries the clientDataJSON on-chain: Secure Payment Confirmation's (payee,
    # total, instrument, icon URL) makes it pass Solana's 1,232-byte transaction size, so it gets the plain prompt.
    secure_payment = secure_payment_details(payment) if onchain_nonce is None else None
    if secure_payment is not None:
        secure_payment = {**secure_payment, "instrument": {**secure_payment["instrument"], "icon": SPC_ICON}}
    return ApprovalOptions(approval=approval, public_key=public_key, progress=progress,
                           secure_payment=secure_payment)


def _signed_challenge(credential: Mapping[str, Any]) -> tuple[bytes, bytes, str]:
    """``(challenge, credential id, clientDataJSON.type)`` named by an assertion (nothing verified yet).

    :raises ApplicationError: ``passkey_assertion_invalid`` (not an assertion in the JSON form).
    """
    try:
        response = credential["response"]
        client_data = json.loads(unb64u(response["clientDataJSON"]))
        return unb64u(client_data["challenge"]), unb64u(credential["rawId"]), str(client_data.get("type"))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ApplicationError("passkey_assertion_invalid", "This is not a passkey assertion.") from error


@dataclass(frozen=True)
class ApprovalResult:
    """:ivar payment: after the approval (``approved`` once enough passkeys approved, else still
    ``awaiting_approval``). :ivar progress: approvals received / required."""

    payment: Payment
    progress: Progress


def approval_submit(*, user: Any, payment_id: uuid.UUID | str, credential: Mapping[str, Any],
                    client: ChainClient | None = None) -> ApprovalResult:
    """Accept one passkey's assertion toward ``user``'s payment ``payment_id``; sign and submit the payment
    once enough distinct passkeys approved (see the module docstring).

    :param credential: ``PublicKeyCredential.toJSON()`` of ``navigator.credentials.get`` for the options of
        :func:`approval_options`.
    :raises NotFoundError: ``payment_not_found``.
    :raises ApplicationError: ``passkey_assertion_invalid`` (malformed, or origin / RP ID / UP / UV /
        signature / type refused), ``approval_challenge_unknown`` (no such challenge for this user),
        ``approval_wrong_payment`` (issued for another payment), ``passkey_unknown`` (not one of the
        user's passkeys), ``passkey_sign_count_regressed``; the relayer's refusals when signing.
    :raises ConflictError: ``approval_challenge_used``, ``approval_challenge_expired``,
        ``payment_not_approvable``, ``payment_expired``, ``approval_not_needed``, ``passkey_already_approved``,
        ``approval_outdated`` (custodial-form approval of a wallet protected since, or the config's nonce moved).
    """
    from .services import payment_approve

    challenge, credential_id, kind = _signed_challenge(credential)
    with transaction.atomic():
        payment = _own_payment(user=user, payment_id=payment_id, lock=True)
        approval = (PaymentApproval.objects.select_for_update()
                    .filter(challenge_hash=challenge_hash(challenge), user=user)
                    .order_by(F("used_at").asc(nulls_first=True), "created_at").first())
        if approval is None:
            raise ApplicationError("approval_challenge_unknown", "This approval request is unknown; start the "
                                   "approval again.")
        if approval.payment_id != payment.pk:
            raise ApplicationError("approval_wrong_payment", "This approval was made for another payment; nothing "
                                   "was approved.")
        if approval.used_at is not None:
            raise ConflictError("approval_challenge_used", "This approval request was already used; start the "
                                "approval again.")
        now = timezone.now()
        if approval.expires_at <= now:
            raise ConflictError("approval_challenge_expired", "This approval request expired; start the approval "
                                "again.")
        _check_awaiting(payment, now=now)
        if approval.onchain_nonce is None and (protection.protection_in_flight(payment.wallet) or protection.wallet_mode(
                payment.wallet) == protection.PROTECTED):
            raise ConflictError("approval_outdated", "Your wallet is now protected by your passkey on the network; "
                                "start the approval again.")
        if approval.onchain_nonce is not None and _config_nonce(payment, client=client) != approval.onchain_nonce:
            # another passkey-approved action landed since: the program would refuse this approval (nonce)
            raise ConflictError("approval_outdated", "Your wallet changed on the network since this approval "
                                "started; start the approval again.")
        authenticator = passkey_rules.passkey_for_credential(user=user, credential_id=credential_id)
        if authenticator is None:
            raise ApplicationError("passkey_unknown", "This passkey is not one of yours.")
        if approval.onchain_nonce is not None and authenticator.pk not in protection.onchain_passkey_ids(
                payment.wallet):
            # e.g. a passkey taken off the wallet (payments.passkey_removals): the program would refuse it (6009)
            raise ApplicationError("passkey_unknown", "This passkey does not own your wallet on-chain; approve with "
                                   "one that does.")
        if authenticator.pk in _approved_authenticator_ids(payment):
            raise ConflictError("passkey_already_approved", "This passkey already approved this payment; approve "
                                "on another device with another passkey.")
        expected = _challenge_for(payment, approval)
        if challenge_hash(expected) != approval.challenge_hash:
            # the payment's terms are not what was put before the user
            raise ApplicationError("approval_wrong_payment", "This approval was made for another payment; nothing "
                                   "was approved.")
        try:
            secure_payment = secure_payment_details(payment) if kind == "payment.get" and approval.onchain_nonce is None \
                else None
            if secure_payment is not None:  # the browser's payment sheet showed the payee and the total
                counter = passkey_rules.verify_payment_assertion(
                    authenticator=authenticator, credential=credential, expected_challenge=expected,
                    expected_payment=secure_payment)
            else:
                counter = passkey_rules.verify_assertion(authenticator=authenticator, credential=credential,
                                                         expected_challenge=expected)
        except passkey_rules.AssertionRefused as refused:
            if refused.reason == "sign_count":
                raise ApplicationError("passkey_sign_count_regressed", "This passkey's signature counter went "
                                       "backwards: it may have been copied. Nothing was approved.") from refused
            raise ApplicationError("passkey_assertion_invalid", "Your passkey's answer could not be verified; "
                                   "nothing was approved.") from refused
        response = credential["response"]
        approval.used_at, approval.authenticator, approval.sign_count = now, authenticator, counter
        approval.authenticator_data = unb64u(response["authenticatorData"])
        approval.client_data_json = unb64u(response["clientDataJSON"])
        approval.signature = unb64u(response["signature"])
        approval.save(update_fields=["used_at", "authenticator", "sign_count", "authenticator_data",
                                     "client_data_json", "signature"])
        type(authenticator).objects.filter(pk=authenticator.pk).update(last_used_at=now)
        progress = approval_progress(payment)
        if progress.received >= progress.required:
            payment = payment_approve(payment_id=payment.pk, client=client,
                                      note=f"passkey step-up: {progress.received} of {progress.required} approvals")
    return ApprovalResult(payment=payment, progress=progress)
