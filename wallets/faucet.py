"""The localnet bootstrap and dev faucet (localnet only: users never need SOL, the faucet mints test USDC).

The bootstrap is idempotent: it funds the relayer fee payer and the faucet by airdrop, creates the test
USDC mint (6 decimals, mint authority = the faucet keypair) once, and registers SOL and USDC in the
token registry. Keys live in ``solana-keygen`` JSON files under ``var/`` (0600), never in the database.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    initialize_mint2,
    mint_to_checked,
)
from spl.token.models import InitializeMint2Params, MintToCheckedParams

from numpay.core.errors import ApplicationError, ChainUnavailableError, NotFoundError
from numpay.core.solana import ChainClient, get_chain_client
from numpay.core.solana.block_times import block_time_at
from numpay.core.solana.programs import LAMPORTS_PER_SOL, MINT_LEN, SOL_DECIMALS, TOKEN_PROGRAM_ID, USDC_DECIMALS
from numpay.core.transactions import assemble, compile_message
from relayer.app_settings import app_settings as relayer_settings
from relayer.signer import get_fee_payer, load_keypair_file, write_keypair_file

from .app_settings import app_settings
from .deposits import incoming_transfer_record
from .models import Token, Wallet
from .selectors import balance_cache_key

logger = logging.getLogger(__name__)

FEE_PAYER_TARGET_LAMPORTS = 500 * LAMPORTS_PER_SOL
FAUCET_TARGET_LAMPORTS = 50 * LAMPORTS_PER_SOL
#: What a payment that opens a USDC account outside Numpay costs its sender on localnet (0.25 USDC; the
#: rent, about 0.00204 SOL, is paid by the fee payer). Operators set it per token in the admin.
USDC_ACCOUNT_CREATION_FEE = 250_000


@dataclass(frozen=True)
class BootstrapResult:
    """What the bootstrap set up: addresses as base58 strings."""

    fee_payer: str
    faucet: str
    usdc_mint: str


def _keypair(path: str | Path) -> Keypair:
    target = Path(path)
    if target.exists():
        return load_keypair_file(target)
    keypair = Keypair()
    write_keypair_file(target, keypair)
    return keypair


def _top_up(client: ChainClient, address: Pubkey, target: int) -> None:
    balance = client.get_balance(address)
    if balance < target // 2:
        client.wait_for_confirmation(client.request_airdrop(address, target - balance))


def wait_for_chain(client: ChainClient, *, timeout: float = 60.0) -> None:
    """Block until the RPC endpoint answers ``getBlockHeight``. :raises ChainUnavailableError: timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.block_height()
            return
        except ChainUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def localnet_bootstrap(*, client: ChainClient | None = None) -> BootstrapResult:
    """Prepare the chain (:func:`localnet_chain_setup`) and register SOL and USDC in the database.

    :raises ChainUnavailableError: the chain does not answer.
    """
    result = localnet_chain_setup(client=client)
    token_registry_ensure(usdc_mint=result.usdc_mint)
    return result


def localnet_chain_setup(*, client: ChainClient | None = None) -> BootstrapResult:
    """Fund the fee payer and faucet by airdrop and create the test USDC mint once (chain only, no DB).

    Key files (``solana-keygen`` JSON, 0600) are created next to ``FAUCET_KEYPAIR_PATH`` on first run;
    the fee payer file only when no inline ``RELAYER_FEE_PAYER_KEYPAIR`` is configured.

    :raises ChainUnavailableError: the chain does not answer.
    """
    client = client or get_chain_client()
    if not relayer_settings.FEE_PAYER_KEYPAIR:
        _keypair(relayer_settings.FEE_PAYER_KEYPAIR_PATH)
    fee_payer_pubkey = get_fee_payer().pubkey()
    faucet = _keypair(app_settings.FAUCET_KEYPAIR_PATH)
    mint = _keypair(Path(app_settings.FAUCET_KEYPAIR_PATH).with_name("usdc-mint-keypair.json"))
    _top_up(client, fee_payer_pubkey, FEE_PAYER_TARGET_LAMPORTS)
    _top_up(client, faucet.pubkey(), FAUCET_TARGET_LAMPORTS)
    if not client.account_exists(mint.pubkey()):
        rent = client.minimum_balance_for_rent_exemption(MINT_LEN)
        instructions = [
            create_account(CreateAccountParams(from_pubkey=faucet.pubkey(), to_pubkey=mint.pubkey(), lamports=rent,
                                               space=MINT_LEN, owner=TOKEN_PROGRAM_ID)),
            initialize_mint2(InitializeMint2Params(decimals=USDC_DECIMALS, program_id=TOKEN_PROGRAM_ID,
                                                   mint=mint.pubkey(), mint_authority=faucet.pubkey(),
                                                   freeze_authority=None)),
        ]
        message = compile_message(instructions=instructions, fee_payer=faucet.pubkey(),
                                  blockhash=client.latest_blockhash().blockhash)
        payload = bytes(message)
        tx = assemble(message=message, signatures={faucet.pubkey(): faucet.sign_message(payload),
                                                   mint.pubkey(): mint.sign_message(payload)})
        client.wait_for_confirmation(client.send_raw_transaction(bytes(tx)))
        logger.info("Created test USDC mint %s", mint.pubkey())
    fee_account = get_associated_token_address(fee_payer_pubkey, mint.pubkey(), TOKEN_PROGRAM_ID)
    if not client.account_exists(fee_account):  # where network fees in USDC are collected
        message = compile_message(instructions=[create_idempotent_associated_token_account(
            faucet.pubkey(), fee_payer_pubkey, mint.pubkey(), TOKEN_PROGRAM_ID)], fee_payer=faucet.pubkey(),
            blockhash=client.latest_blockhash().blockhash)
        tx = assemble(message=message, signatures={faucet.pubkey(): faucet.sign_message(bytes(message))})
        client.wait_for_confirmation(client.send_raw_transaction(bytes(tx)))
    return BootstrapResult(fee_payer=str(fee_payer_pubkey), faucet=str(faucet.pubkey()), usdc_mint=str(mint.pubkey()))


