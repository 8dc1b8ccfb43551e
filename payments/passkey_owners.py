"""A further passkey as an owner of a protected wallet (issue 9 item 5, on-chain side).

Once a wallet is protected (:mod:`payments.protection`) the custody key can no longer manage it: adding another
passkey as an owner is a passkey-approved ``add_authority`` (docs/wallet-program.md "Passkey approvals"), approved
by a passkey the config already holds. With two owner passkeys, the policy's "2 passkeys above Y" is checked
on-chain too: the config's joint threshold (2) lets two distinct owners approving one ``execute`` together go
above each one's own limit, and one alone cannot.

1. :func:`passkey_owner_options`: the wallet program's challenge (:func:`wallets.program.approval_challenge`) of
   the ``add_authority`` of the new passkey, with the config's nonce read now and a short expiry; request options
   listing the owner passkeys.
2. :func:`passkey_owner_add`: verify the assertion (:func:`accounts.passkeys.verify_assertion`) by an owner passkey
   over exactly that challenge, then sign (fee payer only) and submit ``[secp256r1 precompile, passkey-approved
   add_authority]`` through the outbox (a :class:`~payments.models.WalletProtection` of kind ``add_passkey``).
   The chain is the single-use guard: the nonce moves when it lands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from solders.instruction import Instruction
from solders.pubkey import Pubkey

from accounts import passkeys as passkey_rules
from accounts.app_settings import app_settings as accounts_settings
from numpay.core.errors import ApplicationError, ConflictError, NotFoundError
from numpay.core.solana import ChainClient, get_chain_client
from wallets.program import Authority, PasskeyAssertion, add_authority, approval_challenge, approve_with_passkeys
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND

from . import app_settings, protection
from .approvals import b64u, step_up_ttl_seconds, unb64u
from .models import WalletProtection


def _compressed(authenticator: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from accounts.selectors import passkey_public_key

    return passkey_public_key(authenticator=authenticator).public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def addition_action(*, wallet: Any, public_key: bytes) -> Instruction:
    """The ``add_authority`` (signer form) of ``public_key`` as an owner (``spend | manage``, no limits of its own:
    it spends with another owner, above the limits, or after a passkey-approved ``set_limits``)."""
    from wallets.smart import wallet_program_id

    custody = Pubkey.from_string(wallet.signing_address)
    return add_authority(wallet_program_id(), custody, custody,
                         Authority.passkey(public_key, PERMISSION_SPEND | PERMISSION_MANAGE))


def _challenge(*, wallet: Any, public_key: bytes, nonce: int, expires_at: int) -> bytes:
    from wallets.smart import wallet_program_id

    return approval_challenge(wallet_program_id(), Pubkey.from_string(wallet.config_address), nonce, expires_at,
                              addition_action(wallet=wallet, public_key=public_key))


def addition_instructions(addition: WalletProtection) -> list[Instruction]:
    """``[secp256r1 precompile, passkey-approved add_authority]`` of a stored addition (re-built for each attempt)."""
    assertion = PasskeyAssertion(public_key=_compressed(addition.approver),
                                 authenticator_data=bytes(addition.authenticator_data),
                                 client_data_json=bytes(addition.client_data_json),
                                 signature=bytes(addition.signature_der))
    return approve_with_passkeys(addition_action(wallet=addition.wallet, public_key=bytes(addition.public_key)),
                                 [assertion], expires_at=int(addition.approval_expires_at.timestamp()))


@dataclass(frozen=True)
class OwnerOptions:
    """:ivar public_key: WebAuthn request options (JSON form). :ivar nonce: the config's nonce in the challenge.
    :ivar expires_at: the approval's expiry, UNIX seconds (also in the challenge)."""

    public_key: dict[str, Any]
    nonce: int
    expires_at: int


def _target(*, user: Any, authenticator_id: int) -> tuple[Any, Any]:
    """``(wallet, the passkey to add)``.

    :raises NotFoundError: ``passkey_not_found``. :raises ConflictError: ``wallet_not_protected``,
        ``passkey_already_owner``, ``passkey_removed_from_wallet`` (taken off the wallet once,
        :mod:`payments.passkey_removals`: never an owner again), ``wallet_change_pending`` (a removal in flight).
    """
    from allauth.mfa.models import Authenticator

    from wallets.services import wallet_for_user

    authenticator = Authenticator.objects.filter(pk=authenticator_id, user=user,
                                                 type=Authenticator.Type.WEBAUTHN).first()
    if authenticator is None:
        raise NotFoundError("passkey_not_found", "No such passkey.")
    wallet = wallet_for_user(user=user)
    if protection.wallet_mode(wallet) != protection.PROTECTED:
        raise ConflictError("wallet_not_protected", "Your wallet is not protected by a passkey yet.")
    if WalletProtection.objects.filter(wallet=wallet, authenticator=authenticator,
                                       kind=WalletProtection.Kind.REMOVE_PASSKEY,
                                       status=WalletProtection.Status.CONFIRMED).exists():
        raise ConflictError("passkey_removed_from_wallet")
    if WalletProtection.objects.filter(wallet=wallet, kind=WalletProtection.Kind.REMOVE_PASSKEY,
                                       status__in=WalletProtection.IN_FLIGHT_STATUSES).exists():
        raise ConflictError("wallet_change_pending")
    if WalletProtection.objects.filter(wallet=wallet, authenticator=authenticator, status__in=(
            *WalletProtection.IN_FLIGHT_STATUSES, WalletProtection.Status.CONFIRMED)).exists():
        raise ConflictError("passkey_already_owner", "This passkey already is (or is becoming) an owner of your "
                            "wallet.")
    return wallet, authenticator


