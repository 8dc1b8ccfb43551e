"""The on-chain side of a recovery, on the Numpay wallet program's guardian recovery (docs/wallet-program.md,
"7–11 Guardian recovery" and "Passkey approvals"). The one place that builds those instructions.

A smart wallet's recovery has three possible on-chain steps, each sent through the relayer's outbox:

- **sync** then **start**, once the guardians' approvals reach the threshold: in custodial mode (the custody
  key holds ``manage``) the custody key first writes the guardian set and the rules (``set_settings``: RP ID
  hash, guardian threshold, timelock; ``add_authority`` / ``remove_authority`` of the guardians' passkeys,
  kind 2, ``guardian`` only; the config is created if needed) in a transaction of its own; then
  ``recovery_start`` carries the guardians' WebAuthn assertions through the secp256r1 precompile: as many of
  the threshold's worth as fit in one transaction (at most 1,232 bytes: about two; the sweep measures the
  real compiled size, :func:`start_fitting`). Each guardian signed, off-chain, the program's
  approval challenge of that ``recovery_start`` (:func:`start_challenge`: program, config, nonce, expiry, the
  new owner key), so the very assertions checked by the server are checked again by the chain. When the
  start carried the threshold the on-chain clock starts: the program refuses execution before its own
  ``executes_at`` (Clock sysvar).
- **approve**, for each further counted guardian whose bit the chain has not set (a threshold of 3 or more):
  the start's passkey approvals bumped the nonce, so that guardian's start assertion cannot land; they are
  asked to sign the program's ``recovery_approve`` challenge at the config's nonce then
  (:func:`guardian_approve_terms`, :func:`approve_challenge`), and the sweep sends one at a time. When the
  chain's approvals reach the threshold its clock starts.
- **withdraw**, when a guardian whose approval the chain counts takes it back after the start: the
  guardian's passkey approves ``recovery_withdraw`` (the program's challenge at the config's nonce then,
  :func:`guardian_withdraw_terms`); the program clears the guardian's bit and stops the clock below the
  threshold. The sweep sends one at a time (each bumps the nonce).
- **execute**, after the timelock: ``recovery_execute`` (permissionless; only the fee payer signs). The new
  passkey becomes the owner (``manage | spend``), old passkey owners are removed, the custody key loses
  ``manage``.
- **cancel**, when a started request is cancelled, frozen, expires or falls below the threshold:
  ``recovery_cancel`` signed by the custody key when it holds ``manage`` (custodial mode) or
  ``recovery_cancel`` (protected mode since that bit), else approved by the owner's passkey (a wallet
  protected before the bit: the owner cancels with their passkey, signing the program's challenge of that
  cancel).

A keypair wallet has no on-chain authorities: its recovery is off-chain only.
"""

from __future__ import annotations

import hashlib
from typing import Any

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from numpay.core.solana import ChainClient
from wallets.program import (
    INSTRUCTIONS_SYSVAR_ID,
    Authority,
    PasskeyAssertion,
    WalletConfig,
    add_authority,
    approval_challenge,
    approve_with_passkeys,
    error_sentence,
    guardian_change_hash,
    guardians_apply,
    guardians_cancel,
    guardians_propose,
    recovery_approve,
    recovery_cancel,
    recovery_execute,
    recovery_start,
    recovery_withdraw,
    remove_authority,
    set_settings,
)
from wallets.program.instructions import (
    KIND_SECP256R1,
    PERMISSION_GUARDIAN,
    PERMISSION_MANAGE,
    PERMISSION_RECOVERY_CANCEL,
)
from wallets.selectors import tokens_active
from wallets.smart import config_create_instruction, wallet_config_read, wallet_program_id


def is_on_chain(wallet: Any) -> bool:
    """Whether ``wallet``'s recovery has on-chain steps (a smart wallet)."""
    return bool(wallet.is_smart and wallet.config_address)


