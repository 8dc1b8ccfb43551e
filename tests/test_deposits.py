"""Deposits from outside addresses are found by the scan (getSignaturesForAddress) and shown as incoming."""

from __future__ import annotations

import pytest
from django.utils import timezone
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer

from numpay.core.solana import get_chain_client
from numpay.core.transactions import assemble, compile_message
from payments.selectors import wallet_activity
from wallets.deposits import deposit_scan
from wallets.faucet import faucet_fund
from wallets.models import DepositCursor, IncomingTransfer

pytestmark = [pytest.mark.django_db, pytest.mark.chain]


def _outside_sol_transfer(to: str, lamports: int) -> tuple[str, str]:
    client = get_chain_client()
    outsider = Keypair()
    client.wait_for_confirmation(client.request_airdrop(outsider.pubkey(), 2_000_000_000))
    message = compile_message(instructions=[transfer(TransferParams(
        from_pubkey=outsider.pubkey(), to_pubkey=Pubkey.from_string(to), lamports=lamports))],
        fee_payer=outsider.pubkey(), blockhash=client.latest_blockhash().blockhash)
    tx = assemble(message=message, signatures={outsider.pubkey(): outsider.sign_message(bytes(message))})
    signature = client.send_raw_transaction(bytes(tx))
    client.wait_for_confirmation(signature)
    return str(signature), str(outsider.pubkey())


def test_outside_deposits_are_recorded_once_and_shown_as_incoming(make_user, tokens) -> None:
    user = make_user()
    # given an outside address sends 0.25 SOL and the test mint issues 7 USDC to the user
    sol_signature, outsider = _outside_sol_transfer(user.wallet.address, 250_000_000)
    faucet_fund(wallet=user.wallet, token=tokens["USDC"], amount=7_000_000)
    # (the faucet top-up is recorded at once, before any scan)
    assert IncomingTransfer.objects.filter(wallet=user.wallet, token=tokens["USDC"], amount=7_000_000).count() == 1
    # when the scan runs (twice: it must be resumable and never double count)
    first = deposit_scan(wallet_limit=10)
    second = deposit_scan(wallet_limit=10)
    # then both deposits are recorded exactly once: the scan added the outside SOL transfer only
    assert first == 1
    assert second == 0
    sol = IncomingTransfer.objects.get(wallet=user.wallet, token=tokens["SOL"], signature=sol_signature)
    assert (sol.amount, sol.from_address) == (250_000_000, outsider)
    usdc = IncomingTransfer.objects.get(wallet=user.wallet, token=tokens["USDC"])
    assert usdc.amount == 7_000_000
    # the USDC mint transaction also moved no SOL to the user, so exactly two deposits exist
    assert IncomingTransfer.objects.filter(wallet=user.wallet).count() == 2
    # and the cursors remember where the scan stopped
    assert DepositCursor.objects.filter(wallet=user.wallet).exclude(last_signature="").count() == 2
    # and the activity shows them as received
    activity = wallet_activity(wallet=user.wallet)
    assert sorted((a.direction, a.token, a.amount) for a in activity) == [
        ("received", "SOL", 250_000_000), ("received", "USDC", 7_000_000)]


def test_a_scan_out_of_time_leaves_the_rest_for_the_next_run(make_user, tokens) -> None:
    user = make_user()
    sol_signature, _ = _outside_sol_transfer(user.wallet.address, 150_000_000)
    # when a run's time budget is already spent before the first wallet
    assert deposit_scan(wallet_limit=10, seconds=0) == 0
    # then nothing was scanned or recorded, and the next run (with time) finds the deposit
    assert not DepositCursor.objects.filter(wallet=user.wallet).exists()
    assert not IncomingTransfer.objects.filter(signature=sol_signature).exists()
    assert deposit_scan(wallet_limit=10, seconds=30) == 1
    assert IncomingTransfer.objects.filter(wallet=user.wallet, signature=sol_signature).count() == 1


def test_the_scan_takes_the_least_recently_scanned_wallets_first(make_user, tokens) -> None:
    from wallets.models import Wallet

    first, second, third = make_user(), make_user(), make_user()
    Wallet.objects.exclude(pk__in=[u.wallet.pk for u in (first, second, third)]).update(
        last_scanned_at=timezone.now())  # (other rows of this database are out of the way)
    # when a run can take one wallet, twice
    deposit_scan(wallet_limit=1)
    deposit_scan(wallet_limit=1)
    # then never-scanned wallets come first, oldest first; then the one scanned longest ago
    scanned = dict(Wallet.objects.filter(pk__in=[first.wallet.pk, second.wallet.pk, third.wallet.pk])
                   .values_list("pk", "last_scanned_at"))
    assert scanned[first.wallet.pk] is not None
    assert scanned[second.wallet.pk] is not None
    assert scanned[third.wallet.pk] is None
    deposit_scan(wallet_limit=1)
    deposit_scan(wallet_limit=1)
    again = dict(Wallet.objects.filter(pk__in=[first.wallet.pk, third.wallet.pk]).values_list("pk", "last_scanned_at"))
    assert again[third.wallet.pk] is not None
    assert again[first.wallet.pk] > scanned[first.wallet.pk]
