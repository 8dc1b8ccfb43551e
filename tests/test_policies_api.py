"""Spending policies through the API on a real localnet: refusals with codes and sentences (nothing reserved
afterwards), the stored decision, approvals waiting reserved, cancel / expiry releasing, tiers, own limits."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import User
from payments.models import Payment, SpendingPolicy
from payments.policy_services import wallet_usage
from payments.services import payments_expire_due

from .payments_support import ApiUser

pytestmark = [pytest.mark.django_db, pytest.mark.chain]
USDC = 1_000_000


@pytest.fixture
def funded(tokens) -> tuple[ApiUser, ApiUser]:  # noqa: ANN001
    alice, bob = ApiUser(f"alice-{uuid.uuid4().hex[:8]}@example.com"), ApiUser(f"bob-{uuid.uuid4().hex[:8]}@example.com")
    alice.faucet("USDC", "100")
    return alice, bob


def _default(tokens, **limits) -> SpendingPolicy:  # noqa: ANN001, ANN003
    return SpendingPolicy.objects.create(name="Standard", scope="default", token=tokens["USDC"], **limits)


def _sent(alice: ApiUser) -> list[str]:
    return list(Payment.objects.filter(sender__email=alice.email).order_by("created_at").values_list("status", flat=True))


def test_daily_cap_refusal_says_what_is_left_and_reserves_nothing(funded, tokens) -> None:
    alice, bob = funded
    _default(tokens, daily_cap=10 * USDC)
    # given 6 USDC sent today
    first = alice.pay(bob.email, "USDC", "6")
    assert first.status_code == 201, first.content
    assert first.json()["policy"] == {"outcome": "pass", "approvals_required": 0, "checks": [
        {"rule": "daily_cap", "policy": "default: Standard", "limit": "10000000", "used": "0", "outcome": "pass"}]}
    # when 5 more are asked for
    response = alice.pay(bob.email, "USDC", "5")
    # then it is refused with the rule and a plain sentence, and nothing more is reserved
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["detail"]) == ("limit_exceeded", "You can send 4 more USDC today.")
    assert (body["rule"], body["limit"], body["used"]) == ("daily_cap", "10000000", "6000000")
    assert _sent(alice) == ["approved"]
    assert wallet_usage(wallet=Payment.objects.get().wallet, token=tokens["USDC"]).spent["daily_cap"] == 6 * USDC


def test_per_transaction_cap_and_velocity_and_allowlist(funded, tokens) -> None:
    alice, bob = funded
    carol = f"carol-{uuid.uuid4().hex[:6]}@example.com"
    _default(tokens, per_transaction_cap=3 * USDC)
    SpendingPolicy.objects.create(name="Slow", scope="default", max_payments_per_hour=2, allowlist_only=True,
                                  allowed_recipients=f"{bob.email.upper()}\n{carol}")
    response = alice.pay(bob.email, "USDC", "3.000001")
    assert (response.status_code, response.json()["code"]) == (400, "limit_exceeded")
    assert response.json()["detail"] == "You can send at most 3 USDC in one payment."
    stranger = alice.pay(f"dave-{uuid.uuid4().hex[:6]}@example.com", "USDC", "1")
    assert (stranger.status_code, stranger.json()["code"]) == (400, "recipient_not_allowed")
    assert _sent(alice) == []
    assert alice.pay(bob.email, "USDC", "1").status_code == 201
    assert alice.pay(carol, "USDC", "1").status_code == 201
    third = alice.pay(bob.email, "USDC", "1")
    assert (third.status_code, third.json()["code"]) == (429, "velocity_exceeded")
    assert third.json()["detail"] == "You can make at most 2 payments an hour; try again later."
    assert len(_sent(alice)) == 2


def test_passkey_threshold_waits_reserved_and_cancel_releases(funded, tokens) -> None:
    alice, bob = funded
    _default(tokens, daily_cap=25 * USDC, passkey_above=10 * USDC, two_passkeys_above=50 * USDC)
    # when 20 USDC are sent (above the passkey threshold)
    response = alice.pay(bob.email, "USDC", "20")
    assert response.status_code == 201, response.content
    payment = response.json()
    assert payment["status"] == "awaiting_approval"
    assert payment["signature"] == ""
    assert payment["expires_at"] is not None
    assert payment["policy"]["outcome"] == "approval_required"
    assert payment["policy"]["approvals_required"] == 1
    # then it is reserved against the daily cap
    refused = alice.pay(bob.email, "USDC", "10")
    assert refused.json()["detail"] == "You can send 5 more USDC today."
    # and its page offers to cancel it
    alice.client.force_login(User.objects.get(email=alice.email))
    page = alice.client.get(f"/wallet/payments/{payment['id']}/")
    assert b'data-testid="payment-cancel"' in page.content
    assert b"One of your passkeys must approve this payment." in page.content
    # when the sender cancels it
    cancelled = alice.post(f"/api/v1/payments/{payment['id']}/cancel", {})
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["error"]["code"]) == ("rejected", "payment_cancelled")
    assert alice.post(f"/api/v1/payments/{payment['id']}/cancel", {}).json()["status"] == "rejected"
    # then the reservation is released: 10 fit again, and no approval is needed at 10
    again = alice.pay(bob.email, "USDC", "10")
    assert again.status_code == 201
    assert again.json()["status"] == "approved"
    # an approved payment cannot be cancelled, nor can someone else's
    late = alice.post(f"/api/v1/payments/{again.json()['id']}/cancel", {})
    assert (late.status_code, late.json()["code"]) == (409, "payment_not_cancellable")
    assert bob.post(f"/api/v1/payments/{again.json()['id']}/cancel", {}).status_code == 404
    assert _sent(alice) == ["rejected", "approved"]


def test_two_passkeys_above_the_second_threshold(funded, tokens) -> None:
    alice, bob = funded
    _default(tokens, passkey_above=10 * USDC, two_passkeys_above=50 * USDC)
    response = alice.pay(bob.email, "USDC", "60")
    assert response.json()["status"] == "awaiting_approval"
    assert response.json()["policy"]["approvals_required"] == 2
    assert Payment.objects.get().events.last().note == "policy: 2 distinct passkey approvals required"


def test_expiry_releases_the_reservation(funded, tokens) -> None:
    alice, bob = funded
    _default(tokens, daily_cap=20 * USDC, passkey_above=1 * USDC)
    assert alice.pay(bob.email, "USDC", "15").json()["status"] == "awaiting_approval"
    assert alice.pay(bob.email, "USDC", "10").json()["code"] == "limit_exceeded"
    # when the approval window passes
    assert payments_expire_due(now=timezone.now() + timedelta(days=1)) == 1
    # then the 15 are released
    assert alice.pay(bob.email, "USDC", "10").status_code == 201
    assert _sent(alice) == ["expired", "awaiting_approval"]


def test_ledger_counts_reserved_and_committed_inside_the_window_only(funded, tokens) -> None:
    alice, bob = funded
    _default(tokens, passkey_above=0)  # nothing is signed: the test sets the outcomes itself
    for _ in range(6):
        assert alice.pay(bob.email, "USDC", "1").status_code == 201
    rows = list(Payment.objects.filter(sender__email=alice.email).order_by("created_at"))
    for payment, status in zip(rows, ["confirmed", "failed", "expired", "rejected", "submitted"], strict=False):
        Payment.objects.filter(pk=payment.pk).update(status=status)
    Payment.objects.filter(pk=rows[0].pk).update(created_at=timezone.now() - timedelta(days=2))  # confirmed, 2 days ago
    usage = wallet_usage(wallet=rows[0].wallet, token=tokens["USDC"])
    # today: submitted + awaiting_approval (reserved); this week and month: plus the confirmed one (committed)
    assert usage.spent == {"daily_cap": 2 * USDC, "weekly_cap": 3 * USDC, "monthly_cap": 3 * USDC}
    assert usage.payments_last_hour == 5


def test_group_tier_overrides_the_default_and_a_user_policy_overrides_both(funded, tokens) -> None:
    alice, bob = funded
    user = User.objects.get(email=alice.email)
    _default(tokens, per_transaction_cap=1 * USDC)
    gold = Group.objects.create(name=f"gold-{uuid.uuid4().hex[:6]}")
    user.groups.add(gold)
    SpendingPolicy.objects.create(name="Gold", scope="group", group=gold, token=tokens["USDC"],
                                  per_transaction_cap=5 * USDC)
    assert alice.pay(bob.email, "USDC", "5").status_code == 201
    assert alice.pay(bob.email, "USDC", "6").json()["detail"] == "You can send at most 5 USDC in one payment."
    SpendingPolicy.objects.create(name="Alice", scope="user", user=user, token=tokens["USDC"],
                                  per_transaction_cap=2 * USDC)
    refused = alice.pay(bob.email, "USDC", "3")
    assert (refused.json()["code"], refused.json()["detail"]) == ("limit_exceeded",
                                                                   "You can send at most 2 USDC in one payment.")


def test_own_limits_tighten_only(funded, tokens) -> None:
    alice, bob = funded
    _default(tokens, daily_cap=50 * USDC)
    # above the operator's limit: refused
    above = alice.client.put("/api/v1/wallet/limits", {"token": "USDC", "daily_cap": "60"},
                             content_type="application/json", HTTP_X_SESSION_TOKEN=alice.token)
    assert (above.status_code, above.json()["code"]) == (400, "limit_not_tighter")
    assert not SpendingPolicy.objects.filter(scope="own").exists()
    # tightening: saved and enforced
    ok = alice.client.put("/api/v1/wallet/limits", {"token": "USDC", "daily_cap": "8", "per_transaction_cap": "5"},
                          content_type="application/json", HTTP_X_SESSION_TOKEN=alice.token)
    assert ok.status_code == 200, ok.content
    assert ok.json()["own"]["daily_cap"] == "8"
    assert ok.json()["operator"]["daily_cap"] == "50"
    refused = alice.pay(bob.email, "USDC", "9")
    assert refused.json()["detail"] == "You can send at most 5 USDC in one payment."
    assert alice.pay(bob.email, "USDC", "5").status_code == 201
    assert alice.pay(bob.email, "USDC", "4").json()["detail"] == "You can send 3 more USDC today."
    # loosening or removing an own limit: refused, unchanged
    for body in ({"daily_cap": "9"}, {"daily_cap": None}, {"daily_cap": ""}):
        response = alice.client.put("/api/v1/wallet/limits", {"token": "USDC", **body},
                                    content_type="application/json", HTTP_X_SESSION_TOKEN=alice.token)
        assert (response.status_code, response.json()["code"]) == (400, "limit_not_tighter"), body
    assert SpendingPolicy.objects.get(scope="own").daily_cap == 8 * USDC
    listing = alice.get("/api/v1/wallet/limits").json()
    assert [row["token"] for row in listing] == ["SOL", "USDC"]
    assert listing[1]["own"]["per_transaction_cap"] == "5"


def test_limits_page_tightens(funded, tokens) -> None:
    alice, _bob = funded
    alice.client.force_login(User.objects.get(email=alice.email))
    page = alice.client.post("/wallet/limits/", {"token": "USDC", "daily_cap": "7", "per_transaction_cap": "",
                                                 "weekly_cap": "", "monthly_cap": "", "passkey_above": "",
                                                 "max_payments_per_hour": "3"})
    assert page.status_code == 200
    assert b"Your USDC limits are saved." in page.content
    own = SpendingPolicy.objects.get(scope="own")
    assert (own.daily_cap, own.max_payments_per_hour, own.weekly_cap) == (7 * USDC, 3, None)
    loosen = alice.client.post("/wallet/limits/", {"token": "USDC", "daily_cap": "8"})
    assert loosen.status_code == 400
    assert SpendingPolicy.objects.get(scope="own").daily_cap == 7 * USDC
