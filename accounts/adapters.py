"""allauth adapters (pages and headless API alike), customised without copying allauth's views.

- Sign-up by email, phone or a social account provisions the user's wallet by the one service call
  :func:`wallets.services.wallet_provision`.
- Phone numbers (allauth's phone support): E.164 via ``phonenumbers``, stored on ``User.phone`` /
  ``User.phone_verified``; codes go out by SMS through :func:`accounts.services.sms_queue` (never logged).
- Passkeys (allauth's MFA WebAuthn, :mod:`accounts.passkeys`) are a way to sign in, never a second factor
  asked after a password or a code.
- No user can remove their last way to sign in (emails, verified phone, social accounts, passkeys).
"""

from __future__ import annotations

from typing import Any

from allauth.account import app_settings as account_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django import forms
from django.conf import settings
from django.db import transaction

from wallets.claims import wallet_claim_confirm
from wallets.services import wallet_provision

from .app_settings import app_settings
from .models import User
from .phones import PhoneNumberField, phone_normalize
from .selectors import can_remove_sign_in_method, sign_in_method_removal_refusal
from .services import sms_queue

#: Session key of the last SMS queued for this browser (its delivery status is shown on the code page).
SMS_SESSION_KEY = "numpay_sms_message_id"


def email_sent_facts() -> dict[str, bool]:
    """What a "we sent you an email" message may claim: ``verification_mandatory`` (allauth's
    ``ACCOUNT_EMAIL_VERIFICATION`` is ``mandatory``: nobody signs in before confirming) and ``dev_outbox`` (emails
    go to the development outbox, ``/dev/outbox/``, not to a mail server)."""
    return {
        "verification_mandatory": (account_settings.EMAIL_VERIFICATION
                                   == account_settings.EmailVerificationMethod.MANDATORY),
        "dev_outbox": settings.EMAIL_BACKEND == "accounts.outbox.OutboxEmailBackend" and app_settings.DEV_OUTBOX_ENABLED,
    }


