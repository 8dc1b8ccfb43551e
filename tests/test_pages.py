"""Server-rendered pages: landing, send (form -> review -> confirm), payment status, errors, admin."""

from __future__ import annotations

import pytest

from payments.models import Payment

pytestmark = [pytest.mark.django_db]


def test_landing_page_offers_sign_up(client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert b"Create your wallet" in page.content


def test_wallet_pages_require_sign_in(client) -> None:
    for path in ("/wallet/", "/wallet/send/", "/wallet/receive/", "/wallet/activity/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_404_page_is_styled(client, settings) -> None:
    settings.DEBUG = False
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "We couldn't find that page" in response.content.decode()


@pytest.mark.chain
def test_send_flow_review_shows_sponsored_fee_then_creates_one_payment(client, make_user, tokens) -> None:
    from wallets.faucet import faucet_fund

    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=tokens["USDC"], amount=5_000_000)
    client.force_login(alice)
    # when Alice fills the form
    review = client.post("/wallet/send/", {"step": "review", "to": bob.email, "token": "USDC", "amount": "1.25"})
    # then the review shows the amount and "Network fee: sponsored", and nothing is created yet
    assert review.status_code == 200
    html = review.content.decode()
    assert "1.25 USDC" in html
    assert 'data-testid="review-fee">sponsored' in html
    assert Payment.objects.count() == 0
    key = review.context["idempotency_key"]
    # when she confirms (twice, like a double click)
    body = {"step": "confirm", "idempotency_key": str(key), "to": bob.email, "token": "USDC", "amount": "1.25", "memo": ""}
    first = client.post("/wallet/send/", body)
    second = client.post("/wallet/send/", body)
    # then one payment exists and both land on its page
    payment = Payment.objects.get()
    assert first["Location"] == second["Location"] == f"/wallet/payments/{payment.pk}/"
    page = client.get(first["Location"])
    assert b"1.25 USDC" in page.content
    assert b'hx-trigger="every 1s"' in page.content  # live status updates until final


@pytest.mark.chain
def test_send_form_shows_inline_error_and_creates_nothing(client, make_user, tokens) -> None:
    alice = make_user()
    client.force_login(alice)
    response = client.post("/wallet/send/", {"step": "review", "to": "not-an-address", "token": "USDC", "amount": "1"})
    assert response.status_code == 200
    assert b'data-code="invalid_address"' in response.content
    assert b"That is not a valid Solana address" in response.content
    assert Payment.objects.count() == 0


def test_other_users_payment_page_is_404(client, make_user) -> None:
    import uuid

    client.force_login(make_user())
    assert client.get(f"/wallet/payments/{uuid.uuid4()}/").status_code == 404


@pytest.mark.chain
def test_admin_shows_wallet_without_key_material(admin_client, make_user, tokens) -> None:
    from wallets.models import WalletKey

    user = make_user()
    key = WalletKey.objects.get(wallet=user.wallet)
    page = admin_client.get(f"/admin/wallets/wallet/{user.wallet.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert user.wallet.address in html
    assert "Balances (live from the chain)" in html
    assert "0 SOL" in html
    assert bytes(key.ciphertext).hex() not in html
    assert "ciphertext" not in html.lower()
    assert "wrapped" not in html.lower()
    for path in ("/admin/payments/payment/", "/admin/wallets/token/", "/admin/accounts/user/", "/admin/relayer/feepayer/"):
        assert admin_client.get(path).status_code == 200


@pytest.mark.chain
def test_admin_payment_page_is_read_only_and_recheck_is_audited(admin_client, make_user, tokens, monkeypatch) -> None:
    from django.contrib.admin.models import LogEntry

    from wallets.faucet import faucet_fund

    from .payments_support import stored_payment

    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=tokens["USDC"], amount=2_000_000)
    payment = stored_payment(sender=alice, to=bob.email, amount="1", monkeypatch=monkeypatch)
    page = admin_client.get(f"/admin/payments/payment/{payment.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "1 USDC" in html
    assert 'name="amount"' not in html  # money fields are not editable
    assert payment.signature in html
    sent = []
    monkeypatch.setattr("relayer.tasks.outbox_check.delay", lambda kind, owner_id: sent.append((kind, owner_id)))
    response = admin_client.post("/admin/payments/payment/", {"action": "recheck_status",
                                                             "_selected_action": [str(payment.pk)]})
    assert response.status_code == 302
    assert sent == [("payment", str(payment.pk))]
    assert LogEntry.objects.filter(object_id=str(payment.pk), change_message="Re-check status requested").count() == 1


# --- issue 7 item 5: pages handle ApplicationError in one place; a GET never writes ---

def _row_counts() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        counts = {}
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608 - table names
            counts[table] = cursor.fetchone()[0]
    return counts


@pytest.mark.parametrize("path", ["/wallet/", "/wallet/receive/", "/wallet/activity/", "/wallet/balances/"])
def test_operator_without_a_wallet_gets_a_clear_page_and_no_wallet(client, path: str) -> None:
    from accounts.models import User
    from wallets.models import Wallet

    operator = User.objects.create_superuser(email="operator@example.com", password="pw-Numpay-1")
    client.force_login(operator)
    before = _row_counts()
    # when the operator opens a wallet page
    response = client.get(path)
    # then a 404 page says the account has no wallet (not a 500), and nothing was created
    assert response.status_code == 404
    html = response.content.decode()
    assert "This account has no wallet." in html
    assert 'data-code="wallet_not_found"' in html
    assert "/admin/" in html  # operators are pointed at the admin
    assert Wallet.objects.count() == 0
    assert _row_counts() == before


@pytest.mark.chain
def test_get_of_every_page_and_api_read_creates_no_rows(client, admin_client, make_user, tokens, monkeypatch) -> None:
    from wallets.faucet import faucet_fund

    from .payments_support import stored_payment

    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=tokens["USDC"], amount=2_000_000)
    payment = stored_payment(sender=alice, to=bob.email, amount="1", monkeypatch=monkeypatch)
    client.force_login(alice)
    paths = ["/", "/wallet/", "/wallet/balances/", "/wallet/receive/", "/wallet/send/", "/wallet/activity/",
             f"/wallet/payments/{payment.pk}/", "/api/v1/wallet", "/api/v1/payments", f"/api/v1/payments/{payment.pk}",
             "/api/schema/", "/api/docs/", "/no-such-page/"]
    before = _row_counts()
    # when every page and API read is fetched (twice: the second read comes from the balance cache)
    statuses = [client.get(path).status_code for path in paths + paths]
    # then they answer and no table gained or lost a row
    assert statuses == [302, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 404] * 2
    assert _row_counts() == before
    # and the same for a visitor and for an operator in the admin
    client.logout()
    before = _row_counts()
    anonymous = ["/", "/accounts/login/", "/accounts/signup/", "/api/docs/", "/api/v1/wallet", "/wallet/"]
    assert [client.get(path).status_code for path in anonymous] == [200, 200, 200, 200, 401, 302]
    assert _row_counts() == before
    admin_client.get("/admin/")  # the admin's first request logs in (a session row): count after it
    before = _row_counts()
    admin = ["/admin/", f"/admin/wallets/wallet/{alice.wallet.pk}/change/", "/admin/payments/payment/",
             f"/admin/payments/payment/{payment.pk}/change/", "/admin/relayer/feepayer/"]
    assert [admin_client.get(path).status_code for path in admin] == [200] * len(admin)
    assert _row_counts() == before


@pytest.mark.chain
def test_faucet_page_and_api_share_one_rate_limit(client, make_user, tokens, settings) -> None:
    from django.core.cache import cache

    from .payments_support import token_balance

    settings.API_THROTTLE_FAUCET = "1/min"
    alice = make_user()
    cache.delete(f"throttle_faucet_{alice.pk}")
    client.force_login(alice)
    # given Alice used her one faucet request of the minute through the API
    first = client.post("/api/v1/faucet", {"token": "USDC", "amount": "5"}, content_type="application/json")
    assert first.status_code == 201
    # when she presses the faucet button on the page (plain form post, then htmx)
    page = client.post("/wallet/faucet/", {"token": "USDC", "amount": "7"})
    htmx = client.post("/wallet/faucet/", {"token": "USDC", "amount": "7"}, HTTP_HX_REQUEST="true")
    # then she is refused and nothing more is minted
    assert page.status_code == 429
    assert 'data-code="rate_limited"' in page.content.decode()
    assert htmx.status_code == 200
    assert "You have used the test faucet too often." in htmx.content.decode()
    assert token_balance(alice.wallet.address, tokens["USDC"].mint) == 5_000_000
    # and the API is refused too (one allowance for both)
    api = client.post("/api/v1/faucet", {"token": "USDC", "amount": "5"}, content_type="application/json")
    assert api.status_code == 429
    assert api.json()["code"] == "throttled"


@pytest.mark.chain
def test_faucet_page_spends_the_allowance_the_api_then_lacks(client, make_user, tokens, settings) -> None:
    from django.core.cache import cache

    settings.API_THROTTLE_FAUCET = "1/min"
    alice = make_user()
    cache.delete(f"throttle_faucet_{alice.pk}")
    client.force_login(alice)
    assert client.post("/wallet/faucet/", {"token": "USDC", "amount": "3"}).status_code == 302
    api = client.post("/api/v1/faucet", {"token": "USDC", "amount": "3"}, content_type="application/json")
    assert api.status_code == 429
    assert int(api["Retry-After"]) > 0
