"""Issue 14: the wallet home, its live state, the activity feed (chain order, plain words, filters, cursor pages,
the same data in the API), the send form's errors, money formatting, the small things (manifest, flash list)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from numpay.core.money import format_money
from payments.models import Payment
from payments.selectors import wallet_activity_page
from wallets.models import IncomingTransfer

pytestmark = [pytest.mark.chain]

T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def test_format_money_has_separators_two_decimals_and_every_further_digit() -> None:
    assert format_money(0, decimals=6) == "0.00"
    assert format_money(1_234_500_000, decimals=6) == "1,234.50"
    assert format_money(12_500_000, decimals=6) == "12.50"
    assert format_money(5_000, decimals=9) == "0.000005"
    assert format_money(1_000_000_123_456_789, decimals=9) == "1,000,000.123456789"
    assert format_money(-2_000_000, decimals=6) == "-2.00"
    assert format_money(7, decimals=0) == "7"


def _payment(*, sender, recipient, token, amount: int, status: str, slot: int | None, at: dt.datetime,  # noqa: ANN001
             memo: str = "", error_message: str = "", block_time: dt.datetime | None = None,
             ended_at: dt.datetime | None = None) -> Payment:
    payment = Payment.objects.create(
        sender=sender, wallet=sender.wallet, recipient_input=recipient.email, recipient_address=recipient.wallet.address,
        recipient_wallet=recipient.wallet, token=token, amount=amount, status=status, slot=slot, memo=memo,
        error_message=error_message, signature=f"sig{amount}" if slot else "", block_time=block_time,
        confirmed_at=ended_at if status == Payment.Status.CONFIRMED else None)
    # created_at / updated_at are automatic; a payment's last save is when it ended
    Payment.objects.filter(pk=payment.pk).update(created_at=at, updated_at=ended_at or at)
    payment.refresh_from_db()
    return payment


def _history(make_user, tokens):  # noqa: ANN001, ANN202
    """Alice's history, stored and seen in an order different from chain order."""
    alice, bob = make_user(), make_user()
    bob.first_name, bob.last_name = "Bob", "Builder"
    bob.save()
    usdc, sol = tokens["USDC"], tokens["SOL"]
    minute = dt.timedelta(minutes=1)
    # confirmed at slot 300 (block time T0+3m) but created first; a deposit on chain at slot 100 (T0+1m) that the
    # scan found only at T0+30m; a payment from Bob created at T0+10m whose block says T0+2m (his clock
    # is not ours); one that failed before broadcast at T0+2.5m; one sending now
    _payment(sender=alice, recipient=bob, token=usdc, amount=1_000_000, status="confirmed", slot=300, at=T0, memo="rent",
             block_time=T0 + 3 * minute, ended_at=T0 + 3 * minute + dt.timedelta(seconds=1))
    deposit = IncomingTransfer.objects.create(wallet=alice.wallet, token=sol, amount=2_000_000_000, signature="dep1",
                                              from_address="9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin", slot=100,
                                              block_time=T0 + minute)
    IncomingTransfer.objects.filter(pk=deposit.pk).update(created_at=T0 + 30 * minute)
    _payment(sender=bob, recipient=alice, token=usdc, amount=2_500_000, status="confirmed", slot=200,
             at=T0 + 10 * minute, block_time=T0 + 2 * minute, ended_at=T0 + 11 * minute)
    _payment(sender=alice, recipient=bob, token=usdc, amount=3_000_000, status="failed", slot=None,
             at=T0 + 2 * minute, ended_at=T0 + 2.5 * minute, error_message="The network refused the transaction.")
    _payment(sender=alice, recipient=bob, token=usdc, amount=4_000_000, status="submitted", slot=None,
             at=T0 + 20 * minute)
    return alice, bob


def test_activity_is_in_chain_order_with_plain_words_and_people(make_user, tokens) -> None:
    alice, _ = _history(make_user, tokens)
    page = wallet_activity_page(wallet=alice.wallet)
    assert [(i.direction, i.amount, i.status, i.counterparty, i.slot) for i in page.items] == [
        ("sent", 4_000_000, "Sending", "Bob Builder", None),
        ("sent", 1_000_000, "Completed", "Bob Builder", 300),
        ("sent", 3_000_000, "Failed: The network refused the transaction", "Bob Builder", None),
        ("received", 2_500_000, "Completed", "Bob Builder", 200),
        ("received", 2_000_000_000, "Completed", "9xQe…VFin", 100),
    ]
    # each is dated with its chain time: the block time (not when it was created, confirmed or found)
    minute = dt.timedelta(minutes=1)
    assert [i.occurred_at for i in page.items] == [T0 + 20 * minute, T0 + 3 * minute, T0 + 2.5 * minute,
                                                  T0 + 2 * minute, T0 + minute]
    assert page.items[1].memo == "rent"
    assert page.next_cursor == ""


