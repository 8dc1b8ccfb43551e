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
