"""The block-time backfill (payments.block_times): payments and incoming transfers recorded without a block time
get the chain's, from the real localnet, one getBlockTime per distinct slot in JSON-RPC batches; rows whose
slot has no time on the node are marked and never asked again; bounded batches, resumable after a failure."""

from __future__ import annotations

import datetime as dt
import io
import itertools

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone
from solders.pubkey import Pubkey

from numpay.core.errors import ChainUnavailableError
from numpay.core.solana import ChainClient, get_chain_client
from numpay.core.solana.block_times import _cache_key, unix_to_datetime
from numpay.core.solana.client import BLOCK_TIME_BATCH
from payments.block_times import SETTLE_SECONDS, block_time_backfill_batch
from payments.models import Payment
from payments.selectors import wallet_activity_version
from payments.tasks import block_time_backfill
from wallets.models import IncomingTransfer

pytestmark = [pytest.mark.chain, pytest.mark.django_db]

LONG_AGO = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
_signatures = itertools.count(1)


class BatchCountingClient(ChainClient):
    """The real chain client, recording each getBlockTime batch it sends (and any single getBlockTime)."""

    def __init__(self, url: str, **options: object) -> None:
        super().__init__(url, **options)
        self.batches: list[list[int]] = []
        self.singles: list[int] = []

    def get_block_times(self, slots):  # noqa: ANN001, ANN201
        self.batches.append(list(slots))
        return super().get_block_times(slots)

    def get_block_time(self, slot: int) -> int | None:
        self.singles.append(slot)
        return super().get_block_time(slot)


def _current_slot() -> int:
    return get_chain_client().get_balance_at(Pubkey.default())[1]


def _chain_time(localnet_node, slot: int) -> dt.datetime:  # noqa: ANN001
    """What the node itself answers for the slot (its own JSON-RPC, not our client)."""
    return unix_to_datetime(localnet_node.rpc("getBlockTime", [slot]))


def _payment(user, recipient, token, *, status: str, slot: int | None, block_time: dt.datetime | None = None,  # noqa: ANN001
             ended_at: dt.datetime = LONG_AGO) -> Payment:
    payment = Payment.objects.create(
        sender=user, wallet=user.wallet, recipient_input=recipient.email, recipient_address=recipient.wallet.address,
        recipient_wallet=recipient.wallet, token=token, amount=1_000, status=status, slot=slot,
        signature=f"sig{next(_signatures)}" if slot else "", block_time=block_time)
    Payment.objects.filter(pk=payment.pk).update(created_at=ended_at, updated_at=ended_at)
    return Payment.objects.get(pk=payment.pk)


def _transfer(user, token, *, slot: int | None, found_at: dt.datetime = LONG_AGO) -> IncomingTransfer:  # noqa: ANN001
    transfer = IncomingTransfer.objects.create(wallet=user.wallet, token=token, amount=5, slot=slot,
                                               signature=f"dep{next(_signatures)}", from_address="outside")
    IncomingTransfer.objects.filter(pk=transfer.pk).update(created_at=found_at)
    return IncomingTransfer.objects.get(pk=transfer.pk)


def _forget(slots: list[int]) -> None:
    client = get_chain_client()
    cache.delete_many([_cache_key(client, slot) for slot in slots])


def test_backfill_fills_landed_rows_once_per_slot_and_marks_slots_without_a_time(
        localnet_node, make_user, tokens) -> None:  # noqa: ANN001
    alice, bob = make_user(), make_user()
    usdc = tokens["USDC"]
    now = _current_slot()
    old, older, gone = now - 2, now - 3, now + 10_000_000  # the node has no time for `gone`
    _forget([old, older, gone, gone + 1])
    # given payments and deposits recorded without a block time: two in one slot, a failed-on-chain one and a
    # deposit sharing another slot, and one payment and one deposit whose slot the node has no time for
    same_a = _payment(alice, bob, usdc, status="confirmed", slot=older)
    same_b = _payment(bob, alice, usdc, status="confirmed", slot=older)
    failed_on_chain = _payment(alice, bob, usdc, status="failed", slot=old)
    deposit = _transfer(alice, usdc, slot=old)
    lost_payment = _payment(alice, bob, usdc, status="confirmed", slot=gone)
    lost_deposit = _transfer(bob, usdc, slot=gone + 1)
    # and rows the backfill must leave alone: already dated, ended off chain, still open, just landed
    dated = _payment(alice, bob, usdc, status="confirmed", slot=old, block_time=LONG_AGO)
    off_chain = _payment(alice, bob, usdc, status="failed", slot=None)
    expired = _payment(alice, bob, usdc, status="expired", slot=None)
    recent = _payment(alice, bob, usdc, status="confirmed", slot=old, ended_at=timezone.now())
    client = BatchCountingClient(get_chain_client().url)
    versions = (wallet_activity_version(wallet=alice.wallet), wallet_activity_version(wallet=bob.wallet))
    # when one batch runs
    batch = block_time_backfill_batch(limit=50, client=client)
    # then the chain was asked once per distinct slot, in one JSON-RPC batch, and never one by one
    assert batch.slots == 4
    assert [sorted(b) for b in client.batches] == [sorted([older, old, gone, gone + 1])]
    assert client.singles == []
    assert (batch.filled, batch.unavailable) == (4, 2)
    # and each landed row carries the node's own time of its slot; its fallback date (updated_at) is untouched
    for row, slot in ((same_a, older), (same_b, older), (failed_on_chain, old)):
        row_now = Payment.objects.get(pk=row.pk)
        assert row_now.block_time == _chain_time(localnet_node, slot)
        assert row_now.updated_at == LONG_AGO
        assert row_now.block_time_unavailable_at is None
    assert IncomingTransfer.objects.get(pk=deposit.pk).block_time == _chain_time(localnet_node, old)
    # and the rows whose slot has no time are left undated but marked as tried
    lost = Payment.objects.get(pk=lost_payment.pk)
    assert (lost.block_time, lost.updated_at) == (None, LONG_AGO)
    assert lost.block_time_unavailable_at is not None
    assert IncomingTransfer.objects.get(pk=lost_deposit.pk).block_time is None
    assert IncomingTransfer.objects.get(pk=lost_deposit.pk).block_time_unavailable_at is not None
    # and both homes see that their activity changed (it may reorder), though no row's updated_at moved
    assert wallet_activity_version(wallet=alice.wallet) != versions[0]
    assert wallet_activity_version(wallet=bob.wallet) != versions[1]
    # and nothing else changed
    assert Payment.objects.get(pk=dated.pk).block_time == LONG_AGO
    for row in (off_chain, expired, recent):
        assert (Payment.objects.get(pk=row.pk).block_time, Payment.objects.get(pk=row.pk).block_time_unavailable_at) \
            == (None, None)

    # when it runs again: nothing to do, the node is not asked again (not even for the slots without a time)
    again = BatchCountingClient(get_chain_client().url)
    assert block_time_backfill_batch(limit=50, client=again).rows == 0
    assert (again.batches, again.singles) == ([], [])
    assert Payment.objects.get(pk=lost_payment.pk).block_time_unavailable_at == lost.block_time_unavailable_at

    # when the just-landed payment has settled, a later run dates it
    later = timezone.now() + dt.timedelta(seconds=SETTLE_SECONDS + 1)
    assert block_time_backfill_batch(limit=50, now=later).filled == 1
    assert Payment.objects.get(pk=recent.pk).block_time == _chain_time(localnet_node, old)


