"""Parsing and validating a request to pay: the body, the recipient, the memo.

Nothing here reads balances or decides limits (that is :mod:`payments.authorization`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from solders.pubkey import Pubkey

from numpay.core.errors import ApplicationError
from wallets.models import Wallet

#: The Memo program accepts any UTF-8; we cap it so every payment fits one transaction (bytes).
MEMO_MAX_BYTES = 200
#: ``transfer``/``transfer_checked`` amounts are u64; Payment.amount is a signed 64-bit column.
MAX_PAYMENT_BASE_UNITS = 2**63 - 1


@dataclass(frozen=True)
class PaymentRequest:
    """A parsed request to pay: ``to`` is an email or a base58 address; ``amount`` a decimal string."""

    to: str
    token: str
    amount: str
    memo: str = ""

    def fingerprint(self) -> str:
        """SHA-256 of the canonical body, to tell a replay from a reused Idempotency-Key.

        An email is compared case-insensitively (mailboxes are matched so); a Solana address exactly,
        because base58 is case-sensitive (two addresses differing only in case are different accounts).
        """
        to = self.to.strip()
        if "@" in to:
            to = to.lower()
        body = json.dumps({"to": to, "token": self.token.strip().upper(), "amount": self.amount.strip(),
                           "memo": self.memo}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Recipient:
    """Where a payment goes: ``address`` (base58 owner) and the Numpay wallet there, if any."""

    address: str
    wallet: Wallet | None


def resolve_recipient(*, to: str, sender_wallet: Wallet) -> Recipient:
    """An email of a Numpay user, or a Solana address (base58, 32 bytes).

    :raises ApplicationError: ``recipient_required``, ``recipient_not_found`` (no user with that email),
        ``invalid_address`` (bad base58 or wrong length), ``recipient_is_sender``.
    """
    text = (to or "").strip()
    if not text:
        raise ApplicationError("recipient_required", "Enter an email address or a Solana address.", extra={"field": "to"})
    if "@" in text:
        wallet = Wallet.objects.filter(user__email__iexact=text).first()
        if wallet is None:
            raise ApplicationError("recipient_not_found", "No Numpay user has that email address.", extra={"field": "to"})
    else:
        try:
            address = Pubkey.from_string(text)
        except ValueError as exc:
            raise ApplicationError("invalid_address", "That is not a valid Solana address (base58, 32 bytes).",
                                   extra={"field": "to"}) from exc
        if str(address) != text:
            raise ApplicationError("invalid_address", "That is not a valid Solana address (base58, 32 bytes).",
                                   extra={"field": "to"})
        wallet = Wallet.objects.filter(address=text).first()
        if wallet is None:
            return _not_sender(Recipient(address=text, wallet=None), sender_wallet)
    return _not_sender(Recipient(address=wallet.address, wallet=wallet), sender_wallet)


def _not_sender(recipient: Recipient, sender_wallet: Wallet) -> Recipient:
    if recipient.address == sender_wallet.address:
        raise ApplicationError("recipient_is_sender", "You cannot send a payment to your own wallet.",
                               extra={"field": "to"})
    return recipient


def validate_memo(memo: str) -> str:
    """Memo program text: UTF-8, at most :data:`MEMO_MAX_BYTES` bytes, no control characters.

    :raises ApplicationError: ``memo_too_long``, ``invalid_memo``.
    """
    memo = (memo or "").strip()
    if len(memo.encode()) > MEMO_MAX_BYTES:
        raise ApplicationError("memo_too_long", f"The memo can be at most {MEMO_MAX_BYTES} bytes.", extra={"field": "memo"})
    if any(ord(ch) < 32 for ch in memo):
        raise ApplicationError("invalid_memo", "The memo cannot contain control characters.", extra={"field": "memo"})
    return memo
