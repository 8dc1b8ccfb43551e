"""Parsing and validating a request to pay: the body, the recipient, the memo.

Nothing here reads balances or decides limits (that is :mod:`payments.authorization`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.core.cache import cache
from solders.pubkey import Pubkey

from numpay.core.errors import ApplicationError
from numpay.core.solana import AccountInfo, ChainClient
from numpay.core.solana.programs import SYSTEM_PROGRAM_ID, SYSVAR_OWNER_ID
from wallets.claims import normalize_email, wallet_reserve_for_email
from wallets.models import Token, Wallet

from .transactions import MAX_TRANSACTION_UNITS, payment_compute_unit_limit

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
    """Where a payment goes: ``address`` (base58 owner) and the Numpay wallet there, if any.
    ``is_new_email_wallet``: the review step of a payment to an email with no wallet yet (no address)."""

    address: str
    wallet: Wallet | None
    is_new_email_wallet: bool = False


def parse_recipient(to: str) -> str:
    """Check the form of ``to`` (nothing is looked up, so nothing about anyone is revealed): an email
    address, or a Solana address in canonical base58 (32 bytes).

    :returns: ``to`` stripped.
    :raises ApplicationError: ``recipient_required``, ``invalid_address``.
    """
    text = (to or "").strip()
    if not text:
        raise ApplicationError("recipient_required", "Enter an email address or a Solana address.", extra={"field": "to"})
    if "@" not in text:
        try:
            address = Pubkey.from_string(text)
        except ValueError as exc:
            raise ApplicationError("invalid_address", "That is not a valid Solana address (base58, 32 bytes).",
                                   extra={"field": "to"}) from exc
        if str(address) != text:
            raise ApplicationError("invalid_address", "That is not a valid Solana address (base58, 32 bytes).",
                                   extra={"field": "to"})
    return text


def resolve_recipient(*, to: str, sender_wallet: Wallet, reserve_email_wallet: bool = True) -> Recipient:
    """Look up a recipient already checked by :func:`parse_recipient`: the wallet of the Numpay user with
    that email, else the wallet waiting for that email's owner (reserved now when there is none:
    ``wallets.claims``); or the address (and the Numpay wallet there, if any). Every well-formed email is
    accepted the same way, so a sender never learns whether it has an account.

    :param reserve_email_wallet: ``False`` for the review step, which creates nothing: an email with no
        wallet yet gives ``Recipient(address="", wallet=None, is_new_email_wallet=True)``.
    :raises ApplicationError: ``recipient_is_sender``.
    """
    text = parse_recipient(to)
    if "@" in text:
        wallet = (Wallet.objects.filter(user__email__iexact=text).first()
                  or Wallet.objects.filter(claim_email=normalize_email(text)).first())
        if wallet is None:
            if not reserve_email_wallet:
                return Recipient(address="", wallet=None, is_new_email_wallet=True)
            wallet = wallet_reserve_for_email(email=text)
    else:
        wallet = Wallet.objects.filter(address=text).first()
        if wallet is None:
            return _not_sender(Recipient(address=text, wallet=None), sender_wallet)
    return _not_sender(Recipient(address=wallet.address, wallet=wallet), sender_wallet)


def _not_sender(recipient: Recipient, sender_wallet: Wallet) -> Recipient:
    if recipient.address == sender_wallet.address:
        raise ApplicationError("recipient_is_sender", "You cannot send a payment to your own wallet.",
                               extra={"field": "to"})
    return recipient


#: Owners of accounts nobody can receive a payment at: sysvars, loaders, and the native programs' state.
_SYSTEM_PROGRAM = str(SYSTEM_PROGRAM_ID)
_SYSVAR_OWNER = str(SYSVAR_OWNER_ID)


@dataclass(frozen=True)
class RecipientAccounts:
    """What the chain holds for a recipient: its own ``account`` and, for an SPL token, its associated
    ``token_account`` (each ``None`` when it does not exist)."""

    account: AccountInfo | None
    token_account: AccountInfo | None
    #: whether the token account exists, when it was known without reading it (a Numpay wallet's:
    #: :func:`numpay_token_account_exists`); ``None``: ``token_account`` says.
    token_account_exists: bool | None = None

    @property
    def has_token_account(self) -> bool:
        """Whether the recipient's associated token account exists."""
        return self.token_account is not None if self.token_account_exists is None else self.token_account_exists


