"""Protected mode (DESIGN.md "The smart wallet", "Modes"; issue 9 item 4): the spending policy written on-chain.

When a user registers a passkey, their smart wallet's config gets it as an owner, and the custody key
becomes a capped spender: the most it may move without a passkey is what the operator's policy allows
without one. It also keeps ``recovery_cancel`` (docs/wallet-program.md "The `recovery_cancel` permission"),
so a recovery an operator froze, or that expired, is ended on-chain without the owner; a wallet protected
before that bit existed falls back to the owner's passkey cancel. :func:`protected_limits` (pure) turns the
policy rules into the on-chain limits:

- the custody key: per transaction the "passkey above X" threshold (what needs no passkey), per rolling
  24 hours the policy's daily cap; each never above ``NUMPAY_WALLET_LIMITS`` (custodial mode's limits);
- the passkey: per transaction the "2 passkeys above Y" threshold (what one passkey may approve alone), per
  24 hours the daily cap (no cap where the policy sets none);
- the joint threshold: 2 when the policy has a "2 passkeys above" rule (two distinct owner passkeys
  approving one ``execute`` lift the limits), else 0.

A rule the program cannot express on-chain (7- and 30-day caps, velocity, allowlists) stays the server's:
the chain is the last line, not the only one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from numpay.core.solana import Blockhash, ChainClient
from numpay.core.transactions import assemble, compile_message, message_signers
from wallets.models import Token
from wallets.program import Authority, Limit, WalletConfig, add_authority, set_limits, set_permissions, set_settings
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_RECOVERY_CANCEL, PERMISSION_SPEND
from wallets.smart import token_program_mint

from . import policies

#: The period of the on-chain rolling caps, seconds (the program keeps one period per limit).
DAY_SECONDS = 86_400
U64_MAX = 2**64 - 1


@dataclass(frozen=True)
class OnChainCaps:
    """One authority's on-chain caps for one mint, base units (``U64_MAX`` = no cap)."""

    per_transaction_cap: int
    period_cap: int
    period_seconds: int = DAY_SECONDS


@dataclass(frozen=True)
class ProtectedLimits:
    """What protected mode writes for one mint. :ivar joint_threshold: 0 or 2."""

    custody: OnChainCaps
    passkey: OnChainCaps
    joint_threshold: int


def _tightest(values: Sequence[int | None]) -> int | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def protected_limits(*, rules: Sequence[policies.Rules], custodial: OnChainCaps | None) -> ProtectedLimits:
    """The on-chain limits of protected mode for one token (pure; see the module docstring).

    :param rules: every rule that applies to the user for the token (operator's and own:
        :func:`payments.policy_services.rules_for`); all must pass, so the tightest value of each wins.
    :param custodial: the custody key's limits in custodial mode (``NUMPAY_WALLET_LIMITS``), or ``None``
        when the token has none (the custody key may then send none of it, and still may not).
    """
    per_transaction = _tightest([rule.per_transaction_cap for rule in rules])
    daily = _tightest([rule.daily_cap for rule in rules])
    passkey_above = _tightest([rule.passkey_above for rule in rules])
    two_above = _tightest([rule.two_passkeys_above for rule in rules])
    if custodial is None:
        custody = OnChainCaps(0, 0)
    else:
        custody = OnChainCaps(
            per_transaction_cap=_tightest([custodial.per_transaction_cap, per_transaction, passkey_above]) or 0,
            period_cap=_tightest([custodial.period_cap, daily]) or 0, period_seconds=custodial.period_seconds)
    passkey = OnChainCaps(per_transaction_cap=_tightest([per_transaction, two_above, U64_MAX]) or 0,
                          period_cap=_tightest([daily, U64_MAX]) or 0)
    return ProtectedLimits(custody=custody, passkey=passkey, joint_threshold=2 if two_above is not None else 0)


# --- the switch: one transaction through the outbox ---

PROTECTED, CUSTODIAL = "protected", "custodial"


def wallet_mode(wallet: Any) -> str:
    """``"protected"`` once the wallet's switch (:class:`~payments.models.WalletProtection`) landed, else
    ``"custodial"`` (keypair wallets too)."""
    from .models import WalletProtection

    confirmed = WalletProtection.objects.filter(wallet=wallet, kind=WalletProtection.Kind.PROTECT,
                                                status=WalletProtection.Status.CONFIRMED).exists()
    return PROTECTED if confirmed else CUSTODIAL


def protection_in_flight(wallet: Any) -> bool:
    """Whether the wallet's switch to protected mode is signed or sent but not landed yet."""
    from .models import WalletProtection

    return WalletProtection.objects.filter(wallet=wallet, kind=WalletProtection.Kind.PROTECT,
                                           status__in=WalletProtection.IN_FLIGHT_STATUSES).exists()


