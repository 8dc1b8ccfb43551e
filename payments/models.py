"""Payments: the payment, its outbox attempts, and its event trail.

The tables were created by the ``wallets`` app and keep their names (``db_table``): the move to this app
was a state-only migration (``payments/migrations/0001_initial.py``). What can happen to a payment is in
:mod:`payments.state_machine`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from relayer.models import OutboxAttempt
from wallets.models import Token, Wallet


class Payment(models.Model):
    """A payment from a user's wallet, a monotonic state machine (DESIGN.md "Payments: the invariants").

    ``created -> [awaiting_approval] -> approved -> submitted -> confirmed | failed``, plus ``rejected``
    and ``expired``. Each reached state keeps its timestamp; :class:`PaymentEvent` records transitions
    (both written only by :func:`payments.state_machine.transition`).

    :ivar amount: base units of ``token`` (lamports for SOL) the recipient receives.
    :ivar network_fee: base units of ``token`` charged to the sender on top of ``amount`` for creating the
        recipient's token account (0 when sponsored or not needed).
    :ivar sponsored_lamports: the fee payer's maximum cost reserved against the sender's daily budget.
    :ivar expires_at: while open, when the payment is abandoned: a ``created`` / ``awaiting_approval``
        payment is expired by the beat sweep; an ``approved`` / ``submitted`` one is not renewed past it
        (it expires once its live attempt provably never landed).
    """

    class Status(models.TextChoices):
        CREATED = "created", "Created"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        APPROVED = "approved", "Approved"
        SUBMITTED = "submitted", "Submitted"
        CONFIRMED = "confirmed", "Confirmed"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    OPEN_STATUSES = (Status.CREATED, Status.AWAITING_APPROVAL, Status.APPROVED, Status.SUBMITTED)
    IN_FLIGHT_STATUSES = (Status.APPROVED, Status.SUBMITTED)
    TERMINAL_STATUSES = (Status.CONFIRMED, Status.FAILED, Status.REJECTED, Status.EXPIRED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments_sent")
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="payments_sent")
    recipient_input = models.CharField(max_length=254, help_text="What the sender typed: an email or an address.")
    recipient_address = models.CharField(max_length=44)
    reclaim_of = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True, related_name="reclaim",
                                      help_text="The unclaimed payment to an email this payment takes back.")
    recipient_wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, null=True, blank=True,
                                         related_name="payments_received")
    token = models.ForeignKey(Token, on_delete=models.PROTECT, related_name="payments")
    amount = models.PositiveBigIntegerField()
    network_fee = models.PositiveBigIntegerField(default=0)
    memo = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CREATED, db_index=True)
    signature = models.CharField(max_length=88, blank=True, default="", db_index=True)
    slot = models.PositiveBigIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.CharField(max_length=300, blank=True, default="")
    error_detail = models.JSONField(null=True, blank=True)
    creates_recipient_token_account = models.BooleanField(default=False)
    sponsored_lamports = models.PositiveBigIntegerField(default=0)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    awaiting_approval_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "wallets_payment"
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=["sender", "idempotency_key"], condition=Q(idempotency_key__isnull=False),
                                    name="wallets_payment_sender_idempotency_key_unique"),
        ]
        indexes = [models.Index(fields=["wallet", "token", "status"], name="wallets_pay_open_idx")]

    def __str__(self) -> str:
        return f"payment {self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL_STATUSES

    @property
    def debit(self) -> int:
        """Base units of ``token`` leaving the sender's wallet: ``amount + network_fee``."""
        return self.amount + self.network_fee


class PaymentAttempt(OutboxAttempt):
    """A payment's outbox attempt (see :class:`relayer.models.OutboxAttempt`)."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="attempts")

    class Meta:
        db_table = "wallets_paymentattempt"
        ordering = ("payment", "number")
        constraints = [models.UniqueConstraint(fields=["payment", "number"], name="wallets_attempt_number_unique")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.payment_id}"


class PaymentEvent(models.Model):
    """One recorded state transition of a payment (audit trail); written by :mod:`payments.state_machine`."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, blank=True, default="")
    to_status = models.CharField(max_length=20)
    note = models.CharField(max_length=300, blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "wallets_paymentevent"
        ordering = ("at", "id")

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status}"
