"""How a payment is confirmed: its signed transaction goes through the relayer's outbox
(:mod:`relayer.outbox`: send after commit, re-send, renew when provably expired, read statuses), and the
payment reacts here to each outcome:

- sent -> ``submitted``;
- landed at the configured commitment -> ``confirmed`` with its slot and the slot's block time (one
  ``getBlockTime`` per slot, cached across processes: :mod:`numpay.core.solana.block_times`); the
  sponsorship is settled with what the fee payer really lost; balances are forgotten in every process;
  a payment to an email nobody has claimed yet emails its owner (``wallets.tasks.unclaimed_payment_notify``);
- failed on chain -> ``failed`` with a plain sentence (the fee was paid: sponsorship settled); failed in
  preflight on the first send -> ``failed`` (never broadcast: sponsorship released);
- never landed and past ``expires_at`` -> ``expired`` (sponsorship released); before it, a new attempt
  with a fresh blockhash.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from numpay.core.solana import Blockhash, ChainClient, SignatureStatus
from numpay.core.solana.block_times import block_time_at
from relayer import services as relayer
from relayer.outbox import NextStep, OutboxKind
from wallets.program import ProgramErrorCode, error_sentence
from wallets.selectors import balance_cache_key
from wallets.tasks import unclaimed_payment_notify

from . import state_machine
from .lock_objects import payment_lock_for_step, payment_qs_select_for_update_skip_locked
from .models import Payment, PaymentAttempt
from .transactions import payment_sign_attempt

Status = Payment.Status


class PaymentOutbox(OutboxKind):
    """Payments as an outbox kind (registered in :class:`payments.apps.PaymentsConfig`)."""

    name = "payment"
    attempt_model = PaymentAttempt
    owner_field = "payment"
    owner_model = Payment

    def in_flight(self) -> QuerySet[Payment]:
        return Payment.objects.filter(status__in=Payment.IN_FLIGHT_STATUSES).order_by("updated_at")

    def lock(self, owner_id: Any) -> Payment | None:
        return payment_lock_for_step(owner_id)

    def lock_many(self, owner_ids: Sequence[Any]) -> dict[Any, Payment]:
        # one statement for the poller's round; a payment another transaction holds (a pushed outbox_check
        # landing it, a send being recorded) is skipped: it stays in flight and the next round re-reads it
        locked = (payment_qs_select_for_update_skip_locked().select_related("token", "wallet", "recipient_wallet")
                  .filter(pk__in=list(owner_ids)).order_by("pk"))
        return {payment.pk: payment for payment in locked}

    @contextmanager
    def outcomes_batched(self) -> Iterator[None]:
        # the round's events in one INSERT, its sponsorship settlements in one pass (relayer)
        outer = getattr(_settlements, "pending", None)
        _settlements.pending = {}
        try:
            with state_machine.events_batched():
                yield
                relayer.sponsorship_settle_many(_settlements.pending)
        finally:
            _settlements.pending = outer

    def prepare_outcomes(self, steps: Sequence[NextStep], *, client: ChainClient) -> None:
        for slot in sorted({step.status.slot for step in steps if step.status is not None}):
            block_time_at(slot, client=client)  # into the shared cache: read before any row is locked

    def is_open(self, owner: Payment) -> bool:
        return owner.status in Payment.IN_FLIGHT_STATUSES

    def may_renew(self, owner: Payment) -> bool:
        return owner.expires_at is None or owner.expires_at > timezone.now()

    def sign_attempt(self, owner: Payment, *, blockhash: Blockhash, number: int) -> PaymentAttempt:
        attempt = payment_sign_attempt(payment=owner, blockhash=blockhash, number=number, reserve=False)
        owner.signature = attempt.signature
        owner.save(update_fields=["signature", "updated_at"])
        state_machine.record_note(owner, f"attempt {number - 1} expired unseen; attempt {number} signed")
        return attempt

    def on_sent(self, owner: Payment, attempt: PaymentAttempt) -> None:
        if owner.status == Status.APPROVED:
            state_machine.transition(owner, Status.SUBMITTED, note=f"attempt {attempt.number} sent")
            owner.save(update_fields=[*state_machine.STATE_FIELDS, "updated_at"])

    def on_landed(self, owner: Payment, attempt: PaymentAttempt, *, status: SignatureStatus,
                  fee_payer_cost: int | None) -> None:
        if owner.status == Status.APPROVED:
            state_machine.transition(owner, Status.SUBMITTED, note="landed before the send was recorded")
        state_machine.transition(owner, Status.CONFIRMED, note=f"{status.confirmation_status} at slot {status.slot}")
        owner.signature, owner.slot = attempt.signature, status.slot
        owner.block_time = block_time_at(status.slot)
        owner.save(update_fields=[*state_machine.STATE_FIELDS, "signature", "slot", "block_time", "updated_at"])
        _settle(owner, fee_payer_cost)
        forget_balances_on_commit(owner)
        if owner.reclaim_of_id is None and owner.recipient_wallet_id is not None \
                and owner.recipient_wallet.claim_email:  # paid by email before sign-up: tell them
            payment_id = str(owner.id)
            transaction.on_commit(lambda: unclaimed_payment_notify.delay(payment_id))

    def on_failed(self, owner: Payment, attempt: PaymentAttempt, *, err: Any, landed: bool, slot: int | None,
                  fee_payer_cost: int | None) -> None:
        code, message = explain_transaction_error(err, is_native=owner.token.is_native)
        state_machine.transition(owner, Status.FAILED, note=message)
        owner.error_code, owner.error_message, owner.error_detail = code, message, err
        owner.signature, owner.slot = attempt.signature, slot
        if landed and slot is not None:
            owner.block_time = block_time_at(slot)
        owner.save(update_fields=[*state_machine.STATE_FIELDS, "error_code", "error_message", "error_detail",
                                  "signature", "slot", "block_time", "updated_at"])
        if landed:  # the fee was paid even though the transaction failed
            _settle(owner, fee_payer_cost)
        else:
            relayer.sponsorship_release(reference=owner.id)
        forget_balances_on_commit(owner)

    def on_expired(self, owner: Payment, attempt: PaymentAttempt) -> None:
        payment_end_expired(owner, message="The payment could not reach the network in time. Nothing was sent; "
                                           "please try again.")

    def touch(self, owner_ids: Iterable[Any]) -> None:
        Payment.objects.filter(pk__in=list(owner_ids), status__in=Payment.IN_FLIGHT_STATUSES).update(
            updated_at=timezone.now())

    def stale_count(self, *, older_than: datetime) -> int:
        return Payment.objects.filter(status__in=Payment.IN_FLIGHT_STATUSES, updated_at__lt=older_than).count()


_settlements = threading.local()


def _settle(payment: Payment, fee_payer_cost: int | None) -> None:
    """Settle the payment's sponsorship now, or with the others of the poller's round
    (:meth:`PaymentOutbox.outcomes_batched`)."""
    pending = getattr(_settlements, "pending", None)
    if pending is None:
        relayer.sponsorship_settle(reference=payment.id, actual_lamports=fee_payer_cost)
    else:
        pending[payment.id] = fee_payer_cost


def payment_end_expired(payment: Payment, *, message: str) -> None:
    """End a payment ``expired`` (abandoned before approval, or never landed before its deadline): its
    reservation ends with the open state, any sponsorship is released, balances are forgotten. The caller
    holds the payment's row lock."""
    state_machine.transition(payment, Status.EXPIRED, note=message)
    payment.error_code, payment.error_message = "payment_expired", message
    payment.save()
    relayer.sponsorship_release(reference=payment.id)
    forget_balances_on_commit(payment)


