"""How availability is computed, and the authorization of a payment under the wallet lock.

"Available" = chain balance minus open reservations (DESIGN.md "Payments: the invariants" 1 and 7).
Exact, with no double counting: the balance comes with its context slot ``C`` and includes every
transaction landed in a slot <= ``C``. Open payments are read from the DB first (a payment the DB calls
confirmed had landed before, so it is in the balance), then the balance, then their statuses: an open
payment landed at a slot <= ``C`` (at the client's commitment: no minority fork) is already in the
balance; one that failed on chain debits nothing; every other one is reserved. Spending policies (per
transaction, rolling caps, approvals) are evaluated in the same locked transaction
(:mod:`payments.policy_services`).
"""

from __future__ import annotations

import functools

from solders.pubkey import Pubkey

from numpay.core import sql
from numpay.core.errors import ApplicationError
from numpay.core.money import format_amount
from numpay.core.solana import ChainClient
from numpay.core.solana.programs import SOL_DECIMALS
from relayer.outbox import signature_statuses
from wallets.models import Token, Wallet

from .models import Payment
from .policies import approval_reason


def reserved_amount(*, open_payments: list[tuple[int, str]], settled: set[str]) -> int:
    """Base units still reserved by open payments (pure).

    :param open_payments: ``(debit in base units, signature or "")`` of every open payment.
    :param settled: signatures already reflected in the balance (landed at a slot <= the balance's
        context slot) or that debit nothing (failed on chain).
    """
    return sum(debit for debit, signature in open_payments if not signature or signature not in settled)


@functools.cache
def _open_payments_sql() -> str:
    """Every open payment's debit and signature (the ``(wallet, token, status)`` index; every create runs it
    under the wallet lock: hand-written, :mod:`numpay.core.sql`)."""
    return (f"SELECT {sql.column(Payment, 'amount')} + {sql.column(Payment, 'network_fee')}, "  # noqa: S608 - model names; values are parameters
            f"{sql.column(Payment, 'signature')} FROM {sql.table(Payment)} "
            f"WHERE {sql.column(Payment, 'wallet')} = %s AND {sql.column(Payment, 'token')} = %s "
            f"AND {sql.column(Payment, 'status')} IN ({sql.placeholders(Payment.OPEN_STATUSES)})")


def available_balance(*, client: ChainClient, wallet: Wallet, token: Token) -> int:
    """Chain balance minus open reservations, in base units (see the module docstring for exactness).

    :raises ChainUnavailableError: the chain could not be read.
    """
    open_payments = [(debit, signature) for debit, signature in sql.fetchall(_open_payments_sql(), [
        sql.value(Payment, "wallet", wallet.pk), sql.value(Payment, "token", token.pk), *Payment.OPEN_STATUSES])]
    balance, context_slot = chain_balance_at(client=client, wallet=wallet, token=token)
    signed = [signature for _, signature in open_payments if signature]
    settled: set[str] = set()
    if signed:
        for signature, status in signature_statuses(client=client, signatures=signed).items():
            if status is not None and (status.err is not None or (
                    status.slot <= context_slot and client.is_at_commitment(status))):
                settled.add(signature)
    return balance - reserved_amount(open_payments=open_payments, settled=settled)


def chain_balance_at(*, client: ChainClient, wallet: Wallet, token: Token) -> tuple[int, int]:
    """``(spendable balance in base units, context slot)`` read now (no cache), for authorization:
    lamports for SOL; for an SPL token, its associated token account, the one ``transfer_checked``
    debits (tokens in other accounts of the owner are not spendable by a payment).
    """
    owner = Pubkey.from_string(wallet.address)
    if token.is_native:
        return client.get_balance_at(owner)
    return client.get_token_account_amount_at(token.associated_token_account(wallet.address))


def check_available(*, token: Token, debit: int, available: int, rent_exempt_minimum: int) -> None:
    """Refuse a debit the wallet cannot cover (pure).

    :param debit: base units leaving the wallet (amount plus any network fee in the token).
    :param available: :func:`available_balance`.
    :param rent_exempt_minimum: lamports a system account must keep if it keeps anything (SOL only).
    :raises ApplicationError: ``insufficient_funds`` (with ``available``), ``would_leave_dust`` (SOL: the
        rest would be above 0 but below the rent-exempt minimum, which the runtime refuses).
    """
    if debit > available:
        can_send = format_amount(max(available, 0), decimals=token.decimals)
        raise ApplicationError("insufficient_funds", f"You can send at most {can_send} {token.symbol} right now.",
                               extra={"field": "amount", "available": str(max(available, 0))})
    if token.is_native:
        remaining = available - debit
        if 0 < remaining < rent_exempt_minimum:
            raise ApplicationError("would_leave_dust", "Solana needs a wallet to keep at least "
                                   f"{format_amount(rent_exempt_minimum, decimals=SOL_DECIMALS)} SOL or nothing; "
                                   "send all or less.",
                                   extra={"field": "amount"})


def approval_required(payment: Payment) -> str | None:
    """Why ``payment`` needs an approval before it may be signed, or ``None`` to approve it at once.

    The spending policies decide (:mod:`payments.policies`; the decision is stored on the payment with the
    number of distinct passkey approvals required); the payment then waits ``awaiting_approval`` until
    :func:`payments.services.payment_approve` or its cancellation / expiry.
    """
    return approval_reason(payment.policy_decision)
