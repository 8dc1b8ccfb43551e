"""Operators set spending policies in the admin, in token units; a payment's decision shows in its admin page."""

from __future__ import annotations

import uuid

import pytest

from accounts.models import User
from payments.models import Payment, SpendingPolicy

from .payments_support import ApiUser

pytestmark = [pytest.mark.django_db, pytest.mark.chain]


@pytest.fixture
def operator(client):  # noqa: ANN001, ANN201
    admin = User.objects.create_superuser(email=f"ops-{uuid.uuid4().hex[:6]}@example.com", password="pw-Numpay-1")
    client.force_login(admin)
    return client


def _form(tokens, **fields) -> dict[str, object]:  # noqa: ANN001, ANN003
    base = {"name": "Standard", "scope": "default", "group": "", "user": "", "token": tokens["USDC"].pk,
            "is_active": "on", "per_transaction_cap": "", "daily_cap": "", "weekly_cap": "", "monthly_cap": "",
            "passkey_above": "", "two_passkeys_above": "", "max_payments_per_hour": "", "allowed_recipients": ""}
    return {**base, **fields}


def test_operator_sets_passkey_above_10_usdc_and_a_payment_shows_its_decision(operator, tokens) -> None:
    # when an operator sets "passkey above 10 USDC" and a daily cap of 100.5 USDC
    response = operator.post("/admin/payments/spendingpolicy/add/",
                             _form(tokens, passkey_above="10", daily_cap="100.5"))
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = SpendingPolicy.objects.get()
    assert (policy.passkey_above, policy.daily_cap, policy.per_transaction_cap) == (10_000_000, 100_500_000, None)
    # then its change page shows them in token units
    page = operator.get(f"/admin/payments/spendingpolicy/{policy.pk}/change/").content.decode()
    assert 'value="100.5"' in page
    assert operator.get("/admin/payments/spendingpolicy/").status_code == 200
    # and a payment of 20 waits for a passkey, its decision in the payment's admin page
    alice, bob = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com"), ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    alice.faucet("USDC", "50")
    assert alice.pay(bob.email, "USDC", "20").json()["status"] == "awaiting_approval"
    payment = Payment.objects.get()
    page = operator.get(f"/admin/payments/payment/{payment.pk}/change/").content.decode()
    assert "passkey_above (default: Standard): limit 10000000, used 20000000 &rarr; approval_required" in page
    assert "passkey approvals required: 1" in page


def test_amount_limits_need_a_token_and_a_valid_amount(operator, tokens) -> None:
    no_token = operator.post("/admin/payments/spendingpolicy/add/", _form(tokens, token="", daily_cap="5"))
    assert no_token.status_code == 200
    assert "Amount limits need a token." in no_token.content.decode()
    bad = operator.post("/admin/payments/spendingpolicy/add/", _form(tokens, daily_cap="1.0000001"))
    assert bad.status_code == 200
    group_without_group = operator.post("/admin/payments/spendingpolicy/add/", _form(tokens, scope="group"))
    assert group_without_group.status_code == 200
    assert "A group policy needs a group" in group_without_group.content.decode()
    assert not SpendingPolicy.objects.exists()