def rp_id_hash() -> bytes:
    """SHA-256 of the WebAuthn RP ID passkey approvals carry (``WEBAUTHN_RP_ID``)."""
    from accounts.app_settings import app_settings as accounts_settings

    return hashlib.sha256(accounts_settings.WEBAUTHN_RP_ID.encode()).digest()


def guardian_change_delay() -> int:
    """The on-chain ``guardian_change_delay`` (seconds, u32) Numpay writes: ``NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS``."""
    from .app_settings import app_settings

    return min(max(app_settings.GUARDIAN_CHANGE_DELAY_SECONDS, 0), 2**32 - 1)


def _creator(wallet: Any) -> Pubkey:
    return Pubkey.from_string(wallet.signing_address)


def start_action(request: Any) -> Instruction:
    """The signer-form ``recovery_start`` of ``request`` (authority: the Instructions sysvar placeholder)."""
    return recovery_start(wallet_program_id(), _creator(request.wallet), INSTRUCTIONS_SYSVAR_ID,
                          bytes(request.pending_public_key))


def start_challenge(request: Any) -> bytes:
    """What each guardian's passkey signs: the program's approval challenge of :func:`start_action` at the
    request's ``chain_nonce``, expiring with the request."""
    return approval_challenge(wallet_program_id(), Pubkey.from_string(request.wallet.config_address),
                              request.chain_nonce, int(request.expires_at.timestamp()), start_action(request))


def current_nonce(*, client: ChainClient, wallet: Any) -> int:
    """The config's nonce now (0 before the config exists: it is created with nonce 0).

    :raises ChainUnavailableError: the chain could not be read.
    """
    config = wallet_config_read(client=client, wallet=wallet)
    return 0 if config is None else config.nonce


def custody_manages(*, client: ChainClient, wallet: Any) -> bool:
    """Whether the wallet's custody key holds ``manage`` on-chain (custodial mode), so it can write the
    guardians and cancel; ``False`` in protected mode, where an owner passkey must.

    :raises ChainUnavailableError: the chain could not be read.
    """
    return _custody_manages(wallet_config_read(client=client, wallet=wallet), _creator(wallet))


def custody_cancels(*, client: ChainClient, wallet: Any) -> bool:
    """Whether the wallet's custody key may sign ``recovery_cancel`` on-chain: it holds ``manage`` (custodial
    mode) or ``recovery_cancel`` (protected mode, docs/wallet-program.md "The `recovery_cancel` permission");
    ``False`` for a wallet protected before that bit, where only an owner passkey can.

    :raises ChainUnavailableError: the chain could not be read.
    """
    return _custody_cancels(wallet_config_read(client=client, wallet=wallet), _creator(wallet))


def cancel_action(request: Any, recovery_id: int) -> Instruction:
    """The signer-form ``recovery_cancel`` of ``recovery_id`` for an owner passkey's approval."""
    return recovery_cancel(wallet_program_id(), _creator(request.wallet), INSTRUCTIONS_SYSVAR_ID, recovery_id)


def owner_cancel_terms(*, client: ChainClient, request: Any, expires_at: int) -> dict[str, int] | None:
    """What an owner passkey must sign to cancel ``request`` on-chain in protected mode: ``{"nonce",
    "recovery_id", "expires_at"}``, or ``None`` when nothing needs an owner passkey on-chain (not started
    there, or the custody key can cancel: ``manage`` or ``recovery_cancel``).

    :raises ChainUnavailableError: the chain could not be read.
    """
    if not is_on_chain(request.wallet):
        return None
    config = wallet_config_read(client=client, wallet=request.wallet)
    if config is None or not config.recovery_pending or _custody_cancels(config, _creator(request.wallet)):
        return None
    return {"nonce": config.nonce, "recovery_id": config.recovery_id, "expires_at": expires_at}


