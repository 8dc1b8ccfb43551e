"""One or two HTTP front processes: with two they share the port and check signatures for the
chain process; with one the chain process checks them."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.core import RPCException
from solders.keypair import Keypair

from localnet.testing import Localnet
from localnet.tests.conftest import LAMPORTS_PER_SOL, rpc_call, wait_for_status
from localnet.tests.solana_py import SyncAsyncClient
from localnet.tests.test_sol import FEE, transfer_transaction


@pytest.mark.parametrize("workers", ["1", "2"])
def test_fronts_land_good_and_refuse_bad_transactions(fresh_localnet: Callable[..., Localnet], workers: str) -> None:
    # given a localnet with one or two HTTP front processes
    node = fresh_localnet(env={"LOCALNET_HTTP_WORKERS": workers})
    client = SyncAsyncClient(node.url, commitment=Confirmed)
    payer = Keypair()
    wait_for_status(client, client.request_airdrop(payer.pubkey(), LAMPORTS_PER_SOL).value, "confirmed")
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    recipient = Keypair().pubkey()
    corrupt = bytearray(bytes(transfer_transaction(payer, recipient, 1, blockhash)))
    corrupt[5] ^= 0xFF
    # when
    good = client.send_transaction(transfer_transaction(payer, recipient, 30_000_000, blockhash)).value
    bad_signature = rpc_call(
        node.url, "sendTransaction", [base64.b64encode(bytes(corrupt)).decode(), {"encoding": "base64"}]
    )
    with pytest.raises(RPCException) as refused:
        client.send_transaction(transfer_transaction(payer, recipient, 10 * LAMPORTS_PER_SOL, blockhash))
    wait_for_status(client, good, "confirmed")
    # then
    assert bad_signature["error"] == {"code": -32003, "message": "Transaction signature verification failure"}
    assert refused.value.args[0].message.startswith("Transaction simulation failed: Error processing Instruction 0")
    assert client.get_balance(recipient, Confirmed).value == 30_000_000
    assert client.get_balance(payer.pubkey(), Confirmed).value == LAMPORTS_PER_SOL - 30_000_000 - FEE
