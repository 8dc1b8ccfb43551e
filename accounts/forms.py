"""The sign-up form (``ACCOUNT_FORMS["signup"]``): allauth's, with email and phone each optional but not both."""

from __future__ import annotations

from typing import Any

from allauth.account.forms import SignupForm as AllauthSignupForm


class SignupForm(AllauthSignupForm):
    """Sign up with an email address (and a password) or a mobile number (verified by an SMS code).

    A phone sign-up may skip the password: the person signs in with a code by SMS.
    """

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        email, phone = cleaned.get("email"), cleaned.get("phone")
        if not email and not phone and not self.errors:
            self.add_error(None, "Enter an email address or a mobile number.")
        if email and not phone and "password1" in self.fields and not cleaned.get("password1") \
                and "password1" not in self.errors:
            self.add_error("password1", "Choose a password to sign in with your email address.")
        return cleaned
