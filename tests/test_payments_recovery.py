"""Nothing lost, plain-words failures: the sweep finds a payment whose job was lost; a payment that would
fail on chain ends `failed` with a clear reason and its sponsorship released."""

from __future__ import annotations

import pytest
from solders.pubkey import Pubkey

from numpay.core.solana import get_chain_client
from numpay.core.transactions import assemble, compile_message
from payments.models import Payment
from payments.submission import explain_transaction_error
from relayer import outbox
from relayer.models import SponsorshipCharge
from relayer.tasks import outbox_sweep
from wallets import program as wallet_program
from wallets.faucet import faucet_fund
from wallets.services import wallet_sign
from wallets.smart import config_create_instruction, wallet_program_id

from .payments_support import stored_payment, token_balance, wait_terminal

pytestmark = [pytest.mark.chain]


def test_sweep_finds_a_payment_whose_submit_job_was_lost(celery_worker, make_user, tokens, monkeypatch) -> None:
    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=tokens["USDC"], amount=4_000_000)
    # given a payment stored and signed, whose submit job never reached the broker
    payment = stored_payment(sender=alice, to=bob.email, amount="1.5", monkeypatch=monkeypatch)
    assert Payment.objects.get(pk=payment.pk).status == "approved"
    # when the periodic sweep runs
    assert outbox_sweep.apply(kwargs={"stale_seconds": 0}).get() == 1
    # then the payment is sent and confirmed exactly once
    assert wait_terminal([str(payment.pk)]) == {str(payment.pk): "confirmed"}
    assert token_balance(bob.wallet.address, tokens["USDC"].mint) == 1_500_000


def test_payment_that_would_fail_on_chain_ends_failed_in_plain_words(celery_worker, make_user, tokens, monkeypatch,
                                                                      chain_setup) -> None:
    usdc = tokens["USDC"]
    alice, bob, carol = make_user(), make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=usdc, amount=2_000_000)
    faucet_fund(wallet=carol.wallet, token=usdc, amount=1)
    payment = stored_payment(sender=alice, to=bob.email, amount="2", monkeypatch=monkeypatch)
    # given the funds leave the wallet outside Numpay before the payment is sent
    client = get_chain_client()
    from relayer.signer import get_fee_payer

    fee_payer = get_fee_payer()
    authority = Pubkey.from_string(alice.wallet.signing_address)
    message = compile_message(instructions=[
        config_create_instruction(wallet=alice.wallet, payer=fee_payer.pubkey(), tokens=[usdc]),
        wallet_program.execute(wallet_program_id(), authority, authority, [wallet_program.TokenTransfer(
            mint=Pubkey.from_string(usdc.mint), destination=Pubkey.from_string(carol.wallet.address),
            amount=2_000_000, decimals=usdc.decimals, payer=authority)])],
        fee_payer=fee_payer.pubkey(), blockhash=client.latest_blockhash().blockhash)
    tx = assemble(message=message, signatures={fee_payer.pubkey(): fee_payer.sign_message(bytes(message)),
                                               authority: wallet_sign(wallet=alice.wallet, message=bytes(message))})
    client.wait_for_confirmation(client.send_raw_transaction(bytes(tx)))
    # when the payment is submitted
    outbox.submit(kind=outbox.get_kind("payment"), owner_id=payment.pk)
    # then it ends failed with the reason in plain words, and nothing is charged to the sponsorship budget
    failed = Payment.objects.get(pk=payment.pk)
    assert failed.status == "failed"
    assert failed.error_code == "insufficient_funds"
    assert failed.error_message == "The sender's balance was too low when the payment reached the network."
    assert failed.failed_at is not None
    assert SponsorshipCharge.objects.get(reference=payment.pk).status == "released"
    assert token_balance(bob.wallet.address, usdc.mint) == 0


@pytest.mark.parametrize(("err", "is_native", "code"), [
    ({"InstructionError": [0, {"Custom": 1}]}, False, "insufficient_funds"),
    ({"InstructionError": [0, {"Custom": 1}]}, True, "insufficient_funds"),
    ({"InstructionError": [0, {"Custom": 17}]}, False, "account_frozen"),
    ({"InstructionError": [1, {"Custom": 99}]}, False, "program_error"),
    ({"InsufficientFundsForRent": {"account_index": 1}}, True, "insufficient_funds_for_rent"),
    ("InsufficientFundsForFee", True, "fee_payer_unfunded"),
    ("BlockhashNotFound", True, "expired"),
    ("AccountInUse", True, "transaction_error"),
])
def test_transaction_errors_are_explained(err, is_native, code) -> None:
    found, message = explain_transaction_error(err, is_native=is_native)
    assert found == code
    assert message.endswith(".") or message.endswith(")")
