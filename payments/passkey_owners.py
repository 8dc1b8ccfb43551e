"""A further passkey as an owner of a protected wallet (issue 9 item 5, on-chain side).

Once a wallet is protected (:mod:`payments.protection`) the custody key can no longer manage it: adding another
passkey as an owner is a passkey-approved ``add_authority`` (docs/wallet-program.md "Passkey approvals"), approved
by a passkey the config already holds. With two owner passkeys, the policy's "2 passkeys above Y" is checked
on-chain too: the config's joint threshold (2) lets two distinct owners approving one ``execute`` together go
above each one's own limit, and one alone cannot.

1. :func:`passkey_owner_options`: the wallet program's challenges (:func:`wallets.program.approval_challenge`) of
   the ``add_authority`` of the new passkey and of each ``set_limits`` giving it the first passkey's limits
   (:mod:`payments.passkey_limits`), at the config's nonce read now, ``+1``, ...; a short expiry; request options
   listing the owner passkeys.
2. :func:`passkey_owner_add`: verify every assertion (:func:`accounts.passkeys.verify_assertion`), all by one owner
   passkey, each over exactly its challenge, then sign (fee payer only) and submit ``[secp256r1 precompile,
   passkey-approved action]`` pairs through the outbox (a :class:`~payments.models.WalletProtection` of kind
   ``add_passkey``; what does not fit its transaction continues in ``passkey_limits`` rows held until it landed).
   The chain is the single-use guard: the nonce moves with each approved action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from solders.instruction import Instruction
from solders.pubkey import Pubkey

from numpay.core.errors import ConflictError, NotFoundError
from numpay.core.solana import ChainClient, get_chain_client
from wallets.program import Authority, Limit, add_authority, approval_challenge
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND

from . import protection
from .approvals import step_up_ttl_seconds
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
    """``[secp256r1 precompile, passkey-approved add_authority]`` of a stored addition, then the ``set_limits`` its
    transaction carries, each with its own precompile (re-built for each attempt:
    :func:`payments.passkey_limits.row_instructions`)."""
    from .passkey_limits import row_instructions

    return row_instructions(addition)


@dataclass(frozen=True)
class OwnerOptions:
    """:ivar public_key: WebAuthn request options (JSON form) of the first approval. :ivar nonce: the config's nonce
    in the first challenge. :ivar expires_at: the approval's expiry, UNIX seconds (also in the challenge).
    :ivar approvals: request options of every approval the change needs, in order (the first is ``public_key``;
    challenge ``i`` is at ``nonce + i``): the addition's ``add_authority``, then one ``set_limits`` per mint
    (:mod:`payments.passkey_limits`)."""

    public_key: dict[str, Any]
    nonce: int
    expires_at: int
    approvals: list[dict[str, Any]] = field(default_factory=list)


def _target(*, user: Any, authenticator_id: int) -> tuple[Any, Any]:
    """``(wallet, the passkey to add)``.

    :raises NotFoundError: ``passkey_not_found``. :raises ConflictError: ``wallet_not_protected``,
        ``passkey_already_owner``, ``passkey_removed_from_wallet`` (taken off the wallet once,
        :mod:`payments.passkey_removals`: never an owner again), ``wallet_change_pending`` (another owner change
        in flight or held).
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
    if WalletProtection.objects.filter(wallet=wallet, authenticator=authenticator, status__in=(
            *WalletProtection.CHANGE_PENDING_STATUSES, WalletProtection.Status.CONFIRMED)).exists():
        raise ConflictError("passkey_already_owner", "This passkey already is (or is becoming) an owner of your "
                            "wallet.")
    # each owner change consumes the config's nonce: one at a time (its held follow-ups included)
    if WalletProtection.objects.filter(wallet=wallet,
                                       status__in=WalletProtection.CHANGE_PENDING_STATUSES).exists():
        raise ConflictError("wallet_change_pending")
    return wallet, authenticator


def _config_nonce(wallet: Any, client: ChainClient) -> int:
    from numpay.core.errors import ChainUnavailableError
    from wallets.smart import wallet_config_read

    config = wallet_config_read(client=client, wallet=wallet)
    if config is None:
        raise ChainUnavailableError("The wallet could not be read from the network; try again.")
    return config.nonce


