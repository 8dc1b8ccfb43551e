"""Taking an owner passkey off a protected wallet (issue 9 follow-up): "Remove this passkey from your wallet".

A passkey that owns the wallet on-chain keeps controlling it even after it is deleted from the account, so
:func:`accounts.services.user_passkeys_remove` refuses it (``passkey_owns_wallet``). This module takes it off the
chain first: a passkey-approved ``remove_authority`` of its key (docs/wallet-program.md "3 remove_authority",
"Passkey approvals"), approved by **any owner passkey of the user, another one or the passkey itself**:

- another owner passkey is what a person who lost a device uses (the lost passkey is never needed);
- the passkey itself is allowed too (someone retiring a device they still hold): its key already holds
  ``manage`` and the program would accept its approval of any manage action, so refusing it on the server would
  protect nothing, and the action only takes power away from that key.

Rules (checked here first, for clear errors; the chain checks them again):

- the wallet is protected and the passkey is an owner on-chain (``passkey_not_wallet_owner``);
- another owner passkey remains (``passkey_only_wallet_owner``; the program refuses removing the last live
  ``manage`` holder anyway, 6021): the only owner passkey is never removed here — when its device is lost, the
  wallet is recovered through the guardians (:mod:`recovery`), which replaces the owner after a timelock;
- no other owner change (addition or removal) is in flight (``wallet_change_pending``): each consumes the
  config's nonce, and two removals at once could otherwise, once the first landed, leave one owner fewer than
  either approver saw. Decided under the wallet's row lock;
- the joint threshold is left as it is: the program refuses 1, so the only lower value would be 0 (joint
  approval off), which with one owner left changes nothing (one passkey always spends within its own limits)
  and would silently switch the policy's "2 passkeys above Y" off for the next owner added.

1. :func:`passkey_removal_options`: the program's challenge (:func:`wallets.program.approval_challenge`) of the
   ``remove_authority``, with the config's nonce read now and a short expiry; request options listing the owner
   passkeys.
2. :func:`passkey_removal_submit`: verify the assertion over exactly that challenge, then sign (fee payer only)
   and submit ``[secp256r1 precompile, passkey-approved remove_authority]`` through the relayer's outbox
   (a :class:`~payments.models.WalletProtection` of kind ``remove_passkey``, outbox kind ``wallet_protect``:
   stored before it is sent, sent after commit, re-sent or renewed by the outbox, never two live attempts).
   The chain is the single-use guard: the nonce moves when it lands.
3. Once it landed the passkey is no longer an owner (:func:`payments.protection.onchain_passkey_ids`) and
   :func:`accounts.services.user_passkeys_remove` lets it be deleted from the account.
"""

from __future__ import annotations

import uuid
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
from wallets.program import PasskeyAssertion, WalletConfig, approval_challenge, approve_with_passkeys, remove_authority
from wallets.program.instructions import KIND_SECP256R1, PERMISSION_MANAGE

from . import app_settings, protection
from .approvals import b64u, step_up_ttl_seconds, unb64u
from .models import WalletProtection
from .passkey_owners import OwnerOptions, _compressed


def removal_action(*, wallet: Any, public_key: bytes) -> Instruction:
    """The ``remove_authority`` (signer form) of the passkey ``public_key`` (33-byte compressed P-256)."""
    from wallets.smart import wallet_program_id

    custody = Pubkey.from_string(wallet.signing_address)
    return remove_authority(wallet_program_id(), custody, custody, public_key)


def _challenge(*, wallet: Any, public_key: bytes, nonce: int, expires_at: int) -> bytes:
    from wallets.smart import wallet_program_id

    return approval_challenge(wallet_program_id(), Pubkey.from_string(wallet.config_address), nonce, expires_at,
                              removal_action(wallet=wallet, public_key=public_key))


def removal_instructions(removal: WalletProtection) -> list[Instruction]:
    """``[secp256r1 precompile, passkey-approved remove_authority]`` of a stored removal (re-built per attempt)."""
    assertion = PasskeyAssertion(public_key=_compressed(removal.approver),
                                 authenticator_data=bytes(removal.authenticator_data),
                                 client_data_json=bytes(removal.client_data_json),
                                 signature=bytes(removal.signature_der))
    return approve_with_passkeys(removal_action(wallet=removal.wallet, public_key=bytes(removal.public_key)),
                                 [assertion], expires_at=int(removal.approval_expires_at.timestamp()))


