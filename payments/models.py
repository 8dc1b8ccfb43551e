"""Payments: the payment, its outbox attempts, and its event trail.

The tables were created by the ``wallets`` app and keep their names (``db_table``): the move to this app
was a state-only migration (``payments/migrations/0001_initial.py``). What can happen to a payment is in
:mod:`payments.state_machine`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from numpay.core import rowcache
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
    block_time = models.DateTimeField(null=True, blank=True, help_text=(
        "The chain's time of the block its transaction landed in (getBlockTime of the slot, read once per slot): "
        "set when it is confirmed or fails on chain; empty otherwise or when the node had no time."))
    block_time_unavailable_at = models.DateTimeField(null=True, blank=True, help_text=(
        "When the block-time backfill (payments.block_times) asked the node for its slot's time and got none (a "
        "block the node no longer keeps): not asked again; the activity keeps dating it by when it ended."))
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.CharField(max_length=300, blank=True, default="")
    error_detail = models.JSONField(null=True, blank=True)
    creates_recipient_token_account = models.BooleanField(default=False)
    sponsored_lamports = models.PositiveBigIntegerField(default=0)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    # set when the object is made (not at INSERT time): payment_create inserts the row once, already approved
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    awaiting_approval_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    policy_decision = models.JSONField(
        null=True, blank=True, help_text="The spending-policy decision at creation (payments.policies): outcome, "
                                         "approvals_required, and every check's rule, policy, limit, used, outcome.")

    class Meta:
        db_table = "wallets_payment"
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=["sender", "idempotency_key"], condition=Q(idempotency_key__isnull=False),
                                    name="wallets_payment_sender_idempotency_key_unique"),
        ]
        indexes = [
            models.Index(fields=["wallet", "token", "status"], name="wallets_pay_open_idx"),
            # the activity feed's order (payments.selectors.wallet_activity_page), from both sides
            models.Index(F("wallet"), Coalesce("block_time", "updated_at").desc(), F("slot").desc(),
                         name="payments_sent_feed_idx"),
            models.Index(F("recipient_wallet"), Coalesce("block_time", "updated_at").desc(), F("slot").desc(),
                         name="payments_received_feed_idx"),
            # the block-time backfill's rows to do (payments.block_times): landed, no time, not tried in vain
            models.Index(fields=["id"], name="payments_block_time_todo_idx",
                         condition=Q(block_time__isnull=True, slot__isnull=False, block_time_unavailable_at__isnull=True,
                                     status__in=("confirmed", "failed"))),
            # the spending policies' rolling windows (payments.policy_services.wallet_usage)
            models.Index(fields=["wallet", "created_at"], name="wallets_pay_wallet_created_idx"),
            # the outbox poller's in-flight scan (payments.submission.PaymentOutbox.in_flight)
            models.Index(fields=["updated_at"], name="wallets_pay_inflight_idx",
                         condition=Q(status__in=("approved", "submitted"))),
        ]

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


#: :mod:`numpay.core.rowcache` namespace of the cached policies (``payments.policy_services.rules_for``).
POLICIES_CACHE = "spending-policies"


class SpendingPolicyQuerySet(rowcache.InvalidatingQuerySet):
    rowcache_namespace = POLICIES_CACHE


class SpendingPolicy(models.Model):
    """Operator limits (issue 9 item 2), or a user's own tighter ones; evaluated by :mod:`payments.policies`.

    Which apply to a payment (:func:`payments.policy_services.rules_for`): the active policies of the most
    specific operator level that has any for the token (``user`` > ``group`` > ``default``), plus the
    user's ``own`` ones; every rule of every applicable policy must pass. A policy with no token applies to
    every token and may only hold the token-free rules (velocity, allowlist).

    Amounts are base units of ``token``.
    """

    class Scope(models.TextChoices):
        DEFAULT = "default", "Default (everyone)"
        GROUP = "group", "Group (tier)"
        USER = "user", "One user"
        OWN = "own", "A user's own tighter limits"

    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.DEFAULT)
    group = models.ForeignKey("auth.Group", on_delete=models.CASCADE, null=True, blank=True,
                              related_name="spending_policies")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="spending_policies")
    token = models.ForeignKey(Token, on_delete=models.PROTECT, null=True, blank=True, related_name="spending_policies",
                              help_text="Empty: every token (then only velocity and the allowlist apply).")
    per_transaction_cap = models.PositiveBigIntegerField(null=True, blank=True, help_text="Base units.")
    daily_cap = models.PositiveBigIntegerField(null=True, blank=True, help_text="Base units per rolling 24 hours.")
    weekly_cap = models.PositiveBigIntegerField(null=True, blank=True, help_text="Base units per rolling 7 days.")
    monthly_cap = models.PositiveBigIntegerField(null=True, blank=True, help_text="Base units per rolling 30 days.")
    passkey_above = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Base units: above this, one passkey approval is required.")
    two_passkeys_above = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Base units: above this, two distinct passkeys must approve.")
    max_payments_per_hour = models.PositiveIntegerField(null=True, blank=True)
    allowlist_only = models.BooleanField(default=False, help_text="Allow payments only to the recipients below.")
    allowed_recipients = models.TextField(blank=True, default="",
                                          help_text="One email or Solana address a line (allowlist-only mode).")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    AMOUNT_FIELDS = ("per_transaction_cap", "daily_cap", "weekly_cap", "monthly_cap", "passkey_above",
                     "two_passkeys_above")

    objects = SpendingPolicyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "spending policies"
        ordering = ("scope", "name")
        constraints = [
            models.CheckConstraint(name="payments_policy_scope_target", condition=(
                (Q(scope="default") & Q(group__isnull=True) & Q(user__isnull=True))
                | (Q(scope="group") & Q(group__isnull=False) & Q(user__isnull=True))
                | (Q(scope__in=("user", "own")) & Q(group__isnull=True) & Q(user__isnull=False)))),
            models.UniqueConstraint(fields=["user", "token"], condition=Q(scope="own"),
                                    name="payments_policy_one_own_per_token"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_scope_display()})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.token_id is None and any(getattr(self, name) is not None for name in self.AMOUNT_FIELDS):
            raise ValidationError("Amount limits need a token.")
        if self.scope == self.Scope.DEFAULT and (self.group_id or self.user_id):
            raise ValidationError("A default policy has no group or user.")
        if self.scope == self.Scope.GROUP and (not self.group_id or self.user_id):
            raise ValidationError("A group policy needs a group (and no user).")
        if self.scope in (self.Scope.USER, self.Scope.OWN) and (not self.user_id or self.group_id):
            raise ValidationError("A user policy needs a user (and no group).")

    def allowlist(self) -> frozenset[str] | None:
        """The allowed recipients, lower-cased, or ``None`` when not in allowlist-only mode."""
        if not self.allowlist_only:
            return None
        return frozenset(line.strip().lower() for line in self.allowed_recipients.splitlines() if line.strip())


class PaymentApproval(models.Model):
    """One passkey step-up of a payment awaiting approval (issue 9 items 3 and 5; :mod:`payments.approvals`).

    Issued by ``POST /api/v1/payments/{id}/approval-options``: a fresh random ``nonce`` and a short
    ``expires_at`` bind a WebAuthn challenge to exactly what is approved (wallet, recipient, mint, amount,
    network fee, payment, nonce, expiry: :func:`payments.approvals.approval_challenge`). Only the challenge's
    SHA-256 is stored (``challenge_hash``): the challenge is recomputed from the payment and this row when
    the assertion comes back. Used once: ``used_at`` and the approving ``authenticator`` (the user's allauth
    ``mfa.Authenticator``, the one credential store) are set when its assertion is accepted; a passkey
    approves a payment at most once (unique constraint), so "2 of 2" needs two distinct passkeys.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="approvals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payment_approvals")
    nonce = models.BinaryField(max_length=32, help_text="32 random bytes, part of the signed challenge.")
    challenge_hash = models.CharField(max_length=64, db_index=True, help_text=(
        "SHA-256 (hex) of the WebAuthn challenge; the challenge is not stored. Unique for a custodial wallet (a random "
        "nonce is in it); a protected wallet's distinct passkeys approving one payment together sign one challenge "
        "(the program checks them against one execute, nonce and expiry), each through its own row."))
    expires_at = models.DateTimeField(help_text="The challenge is refused after this instant.")
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)
    authenticator = models.ForeignKey("mfa.Authenticator", on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="payment_approvals",
                                      help_text="The passkey whose assertion was accepted.")
    sign_count = models.PositiveBigIntegerField(null=True, blank=True,
                                                help_text="The assertion's signature counter.")
    onchain_nonce = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Protected wallet: the config's nonce the challenge was derived with (the "
                                         "challenge is then the wallet program's approval_challenge of the execute).")
    # The accepted assertion, kept so that a protected wallet's transaction (which carries it on-chain in the
    # secp256r1 precompile instruction) can be rebuilt with a fresh blockhash. Public data: it approves only
    # this payment's exact execute, once (the config's nonce).
    authenticator_data = models.BinaryField(null=True, blank=True)
    client_data_json = models.BinaryField(null=True, blank=True)
    signature = models.BinaryField(null=True, blank=True, help_text="DER-encoded ECDSA (ES256) signature.")

    class Meta:
        ordering = ("created_at",)
        constraints = [
            models.UniqueConstraint(fields=["payment", "authenticator"], condition=Q(used_at__isnull=False),
                                    name="payments_approval_one_per_passkey"),
        ]

    def __str__(self) -> str:
        return f"approval of {self.payment_id} ({'used' if self.used_at else 'open'})"