def _config_nonce(wallet: Any, client: ChainClient) -> int:
    from numpay.core.errors import ChainUnavailableError
    from wallets.smart import wallet_config_read

    config = wallet_config_read(client=client, wallet=wallet)
    if config is None:
        raise ChainUnavailableError("The wallet could not be read from the network; try again.")
    return config.nonce


def passkey_owner_options(*, user: Any, authenticator_id: int, client: ChainClient | None = None) -> OwnerOptions:
    """The challenge an owner passkey signs to add passkey ``authenticator_id`` as an owner of ``user``'s wallet.

    :raises NotFoundError: ``passkey_not_found``. :raises ConflictError: ``wallet_not_protected``,
        ``passkey_already_owner``. :raises ChainUnavailableError: the config could not be read.
    """
    from accounts.selectors import passkeys

    wallet, authenticator = _target(user=user, authenticator_id=authenticator_id)
    owners = protection.onchain_passkey_ids(wallet)
    nonce = _config_nonce(wallet, client or get_chain_client())
    expires_at = int((timezone.now() + timedelta(seconds=step_up_ttl_seconds())).timestamp())
    challenge = _challenge(wallet=wallet, public_key=_compressed(authenticator), nonce=nonce, expires_at=expires_at)
    return OwnerOptions(nonce=nonce, expires_at=expires_at, public_key={
        "challenge": b64u(challenge), "rpId": accounts_settings.WEBAUTHN_RP_ID,
        "timeout": step_up_ttl_seconds() * 1000, "userVerification": "required",
        "allowCredentials": [{"type": "public-key", "id": b64u(passkey.credential_id)}
                             for passkey in passkeys(user=user) if passkey.id in owners]})


def passkey_owner_add(*, user: Any, authenticator_id: int, credential: dict[str, Any], nonce: int, expires_at: int,
                      client: ChainClient | None = None) -> WalletProtection:
    """Verify an owner passkey's assertion over :func:`passkey_owner_options`' challenge and submit the addition.

    :param nonce: / :param expires_at: as the options gave them (they are part of the signed challenge).
    :raises ApplicationError: ``passkey_assertion_invalid``, ``passkey_unknown`` (not an owner passkey of this
        wallet), ``passkey_sign_count_regressed``; the relayer's refusals.
    :raises ConflictError: ``approval_challenge_expired``, ``approval_outdated`` (the config's nonce moved),
        and as :func:`passkey_owner_options`.
    """
    from relayer import outbox
    from wallets.lock_objects import wallet_qs_select_for_update

    from .protection import protection_sign_attempt

    client = client or get_chain_client()
    wallet, authenticator = _target(user=user, authenticator_id=authenticator_id)
    now = timezone.now()
    if not now.timestamp() < expires_at <= now.timestamp() + step_up_ttl_seconds():
        raise ConflictError("approval_challenge_expired", "This approval request expired; start the approval again.")
    if nonce != _config_nonce(wallet, client):
        raise ConflictError("approval_outdated", "Your wallet changed on the network since; start the approval again.")
    try:
        approver = passkey_rules.passkey_for_credential(user=user, credential_id=unb64u(credential["rawId"]))
        response = credential["response"]
    except (KeyError, TypeError, ValueError) as error:
        raise ApplicationError("passkey_assertion_invalid", "This is not a passkey assertion.") from error
    if approver is None or approver.pk not in protection.onchain_passkey_ids(wallet):
        raise ApplicationError("passkey_unknown", "Approve with a passkey that already protects your wallet.")
    public_key = _compressed(authenticator)
    blockhash = client.latest_blockhash()
    with transaction.atomic():
        wallet = wallet_qs_select_for_update().get(pk=wallet.pk)
        # removing a passkey takes this lock too (accounts.services.user_passkeys_remove): one removed meanwhile
        # must not become an owner on-chain
        _target(user=user, authenticator_id=authenticator_id)
        try:
            passkey_rules.verify_assertion(authenticator=approver, credential=credential, expected_challenge=_challenge(
                wallet=wallet, public_key=public_key, nonce=nonce, expires_at=expires_at))
        except passkey_rules.AssertionRefused as refused:
            if refused.reason == "sign_count":
                raise ApplicationError("passkey_sign_count_regressed", "This passkey's signature counter went "
                                       "backwards: it may have been copied.") from refused
            raise ApplicationError("passkey_assertion_invalid", "Your passkey's answer could not be verified.") \
                from refused
        addition = WalletProtection.objects.create(
            kind=WalletProtection.Kind.ADD_PASSKEY, wallet=wallet, authenticator=authenticator, public_key=public_key,
            approver=approver, approval_expires_at=datetime.fromtimestamp(expires_at, tz=UTC),
            authenticator_data=unb64u(response["authenticatorData"]), client_data_json=unb64u(response["clientDataJSON"]),
            signature_der=unb64u(response["signature"]),
            expires_at=min(now + timedelta(seconds=app_settings.submission_ttl_seconds()),
                           datetime.fromtimestamp(expires_at, tz=UTC)))
        attempt = protection_sign_attempt(protection=addition, blockhash=blockhash, number=1, reserve=True,
                                          client=client)
        addition.signature = attempt.signature
        addition.save(update_fields=["signature", "updated_at"])
        outbox.enqueue_send(outbox.get_kind("wallet_protect"), addition.id)
    return addition