#: How long a Numpay wallet's token account, once seen, is remembered in the shared cache (seconds).
TOKEN_ACCOUNT_SEEN_SECONDS = 3600


def numpay_token_account_exists(*, client: ChainClient, address: Pubkey) -> bool:
    """Whether a Numpay wallet's associated token account exists. A Numpay wallet's token account is never
    closed (no Numpay transaction closes one), so once seen it is remembered for an hour in the shared
    cache and not read again; a missing one is read each time (it may be created any moment).

    :raises ChainUnavailableError: the chain could not be read.
    """
    key = f"token-account-seen:{address}"
    if cache.get(key):
        return True
    exists = client.get_account_info(address) is not None
    if exists:
        cache.set(key, True, TOKEN_ACCOUNT_SEEN_SECONDS)
    return exists


def recipient_check_spendable(*, client: ChainClient, recipient: Recipient, token: Token,
                              sender_wallet: Wallet) -> RecipientAccounts:
    """Refuse an address nobody can spend from, and read the accounts the payment will touch.

    A payment's recipient must be a wallet: an account that a key can sign for (on the Ed25519 curve) and
    that the System program owns, or does not exist yet. Refused with ``invalid_recipient``: a mint, a
    token account (the sender's own included: the tokens would be stuck, since a token account cannot own
    tokens), a program or any program-owned account, a sysvar, and an address off the curve (a program
    derived address: only its program could move funds out) -- unless it is a Numpay wallet.

    :raises ApplicationError: ``invalid_recipient`` with a plain sentence.
    :raises ChainUnavailableError: the chain could not be read.
    """
    address = Pubkey.from_string(recipient.address)
    if recipient.wallet is not None and not token.is_native:
        # a Numpay wallet: nothing to refuse, and a token payment needs only whether its token account exists
        exists = numpay_token_account_exists(client=client, address=token.associated_token_account(recipient.address))
        return RecipientAccounts(account=None, token_account=None, token_account_exists=exists)
    account = client.get_account_info(address)
    token_account = None
    if not token.is_native:
        token_account = client.get_account_info(token.associated_token_account(recipient.address))
    if recipient.wallet is not None:
        return RecipientAccounts(account=account, token_account=token_account)
    if account is not None and (account.executable or str(account.owner) != _SYSTEM_PROGRAM):
        if str(account.owner) == _SYSVAR_OWNER:
            what = "a Solana system variable"
        elif account.executable:
            what = "a program"
        elif token.token_program and str(account.owner) == token.token_program:
            what = "a token account or a token's mint, not a wallet"
        else:
            what = f"an account of the program {account.owner}, not a wallet"
        raise ApplicationError("invalid_recipient", f"That address is {what}: funds sent there could not be spent. "
                               "Enter the recipient's wallet address.", extra={"field": "to"})
    if not address.is_on_curve():
        raise ApplicationError("invalid_recipient", "That address has no private key (it is derived by a program), "
                               "so nobody could spend funds sent there. Enter the recipient's wallet address.",
                               extra={"field": "to"})
    return RecipientAccounts(account=account, token_account=token_account)


def validate_memo(memo: str) -> str:
    """Memo program text: UTF-8, at most :data:`MEMO_MAX_BYTES` bytes, no control characters.

    :raises ApplicationError: ``memo_too_long``, ``invalid_memo``.
    """
    memo = (memo or "").strip()
    if len(memo.encode()) > MEMO_MAX_BYTES:
        raise ApplicationError("memo_too_long", f"The memo can be at most {MEMO_MAX_BYTES} bytes.", extra={"field": "memo"})
    if any(ord(ch) < 32 for ch in memo):
        raise ApplicationError("invalid_memo", "The memo cannot contain control characters.", extra={"field": "memo"})
    try:  # a payment has at most two other instructions (token account creation and the transfer)
        payment_compute_unit_limit(memo=memo, other_instructions=2)
    except ValueError as exc:
        raise ApplicationError("memo_too_long", "This memo needs more computation than one Solana transaction "
                               f"allows ({MAX_TRANSACTION_UNITS} compute units); shorten it.",
                               extra={"field": "memo"}) from exc
    return memo