def owner_cancel_challenge(request: Any, terms: dict[str, int]) -> bytes:
    """The program's approval challenge of ``recovery_cancel`` under ``terms``."""
    return approval_challenge(wallet_program_id(), Pubkey.from_string(request.wallet.config_address), terms["nonce"],
                              terms["expires_at"], cancel_action(request, terms["recovery_id"]))


def withdraw_action(request: Any, recovery_id: int) -> Instruction:
    """The signer-form ``recovery_withdraw`` of ``recovery_id`` (the request's new owner key) for a guardian
    passkey's approval."""
    return recovery_withdraw(wallet_program_id(), _creator(request.wallet), INSTRUCTIONS_SYSVAR_ID, recovery_id,
                             bytes(request.pending_public_key))


def guardian_withdraw_terms(*, client: ChainClient, request: Any, guardian_key: bytes,
                            expires_at: int) -> dict[str, int] | None:
    """What the guardian's passkey (compressed P-256 ``guardian_key``, 33 bytes) must sign to withdraw its
    approval of ``request`` on-chain: ``{"nonce", "recovery_id", "expires_at"}`` (the config's nonce and
    pending request now), or ``None`` when the chain does not count that guardian's approval (nothing
    pending there, or its bit is not set: withdrawing off-chain is enough).

    :raises ChainUnavailableError: the chain could not be read.
    """
    if not is_on_chain(request.wallet):
        return None
    config = wallet_config_read(client=client, wallet=request.wallet)
    if config is None or not config.recovery_pending:
        return None
    entry = config.authority(guardian_key)
    if entry is None or entry.slot not in config.recovery_approving_slots:
        return None
    return {"nonce": config.nonce, "recovery_id": config.recovery_id, "expires_at": expires_at}


def withdraw_challenge(request: Any, terms: dict[str, int]) -> bytes:
    """The program's approval challenge of ``recovery_withdraw`` under ``terms`` (32 bytes)."""
    return approval_challenge(wallet_program_id(), Pubkey.from_string(request.wallet.config_address), terms["nonce"],
                              terms["expires_at"], withdraw_action(request, terms["recovery_id"]))


def withdraw_instructions(*, request: Any, approval: dict[str, Any]) -> list[Instruction]:
    """The guardian's passkey-approved ``recovery_withdraw`` (``approval``: the stored assertion and terms)."""
    assertion = PasskeyAssertion(bytes.fromhex(approval["public_key"]), bytes.fromhex(approval["authenticator_data"]),
                                 bytes.fromhex(approval["client_data_json"]), bytes.fromhex(approval["signature"]))
    return approve_with_passkeys(withdraw_action(request, approval["recovery_id"]), [assertion],
                                 expires_at=approval["expires_at"])


def approve_action(request: Any, recovery_id: int) -> Instruction:
    """The signer-form ``recovery_approve`` of ``recovery_id`` (the request's new owner key) for a guardian
    passkey's approval."""
    return recovery_approve(wallet_program_id(), _creator(request.wallet), INSTRUCTIONS_SYSVAR_ID, recovery_id,
                            bytes(request.pending_public_key))


def guardian_approve_terms(*, client: ChainClient, request: Any, guardian_key: bytes,
                           expires_at: int) -> dict[str, int] | None:
    """What the guardian's passkey (compressed P-256 ``guardian_key``, 33 bytes) must sign to add its approval
    of ``request`` on-chain: ``{"nonce", "recovery_id", "expires_at"}`` (the config's nonce and pending request
    now), or ``None`` when nothing is pending there, the key is not a guardian there, or its bit is already set.

    :raises ChainUnavailableError: the chain could not be read.
    """
    if not is_on_chain(request.wallet):
        return None
    config = wallet_config_read(client=client, wallet=request.wallet)
    if config is None or not config.recovery_pending:
        return None
    entry = config.authority(guardian_key)
    if entry is None or not entry.permissions & PERMISSION_GUARDIAN or entry.slot in config.recovery_approving_slots:
        return None
    return {"nonce": config.nonce, "recovery_id": config.recovery_id, "expires_at": expires_at}