def token_registry_ensure(*, usdc_mint: str) -> None:
    """Upsert SOL (native, 9 decimals) and USDC (``usdc_mint``, 6 decimals) for this cluster."""
    cluster = settings.SOLANA_CLUSTER
    Token.objects.update_or_create(cluster=cluster, symbol="SOL", defaults={
        "name": "Solana", "mint": "", "decimals": SOL_DECIMALS, "is_native": True, "token_program": "", "position": 0})
    Token.objects.update_or_create(cluster=cluster, symbol="USDC", defaults={
        "name": "USD Coin (test)", "mint": usdc_mint, "decimals": USDC_DECIMALS, "is_native": False,
        "token_program": str(TOKEN_PROGRAM_ID), "position": 1},
        create_defaults={"name": "USD Coin (test)", "mint": usdc_mint, "decimals": USDC_DECIMALS, "is_native": False,
                         "token_program": str(TOKEN_PROGRAM_ID), "position": 1,
                         "account_creation_fee": USDC_ACCOUNT_CREATION_FEE})


def faucet_fund(*, wallet: Wallet, token: Token, amount: int, client: ChainClient | None = None) -> str:
    """Give ``wallet`` test funds on localnet: USDC is minted by the faucet, SOL comes by airdrop.

    :param amount: base units (> 0, at most ``FAUCET_MAX_TOKENS`` whole tokens).
    :returns: the transaction signature (base58), confirmed.
    :raises NotFoundError: ``not_found`` when the cluster is not localnet (the faucet does not exist).
    :raises ApplicationError: ``faucet_limit_exceeded``, ``amount_not_positive``.
    """
    if settings.SOLANA_CLUSTER != "localnet":
        raise NotFoundError("not_found", "There is no faucet on this network.")
    if amount <= 0:
        raise ApplicationError("amount_not_positive", "The amount must be greater than zero.", extra={"field": "amount"})
    if amount > app_settings.FAUCET_MAX_TOKENS * 10**token.decimals:
        raise ApplicationError("faucet_limit_exceeded", f"The faucet gives at most {app_settings.FAUCET_MAX_TOKENS} "
                               f"{token.symbol} at a time.", extra={"field": "amount"})
    client = client or get_chain_client()
    owner = Pubkey.from_string(wallet.address)
    from_address = ""  # an airdrop has no sender account to show
    if token.is_native:
        signature = client.request_airdrop(owner, amount)
    else:
        faucet = load_keypair_file(app_settings.FAUCET_KEYPAIR_PATH)
        mint = Pubkey.from_string(token.mint)
        program = Pubkey.from_string(token.token_program)
        destination = token.associated_token_account(wallet.address)
        instructions = [
            create_idempotent_associated_token_account(faucet.pubkey(), owner, mint, program),
            mint_to_checked(MintToCheckedParams(program_id=program, mint=mint, dest=destination,
                                                mint_authority=faucet.pubkey(), amount=amount,
                                                decimals=token.decimals)),
        ]
        message = compile_message(instructions=instructions, fee_payer=faucet.pubkey(),
                                  blockhash=client.latest_blockhash().blockhash)
        tx = assemble(message=message, signatures={faucet.pubkey(): faucet.sign_message(bytes(message))})
        signature = client.send_raw_transaction(bytes(tx))
        from_address = str(faucet.pubkey())
    status = client.wait_for_confirmation(signature)
    cache.delete_many([balance_cache_key(wallet.address, t) for t in ("SOL", token.symbol)])
    # shown in the activity at once, not after the next deposit scan (which finds it already recorded)
    incoming_transfer_record(wallet=wallet, token=token, amount=amount, signature=str(signature),
                             from_address=from_address, slot=status.slot,
                             block_time=block_time_at(status.slot, client=client))
    return str(signature)