def onchain_passkey_ids(wallet: Any) -> set[int]:
    """The ``mfa.Authenticator`` ids of the passkeys the wallet's config holds as owners (protected mode: the
    switch's passkey and those added since, :mod:`payments.passkey_owners`, minus those taken off since,
    :mod:`payments.passkey_removals`; a removed passkey is never made an owner again, so the difference is exact)."""
    from .models import WalletProtection

    confirmed = WalletProtection.objects.filter(wallet=wallet, status=WalletProtection.Status.CONFIRMED,
                                                authenticator__isnull=False)
    removed = set(confirmed.filter(kind=WalletProtection.Kind.REMOVE_PASSKEY).values_list("authenticator_id",
                                                                                          flat=True))
    added = confirmed.exclude(kind=WalletProtection.Kind.REMOVE_PASSKEY).values_list("authenticator_id", flat=True)
    return set(added) - removed


def _limits_json(*, user: Any, tokens: Sequence[Token]) -> dict[str, Any]:
    from wallets.smart import custody_limits

    from .policy_services import rules_for

    custodial = {limit.mint: limit for limit in custody_limits(list(tokens))}
    result: dict[str, Any] = {}
    for token in tokens:
        mint = token_program_mint(token)
        chain = custodial.get(mint)
        limits = protected_limits(rules=rules_for(user=user, token=token), custodial=None if chain is None else
                                  OnChainCaps(chain.per_transaction_cap, chain.period_cap, chain.period_seconds))
        result[token.symbol] = {
            "mint": str(mint), "had_custody_limit": chain is not None,
            "custody": [limits.custody.per_transaction_cap, limits.custody.period_cap, limits.custody.period_seconds],
            "passkey": [limits.passkey.per_transaction_cap, limits.passkey.period_cap, limits.passkey.period_seconds],
            "joint_threshold": limits.joint_threshold}
    return result


def protection_instructions(*, wallet: Any, public_key: bytes, limits: dict[str, Any],
                            settings_from: WalletConfig | None, create_config: Instruction | None) -> list[Instruction]:
    """The switch's instructions, all authorized by the custody key (still ``manage``), in the order
    docs/wallet-program.md "Protected mode" gives: ``set_settings`` (RP ID hash, joint threshold; the recovery
    settings kept), ``add_authority`` (the passkey, kind 2, ``spend | manage``), its limits, the custody key's
    limits, ``set_permissions`` (the custody key: ``spend | recovery_cancel``: it pays within its caps and can
    end a pending recovery an operator froze or that expired — block, never perform, one; it manages nothing).
    ``create`` in front while the config is not on-chain.

    :param limits: :func:`_limits_json` (base units per token symbol).
    :param settings_from: the config as on-chain now (its guardian threshold and recovery timelock are kept;
        the guardian change delay becomes ``NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS``: from now on only the owner's
        passkey changes the guardians, through the program's delayed proposals).
    """
    from accounts.app_settings import app_settings as accounts_settings
    from recovery.chain import guardian_change_delay
    from wallets.smart import wallet_program_id

    program, custody = wallet_program_id(), Pubkey.from_string(wallet.signing_address)
    joint = max([entry["joint_threshold"] for entry in limits.values()] or [0])
    instructions = [create_config] if create_config is not None else []
    instructions.append(set_settings(
        program, custody, custody, rp_id_hash=hashlib.sha256(accounts_settings.WEBAUTHN_RP_ID.encode()).digest(),
        joint_threshold=joint, guardian_threshold=settings_from.guardian_threshold if settings_from else 0,
        recovery_timelock=settings_from.recovery_timelock if settings_from else 0,
        guardian_change_delay=guardian_change_delay()))
    instructions.append(add_authority(program, custody, custody,
                                      Authority.passkey(public_key, PERMISSION_SPEND | PERMISSION_MANAGE)))
    for entry in limits.values():
        mint = Pubkey.from_string(entry["mint"])
        per_transaction, period, seconds = entry["passkey"]
        if per_transaction or period:
            instructions.append(set_limits(program, custody, custody, public_key,
                                           Limit(mint, per_transaction, period, seconds)))
        per_transaction, period, seconds = entry["custody"]
        if per_transaction or period or entry["had_custody_limit"]:  # both 0 deletes an existing limit
            instructions.append(set_limits(program, custody, custody, custody, Limit(mint, per_transaction, period,
                                                                                     seconds)))
    instructions.append(set_permissions(program, custody, custody, custody,
                                        PERMISSION_SPEND | PERMISSION_RECOVERY_CANCEL))
    return instructions


