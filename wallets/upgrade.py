"""Upgrading a keypair wallet to a smart wallet owned by the same custody key (``manage.py
upgrade_wallets``).

Two steps, each idempotent, so the command can be interrupted and re-run at any point:

1. :func:`wallet_upgrade_switch` — under the wallet's row lock and only when no payment of the wallet is
   open (their transactions are signed for the old address): the wallet's address becomes the vault of
   the config whose creator is its custody key; the old address is kept as ``previous_address``.
   From then on the user receives at the vault, and payments are ``execute`` instructions.
2. :func:`wallet_upgrade_sweep` — moves everything still at the previous address (each active token, then
   SOL) to the vault in one transaction signed by the custody key, fees paid by the relayer's fee payer
   (which also funds the vault's token accounts, priced by the same validator as payments). Re-run it
   whenever funds arrive at the old address (a sender with an old address book): it reads the balances
   afresh each time and moves only what is there. Funds only ever move between two addresses of the
   same wallet, so a re-send after a time-out can at worst fail, never pay twice.

This operator command sends its transaction itself and waits for it, rather than through the outbox: it
is synchronous, owned by no payment, and re-deciding from fresh balances is its exactly-once guarantee.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction
from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from spl.token.instructions import create_idempotent_associated_token_account, transfer_checked
from spl.token.models import TransferCheckedParams

from numpay.core.errors import ConflictError
from numpay.core.solana import ChainClient, get_chain_client
from numpay.core.transactions import assemble, compile_message
from relayer import services as relayer
from relayer.signer import get_fee_payer
from relayer.validation import validate_sponsored_message

from .lock_objects import wallet_qs_select_for_key_update
from .models import Wallet
from .selectors import balance_cache_key, tokens_active
from .services import wallet_sign
from .smart import smart_wallet_addresses

logger = logging.getLogger(__name__)


@dataclass
class SweepResult:
    """What one sweep moved (base units per token symbol) and left (``left``: symbol -> reason)."""

    signature: str = ""
    moved: dict[str, int] = field(default_factory=dict)
    left: dict[str, str] = field(default_factory=dict)


def wallet_upgrade_switch(*, wallet: Wallet) -> Wallet:
    """Step 1: make ``wallet`` a smart wallet whose creator and owner is its custody key (idempotent: a
    smart wallet is returned as it is).

    :raises ConflictError: ``wallet_upgrade_blocked`` (409) while a payment of the wallet is open.
    """
    from payments.models import Payment

    with transaction.atomic():
        locked = wallet_qs_select_for_key_update().get(pk=wallet.pk)
        if locked.is_smart:
            return locked
        if Payment.objects.filter(wallet=locked, status__in=Payment.OPEN_STATUSES).exists():
            raise ConflictError("wallet_upgrade_blocked", "This wallet has a payment in progress; upgrade it "
                                "once the payment has ended.")
        authority = locked.signing_address
        config, vault = smart_wallet_addresses(authority=authority)
        locked.previous_address, locked.authority = locked.address, authority
        locked.address, locked.config_address, locked.kind = vault, config, Wallet.Kind.SMART
        locked.last_scanned_at = None  # its new address is scanned first
        locked.save(update_fields=["previous_address", "authority", "address", "config_address", "kind",
                                   "last_scanned_at"])
    logger.info("Wallet %s upgraded: %s -> %s", locked.pk, locked.previous_address, locked.address)
    return locked


def wallet_upgrade_sweep(*, wallet: Wallet, client: ChainClient | None = None) -> SweepResult:
    """Step 2: move what is at ``wallet.previous_address`` to its vault (see the module docstring).

    :returns: what moved (empty when nothing was left) and what could not (SOL below the rent-exempt
        minimum a new vault must receive).
    :raises ChainUnavailableError: the chain could not be reached.
    :raises ChainRequestError: the transaction was refused (nothing moved; run again).
    """
    result = SweepResult()
    if not wallet.is_smart or not wallet.previous_address:
        return result
    client = client or get_chain_client()
    fee_payer = get_fee_payer()
    old, vault = Pubkey.from_string(wallet.previous_address), Pubkey.from_string(wallet.address)
    instructions: list[Instruction] = []
    sol = None
    for token in tokens_active():
        if token.is_native:
            sol = token
            continue
        amount, _ = client.get_token_account_amount_at(token.associated_token_account(wallet.previous_address))
        if amount == 0:
            continue
        mint, program = Pubkey.from_string(token.mint), Pubkey.from_string(token.token_program)
        instructions.append(create_idempotent_associated_token_account(fee_payer.pubkey(), vault, mint, program))
        instructions.append(transfer_checked(TransferCheckedParams(
            program_id=program, source=token.associated_token_account(wallet.previous_address), mint=mint,
            dest=token.associated_token_account(wallet.address), owner=old, amount=amount, decimals=token.decimals)))
        result.moved[token.symbol] = amount
    if sol is not None:
        lamports = client.get_balance(old)
        if lamports and client.get_balance(vault) + lamports < client.minimum_balance_for_rent_exemption(0):
            result.left[sol.symbol] = "below the minimum a new Solana address must receive"
        elif lamports:
            instructions.append(transfer(TransferParams(from_pubkey=old, to_pubkey=vault, lamports=lamports)))
            result.moved[sol.symbol] = lamports
    if not instructions:
        return result
    message = compile_message(instructions=instructions, fee_payer=fee_payer.pubkey(),
                              blockhash=client.latest_blockhash().blockhash)
    validate_sponsored_message(message, fee_payer=fee_payer.pubkey(), ata_rent_lamports=relayer.ata_rent_lamports())
    tx = assemble(message=message, signatures={fee_payer.pubkey(): fee_payer.sign_message(bytes(message)),
                                               old: wallet_sign(wallet=wallet, message=bytes(message))})
    signature = client.send_raw_transaction(bytes(tx))
    client.wait_for_confirmation(signature)
    result.signature = str(signature)
    from django.core.cache import cache

    cache.delete_many([balance_cache_key(address, symbol) for address in (wallet.address, wallet.previous_address)
                       for symbol in result.moved])
    logger.info("Wallet %s swept %s from %s to %s (%s)", wallet.pk, result.moved, old, vault, signature)
    return result
