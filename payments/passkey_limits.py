"""On-chain limits of a further owner passkey (protected mode: spending is deny-by-default per authority and mint,
docs/wallet-program.md "Protected mode", "Limits").

The switch to protected mode (:mod:`payments.protection`) writes the first passkey's limits with the custody key.
A passkey made an owner later (:mod:`payments.passkey_owners`) is written by an owner passkey's approval, and
without limits it could only approve jointly with another owner: once the first passkey is taken off
(:mod:`payments.passkey_removals`) the wallet could pay nothing above the custody key's caps. So every owner
passkey gets **the same limits as the first one** (:func:`wanted_limits`: :func:`payments.protection._limits_json`'s
``passkey`` caps, from the same policy and settings), as passkey-approved ``set_limits`` (one per mint: the
program's ``set_limits`` carries one limit).

**Several approved actions.** The program bumps the config's nonce after each passkey-approved action, and each
one carries its own approvals over its own challenge (docs/wallet-program.md "Passkey approvals"). A chain of
``k`` actions (``add_authority`` and then ``set_limits``..., or only ``set_limits`` for an owner that has none) is
approved by ``k`` ceremonies of the same owner passkey, challenge ``i`` at ``nonce + i`` ("Approve i of k" on the
page). The server verifies all of them before anything is stored or sent, then packs the actions in order into as
few transactions as fit in 1,232 bytes (:func:`pack`): each is a :class:`~payments.models.WalletProtection` row
whose ``limits`` JSON holds ``{"step": n, "actions": [...]}`` (each action with its approval), signed at once;
the first is submitted, each later one is ``held`` until the one before landed (``on_landed`` of the outbox kind
``wallet_protect``, in the same DB transaction that records the landing: :func:`release_next`), and failed with the
reason when the one before did not land (:func:`fail_held`). Nothing is sent partially: a held row is never sent
before its predecessor landed, and on-chain its challenges are bound to the nonces after its predecessor's.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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
from wallets.program import Limit, PasskeyAssertion, WalletConfig, approval_challenge, approve_with_passkeys, set_limits

from . import app_settings, protection
from .approvals import b64u, step_up_ttl_seconds, unb64u
from .models import WalletProtection

#: The most bytes one Solana transaction may have (packet data size).
TRANSACTION_SIZE_LIMIT = 1232
#: The signatures of a passkey-approved owner change: the fee payer's only.
_SIGNATURES = 1


def wanted_limits(*, wallet: Any) -> list[Limit]:
    """The limits an owner passkey of ``wallet`` gets on-chain: exactly the first passkey's, as the switch writes
    them (:func:`payments.protection._limits_json` ``passkey`` caps for every active token, from the user's
    spending policy rules; a token whose caps are both 0 gets none), in the tokens' order.

    :returns: one :class:`wallets.program.Limit` per mint (base units; period seconds).
    """
    from wallets.selectors import tokens_active

    result = []
    for entry in protection._limits_json(user=wallet.user, tokens=list(tokens_active())).values():
        per_transaction, period, seconds = entry["passkey"]
        if per_transaction or period:
            result.append(Limit(Pubkey.from_string(entry["mint"]), per_transaction, period, seconds))
    return result


def missing_limits(*, wallet: Any, config: WalletConfig, public_key: bytes) -> list[Limit]:
    """The :func:`wanted_limits` the config does not hold as they are for ``public_key`` (none: all in place)."""
    missing = []
    for limit in wanted_limits(wallet=wallet):
        held = config.limit(public_key, limit.mint)
        if held is None or (held.per_transaction_cap, held.period_cap, held.period_seconds) != (
                limit.per_transaction_cap, limit.period_cap, limit.period_seconds):
            missing.append(limit)
    return missing


def limit_action(*, wallet: Any, public_key: bytes, limit: Limit) -> Instruction:
    """The ``set_limits`` (signer form) of ``limit`` for the passkey ``public_key`` (33-byte compressed P-256)."""
    from wallets.smart import wallet_program_id

    custody = Pubkey.from_string(wallet.signing_address)
    return set_limits(wallet_program_id(), custody, custody, public_key, limit)


def challenges(*, wallet: Any, actions: Sequence[Instruction], nonce: int, expires_at: int) -> list[bytes]:
    """The challenge of each action, action ``i`` at ``nonce + i`` (the program bumps the nonce per approved one)."""
    from wallets.smart import wallet_program_id

    config = Pubkey.from_string(wallet.config_address)
    return [approval_challenge(wallet_program_id(), config, nonce + index, expires_at, action)
            for index, action in enumerate(actions)]


def request_options(*, user: Any, wallet: Any, challenge_list: Sequence[bytes],
                    first: Any | None = None) -> list[dict[str, Any]]:
    """WebAuthn request options (JSON form) for each challenge, listing ``user``'s owner passkeys (``first``'s
    id, when given, last: the passkey being changed is the least expected approver)."""
    from accounts.selectors import passkeys

    owners = protection.onchain_passkey_ids(wallet)
    approvers = sorted((passkey for passkey in passkeys(user=user) if passkey.id in owners),
                       key=lambda passkey: first is not None and passkey.id == first.pk)
    allow = [{"type": "public-key", "id": b64u(passkey.credential_id),
              **({"transports": list(passkey.transports)} if passkey.transports else {})} for passkey in approvers]
    return [{"challenge": b64u(challenge), "rpId": accounts_settings.WEBAUTHN_RP_ID,
             "timeout": step_up_ttl_seconds() * 1000, "userVerification": "required", "allowCredentials": allow}
            for challenge in challenge_list]


@dataclass(frozen=True)
class Approval:
    """One verified assertion's bytes, as carried on-chain."""

    authenticator_data: bytes
    client_data_json: bytes
    signature_der: bytes

    def as_json(self) -> dict[str, str]:
        return {"authenticator_data": b64u(self.authenticator_data), "client_data_json": b64u(self.client_data_json),
                "signature_der": b64u(self.signature_der)}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Approval:
        return cls(unb64u(data["authenticator_data"]), unb64u(data["client_data_json"]), unb64u(data["signature_der"]))


