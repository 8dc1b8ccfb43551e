"""Guardian recovery through the REST API, the pages and the admin: the requester (not signed in) proves the
email and registers the new passkey; guardians approve through the API with their passkeys; the owner cancels
with the signed link and their passkey (no session) or from the banner; outgoing payments are held during
the timelock with a registered code and nothing stored; operators may freeze but never approve."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from payments.models import Payment
from recovery import services
from recovery.models import Guardian, GuardianInvitation, RecoveryApproval, RecoveryRequest
from tests.recovery_support import add_guardian, invitation_token, last_code, person, recovery_outbox, start_collecting
from tests.webauthn_support import SoftAuthenticator

pytestmark = pytest.mark.django_db(transaction=True)
Status = RecoveryRequest.Status
JSON = "application/json"


@pytest.fixture(autouse=True)
def _short_delays(settings: Any, chain_setup: Any) -> None:
    cache.clear()
    settings.NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = 0
    settings.NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS = 1


@pytest.fixture
def family(make_user: Any) -> dict[str, Any]:
    owner = person(make_user, "owner@example.com")
    guardians = [person(make_user, f"guardian{n}@example.com") for n in range(3)]
    for guardian in guardians:
        add_guardian(owner, guardian)
    return {"owner": owner, "guardians": guardians}


def _as(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _post(client: Client, url: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(url, json.dumps(body or {}), content_type=JSON)


def test_the_requester_flow_and_guardian_approvals_over_the_api(family: dict[str, Any]) -> None:
    owner, (first, second, _third) = family["owner"], family["guardians"]
    anonymous = Client()
    # the requester proves the email and registers a new passkey
    started = _post(anonymous, "/api/v1/recovery/requests", {"identifier": owner.user.email})
    assert started.status_code == 202
    token = started.json()["token"]
    options = _post(anonymous, "/api/v1/recovery/requests/verify", {"token": token, "code": last_code(owner.user.email)})
    assert options.status_code == 200
    new_soft = SoftAuthenticator()
    registered = _post(anonymous, "/api/v1/recovery/requests/passkey",
                       {"token": token, "credential": new_soft.create(options.json()["publicKey"])})
    assert registered.status_code == 200
    assert registered.json()["status"] == "collecting"
    request_id = registered.json()["id"]
    # two guardians approve with their passkeys
    for guardian in (first, second):
        client = _as(guardian.user)
        approval = client.get(f"/api/v1/recovery/requests/{request_id}/approval").json()
        answer = _post(client, f"/api/v1/recovery/requests/{request_id}/approve",
                       {"credential": guardian.soft.get(approval["options"]["publicKey"])})
        assert answer.status_code == 201
    status = anonymous.get("/api/v1/recovery/requests/status", HTTP_X_RECOVERY_TOKEN=token).json()
    assert (status["status"], status["approvals"], status["threshold"], status["guardians"]) == ("timelocked", 2, 2, 3)
    assert "2 of 3 guardians approved; you regain access on" in status["sentence"]
    # a guardian withdraws: the clock stops
    assert _post(_as(second.user), f"/api/v1/recovery/requests/{request_id}/withdraw").status_code == 200
    status = anonymous.get("/api/v1/recovery/requests/status", HTTP_X_RECOVERY_TOKEN=token).json()
    assert (status["status"], status["executes_at"]) == ("collecting", None)


def test_a_non_guardian_gets_a_registered_403_and_nothing_is_stored(family: dict[str, Any], make_user: Any) -> None:
    owner = family["owner"]
    request, _token, _soft = start_collecting(owner)
    stranger = person(make_user, "stranger@example.com")
    response = _as(stranger.user).get(f"/api/v1/recovery/requests/{request.id}/approval")
    assert (response.status_code, response.json()["code"]) == (403, "recovery_not_guardian")
    assert not RecoveryApproval.objects.exists()


def test_the_owner_cancels_with_the_link_and_their_passkey_without_a_session(family: dict[str, Any]) -> None:
    owner = family["owner"]
    request, _token, _soft = start_collecting(owner)
    link = services.cancel_link(request).rsplit("/recovery/cancel/", 1)[1].rstrip("/")
    anonymous = Client()
    # the page names the request and offers the passkey (no session)
    page = anonymous.get(f"/recovery/cancel/{link}/")
    assert page.status_code == 200
    assert b"Cancel with my passkey" in page.content
    # without a passkey: refused, nothing changed
    refused = _post(anonymous, f"/api/v1/recovery/requests/{request.id}/cancel", {"link": link})
    assert (refused.status_code, refused.json()["code"]) == (403, "owner_passkey_required")
    assert RecoveryRequest.objects.get().status == Status.COLLECTING
    options = anonymous.get(f"/api/v1/recovery/requests/{request.id}/cancel-options").json()
    done = _post(anonymous, f"/api/v1/recovery/requests/{request.id}/cancel",
                 {"link": link, "credential": owner.soft.get(options["publicKey"])})
    assert (done.status_code, done.json()["status"]) == (200, "cancelled")
    # the link is single use
    assert anonymous.get(f"/recovery/cancel/{link}/").status_code == 400


def test_the_owner_sees_the_banner_and_cancels_from_it(family: dict[str, Any]) -> None:
    owner = family["owner"]
    request, _token, _soft = start_collecting(owner)
    client = _as(owner.user)
    page = client.get("/recovery/")
    assert b'data-testid="recovery-banner"' in page.content
    response = client.post(f"/recovery/requests/{request.id}/cancel/")
    assert response.status_code == 302
    assert RecoveryRequest.objects.get().status == Status.CANCELLED
    assert b'data-testid="recovery-banner"' not in client.get("/recovery/").content


def test_inviting_and_accepting_over_the_api(make_user: Any) -> None:
    owner, friend = person(make_user, "owner@example.com"), person(make_user, "friend@example.com")
    client = _as(owner.user)
    options = _post(client, "/api/v1/recovery/owner-challenge", {"action": "invite", "subject": "Friend@Example.com"})
    invited = _post(client, "/api/v1/recovery/guardians",
                    {"email": "friend@example.com", "credential": owner.soft.get(options.json()["publicKey"])})
    assert invited.status_code == 201
    token = invitation_token("friend@example.com")
    friend_client = _as(friend.user)
    invitation = friend_client.get(f"/api/v1/recovery/invitations/{token}").json()
    accepted = _post(friend_client, f"/api/v1/recovery/invitations/{token}/accept",
                     {"credential": friend.soft.get(invitation["options"]["publicKey"])})
    assert accepted.status_code == 201
    assert GuardianInvitation.objects.get().status == "accepted"
    assert Guardian.objects.get().guardian_user == friend.user
    overview = client.get("/api/v1/recovery").json()
    assert [g["email"] for g in overview["guardians"]] == ["friend@example.com"]


def test_the_start_page_and_the_sign_in_link(family: dict[str, Any]) -> None:
    anonymous = Client()
    assert b'href="/recovery/start/"' in anonymous.get("/accounts/login/").content
    response = anonymous.post("/recovery/start/", {"identifier": family["owner"].user.email})
    assert response.status_code == 302
    assert response["Location"] == "/recovery/verify/"
    page = anonymous.post("/recovery/verify/", {"code": last_code(family["owner"].user.email)})
    assert b"Create the passkey" in page.content
    wrong = anonymous.post("/recovery/verify/", {"code": "x"})
    assert wrong.status_code == 409  # the code was used: the request now waits for its passkey


def test_payments_are_held_during_the_timelock(family: dict[str, Any], tokens: Any) -> None:
    from recovery import digests
    from tests.recovery_support import sign

    owner, (first, second, _third) = family["owner"], family["guardians"]
    request, _token, _soft = start_collecting(owner)
    for guardian in (first, second):
        services.recovery_approve(request_id=request.id, user=guardian.user,
                                  credential=sign(guardian, digests.approval_challenge(request)))
    response = _as(owner.user).post("/api/v1/payments", {"to": first.user.email, "token": "USDC", "amount": "1"},
                                    content_type=JSON, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    assert (response.status_code, response.json()["code"]) == (409, "recovery_payments_held")
    assert not Payment.objects.exists()


def test_operators_may_freeze_but_the_admin_cannot_approve(family: dict[str, Any], make_user: Any) -> None:
    from accounts.models import User

    request, _token, _soft = start_collecting(family["owner"])
    operator = User.objects.create_superuser(email="ops@example.com", password="pw-Numpay-1")
    client = _as(operator)
    page = client.get(f"/admin/recovery/recoveryrequest/{request.id}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    changelist = client.get("/admin/recovery/recoveryrequest/")
    assert b'value="freeze"' in changelist.content
    assert b"approve" not in changelist.content.lower().split(b'name="action"')[1][:500]
    client.post("/admin/recovery/recoveryrequest/", {"action": "freeze", "_selected_action": [str(request.id)]})
    assert RecoveryRequest.objects.get().status == Status.FROZEN
    assert recovery_outbox()[-1].subject == "A recovery of your Numpay account was stopped"


def test_guardian_change_endpoints_refuse_what_needs_no_passkey_and_change_nothing(family: dict[str, Any]) -> None:
    # given a custodial owner whose guardians are active (nothing waits for a passkey confirmation)
    owner, first = family["owner"], family["guardians"][0]
    guardian = Guardian.objects.get(owner=owner.user, guardian_user=first.user)
    client = _as(owner.user)
    before = list(Guardian.objects.filter(owner=owner.user).values())
    # when the owner asks to confirm an active guardian, or confirms without a challenge, or a stranger's id
    options = _post(client, f"/api/v1/recovery/guardians/{guardian.pk}/change-options", {"purpose": "confirm"})
    confirm = _post(client, f"/api/v1/recovery/guardians/{guardian.pk}/confirm", {"credential": {"id": "x"}})
    unknown = _post(client, f"/api/v1/recovery/guardians/{uuid.uuid4()}/change-options", {"purpose": "cancel"})
    bad_purpose = _post(client, f"/api/v1/recovery/guardians/{guardian.pk}/change-options", {"purpose": "steal"})
    # then each is refused with its code, and nothing changed
    assert (options.status_code, options.json()["code"]) == (409, "guardian_confirmation_not_needed")
    assert (confirm.status_code, confirm.json()["code"]) == (403, "owner_passkey_required")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "guardian_not_found")
    assert bad_purpose.status_code == 400
    assert list(Guardian.objects.filter(owner=owner.user).values()) == before
    overview = client.get("/api/v1/recovery").json()
    assert {g["needs_owner_confirmation"] for g in overview["guardians"]} == {False}
    assert overview["chain"] == {"step": "", "effective_at": None, "sync": overview["chain"]["sync"], "error": ""}
