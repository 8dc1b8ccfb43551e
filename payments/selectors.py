"""Reads for payments: what a user may see, one payment, a wallet's activity (payments and deposits).

The activity is ordered by chain time (issue 14 item 3): payments still sending first, newest first; then
everything else newest first by its chain time -- the block time of the slot it landed in (recorded when a
payment is confirmed or fails on chain, and for every incoming transfer, however late the deposit scan finds
it) -- then by slot. What ended without reaching the chain (expired, declined, refused before broadcast) takes
the time it ended. Each item is dated with that time. Pages are cut with an opaque keyset cursor, so new items
arriving never shift a page.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, F, Max, Q, QuerySet
from django.db.models.functions import Coalesce

from numpay.core.errors import ApplicationError, NotFoundError
from numpay.core.money import format_amount, format_money
from wallets.models import IncomingTransfer, Wallet

from .app_settings import explorer_transaction_url
from .models import Payment


def payments_visible_to(*, user: object) -> QuerySet[Payment]:
    """Payments the user sent or received (by wallet), newest first. Anyone else's are invisible."""
    return (Payment.objects.filter(Q(sender=user) | Q(recipient_wallet__user=user))
            .select_related("token", "wallet", "recipient_wallet", "sender").order_by("-created_at"))


def payment_get_visible(*, user: object, payment_id: object) -> Payment:
    """One payment the user sent or received. :raises NotFoundError: ``payment_not_found`` (also for
    another user's payment and for malformed ids: no existence oracle)."""
    try:
        return payments_visible_to(user=user).get(pk=payment_id)
    except (Payment.DoesNotExist, ValueError, ValidationError) as exc:
        raise NotFoundError("payment_not_found", "No such payment.") from exc


ACTIVITY_DIRECTIONS = ("sent", "received")


def short_address(address: str) -> str:
    """``"7xKX…AsU"``-style: the first and last 4 characters of a base58 address (full one if short)."""
    return address if len(address) <= 12 else f"{address[:4]}…{address[-4:]}"


def person_label(user: object) -> str:
    """How a Numpay user is shown to others: their full name, else their email."""
    full_name = user.get_full_name() if hasattr(user, "get_full_name") else ""  # type: ignore[attr-defined]
    return full_name or getattr(user, "email", "")


def payment_status_label(payment: Payment) -> tuple[str, str]:
    """A payment's status in plain words and its tone (``"pending" | "ok" | "failed"``); never an internal state.

    Open payments are "Sending" ("Waiting for your approval" while a passkey must approve), a confirmed one
    "Completed", a payment the sender cancelled "Cancelled: nothing was sent", the others "Failed: <why>".
    """
    if payment.status == Payment.Status.CONFIRMED:
        return "Completed", "ok"
    if payment.status == Payment.Status.AWAITING_APPROVAL:
        return "Waiting for your approval", "pending"
    if payment.status in Payment.OPEN_STATUSES:
        return "Sending", "pending"
    if payment.status == Payment.Status.EXPIRED:
        return "Failed: it timed out and nothing was sent", "failed"
    if payment.status == Payment.Status.REJECTED:
        if payment.error_code == "payment_cancelled":
            return "Cancelled: nothing was sent", "failed"
        return "Failed: declined", "failed"
    reason = (payment.error_message or "the network refused it").rstrip(".")
    return f"Failed: {reason}", "failed"


@dataclass(frozen=True)
class ActivityItem:
    """One line of a wallet's activity: a payment sent or received, or money from outside (deposit, faucet).

    :ivar amount: base units of ``token``; :ivar direction: ``"sent" | "received"``.
    :ivar counterparty: a Numpay user's name or email, else a shortened address ("" when unknown).
    :ivar counterparty_address: the other side's full address ("" when unknown).
    :ivar status: the plain-words badge ("Sending", "Completed", "Failed: ..."); ``tone`` its colour.
    :ivar slot: the chain slot it landed in (``None`` while not on chain).
    :ivar occurred_at: its chain time (module doc), aware UTC: the block time of its slot; while sending, when it
        was started; ended off chain (expired, declined, refused before broadcast), when it ended.
    :ivar is_pending: still sending (listed first).
    """

    kind: str
    item_id: str
    direction: str
    token: str
    decimals: int
    amount: int
    counterparty: str
    counterparty_address: str
    memo: str
    status: str
    tone: str
    signature: str
    slot: int | None
    occurred_at: dt.datetime
    payment_id: object = None
    is_pending: bool = False

    @property
    def ui_amount(self) -> str:
        return format_amount(self.amount, decimals=self.decimals)

    @property
    def display_amount(self) -> str:
        """Money formatting (``"1,234.50"``)."""
        return format_money(self.amount, decimals=self.decimals)

    @property
    def explorer_url(self) -> str:
        return explorer_transaction_url(self.signature)

    @property
    def key(self) -> tuple[int, str, int, str]:
        """Sort key, larger = newer: (still sending, chain time as ISO UTC with microseconds, slot, kind:id)."""
        return (1 if self.is_pending else 0, self.occurred_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
                self.slot or 0, f"{self.kind}:{self.item_id}")