def approver_for(*, user: Any, wallet: Any, credentials: Sequence[dict[str, Any]]) -> Any:
    """The one owner passkey of ``user`` that made every assertion of ``credentials``.

    :raises ApplicationError: ``passkey_assertion_invalid`` (not assertions, or by several passkeys),
        ``passkey_unknown`` (not an owner passkey of ``user``'s wallet: another user's, or not an owner).
    """
    try:
        ids = {unb64u(credential["rawId"]) for credential in credentials}
    except (KeyError, TypeError, ValueError) as error:
        raise ApplicationError("passkey_assertion_invalid", "This is not a passkey assertion.") from error
    if len(ids) != 1:
        raise ApplicationError("passkey_assertion_invalid", "Approve every step with the same passkey.")
    approver = passkey_rules.passkey_for_credential(user=user, credential_id=ids.pop())
    if approver is None or approver.pk not in protection.onchain_passkey_ids(wallet):
        raise ApplicationError("passkey_unknown", "Approve with a passkey that already protects your wallet.")
    return approver


def verify_all(*, approver: Any, credentials: Sequence[dict[str, Any]], challenge_list: Sequence[bytes]) \
        -> list[Approval]:
    """Verify assertion ``i`` over challenge ``i`` (in order; each advances the passkey's counter). Call inside the
    caller's transaction, under the wallet's lock: a refusal rolls every counter back.

    :raises ApplicationError: ``passkey_assertion_invalid`` (a missing or extra one, or one over another
        challenge), ``passkey_sign_count_regressed``.
    """
    if len(credentials) != len(challenge_list):
        raise ApplicationError("passkey_assertion_invalid", f"This change needs {len(challenge_list)} approvals; "
                               f"{len(credentials)} came.")
    result = []
    for credential, challenge in zip(credentials, challenge_list, strict=True):
        try:
            passkey_rules.verify_assertion(authenticator=approver, credential=credential, expected_challenge=challenge)
            response = credential["response"]
            result.append(Approval(unb64u(response["authenticatorData"]), unb64u(response["clientDataJSON"]),
                                   unb64u(response["signature"])))
        except passkey_rules.AssertionRefused as refused:
            if refused.reason == "sign_count":
                raise ApplicationError("passkey_sign_count_regressed", "This passkey's signature counter went "
                                       "backwards: it may have been copied.") from refused
            raise ApplicationError("passkey_assertion_invalid", "Your passkey's answer could not be verified.") \
                from refused
        except (KeyError, TypeError, ValueError) as error:
            raise ApplicationError("passkey_assertion_invalid", "This is not a passkey assertion.") from error
    return result


