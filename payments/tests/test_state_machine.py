"""The payment state machine: the transition table, a timestamp for every state, one event per move."""

from __future__ import annotations

import itertools

import pytest

from payments import state_machine
from payments.models import Payment, PaymentEvent

S = Payment.Status


@pytest.mark.parametrize(("from_status", "to_status"), list(itertools.product(S.values, S.values)))
def test_transition_table_is_monotonic(from_status: str, to_status: str) -> None:
    order = {S.CREATED: 0, S.AWAITING_APPROVAL: 1, S.APPROVED: 2, S.SUBMITTED: 3}
    allowed = state_machine.can_transition(from_status, to_status)
    if from_status in Payment.TERMINAL_STATUSES:
        assert not allowed  # nothing leaves a terminal state
    elif to_status in order:
        assert allowed == (order[to_status] > order[from_status] and (from_status, to_status) != (S.CREATED, S.SUBMITTED)
                           and (from_status, to_status) != (S.AWAITING_APPROVAL, S.SUBMITTED))
    else:
        expected = {
            S.CONFIRMED: from_status in (S.APPROVED, S.SUBMITTED),
            S.FAILED: from_status in (S.APPROVED, S.SUBMITTED),
            S.REJECTED: from_status in (S.CREATED, S.AWAITING_APPROVAL),
            S.EXPIRED: True,
        }[to_status]
        assert allowed == expected


def test_every_state_has_a_timestamp_field() -> None:
    fields = {f.name for f in Payment._meta.get_fields()}
    assert set(state_machine.TIMESTAMP_FIELDS) == set(S.values)
    assert set(state_machine.TIMESTAMP_FIELDS.values()) <= fields


@pytest.mark.django_db
@pytest.mark.parametrize("path", [
    [S.APPROVED, S.SUBMITTED, S.CONFIRMED],
    [S.APPROVED, S.FAILED],
    [S.AWAITING_APPROVAL, S.REJECTED],
    [S.AWAITING_APPROVAL, S.EXPIRED],
    [S.EXPIRED],
    [S.APPROVED, S.SUBMITTED, S.EXPIRED],
])
def test_transitions_stamp_each_state_and_write_one_event_each(make_user, path: list[str]) -> None:
    from wallets.models import Token

    user = make_user()
    token = Token.objects.create(cluster="test", symbol="TST", name="Test", decimals=0, mint="m", token_program="p")
    payment = Payment.objects.create(sender=user, wallet=user.wallet, recipient_input="x", recipient_address="x",
                                     token=token, amount=1)
    state_machine.record_created(payment)
    for status in path:
        state_machine.transition(payment, status, note=f"to {status}")
        payment.save()
    payment.refresh_from_db()
    assert payment.status == path[-1]
    for status in [S.CREATED, *path]:
        assert getattr(payment, state_machine.TIMESTAMP_FIELDS[status]) is not None
    untouched = set(S.values) - {S.CREATED, *path}
    assert all(getattr(payment, state_machine.TIMESTAMP_FIELDS[s]) is None for s in untouched)
    events = list(PaymentEvent.objects.filter(payment=payment).values_list("from_status", "to_status"))
    assert events == list(zip(["", S.CREATED, *path[:-1]], [S.CREATED, *path], strict=True))
    assert payment.expires_at is None  # a terminal payment has no deadline


@pytest.mark.django_db
def test_a_forbidden_transition_changes_nothing(make_user) -> None:
    from wallets.models import Token

    user = make_user()
    token = Token.objects.create(cluster="test", symbol="TST", name="Test", decimals=0, mint="m", token_program="p")
    payment = Payment.objects.create(sender=user, wallet=user.wallet, recipient_input="x", recipient_address="x",
                                     token=token, amount=1, status=S.CONFIRMED)
    with pytest.raises(state_machine.TransitionNotAllowed):
        state_machine.transition(payment, S.FAILED)
    assert payment.status == S.CONFIRMED
    assert payment.failed_at is None
    assert PaymentEvent.objects.count() == 0