def _addition_plan(*, wallet: Any, public_key: bytes) -> tuple[list[tuple[str, Limit | None]], list[Instruction]]:
    """The addition's approved actions in order: its ``add_authority``, then the first passkey's limits for it
    (:func:`payments.passkey_limits.wanted_limits`, one ``set_limits`` per mint)."""
    from .passkey_limits import limit_action, wanted_limits

    limits = wanted_limits(wallet=wallet)
    kinds: list[tuple[str, Limit | None]] = [("add_authority", None), *(("set_limits", limit) for limit in limits)]
    actions = [addition_action(wallet=wallet, public_key=public_key),
               *(limit_action(wallet=wallet, public_key=public_key, limit=limit) for limit in limits)]
    return kinds, actions


def passkey_owner_options(*, user: Any, authenticator_id: int, client: ChainClient | None = None) -> OwnerOptions:
    """The challenges an owner passkey signs to add passkey ``authenticator_id`` as an owner of ``user``'s wallet
    with the first passkey's limits: ``add_authority`` at the config's nonce, each ``set_limits`` at the next ones.

    :raises NotFoundError: ``passkey_not_found``. :raises ConflictError: ``wallet_not_protected``,
        ``passkey_already_owner``, ``wallet_change_pending``. :raises ChainUnavailableError: the config could not
        be read.
    """
    from .passkey_limits import challenges, request_options

    wallet, authenticator = _target(user=user, authenticator_id=authenticator_id)
    nonce = _config_nonce(wallet, client or get_chain_client())
    expires_at = int((timezone.now() + timedelta(seconds=step_up_ttl_seconds())).timestamp())
    _, actions = _addition_plan(wallet=wallet, public_key=_compressed(authenticator))
    approvals = request_options(user=user, wallet=wallet, challenge_list=challenges(
        wallet=wallet, actions=actions, nonce=nonce, expires_at=expires_at))
    return OwnerOptions(nonce=nonce, expires_at=expires_at, public_key=approvals[0], approvals=approvals)


def passkey_owner_add(*, user: Any, authenticator_id: int, credentials: list[dict[str, Any]], nonce: int,
                      expires_at: int, client: ChainClient | None = None) -> WalletProtection:
    """Verify an owner passkey's assertions over :func:`passkey_owner_options`' challenges (one per approval, in
    order, all by the same owner passkey) and submit the addition with its limits (the ``add_passkey`` row; when
    the chain does not fit one transaction, ``passkey_limits`` rows held behind it: :mod:`payments.passkey_limits`).
    Nothing is stored or signed unless every approval verifies.

    :param credentials: ``PublicKeyCredential.toJSON()`` of each assertion, in the options' order.
    :param nonce: / :param expires_at: as the options gave them (they are part of the signed challenges).
    :raises ApplicationError: ``passkey_assertion_invalid`` (one missing, extra, or over another challenge),
        ``passkey_unknown`` (not an owner passkey of this wallet), ``passkey_sign_count_regressed``; the relayer's
        refusals.
    :raises ConflictError: ``approval_challenge_expired``, ``approval_outdated`` (the config's nonce moved),
        and as :func:`passkey_owner_options`.
    """
    from wallets.lock_objects import wallet_qs_select_for_update

    from .passkey_limits import approver_for, challenges, store_chain, verify_all

    client = client or get_chain_client()
    wallet, authenticator = _target(user=user, authenticator_id=authenticator_id)
    now = timezone.now()
    if not now.timestamp() < expires_at <= now.timestamp() + step_up_ttl_seconds():
        raise ConflictError("approval_challenge_expired", "This approval request expired; start the approval again.")
    if nonce != _config_nonce(wallet, client):
        raise ConflictError("approval_outdated", "Your wallet changed on the network since; start the approval again.")
    approver = approver_for(user=user, wallet=wallet, credentials=credentials)
    public_key = _compressed(authenticator)
    with transaction.atomic():
        wallet = wallet_qs_select_for_update().get(pk=wallet.pk)
        # removing a passkey takes this lock too (accounts.services.user_passkeys_remove): one removed meanwhile
        # must not become an owner on-chain
        _target(user=user, authenticator_id=authenticator_id)
        kinds, actions = _addition_plan(wallet=wallet, public_key=public_key)
        approvals = verify_all(approver=approver, credentials=credentials, challenge_list=challenges(
            wallet=wallet, actions=actions, nonce=nonce, expires_at=expires_at))
        return store_chain(kind=WalletProtection.Kind.ADD_PASSKEY, wallet=wallet, authenticator=authenticator,
                           public_key=public_key, approver=approver, kinds=kinds, actions=actions,
                           approvals=approvals, expires_at=expires_at, client=client)
