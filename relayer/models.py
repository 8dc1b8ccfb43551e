"""The relayer's ledger: per-user daily sponsorship budgets and the fee payer's watched balance.

Amounts are integer lamports (1 SOL = 1_000_000_000 lamports). A day is a UTC date. No key material is
stored here: the fee payer's key lives with its signer (``relayer.signer``).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class SponsorshipDay(models.Model):
    """What the relayer has committed to pay for one user on one UTC day.

    The row is the lock that serialises budget decisions for (user, day) (``select_for_update`` in
    :mod:`relayer.lock_objects`).

    :ivar reserved_lamports: sum of this day's charges that are ``reserved`` or ``settled``
        (open reservations plus what landed), in lamports; released charges are not counted.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sponsorship_days")
    day = models.DateField()
    reserved_lamports = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-day", "user_id")
        constraints = [
            models.UniqueConstraint(fields=["user", "day"], name="relayer_sponsorshipday_user_day_unique"),
            models.CheckConstraint(
                condition=Q(reserved_lamports__gte=0), name="relayer_sponsorshipday_reserved_non_negative"
            ),
        ]
        indexes = [models.Index(fields=["day"], name="relayer_sponsorshipday_day")]

    def __str__(self) -> str:
        return f"{self.user_id} on {self.day}: {self.reserved_lamports} lamports"


class SponsorshipCharge(models.Model):
    """One sponsored payment's share of its user's daily budget.

    ``reserved`` when the relayer co-signs; ``settled`` when the transaction landed (the fee payer paid);
    ``released`` when the payment ended without landing (the amount goes back to the budget).

    :ivar reference: the payment's id; one charge per payment, re-used by every attempt.
    :ivar lamports: what currently counts against the day, in lamports (the estimate while reserved, the
        actual cost once settled with one).
    :ivar estimated_lamports: the largest maximum loss any attempt was validated at, in lamports.
    """

    class Status(models.TextChoices):
        RESERVED = "reserved", "Reserved"
        SETTLED = "settled", "Settled"
        RELEASED = "released", "Released"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sponsorship_charges")
    day = models.DateField()
    reference = models.UUIDField(unique=True)
    lamports = models.BigIntegerField()
    estimated_lamports = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RESERVED)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(condition=Q(lamports__gte=0), name="relayer_sponsorshipcharge_lamports_non_negative"),
            models.CheckConstraint(
                condition=Q(estimated_lamports__gte=0), name="relayer_sponsorshipcharge_estimated_non_negative"
            ),
        ]
        indexes = [models.Index(fields=["user", "day"], name="relayer_charge_user_day")]

    def __str__(self) -> str:
        return f"{self.reference} {self.status} {self.lamports} lamports"


class FeePayer(models.Model):
    """A relayer fee payer address and its last observed balance (kept current by a beat job).

    :ivar last_balance_lamports: balance at ``last_checked_at``, in lamports (``None`` before the first check).
    :ivar is_below_threshold: the last balance was below ``RELAYER_FEE_PAYER_ALERT_LAMPORTS``.
    """

    address = models.CharField(max_length=44, unique=True)
    last_balance_lamports = models.BigIntegerField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    is_below_threshold = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("address",)

    def __str__(self) -> str:
        return self.address