def approved_instructions(*, actions: Sequence[Instruction], approvals: Sequence[Approval], approver_key: bytes,
                          expires_at: int) -> list[Instruction]:
    """``[secp256r1 precompile, passkey-approved action]`` for each action, in order (each precompile index is its
    own position in this list: the transaction has nothing in front)."""
    instructions: list[Instruction] = []
    for action, approval in zip(actions, approvals, strict=True):
        assertion = PasskeyAssertion(public_key=approver_key, authenticator_data=approval.authenticator_data,
                                     client_data_json=approval.client_data_json, signature=approval.signature_der)
        instructions += approve_with_passkeys(action, [assertion], expires_at=expires_at,
                                              precompile_index=len(instructions))
    return instructions


def transaction_size(instructions: Sequence[Instruction]) -> int:
    """The bytes of a transaction of ``instructions`` paid by the relayer's fee payer (its signature only)."""
    from solders.hash import Hash

    from numpay.core.transactions import compile_message
    from relayer import services as relayer

    message = compile_message(instructions=list(instructions), fee_payer=relayer.fee_payer_pubkey(),
                              blockhash=Hash.default())
    return 1 + 64 * _SIGNATURES + len(bytes(message))


def pack(*, actions: Sequence[Instruction], approvals: Sequence[Approval], approver_key: bytes,
         expires_at: int) -> list[int]:
    """How many actions (in order) each transaction carries: as many as fit in :data:`TRANSACTION_SIZE_LIMIT`.

    :raises ValueError: one action alone does not fit.
    """
    counts: list[int] = []
    start = 0
    while start < len(actions):
        count = 0
        while start + count < len(actions) and transaction_size(approved_instructions(
                actions=actions[start:start + count + 1], approvals=approvals[start:start + count + 1],
                approver_key=approver_key, expires_at=expires_at)) <= TRANSACTION_SIZE_LIMIT:
            count += 1
        if count == 0:
            raise ValueError("one passkey-approved action does not fit in a transaction")
        counts.append(count)
        start += count
    return counts


def encode_actions(*, kinds: Sequence[tuple[str, Limit | None]], approvals: Sequence[Approval]) -> list[dict[str, Any]]:
    """The ``actions`` of a row's ``limits`` JSON: ``{"action": "add_authority"}`` or ``{"action": "set_limits",
    "mint": ..., "limit": [per_transaction, period, seconds]}``, each with its ``approval``."""
    result = []
    for (name, limit), approval in zip(kinds, approvals, strict=True):
        entry: dict[str, Any] = {"action": name, "approval": approval.as_json()}
        if limit is not None:
            entry.update(mint=str(limit.mint), limit=[limit.per_transaction_cap, limit.period_cap,
                                                      limit.period_seconds])
        result.append(entry)
    return result


def row_instructions(row: WalletProtection) -> list[Instruction]:
    """The instructions of a stored ``add_passkey`` / ``passkey_limits`` row (re-built for each attempt): its
    actions, each with its approval, in order. A row without ``actions`` (an addition stored before limits were
    carried) is its ``add_authority`` alone, with the row's own approval fields."""
    from .passkey_owners import _compressed, addition_action

    approver_key = _compressed(row.approver)
    expires_at = int(row.approval_expires_at.timestamp())
    entries = (row.limits or {}).get("actions")
    if not entries:
        entries = [{"action": "add_authority", "approval": Approval(
            bytes(row.authenticator_data), bytes(row.client_data_json), bytes(row.signature_der)).as_json()}]
    actions, approvals = [], []
    for entry in entries:
        if entry["action"] == "add_authority":
            actions.append(addition_action(wallet=row.wallet, public_key=bytes(row.public_key)))
        else:
            per_transaction, period, seconds = entry["limit"]
            actions.append(limit_action(wallet=row.wallet, public_key=bytes(row.public_key), limit=Limit(
                Pubkey.from_string(entry["mint"]), per_transaction, period, seconds)))
        approvals.append(Approval.from_json(entry["approval"]))
    return approved_instructions(actions=actions, approvals=approvals, approver_key=approver_key,
                                 expires_at=expires_at)