class WalletProtection(models.Model):
    """A smart wallet's switch to protected mode (DESIGN.md "Modes"; :mod:`payments.protection`): one
    transaction, signed by the custody key while it still holds ``manage``, that adds the user's passkey as an
    on-chain owner, caps the custody key at what the spending policy allows without a passkey, and drops its
    ``manage``. Submitted through the relayer's outbox (kind ``wallet_protect``). A ``confirmed`` row is the
    record of the wallet's on-chain mode: ``protected`` (:func:`payments.protection.wallet_mode`). The same
    outbox kind carries the later owner changes approved by an owner passkey: kind ``add_passkey``
    (:mod:`payments.passkey_owners`) and ``remove_passkey`` (:mod:`payments.passkey_removals`); the wallet's
    owner passkeys are the confirmed additions minus the confirmed removals
    (:func:`payments.protection.onchain_passkey_ids`).

    :ivar public_key: the passkey's 33-byte compressed P-256 key, as written on-chain (kind-2 authority); for a
        removal, the key taken off.
    :ivar limits: kind ``protect``: what was written, per token symbol: ``{"custody": [per_tx, period],
        "passkey": [...], "joint_threshold": n}`` in base units. Kinds ``add_passkey`` / ``passkey_limits``:
        ``{"step": n, "actions": [...]}``, the passkey-approved actions this transaction carries, each with its
        approval (:mod:`payments.passkey_limits`: an added owner gets the first passkey's limits; a chain too long
        for one transaction continues in ``held`` rows, sent once the one before landed).
    """

    class Status(models.TextChoices):
        SIGNED = "signed", "Signed"
        SUBMITTED = "submitted", "Submitted"
        CONFIRMED = "confirmed", "Confirmed"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"
        HELD = "held", "Held until the change before it landed"

    class Kind(models.TextChoices):
        PROTECT = "protect", "Switch to protected mode (custody key signs)"
        ADD_PASSKEY = "add_passkey", "Add a further passkey owner (approved by an owner passkey)"
        REMOVE_PASSKEY = "remove_passkey", "Take an owner passkey off the wallet (approved by an owner passkey)"
        PASSKEY_LIMITS = "passkey_limits", "Give an owner passkey its limits (approved by an owner passkey)"

    IN_FLIGHT_STATUSES = (Status.SIGNED, Status.SUBMITTED)
    #: an owner change not finished: in flight, or held behind one in flight (:mod:`payments.passkey_limits`)
    CHANGE_PENDING_STATUSES = (Status.SIGNED, Status.SUBMITTED, Status.HELD)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PROTECT)
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="protections")
    authenticator = models.ForeignKey("mfa.Authenticator", on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="wallet_protections")
    public_key = models.BinaryField(max_length=33)
    limits = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SIGNED, db_index=True)
    signature = models.CharField(max_length=88, blank=True, default="")
    slot = models.PositiveBigIntegerField(null=True, blank=True)
    error_message = models.CharField(max_length=300, blank=True, default="")
    expires_at = models.DateTimeField(help_text="No new attempt is signed after this instant.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # kinds add_passkey / remove_passkey: the owner passkey's approval of the add_authority / remove_authority,
    # carried on-chain
    approver = models.ForeignKey("mfa.Authenticator", on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="wallet_passkey_additions_approved")
    approval_expires_at = models.DateTimeField(null=True, blank=True)
    authenticator_data = models.BinaryField(null=True, blank=True)
    client_data_json = models.BinaryField(null=True, blank=True)
    signature_der = models.BinaryField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            # one switch per wallet in flight or done: a further passkey goes on-chain by a passkey approval
            models.UniqueConstraint(fields=["wallet"], condition=Q(kind="protect", status__in=(
                "signed", "submitted", "confirmed")), name="payments_one_live_protection_per_wallet"),
            models.UniqueConstraint(fields=["wallet", "authenticator"], condition=Q(
                kind="add_passkey", status__in=("signed", "submitted", "confirmed")),
                name="payments_one_live_passkey_addition"),
            # one owner change by passkey approval at a time per wallet (each consumes the config's nonce), and a
            # passkey is taken off a wallet once (a removed passkey is not made an owner again)
            models.UniqueConstraint(fields=["wallet"], condition=Q(
                kind="remove_passkey", status__in=("signed", "submitted")), name="payments_one_live_passkey_removal"),
            models.UniqueConstraint(fields=["wallet", "authenticator"], condition=Q(
                kind="remove_passkey", status__in=("signed", "submitted", "confirmed")),
                name="payments_one_passkey_removal_per_passkey"),
        ]

    def __str__(self) -> str:
        return f"protection of {self.wallet_id} ({self.status})"


class WalletProtectionAttempt(OutboxAttempt):
    """An outbox attempt of a :class:`WalletProtection` (see :class:`relayer.models.OutboxAttempt`)."""

    protection = models.ForeignKey(WalletProtection, on_delete=models.CASCADE, related_name="attempts")

    class Meta:
        ordering = ("protection", "number")
        constraints = [models.UniqueConstraint(fields=["protection", "number"],
                                               name="payments_protection_attempt_number_unique")]

    def __str__(self) -> str:
        return f"attempt {self.number} of protection {self.protection_id}"