def approve_challenge(request: Any, terms: dict[str, int]) -> bytes:
    """The program's approval challenge of ``recovery_approve`` under ``terms`` (32 bytes)."""
    return approval_challenge(wallet_program_id(), Pubkey.from_string(request.wallet.config_address), terms["nonce"],
                              terms["expires_at"], approve_action(request, terms["recovery_id"]))


def approve_instructions(*, request: Any, approval: dict[str, Any]) -> list[Instruction]:
    """The guardian's passkey-approved ``recovery_approve`` (``approval``: the stored assertion and terms)."""
    return approve_with_passkeys(approve_action(request, approval["recovery_id"]), [_stored_assertion(approval)],
                                 expires_at=approval["expires_at"])


def _stored_assertion(approval: dict[str, Any]) -> PasskeyAssertion:
    return PasskeyAssertion(bytes.fromhex(approval["public_key"]), bytes.fromhex(approval["authenticator_data"]),
                            bytes.fromhex(approval["client_data_json"]), bytes.fromhex(approval["signature"]))


def _custody_manages(config: WalletConfig | None, custody: Pubkey) -> bool:
    if config is None:
        return True  # created below with the custody key as its owner
    entry = config.authority(custody)
    return entry is not None and bool(entry.permissions & PERMISSION_MANAGE)


def _custody_cancels(config: WalletConfig | None, custody: Pubkey) -> bool:
    if config is None:
        return True  # nothing pending on-chain: nothing to cancel there
    entry = config.authority(custody)
    return entry is not None and bool(entry.permissions & (PERMISSION_MANAGE | PERMISSION_RECOVERY_CANCEL))


def guardian_sync_instructions(*, wallet: Any, config: WalletConfig | None, guardian_keys: list[bytes],
                               threshold: int, timelock_seconds: int, fee_payer: Pubkey) -> list[Instruction]:
    """Instructions (signed by the custody key) that make the config hold exactly ``guardian_keys`` as
    guardians with ``threshold`` and ``timelock_seconds``; empty when the custody key does not hold
    ``manage`` (protected mode: the owner's passkeys manage the guardians) or nothing differs.
    """
    custody = _creator(wallet)
    if not _custody_manages(config, custody):
        return []
    program = wallet_program_id()
    instructions: list[Instruction] = []
    if config is None:
        instructions.append(config_create_instruction(wallet=wallet, payer=fee_payer, tokens=list(tokens_active())))
    joint = config.joint_threshold if config else 0
    delay = guardian_change_delay()
    settings_now = ((config.rp_id_hash, config.guardian_threshold, config.recovery_timelock,
                     config.guardian_change_delay) if config else None)
    if settings_now != (rp_id_hash(), threshold, timelock_seconds, delay):
        instructions.append(set_settings(program, custody, custody, rp_id_hash=rp_id_hash(), joint_threshold=joint,
                                         guardian_threshold=threshold, recovery_timelock=timelock_seconds,
                                         guardian_change_delay=delay))
    on_chain = {bytes(entry.key) for entry in (config.authorities if config else ())
                if entry.kind == KIND_SECP256R1 and entry.permissions == PERMISSION_GUARDIAN}
    wanted = {bytes(key) for key in guardian_keys}
    for key in sorted(on_chain - wanted):
        instructions.append(remove_authority(program, custody, custody, key))
    for key in sorted(wanted - on_chain):
        instructions.append(add_authority(program, custody, custody, Authority.passkey(key, PERMISSION_GUARDIAN)))
    return instructions


def sync_instructions(*, request: Any, guardian_keys: list[bytes], threshold: int, client: ChainClient,
                      fee_payer: Pubkey) -> list[Instruction]:
    """The guardian sync a request needs before its start (custodial mode), empty when the chain already
    holds the guardians and rules (or the custody key cannot write them)."""
    config = wallet_config_read(client=client, wallet=request.wallet)
    return guardian_sync_instructions(wallet=request.wallet, config=config, guardian_keys=guardian_keys,
                                      threshold=threshold, timelock_seconds=request.timelock_seconds,
                                      fee_payer=fee_payer)