def store_chain(*, kind: str, wallet: Any, authenticator: Any, public_key: bytes, approver: Any,
                kinds: Sequence[tuple[str, Limit | None]], actions: Sequence[Instruction],
                approvals: Sequence[Approval], expires_at: int, client: ChainClient) -> WalletProtection:
    """Store, sign and submit a verified chain of approved actions (call in a transaction holding the wallet's
    lock): the first row of kind ``kind`` (its first transaction), the others ``passkey_limits`` rows ``held``
    until the one before landed. Every row is signed now (a held one renewed by the outbox if its blockhash
    expired meanwhile). :returns: the first row."""
    from relayer import outbox

    from .passkey_owners import _compressed
    from .protection import protection_sign_attempt

    approver_key = _compressed(approver)
    counts = pack(actions=actions, approvals=approvals, approver_key=approver_key, expires_at=expires_at)
    now = timezone.now()
    approval_expiry = datetime.fromtimestamp(expires_at, tz=UTC)
    first_row = None
    start = 0
    chain = str(uuid.uuid4())
    blockhash = client.latest_blockhash()
    for step, count in enumerate(counts):
        entries = encode_actions(kinds=kinds[start:start + count], approvals=approvals[start:start + count])
        head = approvals[start]
        row = WalletProtection.objects.create(
            kind=kind if step == 0 else WalletProtection.Kind.PASSKEY_LIMITS, wallet=wallet,
            authenticator=authenticator, public_key=public_key, approver=approver, approval_expires_at=approval_expiry,
            authenticator_data=head.authenticator_data, client_data_json=head.client_data_json,
            signature_der=head.signature_der, limits={"chain": chain, "step": step, "actions": entries},
            status=WalletProtection.Status.SIGNED if step == 0 else WalletProtection.Status.HELD,
            expires_at=min(now + timedelta(seconds=app_settings.submission_ttl_seconds() * (step + 1)),
                           approval_expiry))
        attempt = protection_sign_attempt(protection=row, blockhash=blockhash, number=1, reserve=True, client=client)
        row.signature = attempt.signature
        row.save(update_fields=["signature", "updated_at"])
        if step == 0:
            first_row = row
            outbox.enqueue_send(outbox.get_kind("wallet_protect"), row.id)
        start += count
    assert first_row is not None  # noqa: S101  (counts is never empty: at least one action)
    return first_row


def release_next(landed: WalletProtection) -> None:
    """``landed`` landed: submit the wallet's next held row, if any (inside the outbox's transaction that records
    the landing; the send runs after commit)."""
    from relayer import outbox

    following = (WalletProtection.objects.select_for_update().filter(wallet_id=landed.wallet_id,
                                                                     status=WalletProtection.Status.HELD)
                 .order_by("created_at").first())
    if following is None:
        return
    following.status = WalletProtection.Status.SIGNED
    following.save(update_fields=["status", "updated_at"])
    outbox.enqueue_send(outbox.get_kind("wallet_protect"), following.id)


def fail_held(ended: WalletProtection) -> None:
    """``ended`` did not land: its held followers never will (their challenges are bound to the nonces after it);
    they fail with the reason, and their sponsorship reservations are released."""
    from relayer import services as relayer

    for held in WalletProtection.objects.select_for_update().filter(wallet_id=ended.wallet_id,
                                                                   status=WalletProtection.Status.HELD):
        held.status = WalletProtection.Status.FAILED
        held.error_message = "The change before it did not reach the network, so this one was not sent."
        held.save(update_fields=["status", "error_message", "updated_at"])
        relayer.sponsorship_release(reference=held.id)


