"""Helpers of the recovery tests: people with real passkeys (software authenticators making real WebAuthn
responses, stored in the one credential store), guardians set up through the services, a request driven to
"waiting for guardians"."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from allauth.account.models import EmailAddress

from recovery import services
from recovery.models import Guardian, GuardianInvitation, RecoveryEmail, RecoveryRequest
from recovery.passkeys import passkey_install, registration_begin, registration_complete, request_options
from tests.webauthn_support import SoftAuthenticator


class BrowserAuthenticator(SoftAuthenticator):
    """A software authenticator whose clientDataJSON is serialized as browsers do (compact, in WebAuthn's
    order: type, challenge, origin, crossOrigin), which the program's approval check relies on."""

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin or self.origin,
                           "crossOrigin": False}, separators=(",", ":")).encode()


@dataclass
class Person:
    """A user and the software authenticator of their (first) passkey."""

    user: Any
    soft: SoftAuthenticator


@dataclass(frozen=True)
class QueuedEmail:
    """A recovery email as its row holds it (the fields tests read of ``django.core.mail`` messages)."""

    to: list[str]
    subject: str
    body: str


def recovery_outbox() -> list[QueuedEmail]:
    """Every recovery email stored so far, oldest first: they are committed with the change that causes
    them and sent by the worker (``tests/test_recovery_notifications.py`` proves the sending), so a test
    without a worker reads what was queued here."""
    return [QueuedEmail(to=[email.recipient], subject=email.subject, body=email.body)
            for email in RecoveryEmail.objects.order_by("id")]


def person(make_user: Any, email: str) -> Person:
    """A user with a verified email, a wallet and one passkey."""
    user = make_user(email=email)
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
    soft = BrowserAuthenticator()
    options, state = registration_begin(user=user)
    credential = soft.create(options["publicKey"])
    registration_complete(state=state, credential=credential)
    passkey_install(user=user, credential=credential, name="Laptop")
    return Person(user=user, soft=soft)


def sign(who: Person, challenge: bytes, **tamper: Any) -> dict[str, Any]:
    """``who``'s passkey assertion over ``challenge``."""
    options = request_options(user=who.user, challenge=challenge)
    return who.soft.get(options["publicKey"], **tamper)


def owner_sign(owner: Person, *, action: str, subject: str) -> dict[str, Any]:
    """The owner's passkey over a fresh single-use guardian-change challenge."""
    options = services.owner_change_options(owner=owner.user, action=action, subject=subject)
    return owner.soft.get(options["publicKey"])


def invitation_token(email: str) -> str:
    """The token of the last invitation link emailed to ``email``."""
    for message in reversed(recovery_outbox()):
        if email in message.to and "/recovery/invitations/" in message.body:
            return re.search(r"/recovery/invitations/([\w-]+)/", message.body).group(1)
    raise AssertionError(f"no invitation emailed to {email}")


def add_guardian(owner: Person, guardian: Person, *, activate: bool = True) -> Guardian:
    """Invite (owner's passkey), accept (guardian's passkey) and, with ``activate``, let the change delay
    pass (the caller sets ``NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS = 0``) and apply it."""
    from recovery import digests

    email = guardian.user.email
    services.guardian_invite(owner=owner.user, email=email,
                             credential=owner_sign(owner, action="invite", subject=email))
    token = invitation_token(email)
    invitation = GuardianInvitation.objects.get(token_hash=services.requests.secret_hash(token))
    result = services.guardian_invitation_accept(
        token=token, user=guardian.user, credential=sign(guardian, digests.invitation_challenge(invitation.id)))
    if activate:
        services.guardian_changes_apply()
        result.refresh_from_db()
    return result


def last_code(to: str) -> str:
    """The recovery code last sent to ``to`` (email)."""
    for message in reversed(recovery_outbox()):
        if to in message.to and "recovery code is" in message.body:
            return re.search(r"recovery code is (\d{6})", message.body).group(1)
    raise AssertionError(f"no recovery code emailed to {to}")


def start_collecting(owner: Person, *, client_key: str = "198.51.100.7") -> tuple[RecoveryRequest, str,
                                                                                     SoftAuthenticator]:
    """Someone with the owner's email starts a recovery, enters the code and registers a new passkey.

    :returns: ``(request, requester token, the new passkey's authenticator)``.
    """
    token = services.recovery_start(identifier=owner.user.email, client_key=client_key)
    options = services.recovery_code_verify(token=token, code=last_code(owner.user.email))
    new_soft = BrowserAuthenticator()
    request = services.recovery_passkey_register(token=token, credential=new_soft.create(options["publicKey"]))
    return request, token, new_soft


@pytest.fixture
def worker_without_beat(celery_worker_session: Any, tokens: Any) -> Iterator[Any]:
    """The session's real Celery worker (it sends and confirms the outbox's transactions) without beat: the test
    decides when the recovery sweeps run (:func:`sweep_until_started`). At the end, the worker finishes what it
    runs. Import it into the test module to use it."""
    from celery.worker import state as worker_state

    from tests.helpers import wait_until

    yield celery_worker_session
    wait_until(lambda: not worker_state.active_requests and not worker_state.reserved_requests,
               timeout=30, interval=0.05)


def sweep_until_started(request: RecoveryRequest, *, timeout: float = 90) -> bool:
    """Run the guardian sync and recovery sweeps (as beat would) until ``request`` is pending on-chain (its
    ``recovery_start`` landed, the guardian set written first): the worker lands what they submit.

    :returns: whether it started within ``timeout`` seconds.
    """
    from tests.helpers import wait_until

    def started() -> bool:
        services.guardian_sync_sweep()
        services.recovery_due_sweep()
        return RecoveryRequest.objects.get(pk=request.pk).chain_phase == RecoveryRequest.ChainPhase.STARTED

    return bool(wait_until(started, timeout=timeout, interval=0.2))
