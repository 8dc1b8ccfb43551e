"""Injected faults: dropped and delayed transactions, HTTP 429 / 503, run-time switching."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.models import TxOpts
from solders.keypair import Keypair

from localnet.testing import Localnet, LocalnetRpcError
from localnet.tests.conftest import LAMPORTS_PER_SOL, rpc_call, rpc_raw, wait_for, wait_for_status
from localnet.tests.solana_py import SyncAsyncClient
from localnet.tests.test_sol import transfer_transaction

NO_WAIT = TxOpts(skip_confirmation=True)


@pytest.fixture
def faulty(fresh_localnet: Callable[..., Localnet]) -> Localnet:
    """A private localnet whose faults the test switches at run time."""
    return fresh_localnet(fault_seed=1234)


def _funded(client: SyncAsyncClient) -> Keypair:
    payer = Keypair()
    wait_for_status(client, client.request_airdrop(payer.pubkey(), LAMPORTS_PER_SOL).value, "confirmed")
    return payer


def test_faults_are_off_by_default_and_switchable(faulty: Localnet) -> None:
    # when
    before = faulty.rpc("localnet_getFaults")
    after = faulty.set_faults(dropRate=0.5, delaySlots=3)
    # then
    assert before == {"dropRate": 0.0, "delaySlots": 0, "http429Rate": 0.0, "http503Rate": 0.0, "seed": 1234}
    assert after == {"dropRate": 0.5, "delaySlots": 3, "http429Rate": 0.0, "http503Rate": 0.0, "seed": 1234}


def test_invalid_fault_settings_are_refused(faulty: Localnet) -> None:
    # when
    with pytest.raises(LocalnetRpcError) as refused:
        faulty.set_faults(dropRate=1.5)
    # then
    assert refused.value.code == -32602
    assert faulty.rpc("localnet_getFaults")["dropRate"] == 0.0


def test_dropped_transaction_gets_a_signature_but_never_lands(faulty: Localnet) -> None:
    # given
    client = SyncAsyncClient(faulty.url, commitment=Confirmed)
    payer = _funded(client)
    recipient = Keypair().pubkey()
    faulty.set_faults(dropRate=1.0)
    transaction = transfer_transaction(payer, recipient, 5_000_000, client.get_latest_blockhash(Processed).value.blockhash)
    # when
    signature = client.send_transaction(transaction, NO_WAIT).value
    slot = client.get_slot(Processed).value
    wait_for(lambda: client.get_slot(Processed).value >= slot + 5)
    # then
    assert signature == transaction.signatures[0]
    assert client.get_signature_statuses([signature]).value == [None]
    assert client.get_balance(recipient, Processed).value == 0
    assert client.get_balance(payer.pubkey(), Processed).value == LAMPORTS_PER_SOL


def test_drop_rate_is_a_fraction_and_seeded(faulty: Localnet) -> None:
    # given
    client = SyncAsyncClient(faulty.url, commitment=Confirmed)
    payer = _funded(client)
    faulty.set_faults(dropRate=0.5, seed=99)
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    # when
    signatures = [
        client.send_transaction(transfer_transaction(payer, Keypair().pubkey(), 1_000_000 + index, blockhash), NO_WAIT).value
        for index in range(40)
    ]
    # then
    landed = sum(status is not None for status in client.get_signature_statuses(signatures).value)
    assert 8 <= landed <= 32


def test_delayed_transaction_lands_after_the_delay(faulty: Localnet) -> None:
    # given
    client = SyncAsyncClient(faulty.url, commitment=Confirmed)
    payer = _funded(client)
    recipient = Keypair().pubkey()
    faulty.set_faults(delaySlots=20)
    transaction = transfer_transaction(payer, recipient, 8_000_000, client.get_latest_blockhash(Processed).value.blockhash)
    # when
    sent_at = client.get_slot(Processed).value
    signature = client.send_transaction(transaction, NO_WAIT).value
    not_yet = client.get_signature_statuses([signature]).value[0]
    status = wait_for(lambda: client.get_signature_statuses([signature]).value[0])
    # then
    assert not_yet is None
    assert status.slot >= sent_at + 20
    assert client.get_balance(recipient, Processed).value == 8_000_000


def test_delayed_transaction_past_its_blockhash_never_lands(fresh_localnet: Callable[..., Localnet]) -> None:
    # given a fast chain delaying landing beyond the blockhash's 150 blocks
    node = fresh_localnet(slot_ms=10, fault_seed=5)
    client = SyncAsyncClient(node.url, commitment=Confirmed)
    payer = _funded(client)
    recipient = Keypair().pubkey()
    latest = client.get_latest_blockhash(Processed).value
    node.set_faults(delaySlots=200)
    transaction = transfer_transaction(payer, recipient, 8_000_000, latest.blockhash)
    # when
    signature = client.send_transaction(transaction, NO_WAIT).value
    wait_for(lambda: client.get_slot(Processed).value > latest.last_valid_block_height + 60)
    # then
    assert client.get_signature_statuses([signature]).value == [None]
    assert client.get_balance(recipient, Processed).value == 0


def test_http_429_and_503_faults_and_control_methods_exempt(faulty: Localnet) -> None:
    # given
    faulty.set_faults(http429Rate=1.0)
    # when
    throttled = rpc_raw(faulty.url, {"jsonrpc": "2.0", "id": 1, "method": "getSlot"})
    control = faulty.rpc("localnet_getFaults")
    faulty.set_faults(http429Rate=0.0, http503Rate=1.0)
    unavailable = rpc_raw(faulty.url, {"jsonrpc": "2.0", "id": 1, "method": "getSlot"})
    faulty.set_faults(http503Rate=0.0)
    healthy = rpc_call(faulty.url, "getSlot")
    # then
    assert throttled.status_code == 429
    assert control["http429Rate"] == 1.0
    assert unavailable.status_code == 503
    assert isinstance(healthy["result"], int)


def test_http_fault_rates_are_fractions(faulty: Localnet) -> None:
    # given
    faulty.set_faults(http429Rate=0.25, http503Rate=0.25, seed=3)
    # when
    codes = [rpc_raw(faulty.url, {"jsonrpc": "2.0", "id": 1, "method": "getSlot"}).status_code for _ in range(200)]
    # then
    assert 25 <= codes.count(429) <= 75
    assert 25 <= codes.count(503) <= 75
    assert codes.count(200) == 200 - codes.count(429) - codes.count(503)


def test_faults_from_flags_and_environment(fresh_localnet: Callable[..., Localnet]) -> None:
    # when
    node = fresh_localnet(drop_rate=0.25, env={"LOCALNET_DELAY_SLOTS": "2", "LOCALNET_FAULT_SEED": "8"})
    # then
    assert node.rpc("localnet_getFaults") == {
        "dropRate": 0.25,
        "delaySlots": 2,
        "http429Rate": 0.0,
        "http503Rate": 0.0,
        "seed": 8,
    }


def test_same_seed_injects_the_same_faults(faulty: Localnet) -> None:
    # given
    def pattern() -> list[int]:
        return [rpc_raw(faulty.url, {"jsonrpc": "2.0", "id": 1, "method": "getSlot"}).status_code for _ in range(40)]

    # when the same seed is set twice
    faulty.set_faults(http429Rate=0.3, http503Rate=0.2, seed=77)
    first = pattern()
    faulty.set_faults(seed=77)
    second = pattern()
    faulty.set_faults(seed=78)
    third = pattern()
    # then
    assert first == second
    assert first != third
    assert {200, 429, 503} == set(first)