# --- "Let this passkey approve payments on its own": limits for an owner passkey that has none ---

@dataclass(frozen=True)
class LimitsOptions:
    """:ivar approvals: WebAuthn request options (JSON form), one per ``set_limits``, in order ("Approve i of n").
    :ivar nonce: the config's nonce of the first challenge (challenge ``i`` is at ``nonce + i``).
    :ivar expires_at: the approvals' expiry, UNIX seconds (in every challenge)."""

    approvals: list[dict[str, Any]]
    nonce: int
    expires_at: int


def _owner_target(*, user: Any, authenticator_id: int) -> tuple[Any, Any]:
    """``(wallet, the owner passkey that gets limits)``.

    :raises NotFoundError: ``passkey_not_found``. :raises ConflictError: ``wallet_not_protected``,
        ``wallet_change_pending``, ``passkey_not_wallet_owner``.
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
    if WalletProtection.objects.filter(wallet=wallet, status__in=WalletProtection.CHANGE_PENDING_STATUSES).exists():
        raise ConflictError("wallet_change_pending")
    if authenticator.pk not in protection.onchain_passkey_ids(wallet):
        raise ConflictError("passkey_not_wallet_owner")
    return wallet, authenticator


def _config(wallet: Any, client: ChainClient) -> WalletConfig:
    from numpay.core.errors import ChainUnavailableError
    from wallets.smart import wallet_config_read

    config = wallet_config_read(client=client, wallet=wallet)
    if config is None:
        raise ChainUnavailableError("The wallet could not be read from the network; try again.")
    return config


def _limits_plan(wallet: Any, authenticator: Any, config: WalletConfig) -> tuple[bytes, list[Limit]]:
    from .passkey_owners import _compressed

    public_key = _compressed(authenticator)
    missing = missing_limits(wallet=wallet, config=config, public_key=public_key)
    if not missing:
        raise ConflictError("passkey_limits_in_place")
    return public_key, missing


def passkey_limits_options(*, user: Any, authenticator_id: int, client: ChainClient | None = None) -> LimitsOptions:
    """The challenges an owner passkey signs to give owner passkey ``authenticator_id`` the first passkey's limits
    (one ``set_limits`` per mint it lacks, challenge ``i`` at the config's nonce ``+ i``).

    :raises NotFoundError: ``passkey_not_found``. :raises ConflictError: ``wallet_not_protected``,
        ``wallet_change_pending``, ``passkey_not_wallet_owner``, ``passkey_limits_in_place`` (nothing to write).
    :raises ChainUnavailableError: the config could not be read.
    """
    wallet, authenticator = _owner_target(user=user, authenticator_id=authenticator_id)
    config = _config(wallet, client or get_chain_client())
    public_key, missing = _limits_plan(wallet, authenticator, config)
    expires_at = int((timezone.now() + timedelta(seconds=step_up_ttl_seconds())).timestamp())
    actions = [limit_action(wallet=wallet, public_key=public_key, limit=limit) for limit in missing]
    return LimitsOptions(nonce=config.nonce, expires_at=expires_at, approvals=request_options(
        user=user, wallet=wallet, challenge_list=challenges(wallet=wallet, actions=actions, nonce=config.nonce,
                                                            expires_at=expires_at)))


def passkey_limits_submit(*, user: Any, authenticator_id: int, credentials: Sequence[dict[str, Any]], nonce: int,
                          expires_at: int, client: ChainClient | None = None) -> WalletProtection:
    """Verify every assertion (``i`` over :func:`passkey_limits_options`' challenge ``i``, all by one owner passkey)
    and submit the ``set_limits`` chain (a ``passkey_limits`` row; more rows held behind it if they do not fit one
    transaction). Nothing is stored or signed unless every approval verifies.

    :raises ApplicationError: ``passkey_assertion_invalid`` (one missing, extra, or over another challenge),
        ``passkey_unknown``, ``passkey_sign_count_regressed``; the relayer's refusals.
    :raises ConflictError: ``approval_challenge_expired``, ``approval_outdated`` (the config's nonce moved), and as
        :func:`passkey_limits_options`.
    """
    from wallets.lock_objects import wallet_qs_select_for_update

    client = client or get_chain_client()
    wallet, authenticator = _owner_target(user=user, authenticator_id=authenticator_id)
    now = timezone.now()
    if not now.timestamp() < expires_at <= now.timestamp() + step_up_ttl_seconds():
        raise ConflictError("approval_challenge_expired", "This approval request expired; start the approval again.")
    config = _config(wallet, client)
    if nonce != config.nonce:
        raise ConflictError("approval_outdated", "Your wallet changed on the network since; start the approval again.")
    public_key, missing = _limits_plan(wallet, authenticator, config)
    approver = approver_for(user=user, wallet=wallet, credentials=credentials)
    with transaction.atomic():
        wallet = wallet_qs_select_for_update().get(pk=wallet.pk)
        wallet, authenticator = _owner_target(user=user, authenticator_id=authenticator_id)
        actions = [limit_action(wallet=wallet, public_key=public_key, limit=limit) for limit in missing]
        approvals = verify_all(approver=approver, credentials=credentials, challenge_list=challenges(
            wallet=wallet, actions=actions, nonce=nonce, expires_at=expires_at))
        return store_chain(kind=WalletProtection.Kind.PASSKEY_LIMITS, wallet=wallet, authenticator=authenticator,
                           public_key=public_key, approver=approver, kinds=[("set_limits", limit) for limit in missing],
                           actions=actions, approvals=approvals, expires_at=expires_at, client=client)


@dataclass(frozen=True)
class ChangeStatus:
    """Where a passkey-approved chain is as a whole. :ivar status: ``signed`` / ``submitted`` (a part in flight or
    held), ``confirmed`` (every part landed), ``failed`` / ``expired`` (a part did not land; what landed before it
    stays). :ivar error_message: why, in plain words. :ivar parts: / :ivar landed: transactions, and how many
    landed."""

    id: Any
    status: str
    signature: str
    error_message: str
    parts: int
    landed: int


def chain_rows(row: WalletProtection) -> list[WalletProtection]:
    """The rows of ``row``'s chain in order (``row`` alone when it carries no chain id)."""
    chain = (row.limits or {}).get("chain")
    if not chain:
        return [row]
    return sorted(WalletProtection.objects.filter(wallet_id=row.wallet_id, limits__chain=chain),
                  key=lambda part: part.limits.get("step", 0))


def change_status(row: WalletProtection) -> ChangeStatus:
    """The status of ``row``'s whole chain (see :class:`ChangeStatus`)."""
    Status = WalletProtection.Status
    rows = chain_rows(row)
    landed = sum(part.status == Status.CONFIRMED for part in rows)
    ended = next((part for part in rows if part.status in (Status.FAILED, Status.EXPIRED)), None)
    if ended is not None:
        status, message = ended.status, ended.error_message
    elif landed == len(rows):
        status, message = Status.CONFIRMED, ""
    else:
        live = next(part for part in rows if part.status != Status.CONFIRMED)
        status, message = (Status.SUBMITTED if landed or live.status == Status.SUBMITTED else Status.SIGNED), ""
    return ChangeStatus(id=row.id, status=str(status), signature=row.signature, error_message=message,
                        parts=len(rows), landed=landed)


def passkey_change_get(*, user: Any, change_id: Any) -> WalletProtection:
    """The first row of one of ``user``'s owner-passkey changes (an addition, or limits), for its status
    (:func:`change_status`).

    :raises NotFoundError: ``passkey_change_not_found`` (none, or another user's).
    """
    row = WalletProtection.objects.filter(pk=change_id, wallet__user=user, kind__in=(
        WalletProtection.Kind.ADD_PASSKEY, WalletProtection.Kind.PASSKEY_LIMITS)).first()
    if row is None:
        raise NotFoundError("passkey_change_not_found")
    return row
