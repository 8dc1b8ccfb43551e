"""Issue 14 item 3: the activity is dated and ordered by chain time -- the block time of the slot a payment or a
deposit landed in -- read once per slot, however late Numpay sees it."""

from __future__ import annotations

import pytest
from solders.pubkey import Pubkey
from solders.signature import Signature

from numpay.core.solana import ChainClient, get_chain_client
from numpay.core.solana.block_times import _cache_key, block_time_at, unix_to_datetime
from payments.models import Payment
from payments.selectors import wallet_activity_page
from wallets.deposits import deposit_scan
from wallets.faucet import faucet_fund
from wallets.models import IncomingTransfer

from .payments_support import ApiUser, wait_terminal
from .test_deposits import _outside_sol_transfer

pytestmark = [pytest.mark.chain]


class CountingClient(ChainClient):
    """The real chain client, counting the ``getBlockTime`` calls it makes."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.block_time_calls: list[int] = []

    def get_block_time(self, slot: int) -> int | None:
        self.block_time_calls.append(slot)
        return super().get_block_time(slot)


def _chain_block_time(signature: str):  # noqa: ANN202
    """What the chain itself says: the transaction's ``blockTime`` (getTransaction), as aware UTC."""
    tx = get_chain_client().get_transaction_json(Signature.from_string(signature))
    return unix_to_datetime(tx["blockTime"])


@pytest.mark.django_db
def test_a_deposit_found_late_is_dated_and_ordered_by_its_block_time(make_user, tokens) -> None:
    user = make_user()
    # given an outside SOL transfer lands first, then a faucet top-up lands and is recorded at once
    signature, _outsider = _outside_sol_transfer(user.wallet.address, 250_000_000)
    faucet_fund(wallet=user.wallet, token=tokens["USDC"], amount=7_000_000)
    # when the deposit scan finds the SOL transfer only afterwards
    assert deposit_scan(wallet_limit=10) == 1
    sol = IncomingTransfer.objects.get(wallet=user.wallet, signature=signature)
    usdc = IncomingTransfer.objects.get(wallet=user.wallet, token=tokens["USDC"])
    assert sol.created_at > usdc.created_at  # Numpay saw it last
    # then both carry the chain's block time, whole seconds, not when Numpay recorded them
    assert sol.block_time == _chain_block_time(signature)
    assert usdc.block_time == _chain_block_time(usdc.signature)
    assert sol.block_time.microsecond == 0
    # and the activity lists the top-up first (it landed later) and dates each with its block time
    items = wallet_activity_page(wallet=user.wallet).items
    assert [(i.token, i.slot, i.occurred_at) for i in items] == [
        ("USDC", usdc.slot, usdc.block_time), ("SOL", sol.slot, sol.block_time)]
    assert usdc.slot > sol.slot


@pytest.mark.django_db
def test_block_time_is_read_once_per_slot_and_shared_through_the_cache(chain_setup) -> None:
    from django.core.cache import cache

    url = get_chain_client().url
    first, second = CountingClient(url), CountingClient(url)
    slot = get_chain_client().get_balance_at(Pubkey.default())[1]
    cache.delete_many([_cache_key(first, slot), _cache_key(first, slot - 1)])
    # when two processes (two clients) ask for the same slot's time, then one asks for another slot
    at = block_time_at(slot, client=first)
    again = block_time_at(slot, client=second)
    previous = block_time_at(slot - 1, client=second)
    # then the chain was asked once per slot, and everyone got the chain's answer
    assert (first.block_time_calls, second.block_time_calls) == ([slot], [slot - 1])
    assert at == again == unix_to_datetime(get_chain_client().get_block_time(slot))
    assert previous is not None
    assert previous <= at
    # and a slot the chain has not produced yet has no time (nothing invented)
    assert block_time_at(slot + 1_000_000, client=first) is None


def test_a_payment_confirmed_by_the_outbox_records_its_block_time(celery_worker, tokens) -> None:
    alice, bob = ApiUser("time-alice@example.com"), ApiUser("time-bob@example.com")
    alice.faucet("USDC", "10")
    # when Alice pays Bob and the worker confirms it
    response = alice.pay("time-bob@example.com", "USDC", "2.5")
    assert response.status_code == 201, response.content
    assert wait_terminal([response.json()["id"]]) == {response.json()["id"]: "confirmed"}
    payment = Payment.objects.get(pk=response.json()["id"])
    # then its block time is the chain's time of the slot it landed in
    assert payment.block_time == _chain_block_time(payment.signature)
    assert payment.block_time == unix_to_datetime(get_chain_client().get_block_time(payment.slot))
    # and the API shows it, and both sides' activity dates it so
    shown = alice.get(f"/api/v1/payments/{payment.pk}").json()
    assert (shown["slot"], shown["block_time"]) == (payment.slot, payment.block_time.strftime("%Y-%m-%dT%H:%M:%SZ"))
    row = bob.get("/api/v1/activity").json()["results"][0]
    assert (row["direction"], row["amount"], row["slot"]) == ("received", "2.5", payment.slot)
    assert row["occurred_at"] == payment.block_time.strftime("%Y-%m-%dT%H:%M:%SZ")
