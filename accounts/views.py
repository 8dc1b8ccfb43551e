"""Pages of the accounts app: sign-in methods (with passkeys), SMS delivery status, the development outbox.

Sign-up, sign-in, codes and provider logins are allauth's own views (customised by adapters and templates).
Passkey ceremonies run in ``static/accounts/passkeys.js`` against allauth's headless API (the same endpoints
apps use); renaming and removing go through allauth's WebAuthn flows.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from allauth.account.decorators import reauthentication_required
from allauth.headless.internal.restkit.response import APIResponse
from allauth.headless.mfa import views as allauth_headless_mfa_views
from allauth.headless.mfa.response import AuthenticatorsDeletedResponse
from allauth.mfa.models import Authenticator
from allauth.mfa.webauthn import views as allauth_webauthn_views
from allauth.mfa.webauthn.internal import flows as webauthn_flows
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from numpay.core.errors import ConflictError

from . import services
from .adapters import SMS_SESSION_KEY
from .app_settings import app_settings
from .models import OutboundMessage
from .phones import phone_mask
from .selectors import passkeys, sign_in_method_removal_refusal, sign_in_methods, wallet_passkey_owners


@login_required
@require_GET
def sign_in_methods_page(request: HttpRequest) -> HttpResponse:
    """The account page: every way the user signs in, with add and (when another remains and it does not own the
    wallet on-chain) remove; the passkeys, each with its part in the wallet (owner, becoming one, or "Make this
    passkey an owner of your wallet" once the wallet is protected: ``static/payments/passkey_owner.js`` over
    ``/api/v1/wallet/passkeys/{id}/owner-options`` and ``.../owner``, :mod:`payments.passkey_owners`; "Remove from
    wallet" beside each owner while there are two or more: ``.../removal-options`` and ``.../removal``,
    :mod:`payments.passkey_removals`; "Removed from your wallet" once it landed, with the ordinary Remove)."""
    methods = sign_in_methods(user=request.user)  # type: ignore[arg-type]
    refusals = [sign_in_method_removal_refusal(user=request.user, kind=method.kind, key=method.key)  # type: ignore[arg-type]
                for method in methods]
    rows = [(method, refusal is None) for method, refusal in zip(methods, refusals, strict=True)]
    wallet_owner_keys = {method.key for method, refusal in zip(methods, refusals, strict=True)
                         if refusal == "passkey_owns_wallet"}
    return render(request, "accounts/sign_in_methods.html", {
        "rows": rows, "wallet_owner_keys": wallet_owner_keys, "sms_signin_enabled": app_settings.SMS_SIGNIN_ENABLED,
        "pending_phone": request.user.phone if request.user.phone and not request.user.phone_verified else "",  # type: ignore[union-attr]
        "passkeys": passkeys(user=request.user),  # type: ignore[arg-type]
        "wallet_owners": wallet_passkey_owners(user=request.user),  # type: ignore[arg-type]
    })


@login_required
@reauthentication_required
@require_GET
def passkey_add_page(request: HttpRequest) -> HttpResponse:
    """Register a passkey (after re-entering a password or using an existing passkey: allauth's rule), once
    every email address is confirmed (allauth's rule: else whoever signed up with someone else's address
    would keep a way in after its owner takes the account back by email)."""
    from allauth.account.models import EmailAddress

    unverified = EmailAddress.objects.filter(user=request.user, verified=False).exists()
    return render(request, "accounts/passkey_add.html", {"unverified_email": unverified})


def _own_passkey(request: HttpRequest, pk: int) -> Authenticator:
    return get_object_or_404(Authenticator, pk=pk, user=request.user, type=Authenticator.Type.WEBAUTHN)


@login_required
@reauthentication_required
@require_POST
def passkey_rename(request: HttpRequest, pk: int) -> HttpResponse:
    """Rename one of the user's passkeys (1 to 100 characters)."""
    name = request.POST.get("name", "").strip()[:100]
    if name:
        webauthn_flows.rename_authenticator(request, _own_passkey(request, pk), name)
    return redirect("sign_in_methods")


@login_required
@reauthentication_required
@require_POST
def passkey_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove one of the user's passkeys (``last_sign_in_method`` if nothing else would remain).

    :raises numpay.core.errors.ConflictError: ``last_sign_in_method``.
    """
    services.user_passkey_remove(request=request, authenticator=_own_passkey(request, pk))
    return redirect("sign_in_methods")


@login_required
@require_POST
def phone_remove(request: HttpRequest) -> HttpResponse:
    """Remove the phone number (refused with ``last_sign_in_method`` when it is the only way in)."""
    services.user_phone_remove(user=request.user)  # type: ignore[arg-type]
    return redirect("sign_in_methods")


@require_GET
def sms_delivery(request: HttpRequest) -> HttpResponse:
    """What became of the last text sent for this browser (polled by the code pages while it is queued)."""
    message_id = request.session.get(SMS_SESSION_KEY)
    message = OutboundMessage.objects.filter(pk=message_id, channel=OutboundMessage.Channel.SMS).first() \
        if message_id else None
    return render(request, "accounts/_sms_delivery.html", {
        "message": message, "masked": phone_mask(message.recipient) if message else ""})


def _is_local(request: HttpRequest) -> bool:
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@require_GET
def dev_outbox(request: HttpRequest) -> HttpResponse:
    """``/dev/outbox/``: emails and SMS sent, newest first; staff or this machine only, never in production
    (``DEV_OUTBOX_ENABLED``); otherwise 404 (nothing tells that it exists)."""
    if not app_settings.DEV_OUTBOX_ENABLED or not (request.user.is_staff or _is_local(request)):
        raise Http404
    messages = OutboundMessage.objects.all()[:200]
    return render(request, "accounts/dev_outbox.html", {"outbox": messages})


class RemovePasskeyView(allauth_webauthn_views.RemoveWebAuthnView):
    """allauth's remove-a-passkey page (``/accounts/2fa/webauthn/keys/<pk>/remove/``), removing through
    :func:`accounts.services.user_passkeys_remove` (its refusals render as an error page).

    :raises numpay.core.errors.ConflictError: ``last_sign_in_method`` or ``passkey_owns_wallet``.
    """

    def form_valid(self, form: Any) -> HttpResponse:
        services.user_passkeys_remove(request=self.request, authenticators=[self.get_object()])
        return HttpResponseRedirect(self.get_success_url())


class ManagePasskeysAPIView(allauth_headless_mfa_views.ManageWebAuthnView):
    """allauth's headless ``account/authenticators/webauthn``; its ``DELETE`` removes through
    :func:`accounts.services.user_passkeys_remove`, a refusal answered in allauth's error shape with status 409
    and the registered code (``last_sign_in_method``, ``passkey_owns_wallet``), nothing removed."""

    def delete(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            services.user_passkeys_remove(request=request, authenticators=self.input.cleaned_data["authenticators"])
        except ConflictError as exc:
            return APIResponse(request, status=exc.status, errors=[
                {"message": exc.message, "code": exc.code, "param": "authenticators"}])
        return AuthenticatorsDeletedResponse(request)
