"""Reads of recovery (a GET never writes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from .app_settings import app_settings
from .models import Guardian, GuardianInvitation, RecoveryRequest

Status = RecoveryRequest.Status


@dataclass(frozen=True)
class RequestStatus:
    """What the requester (and the owner) are shown about a request.

    :ivar approvals: live approvals by active guardians; ``threshold``: approvals needed.
    :ivar sentence: one plain sentence ("2 of 3 guardians approved; you regain access on ...").
    """

    id: str
    status: str
    approvals: int
    threshold: int
    guardians: int
    executes_at: datetime | None
    expires_at: datetime
    sentence: str


def request_status(request: RecoveryRequest) -> RequestStatus:
    """The status of ``request`` in numbers and one sentence."""
    from .services.guardians import recovery_setup, threshold_of
    from .services.requests import live_approvals

    guardians = Guardian.objects.filter(owner_id=request.user_id, status=Guardian.Status.ACTIVE).count()
    threshold = threshold_of(setup=recovery_setup(user=request.user), guardian_count=guardians)
    approvals = live_approvals(request)
    when = f"{request.executes_at:%d %B at %H:%M} UTC" if request.executes_at else ""
    sentences = {
        Status.VERIFYING: "Enter the code we sent, then register your new passkey.",
        Status.COLLECTING: f"{approvals} of {guardians} guardians approved; {threshold} approvals are needed.",
        Status.TIMELOCKED: (f"{approvals} of {guardians} guardians approved; you regain access on {when} unless the "
                            "owner cancels.") if when else (
            f"{approvals} of {guardians} guardians approved; the wallet is waiting for their approvals there too "
            "before the waiting time starts."),
        Status.EXECUTING: "Your guardians approved and the waiting time is over: the recovery is being completed.",
        Status.EXECUTED: "Recovered: sign in with your new passkey.",
        Status.CANCELLED: "The account's owner cancelled this recovery.",
        Status.EXPIRED: "This recovery expired before enough guardians approved it.",
        Status.FAILED: f"The recovery could not be completed: {request.end_reason}",
        Status.FROZEN: "This recovery was stopped by our team. Contact support.",
    }
    return RequestStatus(id=str(request.id), status=request.status, approvals=approvals, threshold=threshold,
                         guardians=guardians, executes_at=request.executes_at, expires_at=request.expires_at,
                         sentence=sentences[request.status])


def open_request_of(*, user: Any) -> RecoveryRequest | None:
    """The account's recovery request the owner must know about (waiting for guardians, timelocked or
    executing), or ``None``."""
    if not getattr(user, "is_authenticated", False):
        return None
    return RecoveryRequest.objects.filter(user=user, status__in=(Status.COLLECTING, Status.TIMELOCKED,
                                                                 Status.EXECUTING)).first()


def guardians_of(*, user: Any) -> QuerySet[Guardian]:
    """The owner's pending and active guardians, oldest first."""
    return Guardian.objects.filter(owner=user, status__in=(Guardian.Status.PENDING, Guardian.Status.ACTIVE)
                                   ).select_related("guardian_user")


def invitations_of(*, user: Any) -> QuerySet[GuardianInvitation]:
    """The owner's invitations still waiting for an answer."""
    return GuardianInvitation.objects.filter(owner=user, status=GuardianInvitation.Status.PENDING)


def requests_to_approve(*, user: Any) -> QuerySet[RecoveryRequest]:
    """Requests waiting for ``user`` as an active guardian."""
    owners = Guardian.objects.filter(guardian_user=user, status=Guardian.Status.ACTIVE).values("owner_id")
    return RecoveryRequest.objects.filter(user_id__in=owners, status__in=(Status.COLLECTING, Status.TIMELOCKED))


def timelock_range() -> tuple[int, int]:
    """``(min, max)`` seconds an owner may choose."""
    return app_settings.MIN_TIMELOCK_SECONDS, app_settings.MAX_TIMELOCK_SECONDS
