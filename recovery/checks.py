"""System checks of the recovery settings (they must agree with each other)."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, register

from .app_settings import app_settings


@register(Tags.compatibility)
def recovery_settings_check(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """``NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS`` <= ``..._MAX_...``, both positive; positive delays."""
    errors = []
    low, high = app_settings.MIN_TIMELOCK_SECONDS, app_settings.MAX_TIMELOCK_SECONDS
    if not 0 < low <= high:
        errors.append(Error(f"NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS ({low}) must be positive and at most "
                            f"NUMPAY_RECOVERY_MAX_TIMELOCK_SECONDS ({high}).", id="recovery.E001"))
    if app_settings.GUARDIAN_CHANGE_DELAY_SECONDS < 0:
        errors.append(Error("NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS must not be negative.", id="recovery.E002"))
    return errors
