"""Keypair wallets keep working, and ``manage.py upgrade_wallets`` (idempotent, resumable) turns them into
smart wallets owned by the same custody key, moving their funds; the old address stays as previous."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from numpay.core.errors import ConflictError
from numpay.core.solana import get_chain_client
from payments.models import Payment
from payments.requests import PaymentRequest
from payments.services import payment_create
from wallets import custody
from wallets.faucet import faucet_fund
from wallets.models import Wallet, WalletKey
from wallets.smart import smart_wallet_addresses, wallet_config_read
from wallets.upgrade import wallet_upgrade_switch

from .payments_support import sol_balance, token_balance, wait_terminal

pytestmark = [pytest.mark.chain]


def keypair_wallet_user(email: str) -> User:
    """A user with a wallet as Numpay made them before smart wallets: the custody key's own address."""
    user = User.objects.create_user(email=email, password="pw-Numpay-1")  # noqa: S106
    wallet_id = uuid.uuid4()
    address, envelope = custody.new_keypair_envelope(wallet_id=wallet_id)
    wallet = Wallet.objects.create(id=wallet_id, user=user, address=address, authority=address)
    WalletKey.objects.create(wallet=wallet, ciphertext=envelope.ciphertext, wrapped_data_key=envelope.wrapped_data_key,
                             kek_id=envelope.kek_id)
    return user


def _pay(user: User, to: str, amount: str) -> Payment:
    payment, _ = payment_create(user=user, request=PaymentRequest(to=to, token="USDC", amount=amount),
                                idempotency_key=str(uuid.uuid4()))
    return payment


def test_a_keypair_wallet_keeps_paying_then_is_upgraded_with_its_funds(celery_worker, make_user, tokens) -> None:
    usdc = tokens["USDC"]
    alice, bob = keypair_wallet_user("old-alice@example.com"), make_user()
    old = alice.wallet.address
    faucet_fund(wallet=alice.wallet, token=usdc, amount=7_000_000)
    faucet_fund(wallet=alice.wallet, token=tokens["SOL"], amount=1_000_000_000)
    # given the keypair wallet still pays as before
    first = _pay(alice, bob.email, "1")
    assert wait_terminal([first.id]) == {str(first.id): "confirmed"}
    # when the operator upgrades the wallets
    out = io.StringIO()
    call_command("upgrade_wallets", stdout=out)
    # then Alice's address is the vault of her custody key's config, the old one is her previous address
    wallet = Wallet.objects.get(user=alice)
    config, vault = smart_wallet_addresses(authority=old)
    assert (wallet.kind, wallet.address, wallet.previous_address, wallet.config_address, wallet.authority) == (
        "smart", vault, old, config, old)
    # and her funds moved there, to the base unit
    assert token_balance(vault, usdc.mint) == 6_000_000
    assert sol_balance(vault) == 1_000_000_000
    assert (token_balance(old, usdc.mint), sol_balance(old)) == (0, 0)
    assert f"{old} -> {vault}: 6000000 USDC, 1000000000 SOL" in out.getvalue()
    # when it runs again, nothing changes
    call_command("upgrade_wallets", stdout=io.StringIO())
    assert Wallet.objects.get(user=alice).address == vault
    assert token_balance(vault, usdc.mint) == 6_000_000
    # and funds sent to the old address later are swept by the next run
    faucet_fund(wallet=Wallet(address=old), token=usdc, amount=500_000)
    call_command("upgrade_wallets", stdout=io.StringIO())
    assert (token_balance(vault, usdc.mint), token_balance(old, usdc.mint)) == (6_500_000, 0)
    # and the upgraded wallet pays through the program, its config created by that payment
    alice.refresh_from_db()
    second = _pay(alice, bob.email, "2")
    assert wait_terminal([second.id]) == {str(second.id): "confirmed"}
    assert token_balance(bob.wallet.address, usdc.mint) == 3_000_000
    assert wallet_config_read(client=get_chain_client(), wallet=Wallet.objects.get(user=alice)) is not None


def test_an_interrupted_upgrade_resumes_and_an_open_payment_blocks_it(transactional_db, tokens, make_user) -> None:
    usdc = tokens["USDC"]
    alice, carol, bob = (keypair_wallet_user("a2@example.com"), keypair_wallet_user("c2@example.com"), make_user())
    faucet_fund(wallet=alice.wallet, token=usdc, amount=2_000_000)
    # given an upgrade interrupted after the switch, before the funds moved
    switched = wallet_upgrade_switch(wallet=alice.wallet)
    assert token_balance(switched.address, usdc.mint) == 0
    # and Carol has a payment in progress
    Payment.objects.create(sender=carol, wallet=carol.wallet, recipient_input=bob.email,
                           recipient_address=bob.wallet.address, recipient_wallet=bob.wallet, token=usdc,
                           amount=1, expires_at=timezone.now() + timedelta(minutes=5))
    # when the command runs
    err = io.StringIO()
    call_command("upgrade_wallets", stdout=io.StringIO(), stderr=err)
    # then Alice's funds are moved, and Carol's wallet is left as it was and reported
    assert token_balance(switched.address, usdc.mint) == 2_000_000
    assert token_balance(switched.previous_address, usdc.mint) == 0
    assert Wallet.objects.get(user=carol).kind == "keypair"
    assert "payment in progress" in err.getvalue()
    with pytest.raises(ConflictError) as caught:
        wallet_upgrade_switch(wallet=carol.wallet)
    assert caught.value.code == "wallet_upgrade_blocked"
