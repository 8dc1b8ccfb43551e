"""Wallets, their custody envelopes, the token registry, and deposits from outside.

Key material lives only in :class:`WalletKey` as ciphertext (DESIGN.md "Key custody"); nothing else
stores or displays it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from numpay.core import rowcache
from numpay.core.indexes import PortableIndex


class Wallet(models.Model):
    """A user's Solana wallet. Exactly one per user (unique constraint on ``user``).

    :ivar address: the base58 address people pay (32 bytes -> 32..44 characters): the vault of a smart
        wallet (a PDA of the Numpay wallet program), or the custody key itself for a keypair wallet.
    :ivar authority: the custody key's address (signs for the wallet; binds its key envelope).
    :ivar user: the owner; ``None`` while the wallet waits for the person an email payment went to.
    """


    class Custody(models.TextChoices):
        CUSTODIAL = "custodial", "Custodial (platform-held, envelope-encrypted)"
        SHARED_2_OF_3 = "shared_2_of_3", "Non-custodial (2-of-3 shares)"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FROZEN = "frozen", "Frozen"

    class Kind(models.TextChoices):
        KEYPAIR = "keypair", "Keypair (the custody key's own address)"
        SMART = "smart", "Smart wallet (vault of the Numpay wallet program)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="wallet",
                                null=True, blank=True)
    claim_email = models.CharField(max_length=254, blank=True, default="", help_text=(
        "Set while the wallet belongs to an email address nobody has confirmed yet (it was paid by email before "
        "its owner signed up): lower-case. Cleared when the owner confirms the address."))
    address = models.CharField(max_length=44, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.KEYPAIR)
    authority = models.CharField(max_length=44, blank=True, default="", help_text=(
        "The custody key's public address: the keypair wallet's own address, or the smart wallet's creator "
        "and owner authority."))
    config_address = models.CharField(max_length=44, blank=True, default="", help_text=(
        "Smart wallet: the config account (created on-chain with the first outgoing payment)."))
    previous_address = models.CharField(max_length=44, blank=True, default="", help_text=(
        "The keypair address this wallet had before it was upgraded to a smart wallet."))
    custody = models.CharField(max_length=20, choices=Custody.choices, default=Custody.CUSTODIAL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    last_scanned_at = models.DateTimeField(null=True, blank=True, help_text=(
        "When the deposit scan last looked at this wallet's addresses (empty: never, or since its address "
        "changed); the scan takes the least recently scanned first."))

    class Meta:
        ordering = ("-created_at",)
        constraints = [models.UniqueConstraint(fields=["claim_email"], condition=~Q(claim_email=""),
                                               name="wallets_wallet_claim_email_unique")]
        indexes = [
            # the deposit scan's selection (wallets.deposits.deposit_scan): never scanned first, then oldest scan
            PortableIndex(F("last_scanned_at").asc(nulls_first=True), F("created_at"),
                          name="wallets_wallet_scan_order_idx"),
        ]

    def __str__(self) -> str:
        return self.address

    @property
    def is_smart(self) -> bool:
        return self.kind == self.Kind.SMART

    @property
    def signing_address(self) -> str:
        """The custody key's address (the envelope's AAD and the signer of the wallet's transactions)."""
        return self.authority or self.address


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


#: :mod:`numpay.core.rowcache` namespace of the cached tokens (``wallets.services.token_get``).
TOKENS_CACHE = "tokens"


class TokenQuerySet(rowcache.InvalidatingQuerySet):
    rowcache_namespace = TOKENS_CACHE


class Token(models.Model):
    """A token Numpay shows and moves on one cluster. SOL is native (no mint, 9 decimals).

    :ivar mint: base58 mint address; empty for native SOL.
    :ivar token_program: the owning program id (SPL Token or Token-2022); empty for SOL.
    :ivar account_creation_fee: the operator-set price, in base units of this token, of opening a token
        account for a recipient outside Numpay (``None``: refused; ``0``: sponsored). It closes the rent
        farm of paying dust to fresh keys and closing their new accounts.
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
    account_creation_fee = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Base units of this token charged to the sender when a payment must open a "
        "token account for an address outside Numpay (the fee payer pays its rent in SOL). Empty: such payments "
        "are refused; 0: Numpay sponsors the rent.")

    objects = TokenQuerySet.as_manager()

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


class IncomingTransfer(models.Model):
    """A deposit to a wallet from outside Numpay, found by the deposit scan (getSignaturesForAddress), or a
    faucet top-up recorded at once.

    :ivar amount: base units received by the wallet in this transaction.
    """

    id = models.BigAutoField(primary_key=True)
    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, related_name="incoming_transfers")
    token = models.ForeignKey(Token, on_delete=models.PROTECT)
    amount = models.PositiveBigIntegerField()
    signature = models.CharField(max_length=88)
    from_address = models.CharField(max_length=44, blank=True, default="")
    slot = models.PositiveBigIntegerField(null=True, blank=True)
    block_time = models.DateTimeField(null=True, blank=True, help_text=(
        "The chain's time of the block it landed in (getSignaturesForAddress' blockTime, or getBlockTime of its "
        "slot); empty when the node had none. The activity is dated and ordered by it, not by when Numpay saw it."))
    block_time_unavailable_at = models.DateTimeField(null=True, blank=True, help_text=(
        "When the block-time backfill (payments.block_times) asked the node for its slot's time and got none (a "
        "block the node no longer keeps): not asked again; the activity keeps dating it by when it was found."))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [models.UniqueConstraint(fields=["wallet", "signature", "token"],
                                               name="wallets_incoming_unique")]
        # the activity feed's order (payments.selectors.wallet_activity_page): chain time, then slot, per wallet
        indexes = [models.Index(F("wallet"), Coalesce("block_time", "created_at").desc(), F("slot").desc(),
                                name="wallets_incoming_feed_idx"),
                   # the block-time backfill's rows to do (payments.block_times)
                   models.Index(fields=["id"], name="wallets_incoming_bt_todo_idx",
                                condition=Q(block_time__isnull=True, slot__isnull=False,
                                            block_time_unavailable_at__isnull=True))]

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
