"""Smart wallets on real localnet with the real wallet program: provisioning (a vault address at once, the
config with the first payment), payments as ``execute``, and the chain's limits holding even when the
server is told to sign more."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from solders.pubkey import Pubkey

from numpay.core.solana import get_chain_client
from payments import state_machine
from payments.models import Payment
from payments.requests import PaymentRequest
from payments.services import payment_create
from payments.transactions import payment_sign_attempt
from relayer import outbox
from relayer.models import SponsorshipCharge
from wallets.faucet import faucet_fund
from wallets.models import Wallet
from wallets.program import config_address, vault_address
from wallets.smart import wallet_config_read, wallet_program_id

from .payments_support import token_balance, wait_terminal

pytestmark = [pytest.mark.chain]

LOW_LIMITS = "USDC=5/8,SOL=1/1"


def test_a_new_wallet_is_a_vault_of_the_program_that_receives_at_once(make_user, tokens) -> None:
    # given a user who just signed up
    alice = make_user()
    wallet = alice.wallet
    # then the address is the vault PDA of the config of her custody key, and nothing exists on-chain yet
    config, _ = config_address(wallet_program_id(), Pubkey.from_string(wallet.authority))
    assert (wallet.kind, wallet.config_address) == ("smart", str(config))
    assert wallet.address == str(vault_address(wallet_program_id(), config)[0])
    assert not Pubkey.from_string(wallet.address).is_on_curve()
    assert get_chain_client().get_account_info(config) is None
    # when someone sends her USDC
    faucet_fund(wallet=wallet, token=tokens["USDC"], amount=3_000_000)
    # then she holds it at once, with still no config
    assert token_balance(wallet.address, tokens["USDC"].mint) == 3_000_000
    assert wallet_config_read(client=get_chain_client(), wallet=wallet) is None


@override_settings(NUMPAY_WALLET_LIMITS=LOW_LIMITS)
def test_the_first_payment_creates_the_config_with_the_limits_from_settings(celery_worker, make_user, tokens) -> None:
    usdc = tokens["USDC"]
    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=usdc, amount=20_000_000)
    # when Alice pays Bob 3 USDC
    payment, _ = payment_create(user=alice, request=PaymentRequest(to=bob.email, token="USDC", amount="3"),
                                idempotency_key=str(uuid.uuid4()))
    assert wait_terminal([payment.id]) == {str(payment.id): "confirmed"}
    # then her config exists: her custody key is the only authority (spend + manage) with the set limits
    config = wallet_config_read(client=get_chain_client(), wallet=alice.wallet)
    authority = Pubkey.from_string(alice.wallet.authority)
    assert [(a.key, a.permissions) for a in config.authorities] == [(authority, 3)]
    limit = config.limit(authority, Pubkey.from_string(usdc.mint))
    assert (limit.per_transaction_cap, limit.period_cap, limit.period_seconds, limit.spent) == (
        5_000_000, 8_000_000, 86_400, 3_000_000)
    assert config.nonce == 0  # the nonce counts passkey-approved actions only
    assert token_balance(bob.wallet.address, usdc.mint) == 3_000_000


@override_settings(NUMPAY_WALLET_LIMITS=LOW_LIMITS)
def test_a_payment_over_the_on_chain_limit_ends_failed_in_plain_words(celery_worker, make_user, tokens) -> None:
    usdc = tokens["USDC"]
    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=usdc, amount=20_000_000)
    # when Alice pays 6 USDC, above her wallet's per-payment limit of 5
    payment, _ = payment_create(user=alice, request=PaymentRequest(to=bob.email, token="USDC", amount="6"),
                                idempotency_key=str(uuid.uuid4()))
    # then the chain refuses it and it ends failed with the program's sentence; nothing moved
    assert wait_terminal([payment.id]) == {str(payment.id): "failed"}
    payment.refresh_from_db()
    assert payment.error_code == "wallet_limit_exceeded"
    assert payment.error_message == "The amount is above the wallet's per-payment limit."
    assert token_balance(alice.wallet.address, usdc.mint) == 20_000_000
    assert token_balance(bob.wallet.address, usdc.mint) == 0


@override_settings(NUMPAY_WALLET_LIMITS=LOW_LIMITS)
def test_an_over_limit_payment_is_refused_on_chain_even_when_the_server_signs_it(celery_worker, make_user,
                                                                                 tokens) -> None:
    usdc = tokens["USDC"]
    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=usdc, amount=20_000_000)
    first, _ = payment_create(user=alice, request=PaymentRequest(to=bob.email, token="USDC", amount="5"),
                              idempotency_key=str(uuid.uuid4()))
    assert wait_terminal([first.id]) == {str(first.id): "confirmed"}
    # given a server that skips every check of its own (a bug or a breach): a payment of 4 USDC, within
    # the per-payment cap but above what remains of the daily cap (8 - 5), signed by the signing service
    payment = Payment.objects.create(
        sender=alice, wallet=alice.wallet, recipient_input=bob.email, recipient_address=bob.wallet.address,
        recipient_wallet=bob.wallet, token=usdc, amount=4_000_000, expires_at=timezone.now() + timedelta(minutes=5))
    state_machine.record_created(payment)
    attempt = payment_sign_attempt(payment=payment, blockhash=get_chain_client().latest_blockhash(), number=1,
                                   reserve=True)
    state_machine.transition(payment, Payment.Status.APPROVED, note="told to sign")
    payment.signature = attempt.signature
    payment.save()
    # when it is submitted
    outbox.submit(kind=outbox.get_kind("payment"), owner_id=payment.pk)
    # then the chain refuses it: the payment ends failed in plain words, and nothing left Alice's vault
    assert wait_terminal([payment.id]) == {str(payment.id): "failed"}
    payment.refresh_from_db()
    assert payment.error_code == "wallet_limit_exceeded"
    assert payment.error_message == "The amount is above what the wallet may still send this period."
    assert token_balance(alice.wallet.address, usdc.mint) == 15_000_000
    assert token_balance(bob.wallet.address, usdc.mint) == 5_000_000
    config = wallet_config_read(client=get_chain_client(), wallet=alice.wallet)
    assert config.limit(Pubkey.from_string(alice.wallet.authority), Pubkey.from_string(usdc.mint)).spent == 5_000_000
    assert SponsorshipCharge.objects.get(reference=payment.pk).status in ("released", "settled")


@override_settings(NUMPAY_WALLET_LIMITS=LOW_LIMITS)
def test_the_api_page_and_admin_show_the_wallets_on_chain_rules(celery_worker, tokens, admin_client) -> None:
    from django.test import Client

    from .payments_support import ApiUser

    alice, bob = ApiUser("rules-alice@example.com"), ApiUser("rules-bob@example.com")
    alice.faucet("USDC", "10")
    wallet = Wallet.objects.get(address=alice.address)
    # given a wallet whose config is not created yet: the rules its first payment will write
    before = alice.get("/api/v1/wallet").json()
    assert (before["kind"], before["previous_address"]) == ("smart", "")
    assert before["rules"]["is_created"] is False
    assert before["rules"]["authorities"][0]["key"] == wallet.authority
    assert before["rules"]["authorities"][0]["limits"][0]["spent_this_period"] == "0"
    # when Alice pays 3 USDC
    paid = alice.pay(bob.email, "USDC", "3")
    assert wait_terminal([paid.json()["id"]]) == {paid.json()["id"]: "confirmed"}
    # then the API shows the rules as the chain holds them, with what was spent this period
    rules = alice.get("/api/v1/wallet").json()["rules"]
    assert (rules["is_created"], rules["nonce"], rules["config_address"]) == (True, 0, wallet.config_address)
    assert rules["program_id"] == str(wallet_program_id())
    [authority] = rules["authorities"]
    assert (authority["key"], authority["permissions"], authority["expires_at"], authority["is_custody_key"]) == (
        wallet.authority, ["spend", "manage"], None, True)
    usdc = next(limit for limit in authority["limits"] if limit["token"] == "USDC")
    assert (usdc["per_transaction"], usdc["per_period"], usdc["period_seconds"], usdc["spent_this_period"]) == (
        "5", "8", 86_400, "3")
    assert usdc["period_started_at"] is not None
    # and the wallet's home shows them (below the balance and activity); Receive has the address and QR code
    browser = Client()
    browser.force_login(wallet.user)
    page = browser.get("/wallet/").content.decode()
    assert '<tr data-testid="limit-USDC"><td>USDC</td><td>5</td><td>8</td><td>3</td></tr>' in page
    receive = browser.get("/wallet/receive/").content.decode()
    assert 'data-testid="wallet-qr"' in receive
    assert wallet.address in receive
    # and the admin shows them read-only
    admin_page = admin_client.get(f"/admin/wallets/wallet/{wallet.pk}/change/").content.decode()
    assert "USDC 5/payment, 8/86400s, spent 3" in admin_page
    assert 'name="authority"' not in admin_page
    assert 'name="config_address"' not in admin_page
