"""Wallets, their custody envelopes, and the token registry.

Key material lives only in :class:`WalletKey` as ciphertext (DESIGN.md "Key custody"); nothing else
stores or displays it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address


class Wallet(models.Model):
    """A user's Solana wallet. Exactly one per user (unique constraint on ``user``).

    :ivar address: the base58 Ed25519 public key (32 bytes -> 32..44 characters).
    """

    class Custody(models.TextChoices):
        CUSTODIAL = "custodial", "Custodial (platform-held, envelope-encrypted)"
        SHARED_2_OF_3 = "shared_2_of_3", "Non-custodial (2-of-3 shares)"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FROZEN = "frozen", "Frozen"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="wallet")
    address = models.CharField(max_length=44, unique=True)
    custody = models.CharField(max_length=20, choices=Custody.choices, default=Custody.CUSTODIAL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.address


class WalletKey(models.Model):
    """The custodial key envelope of one wallet.

    ``ciphertext`` = AES-256-GCM(nonce 12 bytes || ct) of the 32-byte Ed25519 seed under a per-wallet data
    key, AAD = wallet id + address; ``wrapped_data_key`` = the data key wrapped by the KEK ``kek_id``.
    """

    wallet = models.OneToOneField(Wallet, on_delete=models.CASCADE, primary_key=True, related_name="key")
    algorithm = models.CharField(max_length=40, default="ed25519-seed/aes-256-gcm")
    ciphertext = models.BinaryField()
    wrapped_data_key = models.BinaryField()
    kek_id = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"key envelope of {self.wallet_id}"


class Token(models.Model):
    """A token Numpay shows and moves on one cluster. SOL is native (no mint, 9 decimals).

    :ivar mint: base58 mint address; empty for native SOL.
    :ivar token_program: the owning program id (SPL Token or Token-2022); empty for SOL.
    """

    cluster = models.CharField(max_length=32)
    symbol = models.CharField(max_length=16)
    name = models.CharField(max_length=64)
    mint = models.CharField(max_length=44, blank=True, default="")
    decimals = models.PositiveSmallIntegerField()
    is_native = models.BooleanField(default=False)
    token_program = models.CharField(max_length=44, blank=True, default="")
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("position", "symbol")
        constraints = [
            models.UniqueConstraint(fields=["cluster", "symbol"], name="wallets_token_cluster_symbol_unique"),
            models.UniqueConstraint(
                fields=["cluster", "mint"], condition=~Q(mint=""), name="wallets_token_cluster_mint_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} ({self.cluster})"

    def associated_token_account(self, owner: str) -> Pubkey:
        """The owner's associated token account for this SPL token (ATA program derivation:
        https://spl.solana.com/associated-token-account). Not defined for native SOL."""
        if self.is_native:
            raise ValueError("native SOL has no token account")
        return get_associated_token_address(Pubkey.from_string(owner), Pubkey.from_string(self.mint),
                                            Pubkey.from_string(self.token_program))


class Payment(models.Model):
    """A payment from a user's wallet, a monotonic state machine (DESIGN.md "Payments: the invariants").

    ``created -> [awaiting_approval] -> approved -> submitted -> confirmed | failed``, plus ``rejected``
    and ``expired``. Each reached state keeps its timestamp; :class:`PaymentEvent` records transitions.

    :ivar amount: base units of ``token`` (lamports for SOL).
    :ivar sponsored_lamports: the fee payer's maximum cost reserved against the sender's daily budget.
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
    TERMINAL_STATUSES = (Status.CONFIRMED, Status.FAILED, Status.REJECTED, Status.EXPIRED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments_sent")
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="payments_sent")
    recipient_input = models.CharField(max_length=254, help_text="What the sender typed: an email or an address.")
    recipient_address = models.CharField(max_length=44)
    recipient_wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, null=True, blank=True,
                                         related_name="payments_received")
    token = models.ForeignKey(Token, on_delete=models.PROTECT, related_name="payments")
    amount = models.PositiveBigIntegerField()
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
    approved_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
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


class PaymentAttempt(models.Model):
    """The outbox: one fully signed transaction for a payment, stored before anything is sent.

    Re-sending ``signed_transaction`` is always safe (same signature). A new attempt is created only when
    the chain's block height is past this attempt's ``last_valid_block_height`` and ``signature`` is still
    unknown to the cluster, so a payment never has two live attempts.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (stored, not sent)"
        SENT = "sent", "Sent"
        LANDED = "landed", "Landed"
        EXPIRED = "expired", "Expired (blockhash too old, never landed)"
        FAILED = "failed", "Failed"

    id = models.BigAutoField(primary_key=True)
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="attempts")
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
        ordering = ("payment", "number")
        constraints = [models.UniqueConstraint(fields=["payment", "number"], name="wallets_attempt_number_unique")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.payment_id}"


class PaymentEvent(models.Model):
    """One recorded state transition of a payment (audit trail)."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, blank=True, default="")
    to_status = models.CharField(max_length=20)
    note = models.CharField(max_length=300, blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("at", "id")

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status}"


class IncomingTransfer(models.Model):
    """A deposit to a wallet from outside Numpay, found by the deposit scan (getSignaturesForAddress).

    :ivar amount: base units received by the wallet in this transaction.
    """

    id = models.BigAutoField(primary_key=True)
    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, related_name="incoming_transfers")
    token = models.ForeignKey(Token, on_delete=models.PROTECT)
    amount = models.PositiveBigIntegerField()
    signature = models.CharField(max_length=88)
    from_address = models.CharField(max_length=44, blank=True, default="")
    slot = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [models.UniqueConstraint(fields=["wallet", "signature", "token"],
                                               name="wallets_incoming_unique")]

    def __str__(self) -> str:
        return f"deposit {self.signature[:8]}… to {self.wallet_id}"


class DepositCursor(models.Model):
    """Where the deposit scan stopped for one watched address (the wallet or one of its token accounts)."""

    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, related_name="deposit_cursors")
    address = models.CharField(max_length=44)
    last_signature = models.CharField(max_length=88, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["wallet", "address"], name="wallets_deposit_cursor_unique")]

    def __str__(self) -> str:
        return f"cursor {self.address}"