def _target(*, user: Any, authenticator_id: int) -> tuple[Any, Any]:
    """``(wallet, the owner passkey to take off)``, by the DB's record of the chain.

    :raises NotFoundError: ``passkey_not_found``. :raises ConflictError: ``wallet_not_protected``,
        ``wallet_change_pending``, ``passkey_not_wallet_owner``, ``passkey_only_wallet_owner``.
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
    if WalletProtection.objects.filter(wallet=wallet,
                                       status__in=WalletProtection.CHANGE_PENDING_STATUSES).exists():
        raise ConflictError("wallet_change_pending")
    owners = protection.onchain_passkey_ids(wallet)
    if authenticator.pk not in owners:
        raise ConflictError("passkey_not_wallet_owner")
    if not owners - {authenticator.pk}:
        raise ConflictError("passkey_only_wallet_owner")
    return wallet, authenticator


def _config(wallet: Any, client: ChainClient) -> WalletConfig:
    from numpay.core.errors import ChainUnavailableError
    from wallets.smart import wallet_config_read

    config = wallet_config_read(client=client, wallet=wallet)
    if config is None:
        raise ChainUnavailableError("The wallet could not be read from the network; try again.")
    return config


def _check_chain(config: WalletConfig, public_key: bytes) -> None:
    """The chain agrees: the key is a kind-2 owner and another live ``manage`` authority remains (what the program
    checks, 6028 / 6021; live = not expired by the server's clock, the program's Clock may differ by seconds).

    :raises ConflictError: ``passkey_not_wallet_owner``, ``passkey_only_wallet_owner``.
    """
    entry = config.authority(public_key)
    if entry is None or entry.kind != KIND_SECP256R1 or not entry.permissions & PERMISSION_MANAGE:
        raise ConflictError("passkey_not_wallet_owner")
    now = int(timezone.now().timestamp())
    if not any(other.key != public_key and other.permissions & PERMISSION_MANAGE
               and (other.expires_at == 0 or other.expires_at > now) for other in config.authorities):
        raise ConflictError("passkey_only_wallet_owner")


def passkey_removal_options(*, user: Any, authenticator_id: int, client: ChainClient | None = None) -> OwnerOptions:
    """The challenge an owner passkey signs to take passkey ``authenticator_id`` off ``user``'s wallet.

    :returns: request options (``allowCredentials``: the wallet's owner passkeys, the other ones first), the
        config's nonce and the expiry (UNIX seconds) bound into the challenge.
    :raises NotFoundError: ``passkey_not_found``. :raises ConflictError: ``wallet_not_protected``,
        ``wallet_change_pending``, ``passkey_not_wallet_owner``, ``passkey_only_wallet_owner``.
    :raises ChainUnavailableError: the config could not be read.
    """
    from accounts.selectors import passkeys

    wallet, authenticator = _target(user=user, authenticator_id=authenticator_id)
    public_key = _compressed(authenticator)
    config = _config(wallet, client or get_chain_client())
    _check_chain(config, public_key)
    owners = protection.onchain_passkey_ids(wallet)
    expires_at = int((timezone.now() + timedelta(seconds=step_up_ttl_seconds())).timestamp())
    challenge = _challenge(wallet=wallet, public_key=public_key, nonce=config.nonce, expires_at=expires_at)
    approvers = sorted((passkey for passkey in passkeys(user=user) if passkey.id in owners),
                       key=lambda passkey: passkey.id == authenticator.pk)
    return OwnerOptions(nonce=config.nonce, expires_at=expires_at, public_key={
        "challenge": b64u(challenge), "rpId": accounts_settings.WEBAUTHN_RP_ID,
        "timeout": step_up_ttl_seconds() * 1000, "userVerification": "required",
        "allowCredentials": [{"type": "public-key", "id": b64u(passkey.credential_id),
                              **({"transports": list(passkey.transports)} if passkey.transports else {})}
                             for passkey in approvers]})


def passkey_removal_submit(*, user: Any, authenticator_id: int, credential: dict[str, Any], nonce: int,
                           expires_at: int, client: ChainClient | None = None) -> WalletProtection:
    """Verify an owner passkey's assertion over :func:`passkey_removal_options`' challenge and submit the removal.

    :param credential: ``PublicKeyCredential.toJSON()`` of the assertion.
    :param nonce: / :param expires_at: as the options gave them (they are part of the signed challenge).
    :returns: the :class:`~payments.models.WalletProtection` (kind ``remove_passkey``, status ``signed``).
    :raises ApplicationError: ``passkey_assertion_invalid``, ``passkey_unknown`` (not an owner passkey of this
        user's wallet), ``passkey_sign_count_regressed``; the relayer's refusals.
    :raises ConflictError: ``approval_challenge_expired``, ``approval_outdated`` (the config's nonce moved), and as
        :func:`passkey_removal_options`.
    """
    from relayer import outbox
    from wallets.lock_objects import wallet_qs_select_for_update

    from .protection import protection_sign_attempt

    client = client or get_chain_client()
    wallet, authenticator = _target(user=user, authenticator_id=authenticator_id)
    now = timezone.now()
    if not now.timestamp() < expires_at <= now.timestamp() + step_up_ttl_seconds():
        raise ConflictError("approval_challenge_expired", "This approval request expired; start the approval again.")
    public_key = _compressed(authenticator)
    config = _config(wallet, client)
    if nonce != config.nonce:
        raise ConflictError("approval_outdated", "Your wallet changed on the network since; start the approval again.")
    _check_chain(config, public_key)
    try:
        approver = passkey_rules.passkey_for_credential(user=user, credential_id=unb64u(credential["rawId"]))
        response = credential["response"]
        signed = (unb64u(response["authenticatorData"]), unb64u(response["clientDataJSON"]),
                  unb64u(response["signature"]))
    except (KeyError, TypeError, ValueError) as error:
        raise ApplicationError("passkey_assertion_invalid", "This is not a passkey assertion.") from error
    blockhash = client.latest_blockhash()
    with transaction.atomic():
        wallet = wallet_qs_select_for_update().get(pk=wallet.pk)
        # re-decided under the wallet's lock: another removal or addition committed meanwhile is seen here
        # (wallet_change_pending), and the passkey cannot be deleted from the account meanwhile
        wallet, authenticator = _target(user=user, authenticator_id=authenticator_id)
        if approver is None or approver.pk not in protection.onchain_passkey_ids(wallet):
            raise ApplicationError("passkey_unknown", "Approve with a passkey that owns your wallet.")
        try:
            passkey_rules.verify_assertion(authenticator=approver, credential=credential, expected_challenge=_challenge(
                wallet=wallet, public_key=public_key, nonce=nonce, expires_at=expires_at))
        except passkey_rules.AssertionRefused as refused:
            if refused.reason == "sign_count":
                raise ApplicationError("passkey_sign_count_regressed", "This passkey's signature counter went "
                                       "backwards: it may have been copied.") from refused
            raise ApplicationError("passkey_assertion_invalid", "Your passkey's answer could not be verified.") \
                from refused
        authenticator_data, client_data_json, signature_der = signed
        removal = WalletProtection.objects.create(
            kind=WalletProtection.Kind.REMOVE_PASSKEY, wallet=wallet, authenticator=authenticator,
            public_key=public_key, approver=approver, approval_expires_at=datetime.fromtimestamp(expires_at, tz=UTC),
            authenticator_data=authenticator_data, client_data_json=client_data_json, signature_der=signature_der,
            expires_at=min(now + timedelta(seconds=app_settings.submission_ttl_seconds()),
                           datetime.fromtimestamp(expires_at, tz=UTC)))
        attempt = protection_sign_attempt(protection=removal, blockhash=blockhash, number=1, reserve=True,
                                          client=client)
        removal.signature = attempt.signature
        removal.save(update_fields=["signature", "updated_at"])
        outbox.enqueue_send(outbox.get_kind("wallet_protect"), removal.id)
    return removal


def passkey_removal_get(*, user: Any, removal_id: uuid.UUID | str) -> WalletProtection:
    """One of ``user``'s passkey removals (for its status: ``signed``, ``submitted``, ``confirmed``, ``failed``,
    ``expired``; ``error_message`` says why in plain words when it did not land).

    :raises NotFoundError: ``passkey_removal_not_found`` (none, or another user's).
    """
    removal = WalletProtection.objects.filter(pk=removal_id, wallet__user=user,
                                              kind=WalletProtection.Kind.REMOVE_PASSKEY).first()
    if removal is None:
        raise NotFoundError("passkey_removal_not_found")
    return removal