def test_backfill_goes_in_bounded_batches_and_resumes_after_the_chain_was_unreachable(
        localnet_node, make_user, tokens) -> None:  # noqa: ANN001
    user = make_user()
    now = _current_slot()
    slots = [now - offset for offset in range(1, 6)]
    _forget(slots)
    transfers = [_transfer(user, tokens["SOL"], slot=slot) for slot in slots]
    # given the chain cannot be reached (nothing listens on port 9): the batch fails and writes nothing
    unreachable = ChainClient("http://127.0.0.1:9", timeout=1.0, max_retries=0)
    with pytest.raises(ChainUnavailableError):
        block_time_backfill_batch(limit=2, client=unreachable)
    assert IncomingTransfer.objects.filter(block_time__isnull=True, block_time_unavailable_at__isnull=True).count() == 5
    # when it runs again with the chain back, two rows at a time
    done = [block_time_backfill_batch(limit=2).filled for _ in range(4)]
    # then each batch did at most two, and every row got its slot's time
    assert done == [2, 2, 1, 0]
    for transfer, slot in zip(transfers, slots, strict=True):
        assert IncomingTransfer.objects.get(pk=transfer.pk).block_time == _chain_time(localnet_node, slot)


def test_more_slots_than_one_json_rpc_batch_are_split(localnet_node, make_user, tokens) -> None:  # noqa: ANN001
    user = make_user()
    now = _current_slot()
    # slots the node has (up to 60 of them) and slots it has not produced: 150 distinct slots in all
    produced = list(range(max(1, now - 60), now))
    slots = produced + [now + 10_000_000 + n for n in range(150 - len(produced))]
    _forget(slots)
    for slot in slots:
        _transfer(user, tokens["SOL"], slot=slot)
    client = BatchCountingClient(get_chain_client().url)
    batch = block_time_backfill_batch(limit=200, client=client)
    assert [len(b) for b in client.batches] == [BLOCK_TIME_BATCH, 150 - BLOCK_TIME_BATCH]
    assert (batch.filled, batch.unavailable, batch.slots) == (len(produced), 150 - len(produced), 150)
    assert IncomingTransfer.objects.get(wallet=user.wallet, slot=produced[-1]).block_time == _chain_time(
        localnet_node, produced[-1])


def test_the_command_and_the_beat_task_fill_everything(localnet_node, make_user, tokens) -> None:  # noqa: ANN001
    alice, bob = make_user(), make_user()
    now = _current_slot()
    _forget([now - 1, now - 2, now - 3])
    first = _payment(alice, bob, tokens["USDC"], status="confirmed", slot=now - 1)
    second = _payment(bob, alice, tokens["USDC"], status="confirmed", slot=now - 2)
    deposit = _transfer(alice, tokens["SOL"], slot=now - 3)
    # when the command runs one row per batch
    out = io.StringIO()
    call_command("backfill_block_times", "--batch", "1", stdout=out)
    # then it did everything, batch by batch, and said so
    assert "3 block time(s) filled, 0 row(s)" in out.getvalue()
    assert out.getvalue().count("batch ") == 2  # batch 1: a payment and the deposit; batch 2: the other payment
    assert Payment.objects.get(pk=first.pk).block_time == _chain_time(localnet_node, now - 1)
    assert Payment.objects.get(pk=second.pk).block_time == _chain_time(localnet_node, now - 2)
    assert IncomingTransfer.objects.get(pk=deposit.pk).block_time == _chain_time(localnet_node, now - 3)
    # and the beat runs the task every minute; with nothing left it does nothing
    entry = settings.CELERY_BEAT_SCHEDULE["block-time-backfill"]
    assert (entry["task"], entry["schedule"]) == ("payments.tasks.block_time_backfill", 60.0)
    assert block_time_backfill() == 0
    later = _payment(alice, bob, tokens["USDC"], status="failed", slot=now - 1)
    assert block_time_backfill(limit=1) == 1
    assert Payment.objects.get(pk=later.pk).block_time == _chain_time(localnet_node, now - 1)
