"""Reads of the accounts app: a user's sign-in methods (for the account page and lock-out protection)."""

from __future__ import annotations

from dataclasses import dataclass

from .models import User


@dataclass(frozen=True)
class SignInMethod:
    """One way a user can sign in.

    :ivar kind: ``email``, ``phone`` or ``social``.
    :ivar label: what the user sees (the address, the number, the provider's name).
    :ivar key: identifies the method within its kind (email address pk, ``phone``, social account pk).
    :ivar verified: whether the user proved it (a verified email, a phone confirmed by SMS, a social login).
    """

    kind: str
    label: str
    key: str
    verified: bool


def sign_in_methods(*, user: User) -> list[SignInMethod]:
    """Every sign-in method of ``user``: email addresses (by password or emailed code), the phone number
    (by SMS code or password) when verified, and connected social accounts."""
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialAccount

    methods = [SignInMethod("email", address.email, str(address.pk), address.verified)
               for address in EmailAddress.objects.filter(user=user).order_by("-primary", "email")]
    if user.phone and user.phone_verified:
        methods.append(SignInMethod("phone", user.phone, "phone", True))
    for account in SocialAccount.objects.filter(user=user).order_by("provider", "pk"):
        methods.append(SignInMethod("social", account.get_provider().name, str(account.pk), True))
    return methods


def can_remove_sign_in_method(*, user: User, kind: str, key: str) -> bool:
    """Whether removing method (``kind``, ``key``) leaves ``user`` at least one other way to sign in.

    allauth also keeps the last social account of a user without a usable password
    (``allauth.socialaccount.internal.flows.connect.validate_disconnect``); the page says so too.
    """
    methods = sign_in_methods(user=user)
    if kind == "social" and not user.has_usable_password() and not any(
            method.kind == "social" and method.key != key for method in methods):
        return False
    return any((method.kind, method.key) != (kind, key) for method in methods)
