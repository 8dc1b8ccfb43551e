"""Guardian recovery through its services with real WebAuthn responses (software authenticators) and real
PostgreSQL / Redis: guardians invited, accepted and delayed; a request proven by email code, approved by
guardians with their passkeys over the request's digest, withdrawn below the threshold, cancelled by the
owner, frozen by an operator; every refusal leaves nothing behind."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.core.cache import cache
from django.utils import timezone

from numpay.core.errors import ApplicationError
from recovery import digests, services
from recovery.models import Guardian, GuardianInvitation, RecoveryApproval, RecoveryEvent, RecoveryRequest
from tests.recovery_support import add_guardian, last_code, owner_sign, person, recovery_outbox, sign, start_collecting

Status = RecoveryRequest.Status
#: committed transactions: notifications are sent on commit, as in production
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _short_delays(settings: Any, chain_setup: Any) -> None:
    cache.clear()
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = 0
    settings.NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS = 1


@pytest.fixture
def family(make_user: Any) -> dict[str, Any]:
    """An owner with three active guardians (threshold: a majority, 2)."""
    owner = person(make_user, "owner@example.com")
    guardians = [person(make_user, f"guardian{n}@example.com") for n in range(3)]
    for guardian in guardians:
        add_guardian(owner, guardian)
    return {"owner": owner, "guardians": guardians}


def _refused(code: str, call: Any) -> None:
    with pytest.raises(ApplicationError) as error:
        call()
    assert error.value.code == code


# --- guardians -------------------------------------------------------------------------------------------
def test_an_invited_guardian_counts_only_after_the_change_delay(make_user: Any, settings: Any) -> None:
    # given an owner inviting with their passkey, and a 36 h change delay
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = 129_600
    owner, friend = person(make_user, "owner@example.com"), person(make_user, "friend@example.com")
    # when the friend accepts with their passkey
    guardian = add_guardian(owner, friend, activate=True)
    # then the guardian is pending until the delay passes, with their passkey's P-256 key as authority
    assert guardian.status == Guardian.Status.PENDING
    assert guardian.change_effective_at - timezone.now() > timedelta(hours=35)
    assert bytes(guardian.authority_key)[0] in (2, 3)
    assert len(bytes(guardian.authority_key)) == 33
    assert services.guardian_changes_apply(now=guardian.change_effective_at) == 1
    guardian.refresh_from_db()
    assert guardian.status == Guardian.Status.ACTIVE


def test_inviting_without_the_owners_passkey_is_refused_and_nothing_is_sent(make_user: Any) -> None:
    owner = person(make_user, "owner@example.com")
    _refused("owner_passkey_required",
             lambda: services.guardian_invite(owner=owner.user, email="x@example.com", credential=None))
    # a passkey assertion over another change (subject) does not count either
    credential = owner_sign(owner, action="invite", subject="other@example.com")
    _refused("owner_passkey_required",
             lambda: services.guardian_invite(owner=owner.user, email="x@example.com", credential=credential))
    assert not GuardianInvitation.objects.exists()
    assert not recovery_outbox()


def test_an_owner_passkey_challenge_is_single_use(make_user: Any) -> None:
    owner = person(make_user, "owner@example.com")
    credential = owner_sign(owner, action="invite", subject="a@example.com")
    services.guardian_invite(owner=owner.user, email="a@example.com", credential=credential)
    replay = dict(credential)
    _refused("owner_passkey_required",
             lambda: services.guardian_invite(owner=owner.user, email="a@example.com", credential=replay))
    assert GuardianInvitation.objects.count() == 1


def test_an_invitation_is_accepted_only_by_its_email_and_before_it_expires(make_user: Any) -> None:
    owner, friend, other = (person(make_user, e) for e in ("owner@example.com", "friend@example.com",
                                                           "other@example.com"))
    services.guardian_invite(owner=owner.user, email="friend@example.com",
                             credential=owner_sign(owner, action="invite", subject="friend@example.com"))
    invitation = GuardianInvitation.objects.get()
    from tests.recovery_support import invitation_token

    token = invitation_token("friend@example.com")
    _refused("guardian_invitation_wrong_account", lambda: services.guardian_invitation_accept(
        token=token, user=other.user, credential=sign(other, digests.invitation_challenge(invitation.id))))
    GuardianInvitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    _refused("guardian_invitation_expired", lambda: services.guardian_invitation_accept(
        token=token, user=friend.user, credential=sign(friend, digests.invitation_challenge(invitation.id))))
    assert not Guardian.objects.exists()


def test_a_guardian_removal_waits_and_the_owner_can_cancel_it(family: dict[str, Any], settings: Any) -> None:
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = 129_600
    owner, guardian = family["owner"], Guardian.objects.filter(owner=family["owner"].user).first()
    services.guardian_remove(owner=owner.user, guardian_id=guardian.pk,
                             credential=owner_sign(owner, action="remove", subject=str(guardian.pk)))
    guardian.refresh_from_db()
    assert (guardian.status, guardian.removal_requested_at is not None) == (Guardian.Status.ACTIVE, True)
    services.guardian_change_cancel(owner=owner.user, guardian_id=guardian.pk)
    guardian.refresh_from_db()
    assert (guardian.status, guardian.removal_requested_at, guardian.change_effective_at) == (
        Guardian.Status.ACTIVE, None, None)
    assert services.guardian_changes_apply(now=timezone.now() + timedelta(days=3)) == 0


# --- starting a request ----------------------------------------------------------------------------------
def test_a_request_is_proven_by_code_and_holds_the_new_passkey_pending(family: dict[str, Any]) -> None:
    owner = family["owner"]
    request, _token, _soft = start_collecting(owner)
    assert request.status == Status.COLLECTING
    assert len(bytes(request.pending_public_key)) == 33
    assert len(request.digest) == 64
    # the new passkey is not the account's yet
    assert Authenticator.objects.filter(user=owner.user).count() == 1
    # the guardians were asked, the owner told with a cancel link
    bodies = {m.to[0]: m.body for m in recovery_outbox()}
    assert all(f"/recovery/approve/{request.id}/" in bodies[g.user.email] for g in family["guardians"])
    assert any("/recovery/cancel/" in m.body and m.to == [owner.user.email] for m in recovery_outbox())


def test_starting_reveals_nothing_about_accounts(family: dict[str, Any]) -> None:
    # given an unknown email: a token all the same, and nothing created or sent
    sent = len(recovery_outbox())
    token = services.recovery_start(identifier="nobody@example.com", client_key="203.0.113.1")
    assert token
    assert not RecoveryRequest.objects.exists()
    assert len(recovery_outbox()) == sent
    _refused("recovery_code_invalid", lambda: services.recovery_code_verify(token=token, code="123456"))


def test_a_wrong_code_is_refused_and_too_many_end_the_request(family: dict[str, Any]) -> None:
    owner = family["owner"]
    token = services.recovery_start(identifier=owner.user.email, client_key="203.0.113.2")
    right = last_code(owner.user.email)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(4):
        _refused("recovery_code_invalid", lambda: services.recovery_code_verify(token=token, code=wrong))
    assert RecoveryRequest.objects.get().status == Status.VERIFYING
    _refused("recovery_code_invalid", lambda: services.recovery_code_verify(token=token, code=wrong))
    assert RecoveryRequest.objects.get().status == Status.EXPIRED
    _refused("recovery_not_verifying", lambda: services.recovery_code_verify(token=token, code=right))


def test_one_open_request_per_wallet(family: dict[str, Any]) -> None:
    owner = family["owner"]
    start_collecting(owner)
    services.recovery_start(identifier=owner.user.email, client_key="203.0.113.3")
    assert RecoveryRequest.objects.count() == 1
    assert "already under way" in recovery_outbox()[-1].body


def test_starting_is_rate_limited_per_account(family: dict[str, Any]) -> None:
    owner = family["owner"]
    for n in range(3):
        services.recovery_start(identifier="nobody@example.com", client_key=f"203.0.113.{10 + n}")
    _refused("rate_limited", lambda: services.recovery_start(identifier="nobody@example.com",
                                                             client_key="203.0.113.50"))
    for n in range(3):
        services.recovery_start(identifier=f"x{n}@example.com", client_key="203.0.113.60")
    _refused("rate_limited", lambda: services.recovery_start(identifier=owner.user.email, client_key="203.0.113.60"))
    assert not RecoveryRequest.objects.exists()


# --- guardians approve -----------------------------------------------------------------------------------
def test_the_threshold_starts_the_timelock_and_holds_payments(family: dict[str, Any]) -> None:
    owner, (first, second, _third) = family["owner"], family["guardians"]
    request, _token, _soft = start_collecting(owner)
    services.recovery_approve(request_id=request.id, user=first.user,
                              credential=sign(first, digests.approval_challenge(request)))
    request.refresh_from_db()
    assert (request.status, request.executes_at) == (Status.COLLECTING, None)
    before = timezone.now()
    services.recovery_approve(request_id=request.id, user=second.user,
                              credential=sign(second, digests.approval_challenge(request)))
    request.refresh_from_db()
    assert request.status == Status.TIMELOCKED
    assert request.threshold == 2
    assert request.executes_at - before >= timedelta(hours=48) - timedelta(seconds=5)
    _refused("recovery_payments_held", lambda: services.recovery_hold_check(wallet=request.wallet))


def test_an_approval_over_another_digest_or_by_a_non_guardian_is_refused(family: dict[str, Any],
                                                                         make_user: Any) -> None:
    owner, first = family["owner"], family["guardians"][0]
    stranger = person(make_user, "stranger@example.com")
    request, _token, _soft = start_collecting(owner)
    _refused("passkey_assertion_invalid", lambda: services.recovery_approve(
        request_id=request.id, user=first.user, credential=sign(first, digests.cancel_challenge(request))))
    _refused("recovery_not_guardian", lambda: services.recovery_approve(
        request_id=request.id, user=stranger.user, credential=sign(stranger, digests.approval_challenge(request))))
    # a replayed assertion (same signature counter) is refused
    credential = sign(first, digests.approval_challenge(request))
    services.recovery_approve(request_id=request.id, user=first.user, credential=credential)
    services.recovery_approval_withdraw(request_id=request.id, user=first.user)
    _refused("passkey_assertion_invalid", lambda: services.recovery_approve(
        request_id=request.id, user=first.user, credential=credential))
    assert RecoveryApproval.objects.filter(withdrawn_at__isnull=True).count() == 0


def test_withdrawing_below_the_threshold_stops_the_clock(family: dict[str, Any]) -> None:
    owner, (first, second, _third) = family["owner"], family["guardians"]
    request, _token, _soft = start_collecting(owner)
    for guardian in (first, second):
        services.recovery_approve(request_id=request.id, user=guardian.user,
                                  credential=sign(guardian, digests.approval_challenge(request)))
    services.recovery_approval_withdraw(request_id=request.id, user=second.user)
    request.refresh_from_db()
    assert (request.status, request.executes_at) == (Status.COLLECTING, None)
    services.recovery_hold_check(wallet=request.wallet)  # payments flow again
    assert services.recovery_due_sweep(now=timezone.now() + timedelta(days=30)) == 0
    assert list(RecoveryEvent.objects.filter(request=request).values_list("kind", flat=True))[-2:] == [
        "approval_withdrawn", "timelock_stopped"]


def test_a_removed_guardians_approval_stops_counting(family: dict[str, Any]) -> None:
    owner, (first, second, _third) = family["owner"], family["guardians"]
    request, _token, _soft = start_collecting(owner)
    for guardian in (first, second):
        services.recovery_approve(request_id=request.id, user=guardian.user,
                                  credential=sign(guardian, digests.approval_challenge(request)))
    guardian_row = Guardian.objects.get(guardian_user=second.user)
    services.guardian_remove(owner=owner.user, guardian_id=guardian_row.pk,
                             credential=owner_sign(owner, action="remove", subject=str(guardian_row.pk)))
    services.guardian_changes_apply()
    request.refresh_from_db()
    assert request.status == Status.COLLECTING
    assert request.executes_at is None
    assert services.live_approvals(request) == 1


# --- the owner -------------------------------------------------------------------------------------------
def test_the_owner_cancels_with_the_signed_link_and_their_passkey_once(family: dict[str, Any]) -> None:
    owner = family["owner"]
    request, _token, _soft = start_collecting(owner)
    link = services.cancel_link(request).rsplit("/recovery/cancel/", 1)[1].rstrip("/")
    assert services.request_by_cancel_link(link).pk == request.pk
    services.recovery_cancel(request_id=request.id, link=link,
                             credential=sign(owner, digests.cancel_challenge(request)))
    request.refresh_from_db()
    assert request.status == Status.CANCELLED
    _refused("recovery_cancel_link_invalid", lambda: services.request_by_cancel_link(link))
    _refused("recovery_cancel_link_invalid", lambda: services.request_by_cancel_link(link[:-2] + "xx"))


def test_cancelling_needs_the_owners_passkey_or_session(family: dict[str, Any]) -> None:
    owner, first = family["owner"], family["guardians"][0]
    request, _token, _soft = start_collecting(owner)
    _refused("owner_passkey_required", lambda: services.recovery_cancel(request_id=request.id))
    _refused("owner_passkey_required", lambda: services.recovery_cancel(request_id=request.id,
                                                                        session_user=first.user))
    # a guardian's passkey is not the owner's
    _refused("passkey_assertion_invalid", lambda: services.recovery_cancel(
        request_id=request.id, credential=sign(first, digests.cancel_challenge(request))))
    request.refresh_from_db()
    assert request.status == Status.COLLECTING
    services.recovery_cancel(request_id=request.id, session_user=owner.user)
    request.refresh_from_db()
    assert request.status == Status.CANCELLED


def test_an_operator_freezes_a_request(family: dict[str, Any], make_user: Any) -> None:
    owner, first = family["owner"], family["guardians"][0]
    request, _token, _soft = start_collecting(owner)
    services.recovery_freeze(request_id=request.id, operator=make_user(email="ops@example.com"), reason="fraud")
    _refused("recovery_not_collecting", lambda: services.recovery_approve(
        request_id=request.id, user=first.user, credential=sign(first, digests.approval_challenge(request))))
    assert RecoveryRequest.objects.get().status == Status.FROZEN
    assert not RecoveryApproval.objects.exists()


def test_the_attacker_with_the_email_but_no_approvals_gets_nothing(family: dict[str, Any]) -> None:
    # given someone who controls the owner's email (they read the code) but whom no guardian approves
    owner = family["owner"]
    request, _token, _soft = start_collecting(owner, client_key="192.0.2.66")
    # when the request's time runs out and every sweep runs
    later = request.expires_at + timedelta(seconds=1)
    assert services.recovery_due_sweep(now=later) == 0
    assert services.requests_expire(now=later) == 1
    # then the request expired, the owner's passkey is the only one, nothing was executed
    request.refresh_from_db()
    assert request.status == Status.EXPIRED
    assert not request.attempts.exists()
    assert list(Authenticator.objects.filter(user=owner.user).values_list("data__name", flat=True)) == ["Laptop"]


def test_a_running_timelock_never_expires_but_an_approval_whose_clock_never_ran_does(family: dict[str, Any]) -> None:
    # given a request the guardians approved: its timelock runs (executes_at set)
    owner, guardians = family["owner"], family["guardians"]
    request, _token, _soft = start_collecting(owner)
    for guardian in guardians[:2]:
        services.recovery_approve(request_id=request.id, user=guardian.user,
                                  credential=sign(guardian, digests.approval_challenge(request)))
    request.refresh_from_db()
    assert request.status == Status.TIMELOCKED
    later = request.expires_at + timedelta(seconds=1)
    # when its expiry passes: it does not expire (it executes, or is cancelled or frozen)
    assert services.requests_expire(now=later) == 0
    request.refresh_from_db()
    assert (request.status, request.ended_at) == (Status.TIMELOCKED, None)
    assert not RecoveryEvent.objects.filter(request=request, kind="request_expired").exists()
    # when the clock is not running (as after a start whose approvals stay below the chain's threshold)
    RecoveryRequest.objects.filter(pk=request.pk).update(executes_at=None)
    # then it expires at its expiry, never before
    assert services.requests_expire(now=request.expires_at - timedelta(seconds=1)) == 0
    assert services.requests_expire(now=later) == 1
    request.refresh_from_db()
    assert request.status == Status.EXPIRED
    assert RecoveryEvent.objects.filter(request=request, kind="request_expired", actor="system").count() == 1
