"""Sign up with a passkey (issue 9 item 1): an email address proved by a code, then a passkey; no password.

Why not allauth's own passkey sign-up (``MFA_PASSKEY_SIGNUP_ENABLED``): in django-allauth 65 its system checks
(``allauth.mfa.checks``; ``Critical`` without an id, so they cannot be silenced) demand for *every* sign-up a
required email (``ACCOUNT_SIGNUP_FIELDS`` ``"email*"``), ``ACCOUNT_EMAIL_VERIFICATION = "mandatory"`` and
verification by code instead of links (``ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED``, which also unmounts the
confirmation-link URL). Numpay signs people up by phone with no email at all, email verification is optional,
and the confirmation link is what makes a wallet paid by email before sign-up spendable (``wallets.claims``).
So what allauth requires of a passkey sign-up is applied to this one flow, and everything else stays as it is:

1. **Email** -> a code by email (allauth's code generator and format ``ACCOUNT_EMAIL_VERIFICATION_BY_CODE_FORMAT``,
   its timeout ``..._TIMEOUT`` and attempt limit ``..._MAX_ATTEMPTS``), rate-limited like sign-in codes (per
   address and per IP). No account enumeration: an address that already has an account gets allauth's "account
   already exists" email and the same answer, and no code can match.
2. **The right code** -> the account is created: no usable password, the address verified and primary, the
   wallet provisioned (:func:`wallets.services.wallet_provision`) and a wallet reserved for the address claimed
   (:func:`wallets.claims.wallet_claim_confirm`). allauth's sign-up is completed with ``by_passkey=True``, so
   its ``PasskeySignupStage`` (added to the login stages by :class:`accounts.adapters.AccountAdapter`) holds the
   sign-in until a passkey exists.
3. **The passkey**: allauth's own ceremony (headless ``GET``/``PUT auth/webauthn/signup``: creation options, then
   the credential; held to :mod:`accounts.passkeys`' rules); then the person is signed in.

Pages and API: :mod:`accounts.passkey_signup_views`.
"""

from __future__ import annotations

from typing import Any

from allauth.account import app_settings as account_settings
from allauth.account.adapter import get_adapter
from allauth.account.internal.flows.code_verification import AbstractCodeVerificationProcess
from allauth.account.internal.flows.signup import complete_signup
from allauth.account.models import EmailAddress
from allauth.core import ratelimit
from allauth.core.internal.cryptokit import compare_user_code
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponseBase

from wallets.claims import wallet_claim_confirm
from wallets.services import wallet_provision

from .models import User

#: Session key of the pending passkey sign-up (email, code, attempts, started at).
SESSION_KEY = "numpay_passkey_signup"
#: allauth's headless id of this flow's email step while it waits for the code.
VERIFY_EMAIL_FLOW = "verify_email"


class PasskeySignupRefused(Exception):
    """A step of the passkey sign-up was refused. ``code``: ``"too_many_attempts"`` (rate limit),
    ``"incorrect_code"``, ``"expired"`` (no pending sign-up, timed out or out of attempts)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PasskeySignupVerification(AbstractCodeVerificationProcess):
    """The email step, kept in the session: ``state = {email, code, at, failed_attempts, ...}``."""

    def __init__(self, request: HttpRequest, state: dict[str, Any]) -> None:
        self.request = request
        super().__init__(state=state, max_attempts=account_settings.EMAIL_VERIFICATION_BY_CODE_MAX_ATTEMPTS,
                         timeout=account_settings.EMAIL_VERIFICATION_BY_CODE_TIMEOUT)

    @property
    def email(self) -> str:
        return self.state["email"]

    def persist(self) -> None:
        self.request.session[SESSION_KEY] = self.state

    def abort(self) -> None:
        self.request.session.pop(SESSION_KEY, None)

    def send(self) -> None:
        """Email the code, or, when the address already has an account, allauth's "account already exists"
        email (whoever typed it learns nothing: the page and the API answer the same)."""
        adapter = get_adapter(self.request)
        if self.state.get("account_already_exists"):
            adapter.send_account_already_exists_mail(self.email)
        else:
            adapter.send_mail("accounts/email/passkey_signup_code", self.email,
                              {"code": self.code, "minutes": self.timeout // 60})

    @classmethod
    def resume(cls, request: HttpRequest) -> PasskeySignupVerification | None:
        """The pending sign-up of this session, or ``None`` (none, or timed out)."""
        state = request.session.get(SESSION_KEY)
        if not state:
            return None
        return cls(request, state).abort_if_invalid()


def passkey_signup_begin(request: HttpRequest, *, email: str) -> PasskeySignupVerification:
    """Start a passkey sign-up for ``email``: a code goes to it (step 1 of the module doc).

    :param email: as typed; normalised by allauth's adapter (``clean_email``) and lower-cased.
    :raises PasskeySignupRefused: ``too_many_attempts`` (``ACCOUNT_RATE_LIMITS["request_login_code"]``, per
        address and per IP).
    """
    email = get_adapter(request).clean_email(email).lower()
    if not ratelimit.consume(request, action="request_login_code", key=email):
        raise PasskeySignupRefused("too_many_attempts", "Too many codes were asked for. Please wait a few minutes.")
    taken = User.objects.filter(email__iexact=email).exists() or EmailAddress.objects.filter(
        email__iexact=email, verified=True).exists()
    state = PasskeySignupVerification.initial_state(None, email)
    process = PasskeySignupVerification(request, state)
    if taken:
        state["account_already_exists"] = True
    else:
        state["code"] = get_adapter(request).generate_email_verification_code()
    process.send()
    process.persist()
    return process


def passkey_signup_verify(request: HttpRequest, *, code: str) -> HttpResponseBase:
    """Check the emailed code; when right, create the account and hand over to allauth's passkey step (step 2).

    :returns: allauth's response of the completed sign-up: a redirect to the passkey step (``mfa_signup_webauthn``)
        for pages; headless callers wrap it in ``AuthenticationResponse.from_response`` (pending flow
        ``mfa_signup_webauthn``).
    :raises PasskeySignupRefused: ``expired`` (nothing pending, timed out, out of attempts) or ``incorrect_code``
        (the attempt is counted; the last one ends the sign-up).
    """
    process = PasskeySignupVerification.resume(request)
    if process is None:
        raise PasskeySignupRefused("expired", "This sign-up has expired. Please start again.")
    if not compare_user_code(actual=code, expected=process.code):
        if not process.record_invalid_attempt():
            raise PasskeySignupRefused("expired", "Too many wrong codes. Please start again.")
        raise PasskeySignupRefused("incorrect_code", "That code is not right. Check the email and try again.")
    process.abort()  # single use
    user = _account_create(email=process.email)
    if user is None:  # the address was taken meanwhile
        raise PasskeySignupRefused("expired", "This sign-up has expired. Please start again.")
    return complete_signup(request, user=user, email_verification=account_settings.EmailVerificationMethod.NONE,
                           by_passkey=True, redirect_url="/wallet/")


def _account_create(*, email: str) -> User | None:
    """The passwordless account with ``email`` verified and its wallet, or ``None`` if the address is taken."""
    try:
        with transaction.atomic():
            user = User(email=email)
            user.set_unusable_password()
            user.save()
            EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
            wallet_provision(user=user)
            wallet_claim_confirm(user=user, email=email)
    except IntegrityError:
        return None
    return user
