"""Reads for the relayer: today's sponsorship spend (reserved plus settled, in lamports)."""

from __future__ import annotations

import datetime

from django.db.models import Sum
from django.utils import timezone

from .models import SponsorshipDay


def sponsorship_today() -> datetime.date:
    """Today's UTC date: the key of the daily sponsorship budget."""
    return timezone.now().astimezone(datetime.UTC).date()


def sponsorship_spent_today(*, user: object) -> int:
    """Lamports counted against ``user``'s budget today (open reservations plus settled charges).

    :returns: lamports, ``0`` when nothing was sponsored today.
    """
    value = (
        SponsorshipDay.objects.filter(user=user, day=sponsorship_today())
        .values_list("reserved_lamports", flat=True)
        .first()
    )
    return int(value or 0)


def sponsorship_total_today() -> int:
    """Lamports counted against every user's budget today (open reservations plus settled charges).

    :returns: lamports, ``0`` when nothing was sponsored today.
    """
    total = SponsorshipDay.objects.filter(day=sponsorship_today()).aggregate(total=Sum("reserved_lamports"))["total"]
    return int(total or 0)
