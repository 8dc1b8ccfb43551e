"""Pages and headless API of the passkey sign-up (:mod:`accounts.passkey_signup`).

Pages: ``/accounts/signup/passkey/`` (email) -> ``/accounts/signup/passkey/code/`` (the emailed code) ->
``/accounts/signup/passkey/create/`` (allauth's URL name ``mfa_signup_webauthn``: the browser creates the passkey
through the headless browser API below, then the wallet opens).

Headless (``/_allauth/{app,browser}/v1/``), shaped like allauth's own passkey sign-up:
``POST auth/webauthn/signup {email}`` -> 401, pending flow ``verify_email`` (an app gets its ``session_token``);
``POST auth/webauthn/signup/code {code}`` -> 401, pending flow ``mfa_signup_webauthn``;
``GET auth/webauthn/signup`` -> the creation options; ``PUT auth/webauthn/signup {name, credential}`` -> 200,
signed in. The last two are allauth's (``allauth.headless.mfa.views.SignupWebAuthnView``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.internal.decorators import login_stage_required
from allauth.headless.base.response import AuthenticationResponse, ConflictResponse, ForbiddenResponse
from allauth.headless.internal.restkit import inputs
from allauth.headless.internal.restkit.response import APIResponse
from allauth.headless.mfa.views import SignupWebAuthnView as AllauthSignupWebAuthnView
from allauth.mfa.webauthn.stages import PasskeySignupStage
from django import forms
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .passkey_signup import (
    VERIFY_EMAIL_FLOW,
    PasskeySignupRefused,
    PasskeySignupVerification,
    passkey_signup_begin,
    passkey_signup_verify,
)

# --- pages -----------------------------------------------------------------------------------------------------


class _EmailForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))


class _CodeForm(forms.Form):
    code = forms.CharField(label="Code", max_length=20,
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text"}))


@require_http_methods(["GET", "POST"])
def passkey_signup_page(request: HttpRequest) -> HttpResponse:
    """Step 1: the email address."""
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = _EmailForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            passkey_signup_begin(request, email=form.cleaned_data["email"])
        except PasskeySignupRefused as exc:
            form.add_error("email", exc.message)
        except forms.ValidationError as exc:
            form.add_error("email", exc)
        else:
            return redirect("passkey_signup_code")
    return render(request, "accounts/passkey_signup.html", {"form": form}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def passkey_signup_code_page(request: HttpRequest) -> HttpResponseBase:
    """Step 2: the code from the email; right, the account exists and allauth sends the browser to step 3."""
    process = PasskeySignupVerification.resume(request)
    if process is None:
        return redirect("passkey_signup")
    form = _CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            return passkey_signup_verify(request, code=form.cleaned_data["code"])
        except PasskeySignupRefused as exc:
            if exc.code == "expired":
                get_account_adapter(request).add_message(request, 40, message=exc.message)
                return redirect("passkey_signup")
            form.add_error("code", exc.message)
    return render(request, "accounts/passkey_signup_code.html",
                  {"form": form, "email": process.email, "minutes": process.timeout // 60},
                  status=400 if form.errors else 200)


@login_stage_required(stage=PasskeySignupStage.key, redirect_urlname="account_signup")
def passkey_signup_create_page(request: HttpRequest) -> HttpResponse:
    """Step 3 (allauth's ``mfa_signup_webauthn``): create the passkey; only while this sign-up waits for it."""
    return render(request, "accounts/passkey_signup_create.html", {"email": request._login_stage.login.user.email})


# --- headless API ----------------------------------------------------------------------------------------------


class _EmailInput(inputs.Input):
    email = inputs.EmailField()


class _CodeInput(inputs.Input):
    code = inputs.CharField(max_length=20)


def _refused(request: HttpRequest, exc: PasskeySignupRefused, *, param: str) -> APIResponse:
    status = HTTPStatus.TOO_MANY_REQUESTS if exc.code == "too_many_attempts" else (
        HTTPStatus.CONFLICT if exc.code == "expired" else HTTPStatus.BAD_REQUEST)
    return APIResponse(request, errors=[{"message": exc.message, "code": exc.code, "param": param}], status=status)


class PasskeySignupView(AllauthSignupWebAuthnView):
    """``auth/webauthn/signup``: ``POST {email}`` starts the sign-up (step 1); ``GET`` / ``PUT`` are allauth's."""

    input_class = {"POST": _EmailInput, "PUT": AllauthSignupWebAuthnView.input_class["PUT"]}

    def handle(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # allauth's PUT input needs the pending sign-up's user: without one, 409 before the input is built
        if request.method == "PUT":
            conflict = self._require_stage()
            if conflict is not None:
                return conflict
        return super().handle(request, *args, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            return ConflictResponse(request)
        if not get_account_adapter().is_open_for_signup(request):
            return ForbiddenResponse(request)
        try:
            passkey_signup_begin(request, email=self.input.cleaned_data["email"])
        except PasskeySignupRefused as exc:
            return _refused(request, exc, param="email")
        except forms.ValidationError as exc:
            return APIResponse(request, errors=[{"message": " ".join(exc.messages), "code": exc.code or "invalid",
                                                 "param": "email"}], status=HTTPStatus.BAD_REQUEST)
        return APIResponse(request, status=HTTPStatus.UNAUTHORIZED, meta={"is_authenticated": False},
                           data={"flows": [{"id": VERIFY_EMAIL_FLOW, "is_pending": True}]})


class PasskeySignupCodeView(AllauthSignupWebAuthnView):
    """``auth/webauthn/signup/code``: ``POST {code}`` proves the address (step 2)."""

    input_class = {"POST": _CodeInput}

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return ConflictResponse(request)

    put = get

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            return ConflictResponse(request)
        try:
            response = passkey_signup_verify(request, code=self.input.cleaned_data["code"])
        except PasskeySignupRefused as exc:
            return _refused(request, exc, param="code")
        return AuthenticationResponse.from_response(request, response)
