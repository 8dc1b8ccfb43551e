"""Guardian recovery (issue 10): who may help an owner get their wallet back, the requests to do so, the
guardians' approvals, the timeline of every step, and the on-chain execution's outbox attempts.

Only :mod:`recovery.services` writes these rows. Every write that depends on a wallet's guardians or its open
request holds the wallet's row lock first (:func:`wallets.lock_objects.wallet_qs_select_for_update`), the
same lock payments take, so a payment cannot slip in while a timelock starts and a guardian removal cannot
interleave with an approval. Times are timezone-aware UTC; durations are seconds.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from relayer.models import OutboxAttempt


class RecoverySetup(models.Model):
    """A wallet owner's recovery rules.

    :ivar threshold: guardian approvals a recovery needs (m of n); ``None`` = a majority of the active
        guardians (``n // 2 + 1``).
    :ivar timelock_seconds: how long a recovery waits after its threshold is met before it executes
        (``NUMPAY_RECOVERY_MIN_TIMELOCK_SECONDS`` .. ``NUMPAY_RECOVERY_MAX_TIMELOCK_SECONDS``).
    :ivar hold_payments: whether outgoing payments are held while a recovery's timelock runs.
    :ivar chain_sync: whether the guardian set and rules still have to be written in the wallet's config
        (custodial mode: by the custody key, through the outbox; :mod:`recovery.services.sync`).
    """

    class ChainSync(models.TextChoices):
        NONE = "", "Nothing to write"
        PENDING = "pending", "To write on-chain"
        IN_FLIGHT = "in_flight", "Being written"
        FAILED = "failed", "Refused on-chain"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_setup")
    threshold = models.PositiveSmallIntegerField(null=True, blank=True)
    timelock_seconds = models.PositiveIntegerField()
    hold_payments = models.BooleanField(default=True)
    chain_sync = models.CharField(max_length=10, choices=ChainSync.choices, blank=True, default="")
    chain_sync_version = models.PositiveIntegerField(default=0, help_text=(
        "+1 at every change the chain must learn; an attempt that lands for an older version syncs again."))
    chain_sync_reference = models.UUIDField(null=True, blank=True, help_text="The sponsorship reference of the "
                                                                             "current sync.")
    chain_synced_version = models.PositiveIntegerField(default=0)
    chain_sync_error = models.CharField(max_length=255, blank=True, default="")

    class ChainChangeStep(models.TextChoices):
        NONE = "", "No guardian change on-chain"
        PROPOSE = "propose", "guardians_propose approved by the owner's passkey, to send"
        APPLY = "apply", "proposed on-chain: guardians_apply when due"
        CANCEL = "cancel", "guardians_cancel approved by the owner's passkey, to send"
        SETTINGS = "settings", "set_settings (threshold, timelock) approved by the owner's passkey, to send"

    chain_change_step = models.CharField(max_length=8, choices=ChainChangeStep.choices, blank=True, default="",
                                         help_text="Protected mode: the next on-chain step of the guardian change.")
    chain_change = models.JSONField(null=True, blank=True, help_text=(
        "Protected mode: the guardian set of the owner's latest approved proposal ({keys: [hex, ...], threshold}), "
        "in the order proposed (guardians_apply sends the same bytes)."))
    chain_change_approval = models.JSONField(null=True, blank=True, help_text=(
        "Protected mode: the owner's passkey assertion approving guardians_propose, guardians_cancel or set_settings "
        "(hex parts, with the nonce and expiry it is bound to), waiting for the sweep."))
    chain_change_effective_at = models.DateTimeField(null=True, blank=True, help_text=(
        "Protected mode: when the chain lets the proposed change be applied (its effective_at)."))
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"recovery setup of {self.user_id}"


class GuardianInvitation(models.Model):
    """An invitation, sent by email, to become one of ``owner``'s guardians. Only the SHA-256 of its token is
    stored; the token is in the emailed link. Accepted once, with the guardian's passkey, before ``expires_at``."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="guardian_invitations")
    email = models.EmailField()
    token_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    expires_at = models.DateTimeField()
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"invitation of {self.email} ({self.status})"


class Guardian(models.Model):
    """One guardian of ``owner``: a Numpay user and the passkey they approve with.

    Adding and removing take effect only at ``change_effective_at`` (``NUMPAY_GUARDIAN_CHANGE_DELAY_SECONDS``
    after the owner asked, with their passkey); until then the owner can cancel the change. In protected mode
    (``change_on_chain``) the change is the wallet program's delayed ``guardians_propose`` approved by the
    owner's passkey (an addition waits for that confirmation: ``owner_confirmed_at``); ``change_effective_at``
    is the chain's, and the change takes effect when ``guardians_apply`` lands
    (:mod:`recovery.services.onchain_guardians`).

    - ``pending``: accepted, waiting for the delay before it counts; ``active``: counts; an active guardian
      with ``removal_requested_at`` set still counts until ``change_effective_at``; ``removed``: no longer
      counts (its approvals of open requests are withdrawn); ``cancelled``: the owner cancelled the addition.

    :ivar authority_key: the guardian passkey's compressed P-256 public key (33 bytes), the guardian authority
        written in the wallet's on-chain config.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (waiting for the change delay)"
        ACTIVE = "active", "Active"
        REMOVED = "removed", "Removed"
        CANCELLED = "cancelled", "Cancelled by the owner"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="guardians")
    guardian_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="guarding")
    passkey = models.ForeignKey("mfa.Authenticator", on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+")
    authority_key = models.BinaryField(max_length=33)
    invitation = models.OneToOneField(GuardianInvitation, on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="guardian")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    change_effective_at = models.DateTimeField(null=True, blank=True)
    removal_requested_at = models.DateTimeField(null=True, blank=True)
    change_on_chain = models.BooleanField(default=False, help_text=(
        "Protected mode: this addition or removal takes effect when guardians_apply lands on-chain (the owner's "
        "passkey approved the proposal), not by the clock."))
    owner_confirmed_at = models.DateTimeField(null=True, blank=True, help_text=(
        "Protected mode: when the owner's passkey approved the on-chain proposal adding this guardian."))
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("created_at",)
        constraints = [
            models.UniqueConstraint(fields=["owner", "guardian_user"], condition=Q(status__in=["pending", "active"]),
                                    name="recovery_guardian_one_live_per_person"),
            models.CheckConstraint(condition=~Q(owner=models.F("guardian_user")), name="recovery_guardian_not_self"),
        ]
        indexes = [models.Index(fields=["status", "change_effective_at"], name="recovery_guardian_due")]

    def __str__(self) -> str:
        return f"guardian {self.guardian_user_id} of {self.owner_id} ({self.status})"


class RecoveryRequest(models.Model):
    """Someone who proved ``user``'s email or phone asks for the account back with a new passkey.

    ``verifying`` (code sent) -> ``collecting`` (new passkey registered and held pending; guardians asked)
    -> ``timelocked`` (threshold met: ``executes_at`` = then + the wallet's timelock; back to ``collecting``
    when an approval is withdrawn below the threshold) -> ``executing`` (the sweep submitted the on-chain
    recovery) -> ``executed``. Ends ``cancelled`` (owner), ``expired``, ``failed`` (on-chain refusal) or
    ``frozen`` (an operator stopped it; never approved by an operator). One open request per user.

    :ivar digest: SHA-256 (hex) of what guardians approve (:func:`recovery.digests.request_digest`).
    :ivar pending_credential: the new passkey's registration response (allauth's stored form), installed
        as the account's passkey only on execution.
    :ivar pending_public_key: its compressed P-256 public key (33 bytes), the new on-chain owner.
    :ivar requester_token_hash: SHA-256 (hex) of the secret the requester follows the request with.
    """

    class Status(models.TextChoices):
        VERIFYING = "verifying", "Verifying the email or phone"
        COLLECTING = "collecting", "Waiting for guardians"
        TIMELOCKED = "timelocked", "Timelock running"
        EXECUTING = "executing", "Executing on-chain"
        EXECUTED = "executed", "Executed"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"
        FAILED = "failed", "Failed"
        FROZEN = "frozen", "Frozen by an operator"

    class ChainPhase(models.TextChoices):
        NONE = "", "Nothing on-chain"
        SYNC = "sync", "Guardian set and rules being written"
        START = "start", "recovery_start in flight"
        STARTED = "started", "Pending on-chain (clock running once its approvals reach the threshold)"
        APPROVE = "approve", "A further guardian's recovery_approve in flight"
        WITHDRAW = "withdraw", "A guardian's recovery_withdraw in flight"
        CANCEL = "cancel", "recovery_cancel in flight"
        CANCELLED = "cancelled", "Cancelled on-chain"
        CANCEL_FAILED = "stuck", "Cancel refused on-chain (an operator must look)"
        EXECUTED = "executed", "Executed on-chain"

    OPEN_STATUSES = ("verifying", "collecting", "timelocked", "executing")
    CANCELLABLE_STATUSES = ("verifying", "collecting", "timelocked")

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        PHONE = "phone", "Phone"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_requests")
    wallet = models.ForeignKey("wallets.Wallet", on_delete=models.PROTECT, related_name="recovery_requests")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.VERIFYING)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    code_hash = models.CharField(max_length=64, blank=True, default="")
    code_expires_at = models.DateTimeField(null=True, blank=True)
    code_attempts = models.PositiveSmallIntegerField(default=0)
    verified_at = models.DateTimeField(null=True, blank=True)
    requester_token_hash = models.CharField(max_length=64, unique=True)
    registration_state = models.JSONField(null=True, blank=True)
    pending_credential = models.JSONField(null=True, blank=True)
    pending_public_key = models.BinaryField(max_length=33, null=True, blank=True)
    digest = models.CharField(max_length=64, blank=True, default="")
    threshold = models.PositiveSmallIntegerField(null=True, blank=True)
    timelock_seconds = models.PositiveIntegerField()
    timelock_started_at = models.DateTimeField(null=True, blank=True)
    executes_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    cancel_nonce = models.CharField(max_length=32, blank=True, default="")
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=255, blank=True, default="")
    error_detail = models.JSONField(null=True, blank=True)
    signature = models.CharField(max_length=88, blank=True, default="")
    chain_nonce = models.PositiveBigIntegerField(null=True, blank=True, help_text=(
        "Smart wallet: the config nonce the guardians' approvals are bound to (the program's approval "
        "challenge of recovery_start); null for a keypair wallet (off-chain digest)."))
    chain_phase = models.CharField(max_length=10, choices=ChainPhase.choices, blank=True, default="")
    chain_cancel_approval = models.JSONField(null=True, blank=True, help_text=(
        "Protected mode: the owner's passkey assertion approving recovery_cancel on-chain (hex parts, with the "
        "recovery id and expiry it is bound to)."))
    chain_recovery_id = models.PositiveBigIntegerField(null=True, blank=True, help_text=(
        "The wallet config's recovery_id of this request once its recovery_start landed (how an execution by "
        "someone else is recognised as this request's)."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=["wallet"], condition=Q(status__in=["verifying", "collecting", "timelocked",
                                                                              "executing"]),
                                    name="recovery_request_one_open_per_wallet"),
        ]
        indexes = [models.Index(fields=["status", "executes_at"], name="recovery_request_due"),
                   models.Index(fields=["status", "expires_at"], name="recovery_request_expiry")]

    def __str__(self) -> str:
        return f"recovery {self.id} of {self.user_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class RecoveryApproval(models.Model):
    """A guardian's approval of a request: their passkey's WebAuthn assertion over the request's digest,
    kept whole (authenticator data, client data JSON, signature) so it can be shown to the program's
    secp256r1 check. Withdrawn approvals keep their row with ``withdrawn_at`` set."""

    request = models.ForeignKey(RecoveryRequest, on_delete=models.CASCADE, related_name="approvals")
    guardian = models.ForeignKey(Guardian, on_delete=models.PROTECT, related_name="approvals")
    passkey = models.ForeignKey("mfa.Authenticator", on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+")
    authenticator_data = models.BinaryField()
    client_data_json = models.BinaryField()
    signature = models.BinaryField()
    approved_at = models.DateTimeField(auto_now_add=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_reason = models.CharField(max_length=255, blank=True, default="")
    chain_withdraw_approval = models.JSONField(null=True, blank=True, help_text=(
        "The guardian's passkey assertion approving recovery_withdraw on-chain (hex parts, with the nonce, "
        "recovery id and expiry it is bound to), waiting for the sweep; the approval is withdrawn here when "
        "that withdrawal lands."))
    chain_approve_approval = models.JSONField(null=True, blank=True, help_text=(
        "The guardian's passkey assertion approving recovery_approve on-chain (hex parts, with the nonce, "
        "recovery id and expiry it is bound to), for an approval the start could not carry (one transaction "
        "holds about two); waiting for the sweep, cleared when it lands."))

    class Meta:
        ordering = ("approved_at",)
        constraints = [models.UniqueConstraint(fields=["request", "guardian"], condition=Q(withdrawn_at__isnull=True),
                                               name="recovery_approval_one_live_per_guardian")]

    def __str__(self) -> str:
        return f"approval of {self.request_id} by guardian {self.guardian_id}"


class RecoveryEvent(models.Model):
    """The audit timeline: every step of guardians and recovery requests of one owner (append-only).

    :ivar actor: ``owner`` | ``guardian`` | ``requester`` | ``operator`` | ``system``.
    :ivar kind: what happened (``request_started``, ``approval_added``, ``timelock_started``, ...).
    """

    id = models.BigAutoField(primary_key=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_events")
    request = models.ForeignKey(RecoveryRequest, on_delete=models.CASCADE, null=True, blank=True,
                                related_name="events")
    guardian = models.ForeignKey(Guardian, on_delete=models.SET_NULL, null=True, blank=True, related_name="events")
    actor = models.CharField(max_length=10)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    kind = models.CharField(max_length=40)
    note = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.kind}"


class RecoveryAttempt(OutboxAttempt):
    """One signed transaction of a recovery's on-chain step (the relayer's outbox): ``start`` (the
    guardians' approvals, the on-chain clock starts), ``execute`` (after the timelock) or ``cancel``.
    Each phase is its own outbox kind with its own attempts (:mod:`recovery.services.execution`)."""

    class Phase(models.TextChoices):
        SYNC = "sync", "guardians and rules (set_settings, add/remove_authority)"
        START = "start", "recovery_start"
        EXECUTE = "execute", "recovery_execute"
        CANCEL = "cancel", "recovery_cancel"
        WITHDRAW = "withdraw", "recovery_withdraw (a guardian's passkey)"
        APPROVE = "approve", "recovery_approve (a further guardian's passkey)"

    request = models.ForeignKey(RecoveryRequest, on_delete=models.PROTECT, related_name="attempts")
    phase = models.CharField(max_length=8, choices=Phase.choices, default=Phase.EXECUTE)

    class Meta:
        ordering = ("request_id", "phase", "number")
        constraints = [models.UniqueConstraint(fields=["request", "phase", "number"],
                                               name="recovery_attempt_phase_number_unique")]

    def __str__(self) -> str:
        return f"recovery {self.request_id} attempt {self.number}"


class GuardianSyncAttempt(OutboxAttempt):
    """One signed transaction writing an owner's guardians and rules on-chain (the relayer's outbox)."""

    setup = models.ForeignKey(RecoverySetup, on_delete=models.PROTECT, related_name="sync_attempts")
    reference = models.UUIDField(help_text="The sync this attempt belongs to (the setup's chain_sync_reference).")
    version = models.PositiveIntegerField(help_text="The setup's chain_sync_version this attempt writes.")

    class Meta:
        ordering = ("setup_id", "number")

    def __str__(self) -> str:
        return f"guardian sync of {self.setup_id} attempt {self.number}"


class RecoveryEmail(models.Model):
    """One recovery email, stored with the change that causes it and sent by the worker after commit
    (:func:`recovery.tasks.recovery_email_deliver`, which carries only this row's id: codes and cancel links
    never travel through the broker). A transient failure retries with backoff; the row says what happened.
    Once sent (or failed) the body is erased, unless nothing leaves the machine
    (``recovery.app_settings.KEEP_EMAIL_BODIES``).

    :ivar attempts: sends tried so far.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    id = models.BigAutoField(primary_key=True)
    recipient = models.EmailField(max_length=320)
    subject = models.CharField(max_length=255)
    body = models.TextField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"recovery email to {self.recipient} ({self.status})"
