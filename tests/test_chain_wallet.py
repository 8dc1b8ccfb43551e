"""Wallet balances and the faucet against the real localnet chain, through the API and the chain client."""

from __future__ import annotations

import pytest

from numpay.core.solana import get_chain_client

pytestmark = [pytest.mark.django_db, pytest.mark.chain]


def _api_login(client, user) -> None:  # noqa: ANN001
    client.force_login(user)


def test_wallet_api_shows_address_and_zero_balances(client, make_user, tokens) -> None:
    user = make_user()
    client.force_login(user)
    response = client.get("/api/v1/wallet")
    assert response.status_code == 200
    body = response.json()
    assert body["address"] == user.wallet.address
    assert body["custody"] == "custodial"
    assert body["balances"] == [
        {"token": "SOL", "mint": "", "amount": "0", "decimals": 9, "ui_amount": "0"},
        {"token": "USDC", "mint": tokens["USDC"].mint, "amount": "0", "decimals": 6, "ui_amount": "0"},
    ]


def test_faucet_mints_usdc_and_balance_matches_chain(client, make_user, tokens) -> None:
    user = make_user()
    client.force_login(user)
    # when the user asks the faucet for 100 USDC
    response = client.post("/api/v1/faucet", {"token": "USDC", "amount": "100"}, content_type="application/json")
    # then the chain holds exactly 100_000_000 base units for them and the API says so
    assert response.status_code == 201, response.content
    assert response.json()["amount"] == "100000000"
    from solders.pubkey import Pubkey

    chain = get_chain_client()
    owner, mint = Pubkey.from_string(user.wallet.address), Pubkey.from_string(tokens["USDC"].mint)
    assert chain.get_token_balance(owner, mint) == 100_000_000
    usdc = next(b for b in client.get("/api/v1/wallet").json()["balances"] if b["token"] == "USDC")
    assert usdc == {"token": "USDC", "mint": tokens["USDC"].mint, "amount": "100000000", "decimals": 6, "ui_amount": "100"}


@pytest.mark.parametrize(("body", "code"), [
    ({"token": "USDC", "amount": "0"}, "amount_not_positive"),
    ({"token": "USDC", "amount": "1.0000001"}, "too_many_decimals"),
    ({"token": "DOGE", "amount": "1"}, "unknown_token"),
    ({"token": "USDC", "amount": "100000"}, "faucet_limit_exceeded"),
    ({"token": "USDC"}, "invalid_request"),
])
def test_faucet_refusals_change_nothing(client, make_user, tokens, body, code) -> None:
    user = make_user()
    client.force_login(user)
    response = client.post("/api/v1/faucet", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response["Content-Type"] == "application/problem+json"
    from solders.pubkey import Pubkey

    assert get_chain_client().get_token_balance(Pubkey.from_string(user.wallet.address),
                                                Pubkey.from_string(tokens["USDC"].mint)) == 0


def test_faucet_is_404_off_localnet(client, make_user, tokens, settings) -> None:
    client.force_login(make_user())
    settings.SOLANA_CLUSTER = "devnet"
    response = client.post("/api/v1/faucet", {"token": "USDC", "amount": "1"}, content_type="application/json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_api_requires_authentication(client, tokens) -> None:
    for path in ("/api/v1/wallet", "/api/v1/faucet"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


def test_each_user_only_sees_their_own_wallet(client, make_user, tokens) -> None:
    alice, bob = make_user(), make_user()
    client.force_login(bob)
    assert client.get("/api/v1/wallet").json()["address"] == bob.wallet.address != alice.wallet.address


def test_headless_session_token_reads_wallet(client, tokens) -> None:
    response = client.post("/_allauth/app/v1/auth/signup", {"email": "tok@example.com", "password": "correct-Horse-9"},
                           content_type="application/json")
    token = response.json()["meta"]["session_token"]
    client.logout()
    me = client.get("/api/v1/wallet", HTTP_X_SESSION_TOKEN=token)
    assert me.status_code == 200
    assert me.json()["balances"][0]["token"] == "SOL"


def test_home_shows_balances_and_actions_and_receive_shows_address_and_qr(client, make_user, tokens) -> None:
    user = make_user()
    client.force_login(user)
    page = client.get("/wallet/").content.decode()
    assert 'data-testid="balance-USDC"' in page
    assert '<span class="amount" title="0 USDC">0.00</span>' in page
    assert page.index('data-testid="balance-USDC"') < page.index('data-testid="send-link"') < page.index(
        'data-testid="receive-link"') < page.index('id="activity-list"')
    assert "Get 100 test USDC" in page
    receive = client.get("/wallet/receive/").content.decode()
    assert user.wallet.address in receive
    assert 'data-testid="wallet-qr"' in receive