def start_instructions(*, request: Any, approvals: list[Any]) -> list[Instruction]:
    """The start transaction: the secp256r1 precompile and the passkey-approved ``recovery_start`` carrying
    ``approvals`` (their stored assertions; at most 8; :func:`start_fitting` picks how many fit)."""
    assertions = [PasskeyAssertion(bytes(approval.guardian.authority_key), bytes(approval.authenticator_data),
                                   bytes(approval.client_data_json), bytes(approval.signature))
                  for approval in approvals[:8]]
    return approve_with_passkeys(start_action(request), assertions, expires_at=int(request.expires_at.timestamp()))


def transaction_size(instructions: list[Instruction], *, fee_payer: Pubkey) -> int:
    """The wire size (bytes) of a transaction of ``instructions`` paid by ``fee_payer``, signed by every signer
    it needs (each signature is 64 bytes; the blockhash's value does not change the size)."""
    from solders.hash import Hash
    from solders.transaction import Transaction

    from numpay.core.transactions import compile_message

    message = compile_message(instructions=instructions, fee_payer=fee_payer, blockhash=Hash.default())
    return len(bytes(Transaction.new_unsigned(message)))


def start_fitting(*, request: Any, approvals: list[Any], fee_payer: Pubkey, limit: int) -> int:
    """How many of ``approvals`` (in order, at most 8) the start carries: the most whose transaction is at most
    ``limit`` bytes (Solana's 1,232), measured on the real compiled transaction; at least 1 (a start that does
    not fit even with one is refused by the size check when signed)."""
    count = min(len(approvals), 8)
    while count > 1 and transaction_size(start_instructions(request=request, approvals=approvals[:count]),
                                         fee_payer=fee_payer) > limit:
        count -= 1
    return count


def execute_instructions(*, request: Any, recovery_id: int) -> list[Instruction]:
    """``recovery_execute`` of the wallet's pending request ``recovery_id`` (no signer but the fee payer)."""
    return [recovery_execute(wallet_program_id(), _creator(request.wallet), recovery_id)]


def cancel_instructions(*, request: Any, recovery_id: int) -> list[Instruction]:
    """``recovery_cancel`` of ``recovery_id``: approved by the owner's passkey when the owner gave one
    (``request.chain_cancel_approval``), else signed by the custody key (``manage`` or ``recovery_cancel``:
    :func:`custody_cancels`)."""
    approval = request.chain_cancel_approval
    if approval and approval["recovery_id"] == recovery_id:
        assertion = PasskeyAssertion(bytes.fromhex(approval["public_key"]), bytes.fromhex(approval["authenticator_data"]),
                                     bytes.fromhex(approval["client_data_json"]), bytes.fromhex(approval["signature"]))
        return approve_with_passkeys(cancel_action(request, recovery_id), [assertion], expires_at=approval["expires_at"])
    custody = _creator(request.wallet)
    return [recovery_cancel(wallet_program_id(), custody, custody, recovery_id)]


def pending_recovery_id(*, client: ChainClient, wallet: Any) -> int | None:
    """The id of the wallet's pending on-chain request, or ``None``.

    :raises ChainUnavailableError: the chain could not be read.
    """
    config = wallet_config_read(client=client, wallet=wallet)
    return config.recovery_id if config is not None and config.recovery_pending else None


def explain_error(err: Any) -> str | None:
    """A plain sentence for the program's custom error in a transaction error (``{"InstructionError": [i,
    {"Custom": n}]}``), or ``None``."""
    try:
        code = err["InstructionError"][1]["Custom"]
    except (KeyError, IndexError, TypeError):
        return None
    return error_sentence(int(code))


