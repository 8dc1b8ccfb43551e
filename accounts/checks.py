"""System checks of sign-in by phone, of passkeys' relying party and of the development outbox (``manage.py
check``, server start)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from .app_settings import SMS_BACKENDS, app_settings


@register()
def sms_backend_configured(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """SMS sign-in needs a known backend, and Twilio needs its credentials."""
    if not app_settings.SMS_SIGNIN_ENABLED:
        return []
    backend = app_settings.SMS_BACKEND
    if backend not in SMS_BACKENDS:
        return [Error(f"SMS_BACKEND {backend!r} is not one of {sorted(SMS_BACKENDS)}.", id="accounts.E001")]
    if backend == "twilio" and (missing := app_settings.twilio_missing()):
        return [Error(f"SMS sign-in is on with Twilio, but {', '.join(missing)} is not set.", id="accounts.E002",
                      hint="Set the TWILIO_* environment variables, or SMS_SIGNIN_ENABLED=false.")]
    if backend == "outbox" and settings.SOLANA_CLUSTER != "localnet" and not settings.DEBUG:
        return [Error("SMS sign-in is on with the development outbox: no code would reach anyone.",
                      id="accounts.E003", hint="Set SMS_BACKEND=twilio and its TWILIO_* variables.")]
    return []


@register()
def webauthn_relying_party(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Passkeys need an RP ID and allowed origins that fit it (WebAuthn Level 3, section 5.1.3 and 13.4.9):
    each origin is ``https://`` (or ``http://localhost`` in development) and its host is the RP ID or a
    subdomain of it; a ceremony from any other origin is refused."""
    from urllib.parse import urlsplit

    rp_id = app_settings.WEBAUTHN_RP_ID
    if not rp_id or "/" in rp_id or ":" in rp_id or rp_id != rp_id.lower():
        return [Error(f"WEBAUTHN_RP_ID {rp_id!r} is not a lower-case domain name.", id="accounts.E004",
                      hint="Set WEBAUTHN_RP_ID to the site's domain, e.g. numpay.example.")]
    if rp_id == "localhost" and settings.SOLANA_CLUSTER != "localnet" and not settings.DEBUG:
        return [Error("WEBAUTHN_RP_ID is localhost outside development: no passkey would work on the site.",
                      id="accounts.E007", hint="Set WEBAUTHN_RP_ID and WEBAUTHN_ALLOWED_ORIGINS to the site's.")]
    origins = app_settings.WEBAUTHN_ALLOWED_ORIGINS
    if not origins:
        return [Error("WEBAUTHN_ALLOWED_ORIGINS is empty: no passkey ceremony could succeed.", id="accounts.E005",
                      hint=f"Set it to the site's origin, e.g. https://{rp_id}.")]
    errors: list[CheckMessage] = []
    for origin in origins:
        parts = urlsplit(origin)
        host = parts.hostname or ""
        secure = parts.scheme == "https" or (parts.scheme == "http" and host == "localhost")
        exact = f"{parts.scheme}://{parts.netloc}" == origin
        if not secure or not exact or not (host == rp_id or host.endswith(f".{rp_id}")):
            errors.append(Error(
                f"WEBAUTHN_ALLOWED_ORIGINS has {origin!r}, which is not an https origin (scheme://host[:port], "
                f"no path) on {rp_id!r} or one of its subdomains.", id="accounts.E006",
                hint="Browsers would refuse it, or passkeys made there would not be bound to WEBAUTHN_RP_ID."))
    return errors
