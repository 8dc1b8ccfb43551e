"""System checks of sign-in by phone and the development outbox (``manage.py check``, server start)."""

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
