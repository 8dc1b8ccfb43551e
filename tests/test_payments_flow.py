"""Gasless payments end to end: API sign-up, faucet, USDC and SOL both ways, a real worker, localnet."""

from __future__ import annotations

import pytest
from solders.pubkey import Pubkey

from numpay.core.solana import get_chain_client
from payments.models import Payment, PaymentAttempt
from relayer.models import SponsorshipCharge
from wallets.models import Wallet
from wallets.program.config import CONFIG_LEN
from wallets.smart import wallet_config_read

from .payments_support import ApiUser, sol_balance, token_balance, transaction_json, wait_terminal

pytestmark = [pytest.mark.chain]


def test_two_users_pay_each_other_usdc_and_sol_with_fees_sponsored(celery_worker, tokens, chain_setup) -> None:
    usdc = tokens["USDC"].mint
    fee_payer = chain_setup["fee_payer"]
    # given two users who signed up through the API and got test funds
    alice, bob = ApiUser("alice@example.com"), ApiUser("bob@example.com")
    alice.faucet("USDC", "100")
    alice.faucet("SOL", "2")
    bob.faucet("USDC", "10")
    fee_payer_before = sol_balance(fee_payer)
    # when Alice pays Bob 12.5 USDC (by email), Bob pays Alice 2.25 USDC (by address), Alice pays Bob 0.5 SOL
    first = alice.pay("bob@example.com", "USDC", "12.5", memo="lunch")
    second = bob.pay(alice.address, "USDC", "2.25")
    third = alice.pay("BOB@example.com", "SOL", "0.5")
    for response in (first, second, third):
        assert response.status_code == 201, response.content
        assert response.json()["network_fee"] == "0"
    ids = [first.json()["id"], second.json()["id"], third.json()["id"]]
    # then the worker confirms all three
    assert wait_terminal(ids) == dict.fromkeys(ids, "confirmed")
    # and the chain holds exactly the expected amounts, to the base unit
    assert token_balance(alice.address, usdc) == 100_000_000 - 12_500_000 + 2_250_000
    assert token_balance(bob.address, usdc) == 10_000_000 + 12_500_000 - 2_250_000
    assert sol_balance(alice.address) == 2_000_000_000 - 500_000_000
    assert sol_balance(bob.address) == 500_000_000
    # and the fee payer paid every fee: it signed first in each transaction and lost exactly the fees
    fees = 0
    for payment_id in ids:
        payment = Payment.objects.get(pk=payment_id)
        tx = transaction_json(payment.signature)
        keys = tx["transaction"]["message"]["accountKeys"]
        first_key = keys[0]["pubkey"] if isinstance(keys[0], dict) else keys[0]
        assert first_key == fee_payer
        assert tx["meta"]["err"] is None
        fees += tx["meta"]["fee"]
    assert fees == 3 * 2 * 5000
    # plus, once per wallet, the rent of the smart wallet's config created with its first payment (Alice's
    # two first payments were in flight together: both carried the create, the second was a no-op)
    config_rent = get_chain_client().minimum_balance_for_rent_exemption(CONFIG_LEN)
    assert sol_balance(fee_payer) == fee_payer_before - fees - 2 * config_rent
    for user in (alice, bob):
        wallet = Wallet.objects.get(address=user.address)
        config = wallet_config_read(client=get_chain_client(), wallet=wallet)
        assert [(a.key, a.permissions) for a in config.authorities] == [(Pubkey.from_string(wallet.authority), 3)]
    # and the API shows the confirmed payment to both sides, with its signature
    shown = alice.get(f"/api/v1/payments/{ids[0]}").json()
    assert shown["status"] == "confirmed"
    assert shown["amount"] == "12.5"
    assert shown["amount_base_units"] == "12500000"
    assert shown["signature"] == Payment.objects.get(pk=ids[0]).signature
    assert shown["confirmed_at"] is not None
    assert bob.get(f"/api/v1/payments/{ids[0]}").json()["direction"] == "received"
    # and sponsorship was settled for each payment, one attempt each
    assert sorted(SponsorshipCharge.objects.values_list("status", flat=True)) == ["settled"] * 3
    assert PaymentAttempt.objects.filter(payment_id__in=ids).count() == 3


def test_usdc_to_an_outside_address_opens_its_token_account_for_the_operator_set_fee(celery_worker, tokens,
                                                                                      chain_setup) -> None:
    from solders.keypair import Keypair

    usdc = tokens["USDC"].mint
    alice = ApiUser("alice2@example.com")
    alice.faucet("USDC", "5")
    fee_account_before = token_balance(chain_setup["fee_payer"], usdc)
    outside = str(Keypair().pubkey())
    # when Alice pays 1.5 USDC to an address outside Numpay that has no USDC account yet
    response = alice.pay(outside, "USDC", "1.5")
    # then she is told the network fee for opening it (0.25 USDC on localnet) and pays it on top
    assert response.status_code == 201, response.content
    assert response.json()["network_fee"] == "0.25"
    payment_id = response.json()["id"]
    assert wait_terminal([payment_id]) == {payment_id: "confirmed"}
    assert token_balance(outside, usdc) == 1_500_000
    assert token_balance(alice.address, usdc) == 5_000_000 - 1_500_000 - 250_000
    assert token_balance(chain_setup["fee_payer"], usdc) == fee_account_before + 250_000
    assert sol_balance(alice.address) == 0  # the user never needed SOL
    # and the fee payer paid the rent in SOL
    payment = Payment.objects.get(pk=payment_id)
    assert payment.creates_recipient_token_account is True
    tx = transaction_json(payment.signature)
    fee_payer_index = 0
    rent_and_fee = tx["meta"]["preBalances"][fee_payer_index] - tx["meta"]["postBalances"][fee_payer_index]
    config_rent = get_chain_client().minimum_balance_for_rent_exemption(CONFIG_LEN)  # Alice's first payment
    assert rent_and_fee == tx["meta"]["fee"] + 2_039_280 + config_rent
