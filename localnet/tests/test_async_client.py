"""solana-py's ``AsyncClient`` against localnet."""

from __future__ import annotations

import asyncio

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solders.keypair import Keypair

from localnet.testing import Localnet
from localnet.tests.conftest import LAMPORTS_PER_SOL
from localnet.tests.test_sol import FEE, transfer_transaction


async def _airdrop_and_transfer(url: str) -> tuple[int, int, int]:
    async with AsyncClient(url, commitment=Confirmed) as client:
        payer = Keypair()
        recipient = Keypair().pubkey()
        airdrop = (await client.request_airdrop(payer.pubkey(), LAMPORTS_PER_SOL)).value
        await client.confirm_transaction(airdrop, Confirmed, sleep_seconds=0.05)
        blockhash = (await client.get_latest_blockhash(Processed)).value.blockhash
        signature = (await client.send_transaction(transfer_transaction(payer, recipient, 3_000_000, blockhash))).value
        await client.confirm_transaction(signature, Confirmed, sleep_seconds=0.05)
        meta = (await client.get_transaction(signature, commitment=Confirmed)).value.transaction.meta
        return (
            (await client.get_balance(payer.pubkey(), Confirmed)).value,
            (await client.get_balance(recipient, Confirmed)).value,
            meta.fee,
        )


def test_async_client_airdrop_and_transfer(localnet: Localnet) -> None:
    # when
    payer_balance, recipient_balance, fee = asyncio.run(_airdrop_and_transfer(localnet.url))
    # then
    assert payer_balance == LAMPORTS_PER_SOL - 3_000_000 - FEE
    assert recipient_balance == 3_000_000
    assert fee == FEE


async def _concurrent_transfers(url: str, count: int) -> list[int]:
    async with AsyncClient(url, commitment=Confirmed) as client:
        payer = Keypair()
        airdrop = (await client.request_airdrop(payer.pubkey(), LAMPORTS_PER_SOL)).value
        await client.confirm_transaction(airdrop, Confirmed, sleep_seconds=0.05)
        blockhash = (await client.get_latest_blockhash(Processed)).value.blockhash
        recipients = [Keypair().pubkey() for _ in range(count)]
        sends = [
            client.send_transaction(transfer_transaction(payer, recipient, 1_000_000, blockhash)) for recipient in recipients
        ]
        signatures = [answer.value for answer in await asyncio.gather(*sends)]
        await client.confirm_transaction(signatures[-1], Confirmed, sleep_seconds=0.05)
        for signature in signatures:
            await client.confirm_transaction(signature, Confirmed, sleep_seconds=0.05)
        balances = (await client.get_multiple_accounts([payer.pubkey(), *recipients], Confirmed)).value
        return [account.lamports for account in balances]


def test_concurrent_sends_all_land(localnet: Localnet) -> None:
    # when 20 transfers are sent concurrently
    balances = asyncio.run(_concurrent_transfers(localnet.url, 20))
    # then
    assert balances[0] == LAMPORTS_PER_SOL - 20 * (1_000_000 + FEE)
    assert balances[1:] == [1_000_000] * 20
