"""Phone numbers: parsed and validated with ``phonenumbers`` (Google's libphonenumber), stored as E.164."""

from __future__ import annotations

import phonenumbers
from django import forms


def phone_normalize(value: str) -> str:
    """The E.164 form of ``value`` (``"+44 7911 123456"`` -> ``"+447911123456"``).

    The number must carry its country code (``+``): Numpay serves every country and never guesses one.

    :raises django.forms.ValidationError: not a possible or not a valid number (ITU-T E.164, libphonenumber
        metadata), code ``invalid_phone``.
    """
    message = "Enter a valid mobile number with its country code, like +1 415 555 2671."
    text = (value or "").strip()
    if not text.startswith("+"):
        raise forms.ValidationError(message, code="invalid_phone")
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise forms.ValidationError(message, code="invalid_phone") from None
    if not phonenumbers.is_valid_number(number):
        raise forms.ValidationError(message, code="invalid_phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_mask(phone: str) -> str:
    """A phone number for logs and operators' messages: country code and last two digits (``+44*******56``)."""
    if len(phone) <= 5:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 5) + phone[-2:]


class PhoneNumberField(forms.CharField):
    """allauth's phone form field (``adapter.phone_form_field``): any common spelling in, E.164 out."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("label", "Mobile number")
        kwargs.setdefault("widget", forms.TextInput(attrs={
            "type": "tel", "autocomplete": "tel", "inputmode": "tel", "placeholder": "+1 415 555 2671"}))
        kwargs.setdefault("max_length", 32)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def clean(self, value: object) -> str:
        value = super().clean(value)
        return phone_normalize(value) if value else ""
