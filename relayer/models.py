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


class OutboxAttempt(models.Model):
    """The outbox (DESIGN.md "Payments: the invariants" 3 and 4): one fully signed transaction, stored
    before anything is sent. Abstract: each kind of submission (a payment today; wallet creation, recovery
    execution and client-signed relays next) has a concrete attempt table with a foreign key to its owner
    and registers an :class:`relayer.outbox.OutboxKind`; :mod:`relayer.outbox` sends, re-sends, renews,
    confirms and fails them all the same way.

    Re-sending ``signed_transaction`` is always safe (same signature). A new attempt is created only when
    the chain's block height is past this attempt's ``last_valid_block_height`` and ``signature`` is still
    unknown to the cluster, so an owner never has two live attempts.

    :ivar number: 1 for the first attempt, +1 for each renewal.
    :ivar signed_transaction: the wire bytes of the fully signed transaction.
    :ivar signature: the transaction's first signature (base58), the fee payer's.
    :ivar last_valid_block_height: the last block height at which ``blockhash`` is accepted.
    :ivar error_detail: the transaction error (JSON) of a failed send or a failed landing.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (stored, not sent)"
        SENT = "sent", "Sent"
        LANDED = "landed", "Landed"
        EXPIRED = "expired", "Expired (blockhash too old, never landed)"
        FAILED = "failed", "Failed"

    id = models.BigAutoField(primary_key=True)
    number = models.PositiveSmallIntegerField()
    signed_transaction = models.BinaryField()
    signature = models.CharField(max_length=88, unique=True)
    blockhash = models.CharField(max_length=44)
    last_valid_block_height = models.PositiveBigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    send_count = models.PositiveIntegerField(default=0)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    error_detail = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