def test_activity_cursor_pages_and_filters_cover_everything_once(make_user, tokens) -> None:
    alice, _ = _history(make_user, tokens)
    seen, cursor = [], ""
    while True:
        page = wallet_activity_page(wallet=alice.wallet, limit=2, cursor=cursor)
        seen += [i.amount for i in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == [4_000_000, 1_000_000, 3_000_000, 2_500_000, 2_000_000_000]
    assert [i.amount for i in wallet_activity_page(wallet=alice.wallet, direction="received").items] == [
        2_500_000, 2_000_000_000]
    assert [i.amount for i in wallet_activity_page(wallet=alice.wallet, token="SOL").items] == [2_000_000_000]
    assert [i.amount for i in wallet_activity_page(wallet=alice.wallet, token="USDC", direction="sent").items] == [
        4_000_000, 1_000_000, 3_000_000]


def test_activity_pages_a_long_history_of_both_sides_in_chain_order(make_user, tokens) -> None:
    # given more landed payments on each side than one query fetches per side (limit + 21), interleaved in chain
    # time, some without a block time (dated when they ended), some tied on (chain time, slot) across sides
    alice, bob = make_user(), make_user()
    usdc, second = tokens["USDC"], dt.timedelta(seconds=1)
    for n in range(40):
        at = T0 + (n // 2) * second  # pairs share a chain time
        block_time = None if n % 7 == 0 else at
        _payment(sender=alice, recipient=bob, token=usdc, amount=1_000 + n, status="confirmed", slot=1_000 + n // 3,
                 at=T0, block_time=block_time, ended_at=at)
        _payment(sender=bob, recipient=alice, token=usdc, amount=2_000 + n, status="confirmed", slot=1_000 + n // 3,
                 at=T0, block_time=block_time, ended_at=at)
    _payment(sender=alice, recipient=bob, token=usdc, amount=5, status="submitted", slot=None, at=T0)
    everything = wallet_activity_page(wallet=alice.wallet, limit=1_000).items
    expected = sorted(everything, key=lambda item: item.key, reverse=True)
    # when it is read 7 at a time, then each direction 6 at a time
    seen, cursor = [], ""
    while True:
        page = wallet_activity_page(wallet=alice.wallet, limit=7, cursor=cursor)
        seen += page.items
        cursor = page.next_cursor
        if not cursor:
            break
    # then every item comes once, sending first, then by (chain time, slot, id) newest first
    assert len(everything) == 81
    assert [i.item_id for i in everything] == [i.item_id for i in expected]
    assert [i.item_id for i in seen] == [i.item_id for i in expected]
    assert seen[0].amount == 5
    for direction in ("sent", "received"):
        seen, cursor = [], ""
        while True:
            page = wallet_activity_page(wallet=alice.wallet, limit=6, cursor=cursor, direction=direction)
            seen += page.items
            cursor = page.next_cursor
            if not cursor:
                break
        assert [i.item_id for i in seen] == [i.item_id for i in expected if i.direction == direction]


def test_activity_api_has_the_same_data_and_refuses_bad_cursors(client, make_user, tokens) -> None:
    alice, bob = _history(make_user, tokens)
    client.force_login(alice)
    first = client.get("/api/v1/activity", {"page_size": 3}).json()
    assert [(r["direction"], r["amount"], r["status"], r["counterparty"]) for r in first["results"]] == [
        ("sent", "4", "Sending", "Bob Builder"), ("sent", "1", "Completed", "Bob Builder"),
        ("sent", "3", "Failed: The network refused the transaction", "Bob Builder")]
    assert first["results"][1]["memo"] == "rent"
    assert first["results"][1]["slot"] == 300
    assert first["results"][1]["occurred_at"] == "2026-11-30T12:03:00Z"
    second = client.get(first["next"]).json()
    assert [(r["amount"], r["occurred_at"]) for r in second["results"]] == [("2.5", "2026-11-30T12:02:00Z"),
                                                                           ("2", "2026-11-30T12:01:00Z")]
    assert second["next"] is None
    bad = client.get("/api/v1/activity", {"cursor": "not-a-cursor"})
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_cursor")
    unknown = client.get("/api/v1/activity", {"token": "DOGE"})
    assert (unknown.status_code, unknown.json()["code"]) == (400, "invalid_filter")
    # Bob sees the same payments from his side
    client.force_login(bob)
    assert [(r["direction"], r["amount"]) for r in client.get("/api/v1/activity").json()["results"]] == [
        ("received", "4"), ("received", "1"), ("received", "3"), ("sent", "2.5")]


def test_activity_page_filters_pages_and_links_to_the_configured_explorer(client, make_user, tokens, settings) -> None:
    settings.EXPLORER_TX_URL = "https://explorer.example/tx/{signature}?cluster=devnet"
    alice, _ = _history(make_user, tokens)
    client.force_login(alice)
    html = client.get("/wallet/activity/", {"token": "USDC", "direction": "sent", "limit": 2}).content.decode()
    assert html.count('class="activity-item') == 2
    assert 'data-testid="activity-older"' in html
    older = client.get("/wallet/activity/", {"token": "USDC", "direction": "sent", "limit": 2,
                                             "cursor": wallet_activity_page(wallet=alice.wallet, limit=2, token="USDC",
                                                                            direction="sent").next_cursor})
    assert older.content.decode().count('class="activity-item') == 1
    assert "Failed: The network refused the transaction" in older.content.decode()
    # the confirmed payment links to the explorer and is dated with its block time (not created or confirmed at)
    assert 'href="https://explorer.example/tx/sig1000000?cluster=devnet"' in html
    assert '<time datetime="2026-11-30T12:03:00+00:00" data-local-time>Nov 30, 2026, 12:03 UTC</time>' in html


def test_live_state_has_balances_version_and_arrivals_and_changes_with_a_payment(client, make_user, tokens) -> None:
    alice, bob = make_user(), make_user()
    client.force_login(alice)
    before = client.get("/wallet/live/")
    assert before["Cache-Control"] == "no-store"
    state = before.json()
    assert {b["token"]: b["display"] for b in state["balances"]} == {"SOL": "0.00", "USDC": "0.00"}
    assert state["received"] == []
    _payment(sender=bob, recipient=alice, token=tokens["USDC"], amount=2_500_000, status="confirmed", slot=5,
             at=timezone.now())
    after = client.get("/wallet/live/").json()
    assert after["version"] != state["version"]
    assert [r["text"] for r in after["received"]] == [f"You received 2.50 USDC from {bob.email}"]


def test_send_form_shows_every_field_error_at_once_linked_to_its_field(client, make_user, tokens) -> None:
    alice = make_user()
    client.force_login(alice)
    response = client.post("/wallet/send/", {"step": "review", "to": "not-an-address", "token": "USDC",
                                             "amount": "1.1234567", "memo": "ok"})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-code="invalid_address"' in html
    assert 'data-code="too_many_decimals"' in html
    assert 'aria-describedby="to-hint to-error" aria-invalid="true"' in html
    assert 'aria-describedby="amount-available amount-error" aria-invalid="true"' in html
    assert "Please fix these 2 things:" in html
    assert Payment.objects.count() == 0


def test_send_form_offers_what_can_be_sent_and_recent_recipients(client, make_user, tokens) -> None:
    from wallets.faucet import faucet_fund

    alice, bob = make_user(), make_user()
    faucet_fund(wallet=alice.wallet, token=tokens["USDC"], amount=1_000_000_000)
    faucet_fund(wallet=alice.wallet, token=tokens["USDC"], amount=234_500_000)
    _payment(sender=alice, recipient=bob, token=tokens["USDC"], amount=1, status="failed", slot=None, at=T0)
    client.force_login(alice)
    html = client.get("/wallet/send/").content.decode()
    assert 'data-available-token="USDC" data-available="1234.5">You can send 1,234.50 USDC now.' in html
    assert f'data-fill-to="{bob.email}"' in html


def test_faucet_top_up_is_in_the_activity_at_once(client, make_user, tokens) -> None:
    alice = make_user()
    client.force_login(alice)
    response = client.post("/wallet/faucet/", {"token": "USDC", "amount": "100"}, HTTP_HX_REQUEST="true")
    assert response["HX-Trigger"] == "numpay:changed"
    assert "Added 100.00 USDC from the test faucet." in response.content.decode()
    items = wallet_activity_page(wallet=alice.wallet).items
    assert [(i.kind, i.direction, i.amount, i.status) for i in items] == [("deposit", "received", 100_000_000,
                                                                           "Completed")]
    assert items[0].slot is not None


def test_flash_messages_manifest_and_favicon(client, make_user, tokens) -> None:
    from django.contrib.messages import constants
    from django.contrib.messages.storage.cookie import CookieStorage
    from django.http import HttpResponse
    from django.test import RequestFactory

    alice = make_user()
    client.force_login(alice)
    # given a flash message waiting in the messages cookie
    storage = CookieStorage(RequestFactory().get("/"))
    storage.add(constants.SUCCESS, "Signed in.")
    carrier = HttpResponse()
    storage.update(carrier)
    client.cookies["messages"] = carrier.cookies["messages"].value
    # then the list is a plain <ul> inside the status region (no listitem violation), with icon and manifest
    html = client.get("/wallet/").content.decode()
    assert '<div role="status"><ul class="messages"><li class="success">Signed in.</li></ul></div>' in html
    assert 'rel="manifest"' in html
    assert 'rel="icon"' in html


@pytest.mark.parametrize("path", ["/wallet/live/", "/wallet/send/"])
def test_operator_opening_customer_pages_gets_no_wallet(client, db, path: str) -> None:
    from accounts.models import User
    from wallets.models import Wallet

    operator = User.objects.create_superuser(email="operator@example.com", password="pw-Numpay-1")
    client.force_login(operator)
    response = client.get(path)
    assert response.status_code == 404
    assert Wallet.objects.count() == 0


def test_admin_money_records_are_view_only_with_amounts_once_in_token_units(admin_client, make_user, tokens) -> None:
    alice, bob = _history(make_user, tokens)
    payment = Payment.objects.get(amount=2_500_000)
    deposit = IncomingTransfer.objects.get()
    usdc = tokens["USDC"]
    # the payment page: "2.5 USDC" once, no base units, no Save, no Delete
    html = admin_client.get(f"/admin/payments/payment/{payment.pk}/change/").content.decode()
    assert html.count("2.5 USDC") == 1
    assert ">2500000<" not in html
    assert 'name="_save"' not in html
    assert "deletelink" not in html
    assert "Numpay operations" in html
    # an edit or a delete through the admin is refused and changes nothing
    assert admin_client.post(f"/admin/payments/payment/{payment.pk}/change/", {"status": "failed"}).status_code == 403
    assert admin_client.post(f"/admin/payments/payment/{payment.pk}/delete/", {"post": "yes"}).status_code == 403
    transfer = admin_client.get(f"/admin/wallets/incomingtransfer/{deposit.pk}/change/").content.decode()
    assert "2 SOL" in transfer
    assert 'name="_save"' not in transfer
    assert admin_client.post(f"/admin/wallets/incomingtransfer/{deposit.pk}/delete/", {"post": "yes"}).status_code == 403
    # a token in use cannot be deleted and its identity is read-only; its fee stays editable
    token_page = admin_client.get(f"/admin/wallets/token/{usdc.pk}/change/").content.decode()
    assert 'name="decimals"' not in token_page
    assert 'name="account_creation_fee"' in token_page
    assert admin_client.post(f"/admin/wallets/token/{usdc.pk}/delete/", {"post": "yes"}).status_code == 403
    payment.refresh_from_db()
    assert (payment.status, payment.amount) == ("confirmed", 2_500_000)
    assert IncomingTransfer.objects.filter(pk=deposit.pk).exists()
    assert usdc.__class__.objects.filter(pk=usdc.pk, decimals=6).exists()


def fixed_prices(symbols: list[str], currency: str) -> dict[str, Decimal]:
    """A price source for the test (the outside service an operator would configure): USDC only."""
    assert currency == "EUR"
    return {"USDC": Decimal("0.5")} if "USDC" in symbols else {}


def test_balance_value_shows_only_with_a_price_source_and_only_for_priced_tokens(client, make_user, tokens,
                                                                               settings) -> None:
    from wallets.faucet import faucet_fund

    alice = make_user()
    faucet_fund(wallet=alice.wallet, token=tokens["USDC"], amount=3_000_000)
    client.force_login(alice)
    # without a price source: no value anywhere
    assert "≈" not in client.get("/wallet/").content.decode()
    assert {b["token"]: b["value"] for b in client.get("/wallet/live/").json()["balances"]} == {"SOL": "", "USDC": ""}
    # with one: the priced token is valued, the other is not guessed
    settings.PRICE_SOURCE = "tests.test_home.fixed_prices"
    settings.DISPLAY_CURRENCY = "EUR"
    html = client.get("/wallet/").content.decode()
    assert '<span class="value" data-testid="value-USDC">≈ 1.50 EUR</span>' in html
    assert 'data-testid="value-SOL"' not in html
    assert {b["token"]: b["value"] for b in client.get("/wallet/live/").json()["balances"]} == {
        "SOL": "", "USDC": "≈ 1.50 EUR"}
