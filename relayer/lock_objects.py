"""Row-lock helpers (STYLE.md: locks through small named helpers).

Lock order: the caller's wallet row first (payments), then :class:`SponsorshipDay`, then
:class:`SponsorshipCharge`. Every relayer service takes them in that order so two of them never deadlock.
"""

from __future__ import annotations

from django.db.models import QuerySet

from .models import SponsorshipCharge, SponsorshipDay


def sponsorship_day_qs_select_for_update() -> QuerySet[SponsorshipDay]:
    """Sponsorship days locked ``FOR UPDATE`` (serialises budget decisions per user and day)."""
    return SponsorshipDay.objects.select_for_update()


def sponsorship_charge_qs_select_for_update() -> QuerySet[SponsorshipCharge]:
    """Sponsorship charges locked ``FOR UPDATE`` (taken after the charge's day row)."""
    return SponsorshipCharge.objects.select_for_update()