def protection_sign_attempt(*, protection: Any, blockhash: Blockhash, number: int, reserve: bool,
                            client: ChainClient) -> Any:
    """Build, validate and co-sign (relayer), sign (custody key) and store attempt ``number`` of the switch.
    Call inside an atomic block holding the protection's (or its wallet's) row lock.

    :raises ApplicationError: the relayer's refusals (``transaction_not_allowed``, ``fee_payer_cap_exceeded``,
        ``sponsorship_budget_exceeded``).
    """
    from relayer import services as relayer
    from wallets.selectors import tokens_active
    from wallets.services import wallet_sign
    from wallets.smart import config_create_instruction, wallet_config_read

    from .models import WalletProtectionAttempt

    wallet = protection.wallet
    fee_payer = relayer.fee_payer_pubkey()
    if protection.kind in (protection.Kind.ADD_PASSKEY, protection.Kind.PASSKEY_LIMITS):
        # approved by an owner passkey: no custody signature
        from .passkey_limits import row_instructions

        instructions = row_instructions(protection)
    elif protection.kind == protection.Kind.REMOVE_PASSKEY:
        from .passkey_removals import removal_instructions

        instructions = removal_instructions(protection)
    else:
        config = wallet_config_read(client=client, wallet=wallet)
        create_config = None if config is not None else config_create_instruction(
            wallet=wallet, payer=fee_payer, tokens=list(tokens_active()))
        instructions = protection_instructions(
            wallet=wallet, public_key=bytes(protection.public_key), limits=protection.limits, settings_from=config,
            create_config=create_config)
    message = compile_message(instructions=instructions, fee_payer=fee_payer, blockhash=blockhash.blockhash)
    cosigned = relayer.relayer_cosign(user=wallet.user, message=message, reference=protection.id, reserve=reserve)
    signatures = {fee_payer: cosigned.signature}
    custody = Pubkey.from_string(wallet.signing_address)
    if custody in message_signers(message):
        signatures[custody] = wallet_sign(wallet=wallet, message=bytes(message))
    tx = assemble(message=message, signatures=signatures)
    return WalletProtectionAttempt.objects.create(
        protection=protection, number=number, signed_transaction=bytes(tx), signature=str(tx.signatures[0]),
        blockhash=str(blockhash.blockhash), last_valid_block_height=blockhash.last_valid_block_height)


def wallet_protect(*, authenticator_id: int, client: ChainClient | None = None) -> Any | None:
    """Switch the smart wallet of a passkey's owner to protected mode with that passkey (idempotent): sign the
    switch (:func:`protection_instructions`) with a fresh blockhash and submit it through the outbox.

    Nothing happens (``None``) for a passkey that is gone or not ES256, a user without an active, claimed smart
    wallet, or a wallet already protected or switching (a further passkey needs a passkey-approved
    ``add_authority``, not this switch).

    :returns: the :class:`~payments.models.WalletProtection` created, or ``None``.
    :raises ApplicationError: the relayer's refusals. :raises ChainUnavailableError: the chain is unreachable.
    """
    from allauth.mfa.models import Authenticator
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from django.db import transaction
    from django.utils import timezone

    from accounts.selectors import passkey_public_key
    from numpay.core.solana import get_chain_client
    from relayer import outbox
    from wallets.lock_objects import wallet_qs_select_for_update
    from wallets.models import Wallet
    from wallets.selectors import tokens_active

    from . import app_settings
    from .models import WalletProtection

    authenticator = Authenticator.objects.filter(pk=authenticator_id, type=Authenticator.Type.WEBAUTHN).first()
    wallet = Wallet.objects.filter(user_id=getattr(authenticator, "user_id", None)).first()
    if authenticator is None or wallet is None or not wallet.is_smart or wallet.claim_email \
            or wallet.status != Wallet.Status.ACTIVE:
        return None
    try:
        public_key = passkey_public_key(authenticator=authenticator).public_bytes(Encoding.X962,
                                                                                 PublicFormat.CompressedPoint)
    except ValueError:
        return None
    client = client or get_chain_client()
    blockhash = client.latest_blockhash()
    with transaction.atomic():
        wallet = wallet_qs_select_for_update().get(pk=wallet.pk)
        if WalletProtection.objects.filter(wallet=wallet, kind=WalletProtection.Kind.PROTECT, status__in=(
                *WalletProtection.IN_FLIGHT_STATUSES, WalletProtection.Status.CONFIRMED)).exists():
            return None
        protection = WalletProtection.objects.create(
            wallet=wallet, authenticator=authenticator, public_key=public_key,
            limits=_limits_json(user=wallet.user, tokens=list(tokens_active())),
            expires_at=timezone.now() + timedelta(seconds=app_settings.submission_ttl_seconds()))
        attempt = protection_sign_attempt(protection=protection, blockhash=blockhash, number=1, reserve=True,
                                          client=client)
        protection.signature = attempt.signature
        protection.save(update_fields=["signature", "updated_at"])
        outbox.enqueue_send(outbox.get_kind("wallet_protect"), protection.id)
    return protection
