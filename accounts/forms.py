"""Sign-up rules shared by the sign-up page and the headless API (``ACCOUNT_SIGNUP_FORM_CLASS``, the base
class allauth puts under both its ``SignupForm`` and headless ``SignupInput``)."""

from __future__ import annotations

from typing import Any

from django import forms


class SignupRules(forms.Form):
    """An email address (with a password) or a mobile number (verified by an SMS code): at least one.

    A phone sign-up may skip the password (the person signs in with a code by SMS); an email-only
    sign-up needs one.
    """

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "phone" not in self.fields:  # phone sign-in off: allauth's own required fields apply
            return cleaned
        email, phone = cleaned.get("email"), cleaned.get("phone")
        password_field = "password1" if "password1" in self.fields else "password"
        if not email and not phone and "email" not in self.errors and "phone" not in self.errors:
            self.add_error(None, "Enter an email address or a mobile number.")
        elif (email and not phone and password_field in self.fields and not cleaned.get(password_field)
              and password_field not in self.errors):
            self.add_error(password_field, "Choose a password to sign in with your email address.")
        return cleaned

    def signup(self, request: Any, user: Any) -> None:
        """Nothing more to save (allauth's hook; the adapter provisions the wallet)."""