# --- protected mode: delayed guardian changes (docs/wallet-program.md "12–14 Guardian changes") -------------
def chain_guardians(config: WalletConfig | None) -> tuple[set[bytes], int]:
    """The guardian set the config holds (keys of kind-2 slots holding only ``guardian``) and its threshold."""
    if config is None:
        return set(), 0
    keys = {bytes(entry.key) for entry in config.authorities
            if entry.kind == KIND_SECP256R1 and entry.permissions == PERMISSION_GUARDIAN}
    return keys, config.guardian_threshold


def propose_action(wallet: Any, keys: list[bytes], threshold: int) -> Instruction:
    """The signer-form ``guardians_propose`` of ``keys`` (in this order) and ``threshold``, for an owner
    passkey's approval (authority: the Instructions sysvar placeholder)."""
    return guardians_propose(wallet_program_id(), _creator(wallet), INSTRUCTIONS_SYSVAR_ID, keys, threshold)


def cancel_change_action(wallet: Any, change_hash: bytes) -> Instruction:
    """The signer-form ``guardians_cancel`` of the pending change ``change_hash`` (32 bytes)."""
    return guardians_cancel(wallet_program_id(), _creator(wallet), INSTRUCTIONS_SYSVAR_ID, change_hash)


def change_challenge(wallet: Any, terms: dict[str, Any]) -> bytes:
    """The program's approval challenge (32 bytes) the owner's passkey signs for a guardian change ``terms``:
    ``{"action": "propose", "keys": [hex], "threshold", "nonce", "expires_at"}`` or ``{"action": "cancel",
    "hash": hex, "nonce", "expires_at"}``."""
    return approval_challenge(wallet_program_id(), Pubkey.from_string(wallet.config_address), terms["nonce"],
                              terms["expires_at"], change_action(wallet, terms))


def change_action(wallet: Any, terms: dict[str, Any]) -> Instruction:
    """The signer-form instruction of guardian change ``terms`` (see :func:`change_challenge`; ``"action":
    "settings"`` terms carry ``rp_id_hash`` (hex), ``joint_threshold``, ``threshold``, ``timelock_seconds`` and
    ``delay``: a ``set_settings``)."""
    if terms["action"] == "settings":
        return set_settings(wallet_program_id(), _creator(wallet), INSTRUCTIONS_SYSVAR_ID,
                            rp_id_hash=bytes.fromhex(terms["rp_id_hash"]), joint_threshold=terms["joint_threshold"],
                            guardian_threshold=terms["threshold"], recovery_timelock=terms["timelock_seconds"],
                            guardian_change_delay=terms["delay"])
    if terms["action"] == "cancel":
        return cancel_change_action(wallet, bytes.fromhex(terms["hash"]))
    return propose_action(wallet, [bytes.fromhex(key) for key in terms["keys"]], terms["threshold"])


def change_instructions(*, wallet: Any, approval: dict[str, Any]) -> list[Instruction]:
    """The owner's passkey-approved ``guardians_propose`` / ``guardians_cancel`` (``approval``: the stored terms
    and assertion)."""
    return approve_with_passkeys(change_action(wallet, approval), [_stored_assertion(approval)],
                                 expires_at=approval["expires_at"])


def apply_instructions(*, wallet: Any, keys: list[bytes], threshold: int) -> list[Instruction]:
    """``guardians_apply`` of the proposed ``keys`` / ``threshold`` (no signer but the fee payer)."""
    return [guardians_apply(wallet_program_id(), _creator(wallet), keys, threshold)]


def change_hash(keys: list[bytes], threshold: int) -> bytes:
    """SHA-256 of the guardian set body: what ``guardians_propose`` stores on-chain."""
    return guardian_change_hash(keys, threshold)


def error_code(err: Any) -> int | None:
    """The program's custom error code in a transaction error, or ``None``."""
    try:
        return int(err["InstructionError"][1]["Custom"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