class AccountAdapter(DefaultAccountAdapter):
    """Email and phone accounts."""

    def save_user(self, request: Any, user: Any, form: Any, commit: bool = True) -> Any:
        """Save the new user and provision exactly one custodial wallet for them (idempotent)."""
        with transaction.atomic():
            user = super().save_user(request, user, form, commit=commit)
            if commit:
                wallet_provision(user=user)
        return user

    def get_login_stages(self) -> list[str]:
        """allauth's stages plus its passkey sign-up stage, which holds a sign-in started by
        :mod:`accounts.passkey_signup` until the passkey exists (a no-op for every other sign-in)."""
        stages = super().get_login_stages()
        passkey_stage = "allauth.mfa.webauthn.stages.PasskeySignupStage"
        return stages if passkey_stage in stages else [*stages, passkey_stage]

    def add_message(self, request: Any, level: int, message_template: str | None = None,
                    message_context: dict[str, Any] | None = None, extra_tags: str = "",
                    message: str | None = None) -> None:
        """allauth's messages, with "a confirmation email was sent" saying what really happened: whether confirming
        is needed (``ACCOUNT_EMAIL_VERIFICATION``) and, in development, that the email is in the dev outbox
        (templates/account/messages/email_confirmation_sent.txt)."""
        if message_template == "account/messages/email_confirmation_sent.txt":
            message_context = {**(message_context or {}), **email_sent_facts()}
        super().add_message(request, level, message_template, message_context, extra_tags, message)

    def confirm_email(self, request: Any, email_address: Any) -> bool:
        """Confirm the address; a wallet paid by email before sign-up becomes spendable by its owner."""
        confirmed = super().confirm_email(request, email_address)
        if confirmed:
            wallet_claim_confirm(user=email_address.user, email=email_address.email)
        return confirmed

    # --- phone numbers (allauth's phone support) ---

    def phone_form_field(self, **kwargs: Any) -> forms.Field:
        """Any common spelling in, E.164 out (``phonenumbers``)."""
        return PhoneNumberField(**kwargs)

    def clean_phone(self, phone: str) -> str:
        """E.164 form of ``phone``.

        :raises django.forms.ValidationError: not a valid number with its country code.
        """
        return phone_normalize(phone)

    def set_phone(self, user: User, phone: str, verified: bool) -> None:
        """Attach ``phone`` to ``user``; an unverified claim of the same number by another account lapses (only a
        verified number is owned: nobody can hold a number hostage by signing up with it and never confirming)."""
        with transaction.atomic():
            User.objects.filter(phone=phone, phone_verified=False).exclude(pk=user.pk).update(phone=None)
            user.phone, user.phone_verified = phone, verified
            user.save(update_fields=["phone", "phone_verified"])

    def get_phone(self, user: User) -> tuple[str, bool] | None:
        return (user.phone, user.phone_verified) if user.phone else None

    def set_phone_verified(self, user: User, phone: str) -> None:
        """The user proved ``phone`` by a code: it is theirs (sign-up, sign-in by code, adding or changing it)."""
        self.set_phone(user, phone, True)

    def get_user_by_phone(self, phone: str) -> User | None:
        """The account that owns ``phone``: one account per verified number."""
        return User.objects.filter(phone=phone, phone_verified=True, is_active=True).first()

    def send_verification_code_sms(self, user: User, phone: str, code: str, **kwargs: Any) -> None:
        """Queue the code by SMS (delivered by the worker; the code is in no log and no broker message)."""
        self._text(phone, f"Your Numpay code is {code}. It expires in 15 minutes. Never share it.")

    def send_account_already_exists_sms(self, phone: str) -> None:
        self._text(phone, "Someone tried to sign up to Numpay with this number, which already has an account. "
                          "Sign in instead. If it was not you, ignore this message.")

    def send_unknown_account_sms(self, phone: str, **kwargs: Any) -> None:
        self._text(phone, "Someone asked for a Numpay sign-in code for this number, but it has no account. "
                          "Sign up instead. If it was not you, ignore this message.")

    def _text(self, phone: str, body: str) -> None:
        message = sms_queue(to=phone, body=body)
        session = getattr(self.request, "session", None)
        if session is not None:
            session[SMS_SESSION_KEY] = message.pk

    # --- lock-out protection ---

    def can_delete_email(self, email_address: Any) -> bool:
        """Another sign-in method must remain (and allauth's own primary-address rules hold)."""
        if not email_address.pk:
            return True
        if not can_remove_sign_in_method(user=email_address.user, kind="email", key=str(email_address.pk)):
            return False
        if email_address.primary:
            from allauth.account.models import EmailAddress

            return not EmailAddress.objects.filter(user_id=email_address.user_id).exclude(pk=email_address.pk).exists()
        return True


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """Google, Apple, GitHub and OpenID Connect accounts (``SOCIALACCOUNT_PROVIDERS`` from the environment)."""

    def save_user(self, request: Any, sociallogin: Any, form: Any = None) -> Any:
        """Save a user signing up through a provider and provision their wallet (the same one service call)."""
        with transaction.atomic():
            user = super().save_user(request, sociallogin, form=form)
            wallet_provision(user=user)
        return user

    def validate_disconnect(self, account: Any, accounts: Any) -> None:
        """Refuse to disconnect the last way to sign in.

        :raises django.forms.ValidationError: nothing else would remain.
        """
        if not can_remove_sign_in_method(user=account.user, kind="social", key=str(account.pk)):
            raise forms.ValidationError("Add an email address or a phone number first: this is your only way "
                                        "to sign in.", code="last_sign_in_method")


class MFAAdapter(DefaultMFAAdapter):
    """Passkeys: the relying party from settings, and the "never remove the last way in" rule."""

    def get_public_key_credential_rp_entity(self) -> dict[str, str]:
        """``WEBAUTHN_RP_ID`` / ``WEBAUTHN_RP_NAME``, never the request's Host header."""
        return {"id": app_settings.WEBAUTHN_RP_ID, "name": app_settings.WEBAUTHN_RP_NAME}

    def is_mfa_enabled(self, user: Any, types: Any = None) -> bool:
        """A passkey is a way in, not a second factor: allauth's login stage (which asks about TOTP and
        WebAuthn together) never asks for it after a password or a code. Asked about WebAuthn alone
        (re-authentication before changing sign-in methods), it says whether the user has a passkey."""
        if types is None or "totp" in types:
            return False
        return super().is_mfa_enabled(user, types=types)

    def can_delete_authenticator(self, authenticator: Any) -> bool:
        """Another sign-in method must remain, and the passkey must not own the wallet on-chain
        (:func:`accounts.selectors.sign_in_method_removal_refusal`; removal itself: ``accounts.services``)."""
        return sign_in_method_removal_refusal(user=authenticator.user, kind="passkey", key=str(authenticator.pk)) is None