@dataclass(frozen=True)
class ActivityPage:
    """One page of activity, newest first; ``next_cursor`` is ``""`` on the last page."""

    items: list[ActivityItem]
    next_cursor: str


def _encode_cursor(key: tuple[int, str, int, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str, int, str]:
    """:raises ApplicationError: ``invalid_cursor`` for anything this module did not make."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        pending, at, slot, tiebreak = raw
        dt.datetime.fromisoformat(at)
        if not (pending in (0, 1) and isinstance(slot, int) and isinstance(tiebreak, str)):
            raise TypeError(raw)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ApplicationError("invalid_cursor", "This page link is not valid any more; start from the first page.",
                               extra={"field": "cursor"}) from exc
    return (pending, at, slot, tiebreak)


def _payment_item(payment: Payment, *, wallet: Wallet) -> ActivityItem:
    sent = payment.wallet_id == wallet.pk
    if sent:
        other = payment.recipient_wallet.user if payment.recipient_wallet_id else None
        address = payment.recipient_address
        # nobody has claimed an email's wallet yet: the email the sender typed
        fallback = payment.recipient_input if "@" in payment.recipient_input else short_address(address)
    else:
        other, address = payment.sender, payment.wallet.address
        fallback = short_address(address)
    label, tone = payment_status_label(payment)
    pending = payment.status in Payment.OPEN_STATUSES
    return ActivityItem(
        kind="payment", item_id=str(payment.pk), direction="sent" if sent else "received",
        token=payment.token.symbol, decimals=payment.token.decimals, amount=payment.amount,
        counterparty=person_label(other) if other is not None else fallback,
        counterparty_address=address, memo=payment.memo, status=label, tone=tone, signature=payment.signature,
        slot=payment.slot if payment.status == Payment.Status.CONFIRMED else None,
        occurred_at=payment.created_at if pending else (payment.block_time or payment.updated_at),
        payment_id=payment.pk, is_pending=pending)


def _older_than(after: tuple[int, str, int, str]) -> Q:
    """Rows at or before the cursor's (chain time, slot) -- coarse: ties are cut exactly in Python."""
    at, slot = dt.datetime.fromisoformat(after[1]), after[2]
    return Q(chain_time__lt=at) | Q(chain_time=at, slot__lte=slot) | Q(chain_time=at, slot__isnull=True)


def _union(querysets: list[QuerySet]) -> QuerySet:
    """``UNION ALL`` of one or more ``values("pk")`` querysets (the sides of a wallet's payments are disjoint)."""
    first, *rest = querysets
    return first.union(*rest, all=True) if rest else first


def wallet_activity_page(*, wallet: Wallet, limit: int = 20, token: str = "", direction: str = "",
                         cursor: str = "") -> ActivityPage:
    """A page of a wallet's payments (sent and received) and incoming transfers, in chain order (module doc).

    Payments still sending come first (newest first); then everything else by chain time, then slot, newest
    first (the order of the ``*_feed_idx`` indexes of :class:`Payment` and :class:`IncomingTransfer`).

    :param token: a token symbol to keep only its items ("" = all).
    :param direction: ``"sent"`` or ``"received"`` ("" = both).
    :param cursor: ``next_cursor`` of the previous page ("" = the first page).
    :raises ApplicationError: ``invalid_cursor``.
    """
    after = _decode_cursor(cursor) if cursor else None
    # a few extra rows per source: items equal to the cursor on the coarse SQL filter are dropped below
    fetch = limit + 1 + 20
    candidates: list[ActivityItem] = []
    related = ("token", "wallet", "recipient_wallet__user", "sender")
    payments = Payment.objects.filter(Q(wallet=wallet) | Q(recipient_wallet=wallet)).select_related(*related)
    sent = Payment.objects.filter(wallet=wallet)
    received = Payment.objects.filter(recipient_wallet=wallet).exclude(wallet=wallet)
    if token:
        payments = payments.filter(token__symbol=token)
        sent, received = sent.filter(token__symbol=token), received.filter(token__symbol=token)
    if direction == "sent":
        payments, sides = payments.filter(wallet=wallet), [sent]
    elif direction == "received":
        payments, sides = payments.exclude(wallet=wallet), [received]
    else:
        sides = [sent, received]
    if after is None or after[0] == 1:
        pending = payments.filter(status__in=Payment.OPEN_STATUSES).order_by("-created_at")
        if after is not None:
            pending = pending.filter(created_at__lte=dt.datetime.fromisoformat(after[1]))
        candidates += [_payment_item(p, wallet=wallet) for p in pending[:fetch]]
    # Landed / ended payments: each side's newest `fetch` first, from its feed index, then only those rows are
    # joined to their wallets and users (an OR of both sides, joined before the sort, read the wallet's whole
    # history and hash-joined the users table: bench/README.md, issue 13 scale).
    done_sides = [side.exclude(status__in=Payment.OPEN_STATUSES)
                  .alias(chain_time=Coalesce("block_time", "updated_at")) for side in sides]
    deposits = (IncomingTransfer.objects.filter(wallet=wallet).select_related("token")
                .annotate(chain_time=Coalesce("block_time", "created_at"))
                .order_by(F("chain_time").desc(), F("slot").desc()))
    if token:
        deposits = deposits.filter(token__symbol=token)
    if after is not None and after[0] == 0:
        done_sides = [side.filter(_older_than(after)) for side in done_sides]
        deposits = deposits.filter(_older_than(after))
    sliced = [side.order_by(F("chain_time").desc(), F("slot").desc()).values("pk")[:fetch] for side in done_sides]
    if connection.features.supports_slicing_ordering_in_compound:
        newest: Any = _union(sliced)
    else:  # SQLite (embedded): no LIMIT in the parts of a UNION; the same rows, one query per side
        newest = [row["pk"] for part in sliced for row in part]
    done = (Payment.objects.filter(pk__in=newest).select_related(*related)
            .annotate(chain_time=Coalesce("block_time", "updated_at"))
            .order_by(F("chain_time").desc(), F("slot").desc()))
    candidates += [_payment_item(p, wallet=wallet) for p in done[:fetch]]
    if direction != "sent":
        for d in deposits[:fetch]:
            candidates.append(ActivityItem(
                kind="deposit", item_id=str(d.pk), direction="received", token=d.token.symbol,
                decimals=d.token.decimals, amount=d.amount, counterparty=short_address(d.from_address),
                counterparty_address=d.from_address, memo="", status="Completed", tone="ok", signature=d.signature,
                slot=d.slot, occurred_at=d.chain_time))
    if after is not None:
        candidates = [item for item in candidates if item.key < after]
    candidates.sort(key=lambda item: item.key, reverse=True)
    items = candidates[:limit]
    next_cursor = _encode_cursor(items[-1].key) if len(candidates) > limit else ""
    return ActivityPage(items=items, next_cursor=next_cursor)


def wallet_activity(*, wallet: Wallet, limit: int = 20) -> list[ActivityItem]:
    """The newest ``limit`` items of :func:`wallet_activity_page` (both directions, every token)."""
    return wallet_activity_page(wallet=wallet, limit=limit).items


def wallet_activity_version(*, wallet: Wallet) -> str:
    """A short fingerprint of everything the wallet's home shows from the database (payments both ways,
    incoming transfers): it changes whenever one is added or changes state, or gets its block time later (the
    backfill, :mod:`payments.block_times`, leaves ``updated_at`` as it is). For cheap live polling."""
    payments = (Payment.objects.filter(Q(wallet=wallet) | Q(recipient_wallet=wallet))
                .aggregate(n=Count("pk"), at=Max("updated_at"), dated=Count("block_time")))
    deposits = (IncomingTransfer.objects.filter(wallet=wallet)
                .aggregate(n=Count("pk"), last=Max("pk"), dated=Count("block_time")))
    at = payments["at"].isoformat() if payments["at"] else "-"
    return (f"{payments['n']}.{at}.{payments['dated']}.{deposits['n']}.{deposits['last'] or 0}."
            f"{deposits['dated']}")


def recent_recipients(*, wallet: Wallet, limit: int = 5) -> list[dict[str, str]]:
    """The people and addresses this wallet paid most recently, newest first, each once.

    :returns: ``[{"to": what to put in the form, "label": name/email or shortened address, "initial": str}]``.
    """
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    recent = (Payment.objects.filter(wallet=wallet).select_related("recipient_wallet__user")
              .order_by("-created_at")[:50])
    for payment in recent:
        key = payment.recipient_input.lower() if "@" in payment.recipient_input else payment.recipient_input
        if key in seen:
            continue
        seen.add(key)
        user = payment.recipient_wallet.user if payment.recipient_wallet_id else None
        label = person_label(user) if user is not None else (
            payment.recipient_input if "@" in payment.recipient_input else short_address(payment.recipient_input))
        rows.append({"to": payment.recipient_input, "label": label, "initial": (label[:1] or "?").upper()})
        if len(rows) == limit:
            break
    return rows
