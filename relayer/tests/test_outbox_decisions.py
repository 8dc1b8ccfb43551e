"""The outbox's next-step choice (pure): confirm, fail, wait, re-send, renew only when provably expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from numpay.core.solana import SignatureStatus
from relayer.outbox import decide_next_step

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _attempt(signature: str, last_valid: int, sent_seconds_ago: float | None = 5.0) -> SimpleNamespace:
    sent = None if sent_seconds_ago is None else NOW - timedelta(seconds=sent_seconds_ago)
    return SimpleNamespace(signature=signature, last_valid_block_height=last_valid, last_sent_at=sent)


def _confirmed(status: SignatureStatus) -> bool:
    return status.confirmation_status in ("confirmed", "finalized")


def decide(attempts, *, height=100, statuses=None):  # noqa: ANN001, ANN202
    return decide_next_step(owner="owner", attempts=attempts, height=height, statuses=statuses or {},
                            is_at_commitment=_confirmed, now=NOW, resend_after=1.0)


def test_no_attempt_waits() -> None:
    assert decide([]).kind == "wait"


def test_a_confirmed_attempt_is_confirmed_even_if_it_is_an_old_one() -> None:
    old, live = _attempt("a", 90), _attempt("b", 250)
    status = SignatureStatus(slot=7, confirmation_status="confirmed", err=None)
    step = decide([old, live], statuses={"a": status, "b": None})
    assert (step.kind, step.attempt, step.status) == ("confirm", old, status)


def test_an_error_on_chain_fails() -> None:
    live = _attempt("a", 250)
    status = SignatureStatus(slot=7, confirmation_status="confirmed", err={"InstructionError": [0, {"Custom": 1}]})
    assert decide([live], statuses={"a": status}).kind == "fail"


def test_landed_below_the_commitment_waits_and_is_never_renewed() -> None:
    live = _attempt("a", 50)  # height 100 is past its window, but it landed
    assert decide([live], statuses={"a": SignatureStatus(slot=7, confirmation_status="processed", err=None)}).kind == "wait"


def test_an_unseen_attempt_past_its_last_valid_block_height_is_renewed() -> None:
    live = _attempt("a", 99)
    assert decide([live], height=100).kind == "renew"


def test_an_unseen_attempt_at_its_last_valid_block_height_is_resent_not_renewed() -> None:
    live = _attempt("a", 100)
    assert decide([live], height=100).kind == "resend"


def test_an_unseen_attempt_sent_less_than_a_second_ago_waits() -> None:
    live = _attempt("a", 200, sent_seconds_ago=0.5)
    assert decide([live]).kind == "wait"


def test_a_never_sent_attempt_is_sent() -> None:
    live = _attempt("a", 200, sent_seconds_ago=None)
    step = decide([live])
    assert (step.kind, step.attempt) == ("resend", live)