def forget_balances_on_commit(payment: Payment) -> None:
    """Drop the cached balances the payment changed, in the shared cache, now and again after commit, so
    every process reads the new balance as soon as the payment shows its outcome (DESIGN.md invariant 7).
    The chain already holds the outcome when this runs: a balance cached in between is the new one."""
    keys = [balance_cache_key(payment.wallet.address, payment.token.symbol),
            balance_cache_key(payment.wallet.address, "SOL"),
            balance_cache_key(payment.recipient_address, payment.token.symbol)]
    cache.delete_many(keys)
    transaction.on_commit(lambda: cache.delete_many(keys))


_TOKEN_ERRORS = {
    1: ("insufficient_funds", "The sender's balance was too low when the payment reached the network."),
    3: ("mint_mismatch", "The token account belongs to a different token."),
    4: ("owner_mismatch", "The token account is not owned by the sender."),
    17: ("account_frozen", "The token account is frozen by the token issuer."),
}


#: The Numpay wallet program's refusals a payment can meet, by code (docs/wallet-program.md, "Errors");
#: any other of its codes is ``wallet_rule_refused``. The sentence is the program client's.
_WALLET_PROGRAM_CODES = {
    ProgramErrorCode.PER_TRANSACTION_LIMIT_EXCEEDED: "wallet_limit_exceeded",
    ProgramErrorCode.PERIOD_LIMIT_EXCEEDED: "wallet_limit_exceeded",
    ProgramErrorCode.NO_LIMIT_FOR_MINT: "wallet_token_not_allowed",
}


def explain_transaction_error(err: Any, *, is_native: bool) -> tuple[str, str]:
    """A stable code and a plain-words sentence for a Solana transaction error (as JSON).

    Codes come from the runtime's ``TransactionError`` / ``InstructionError``, the Numpay wallet program's
    error codes (6000 and up: ``wallets.program.error_sentence``; a limit refusal is
    ``wallet_limit_exceeded``) and the SPL Token program's error enum
    (https://github.com/solana-program/token, ``TokenError``).
    """
    text = json.dumps(err, default=str)
    if "InsufficientFundsForRent" in text:
        return ("insufficient_funds_for_rent",
                "Solana requires the receiving account to hold a minimum balance; the amount was too small.")
    if isinstance(err, dict) and "InstructionError" in err:
        detail = err["InstructionError"][1] if len(err["InstructionError"]) > 1 else None
        if isinstance(detail, dict) and "Custom" in detail:
            custom = detail["Custom"]
            sentence = error_sentence(custom)
            if sentence is not None:
                return _WALLET_PROGRAM_CODES.get(custom, "wallet_rule_refused"), sentence
            if is_native and custom == 1:
                return "insufficient_funds", "The sender's SOL balance was too low when the payment reached the network."
            if custom in _TOKEN_ERRORS and not is_native:
                return _TOKEN_ERRORS[custom]
            return "program_error", f"The network rejected the payment (program error {custom})."
        if detail == "ComputationalBudgetExceeded" or "ComputeBudget" in text:
            return "compute_budget_exceeded", "The payment needed more computation than the network allows."
        return "instruction_error", f"The network rejected the payment ({detail})."
    if "InsufficientFundsForFee" in text:
        return "fee_payer_unfunded", "Numpay's fee payer could not pay the network fee. Please try again later."
    if "BlockhashNotFound" in text:
        return "expired", "The payment took too long to reach the network."
    return "transaction_error", f"The network rejected the payment ({text[:120]})."
