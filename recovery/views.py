"""Pages of guardian recovery: the owner's guardians and request, "I lost access" (start, code, new passkey,
status), the invitation, the guardian's approval, the owner's cancel page. Passkey steps run in
``static/recovery/recovery.js`` against the API (:mod:`recovery.api`); these views only render and carry
plain form posts. A GET never writes."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from numpay.core.errors import ApplicationError

from . import selectors, services
from .models import RecoveryRequest

TOKEN_SESSION_KEY = "recovery_requester_token"  # noqa: S105 - a session key name, not a secret


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    """The owner's guardians, invitations, rules, their account's open request (with cancel), and the
    requests they may approve as a guardian."""
    open_request = selectors.open_request_of(user=request.user)
    setup = services.recovery_setup(user=request.user)
    return render(request, "recovery/overview.html", {
        "setup": setup,
        "cancelling": services.onchain_guardians.cancelling_of(setup),
        "guardians": selectors.guardians_of(user=request.user),
        "invitations": selectors.invitations_of(user=request.user),
        "open_request": open_request,
        "open_status": selectors.request_status(open_request) if open_request else None,
        "to_approve": selectors.requests_to_approve(user=request.user),
    })


@login_required
@require_http_methods(["POST"])
def guardian_change_cancel(request: HttpRequest, guardian_id: str) -> HttpResponse:
    """Cancel a pending guardian change (the owner's session). A protected wallet's change already approved for
    the chain is refused (``guardian_cancel_passkey_required``: the page's passkey button cancels it)."""
    try:
        services.guardian_change_cancel(owner=request.user, guardian_id=guardian_id)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("recovery")
    messages.success(request, "The change was cancelled.")
    return redirect("recovery")


@require_http_methods(["GET", "POST"])
def start(request: HttpRequest) -> HttpResponse:
    """"I lost access": enter the account's email or phone; a code is sent there."""
    if request.method == "POST":
        try:
            token = services.recovery_start(identifier=request.POST.get("identifier", ""),
                                            client_key=request.META.get("REMOTE_ADDR", ""))
        except ApplicationError as error:
            return render(request, "recovery/start.html", {"error": error}, status=error.status)
        request.session[TOKEN_SESSION_KEY] = token
        return redirect("recovery_verify")
    return render(request, "recovery/start.html")


@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """Enter the code; then register the new passkey (JS, with the creation options this page carries)."""
    token = request.session.get(TOKEN_SESSION_KEY)
    if not token:
        return redirect("recovery_start")
    if request.method == "POST":
        try:
            options = services.recovery_code_verify(token=token, code=request.POST.get("code", ""))
        except ApplicationError as error:
            return render(request, "recovery/verify.html", {"error": error}, status=error.status)
        return render(request, "recovery/new_passkey.html", {"options": json.dumps(options), "token": token})
    return render(request, "recovery/verify.html")


def status(request: HttpRequest) -> HttpResponse:
    """The requester's view: "2 of 3 guardians approved; you regain access on ... unless the owner cancels"."""
    token = request.session.get(TOKEN_SESSION_KEY)
    if not token:
        return redirect("recovery_start")
    try:
        recovery = services.request_by_token(token)
    except ApplicationError:
        recovery = None
    return render(request, "recovery/status.html", {
        "status": selectors.request_status(recovery) if recovery else None})


@login_required
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """Accept an invitation with your passkey (JS)."""
    found = services.invitation_by_token(token)
    return render(request, "recovery/invitation.html", {"invitation": found, "token": token})


def _chain_approve_needed(recovery: RecoveryRequest, guardian: Any, approval: Any) -> bool:
    """Whether the wallet needs this guardian's ``recovery_approve`` (the start could not carry it) and they
    have not signed it yet; ``False`` when the chain cannot be read now (the page is shown anyway)."""
    from numpay.core.errors import ChainUnavailableError
    from numpay.core.solana import get_chain_client

    from . import chain

    if approval is None or approval.chain_approve_approval or recovery.executes_at is not None or (
            recovery.status != RecoveryRequest.Status.TIMELOCKED or not guardian.authority_key or
            recovery.chain_phase not in (RecoveryRequest.ChainPhase.STARTED, RecoveryRequest.ChainPhase.APPROVE)):
        return False
    try:
        return chain.guardian_approve_terms(client=get_chain_client(), request=recovery,
                                            guardian_key=bytes(guardian.authority_key), expires_at=0) is not None
    except ChainUnavailableError:
        return False


@login_required
def approve(request: HttpRequest, request_id: str) -> HttpResponse:
    """A guardian's approval page: who asks, the status, approve with your passkey (JS) or withdraw."""
    recovery, guardian = services.guardian_request(request_id=request_id, user=request.user,
                                                   refuse_while_starting=False)
    approval = recovery.approvals.filter(guardian=guardian, withdrawn_at__isnull=True).first()
    approved = approval is not None
    return render(request, "recovery/approve.html", {
        "recovery": recovery, "status": selectors.request_status(recovery), "approved": approved,
        "chain_approve_needed": _chain_approve_needed(recovery, guardian, approval),
        "on_chain_phases": (RecoveryRequest.ChainPhase.STARTED, RecoveryRequest.ChainPhase.WITHDRAW)})


@login_required
@require_http_methods(["POST"])
def withdraw(request: HttpRequest, request_id: str) -> HttpResponse:
    """Withdraw your approval (form post)."""
    services.recovery_approval_withdraw(request_id=request_id, user=request.user)
    messages.success(request, "Your approval was withdrawn.")
    return redirect("recovery_approve", request_id=request_id)


@require_http_methods(["GET", "POST"])
def cancel(request: HttpRequest, link: str) -> HttpResponse:
    """The owner's cancel page, from the signed single-use link: one button with an owner session, the
    owner's passkey (JS) without one."""
    try:
        recovery = services.request_by_cancel_link(link)
    except ApplicationError as error:
        return render(request, "recovery/cancel.html", {"error": error}, status=error.status)
    if request.method == "POST":
        services.recovery_cancel(request_id=recovery.id, session_user=request.user
                                 if request.user.is_authenticated else None, link=link)
        return render(request, "recovery/cancel.html", {"cancelled": True})
    is_owner = request.user.is_authenticated and request.user.pk == recovery.user_id
    return render(request, "recovery/cancel.html", {"recovery": recovery, "link": link, "is_owner": is_owner,
                                                    "status": selectors.request_status(recovery)})


@login_required
@require_http_methods(["POST"])
def cancel_own(request: HttpRequest, request_id: str) -> HttpResponse:
    """Cancel your account's recovery from the banner or the overview (the owner's session)."""
    services.recovery_cancel(request_id=request_id, session_user=request.user)
    messages.success(request, "The recovery was cancelled. Nothing changed on your account.")
    return redirect("recovery")
