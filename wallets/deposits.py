"""Deposits from outside Numpay: found by scanning ``getSignaturesForAddress`` per wallet.

Each wallet's own address (SOL) and its associated token account per SPL token are watched; a
:class:`DepositCursor` keeps the newest signature seen per address, so runs are resumable and bounded.
Transactions that are Numpay payments are skipped (they are shown from the payment records).
Amounts come from ``meta.preBalances/postBalances`` and ``pre/postTokenBalances`` of ``getTransaction``
(https://solana.com/docs/rpc/http/gettransaction).
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from solders.pubkey import Pubkey
from solders.signature import Signature

from numpay.core.solana import ChainClient, get_chain_client
from numpay.core.solana.block_times import unix_to_datetime
from relayer.outbox import known_signatures

from .models import DepositCursor, IncomingTransfer, Token, Wallet
from .selectors import tokens_active

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_PAGES_PER_ADDRESS = 10


def watched_addresses(wallet: Wallet, tokens: list[Token]) -> list[tuple[str, Token | None]]:
    """``[(address, token or None for the wallet itself)]`` to scan for a wallet."""
    result: list[tuple[str, Token | None]] = [(wallet.address, None)]
    for token in tokens:
        if not token.is_native:
            result.append((str(token.associated_token_account(wallet.address)), token))
    return result


def wallets_in_scan_order() -> QuerySet[Wallet]:
    """Never scanned first, then the least recently scanned (an index scan of ``wallets_wallet_scan_order_idx``,
    however many wallets there are: bench/README.md, "Scale")."""
    return Wallet.objects.order_by(F("last_scanned_at").asc(nulls_first=True), "created_at")


def deposit_scan(*, wallet_limit: int = 50, client: ChainClient | None = None, seconds: float | None = None) -> int:
    """Scan the ``wallet_limit`` least recently scanned wallets, stopping early once ``seconds`` have passed
    (the wallets not reached come first next time). :returns: new incoming transfers."""
    client = client or get_chain_client()
    deadline = None if seconds is None else time.monotonic() + seconds
    tokens = list(tokens_active())
    wallets = list(wallets_in_scan_order()[:wallet_limit])
    found = 0
    for wallet in wallets:
        if deadline is not None and time.monotonic() >= deadline:
            break
        for address, _token in watched_addresses(wallet, tokens):
            found += _scan_address(client=client, wallet=wallet, address=address, tokens=tokens)
        Wallet.objects.filter(pk=wallet.pk).update(last_scanned_at=timezone.now())
    return found


def _scan_address(*, client: ChainClient, wallet: Wallet, address: str, tokens: list[Token]) -> int:
    cursor, _ = DepositCursor.objects.get_or_create(wallet=wallet, address=address)
    until = Signature.from_string(cursor.last_signature) if cursor.last_signature else None
    newest_first: list[dict[str, Any]] = []
    before = None
    for _page in range(MAX_PAGES_PER_ADDRESS):
        page = client.signatures_for_address(Pubkey.from_string(address), until=until, before=before, limit=PAGE_SIZE)
        newest_first.extend(page)
        if len(page) < PAGE_SIZE:
            break
        before = Signature.from_string(page[-1]["signature"])
    else:
        logger.warning("deposit scan of %s stopped after %s signatures", address, len(newest_first))
    if not newest_first:
        DepositCursor.objects.filter(pk=cursor.pk).update(updated_at=timezone.now())
        return 0
    signatures = [item["signature"] for item in newest_first]
    ours = known_signatures(signatures)
    found = 0
    for item in reversed(newest_first):
        if item["err"] is not None or item["signature"] in ours:
            continue
        tx = client.get_transaction_json(Signature.from_string(item["signature"]))
        if tx is None:
            continue
        for token, amount, sender in incoming_amounts(tx, owner=wallet.address, tokens=tokens):
            if incoming_transfer_record(wallet=wallet, token=token, amount=amount, signature=item["signature"],
                                        from_address=sender, slot=item["slot"],
                                        block_time=unix_to_datetime(item["block_time"])):
                found += 1
    DepositCursor.objects.filter(pk=cursor.pk).update(last_signature=signatures[0], updated_at=timezone.now())
    return found


def incoming_transfer_record(*, wallet: Wallet, token: Token, amount: int, signature: str, from_address: str,
                             slot: int | None, block_time: datetime.datetime | None) -> bool:
    """Record money that arrived from outside Numpay's payments (a deposit, a faucet top-up) once.

    :param amount: base units of ``token``.
    :param block_time: the chain's time of ``slot`` (aware UTC; ``None`` when the node has none): the activity
        is dated and ordered by it, however late the deposit is found.
    :returns: ``True`` if recorded now, ``False`` if it already was (by the scan or by the faucet: one row per
        wallet, signature and token).
    """
    try:
        with transaction.atomic():
            IncomingTransfer.objects.create(wallet=wallet, token=token, amount=amount, signature=signature,
                                            from_address=from_address, slot=slot, block_time=block_time)
    except IntegrityError:
        return False
    return True


def _account_keys(tx: dict[str, Any]) -> list[str]:
    keys = tx["transaction"]["message"]["accountKeys"]
    return [key["pubkey"] if isinstance(key, dict) else key for key in keys]


def incoming_amounts(tx: dict[str, Any], *, owner: str, tokens: list[Token]) -> list[tuple[Token, int, str]]:
    """What ``owner`` received in one transaction: ``[(token, base units > 0, sender address)]``."""
    meta = tx.get("meta") or {}
    keys = _account_keys(tx)
    result: list[tuple[Token, int, str]] = []
    native = next((t for t in tokens if t.is_native), None)
    if native is not None and owner in keys:
        index = keys.index(owner)
        delta = meta["postBalances"][index] - meta["preBalances"][index]
        if delta > 0:
            losers = [(meta["postBalances"][i] - meta["preBalances"][i], keys[i]) for i in range(1, len(keys))]
            sender = min(losers)[1] if losers and min(losers)[0] < 0 else keys[0]
            result.append((native, delta, sender))
    by_mint = {t.mint: t for t in tokens if not t.is_native}

    def amounts(entries: list[dict[str, Any]]) -> dict[int, tuple[str, str, int]]:
        return {e["accountIndex"]: (e["mint"], e.get("owner", ""), int(e["uiTokenAmount"]["amount"])) for e in entries}

    pre, post = amounts(meta.get("preTokenBalances") or []), amounts(meta.get("postTokenBalances") or [])
    for index, (mint, entry_owner, after) in post.items():
        if entry_owner != owner or mint not in by_mint:
            continue
        delta = after - pre.get(index, (mint, entry_owner, 0))[2]
        if delta > 0:
            senders = [o for i, (m, o, amount) in pre.items() if m == mint and amount - post.get(i, (m, o, 0))[2] > 0]
            result.append((by_mint[mint], delta, senders[0] if senders else ""))
    return result
