"""The payment state machine: what can happen to a payment (DESIGN.md "Payments: the invariants").

``created -> [awaiting_approval] -> approved -> submitted -> confirmed | failed``, plus ``rejected`` (an
approval was refused) and ``expired`` (abandoned before approval, or never landed before ``expires_at``).
Transitions are monotonic; every state reached keeps its timestamp on the payment, and every transition
(including the creation) writes one :class:`~payments.models.PaymentEvent`. This module is the only
place that changes ``Payment.status`` or writes events.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.utils import timezone

from .models import Payment, PaymentEvent

Status = Payment.Status

#: Allowed moves: from a state to the states it may reach next. Terminal states have no entry.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.CREATED: frozenset({Status.AWAITING_APPROVAL, Status.APPROVED, Status.REJECTED, Status.EXPIRED}),
    Status.AWAITING_APPROVAL: frozenset({Status.APPROVED, Status.REJECTED, Status.EXPIRED}),
    # An approved payment's transaction may land before its send is recorded (confirmed or failed at once).
    Status.APPROVED: frozenset({Status.SUBMITTED, Status.CONFIRMED, Status.FAILED, Status.EXPIRED}),
    Status.SUBMITTED: frozenset({Status.CONFIRMED, Status.FAILED, Status.EXPIRED}),
}

#: The timestamp field set when a payment reaches each state.
TIMESTAMP_FIELDS: dict[str, str] = {
    Status.CREATED: "created_at",
    Status.AWAITING_APPROVAL: "awaiting_approval_at",
    Status.APPROVED: "approved_at",
    Status.SUBMITTED: "submitted_at",
    Status.CONFIRMED: "confirmed_at",
    Status.FAILED: "failed_at",
    Status.REJECTED: "rejected_at",
    Status.EXPIRED: "expired_at",
}


#: The payment's fields :func:`transition` may change (a caller saving only what changed names these).
STATE_FIELDS: tuple[str, ...] = ("status", *TIMESTAMP_FIELDS.values(), "expires_at")

_pending = threading.local()


@contextmanager
def events_batched() -> Iterator[None]:
    """Write the events of the transitions made inside the block in one INSERT when it ends without an
    error (inside the caller's transaction: a payment inserted in the block may be saved after its events)."""
    outer = getattr(_pending, "events", None)
    _pending.events = []
    try:
        yield
        if _pending.events:
            PaymentEvent.objects.bulk_create(_pending.events)
    finally:
        _pending.events = outer


def _record(payment: Payment, *, from_status: str, to_status: str, note: str) -> None:
    event = PaymentEvent(payment=payment, from_status=from_status, to_status=to_status, note=note[:300])
    pending = getattr(_pending, "events", None)
    if pending is None:
        event.save()
    else:
        pending.append(event)


class TransitionNotAllowed(ValueError):
    """A move the state machine forbids (a programming error, never a user's)."""


def can_transition(from_status: str, to_status: str) -> bool:
    """Whether a payment in ``from_status`` may move to ``to_status`` (pure; see :data:`TRANSITIONS`)."""
    return to_status in TRANSITIONS.get(from_status, frozenset())


def record_created(payment: Payment, *, note: str = "") -> None:
    """Write the creation event of a new ``created`` payment (inserted, or inserted later in the same
    transaction inside :func:`events_batched`)."""
    _record(payment, from_status="", to_status=payment.status, note=note)


def transition(payment: Payment, to_status: str, *, note: str = "") -> None:
    """Move ``payment`` to ``to_status``: check the move, set the state's timestamp, write the event.

    The caller holds the payment's row lock (or has just inserted it) and saves the payment afterwards;
    once a payment leaves an open state its ``expires_at`` no longer applies and is cleared.

    :raises TransitionNotAllowed: the move is not in :data:`TRANSITIONS`.
    """
    if not can_transition(payment.status, to_status):
        raise TransitionNotAllowed(f"payment {payment.id}: {payment.status} -> {to_status} is not allowed")
    _record(payment, from_status=payment.status, to_status=to_status, note=note)
    payment.status = to_status
    setattr(payment, TIMESTAMP_FIELDS[to_status], timezone.now())
    if to_status in Payment.TERMINAL_STATUSES:
        payment.expires_at = None


def record_note(payment: Payment, note: str) -> None:
    """Write an event that changes no state (e.g. "attempt 1 expired unseen; attempt 2 signed")."""
    _record(payment, from_status=payment.status, to_status=payment.status, note=note)
