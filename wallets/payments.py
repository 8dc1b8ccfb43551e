"""Payment services: create (authorize + reserve + sign + store, atomically), submit, confirm, re-attempt.

Follows DESIGN.md "Payments: the invariants" to the letter:

1. Authorize atomically: availability (chain balance minus open reservations) is evaluated and the new
   payment inserted in one DB transaction under a row lock on the sender's wallet.
2. Outbox: the fully signed transaction is stored as a :class:`PaymentAttempt` before anything is sent;
   sending happens after commit, in the Celery ``chain`` queue.
3. Exactly once: re-sending stored bytes is safe; a new attempt is made only when the chain's block
   height is past the old attempt's ``last_valid_block_height`` and its signature is still unknown,
   decided under a row lock on the payment, so there are never two live attempts.
4. Confirmation polls ``getSignatureStatuses`` at ``confirmed`` commitment; on-chain errors end the
   payment ``failed`` with the error kept and explained in plain words.
5. Idempotency: (sender, Idempotency-Key) is unique; a replay returns the first payment, the same key
   with another body is refused (422 ``idempotency_key_reused``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    transfer_checked,
)
from spl.token.models import TransferCheckedParams

from numpay.core.chain import PREFLIGHT_FAILURE_CODE, ChainClient, SignatureStatus, get_chain_client
from numpay.core.errors import ApplicationError, ChainRequestError, UnprocessableError
from numpay.core.money import format_amount, parse_amount
from numpay.core.transactions import assemble, compile_message
from relayer import services as relayer

from .lock_objects import payment_qs_select_for_update, wallet_qs_select_for_update
from .models import Payment, PaymentAttempt, PaymentEvent, Token, Wallet
from .selectors import balance_cache_key
from .services import token_get, wallet_for_user, wallet_sign

logger = logging.getLogger(__name__)

MEMO_MAX_BYTES = 200
MAX_PAYMENT_BASE_UNITS = 2**63 - 1
TOKEN_ACCOUNT_SIZE = 165
_ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    Payment.Status.CREATED: {Payment.Status.AWAITING_APPROVAL, Payment.Status.APPROVED, Payment.Status.REJECTED},
    Payment.Status.AWAITING_APPROVAL: {Payment.Status.APPROVED, Payment.Status.REJECTED, Payment.Status.EXPIRED},
    Payment.Status.APPROVED: {Payment.Status.SUBMITTED, Payment.Status.CONFIRMED, Payment.Status.FAILED,
                              Payment.Status.EXPIRED},
    Payment.Status.SUBMITTED: {Payment.Status.CONFIRMED, Payment.Status.FAILED},
}
_STATUS_TIMESTAMP = {
    Payment.Status.APPROVED: "approved_at", Payment.Status.SUBMITTED: "submitted_at",
    Payment.Status.CONFIRMED: "confirmed_at", Payment.Status.FAILED: "failed_at",
}


@dataclass(frozen=True)
class PaymentRequest:
    """A parsed request to pay: ``to`` is an email or a base58 address; ``amount`` a decimal string."""

    to: str
    token: str
    amount: str
    memo: str = ""

    def fingerprint(self) -> str:
        """SHA-256 of the canonical body, to tell a replay from a reused Idempotency-Key."""
        body = json.dumps({"to": self.to.strip().lower(), "token": self.token.strip().upper(),
                           "amount": self.amount.strip(), "memo": self.memo}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Recipient:
    address: str
    wallet: Wallet | None


# --- validation -------------------------------------------------------------------------------------
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
    """Memo program text: UTF-8, at most 200 bytes, no control characters.

    :raises ApplicationError: ``memo_too_long``, ``invalid_memo``.
    """
    memo = (memo or "").strip()
    if len(memo.encode()) > MEMO_MAX_BYTES:
        raise ApplicationError("memo_too_long", f"The memo can be at most {MEMO_MAX_BYTES} bytes.", extra={"field": "memo"})
    if any(ord(ch) < 32 for ch in memo):
        raise ApplicationError("invalid_memo", "The memo cannot contain control characters.", extra={"field": "memo"})
    return memo


def available_balance(*, client: ChainClient, wallet: Wallet, token: Token) -> int:
    """Chain balance minus open reservations, in base units (DESIGN.md invariant 6).

    Exact, with no double counting: the balance comes with its context slot ``C`` and includes every
    transaction landed in a slot <= ``C``. Open payments are read from the DB first (a payment the DB
    calls confirmed had landed before, so it is in the balance), then the balance, then their statuses:
    an open payment landed at a slot <= ``C`` (and at the client's commitment: no minority fork) is
    already in the balance; one that failed on chain debits nothing; every other one is reserved.
    """
    open_payments = list(Payment.objects.filter(wallet=wallet, token=token, status__in=Payment.OPEN_STATUSES)
                         .values_list("amount", "signature"))
    balance, context_slot = chain_balance_at(client=client, wallet=wallet, token=token)
    signed = [signature for _, signature in open_payments if signature]
    settled: set[str] = set()
    for start in range(0, len(signed), 256):
        chunk = signed[start:start + 256]
        for signature, status in zip(chunk, client.signature_statuses([Signature.from_string(s) for s in chunk]),
                                     strict=True):
            if status is not None and (status.err is not None or (
                    status.slot <= context_slot and client.is_at_commitment(status))):
                settled.add(signature)
    return balance - sum(amount for amount, signature in open_payments if not signature or signature not in settled)


def chain_balance_at(*, client: ChainClient, wallet: Wallet, token: Token) -> tuple[int, int]:
    """``(spendable balance in base units, context slot)`` read now (no cache), for authorization:
    lamports for SOL; for an SPL token, its associated token account, the one ``transfer_checked``
    debits (tokens in other accounts of the owner are not spendable by a payment).
    """
    owner = Pubkey.from_string(wallet.address)
    if token.is_native:
        return client.get_balance_at(owner)
    return client.get_token_account_amount_at(token.associated_token_account(wallet.address))


# --- building and signing ---------------------------------------------------------------------------
def payment_reference(payment_id: uuid.UUID) -> Pubkey:
    """The payment's reference key: 32 bytes derived from its id (need not be on the curve).

    Added read-only, non-signer to the transfer instruction as Solana Pay does with ``reference``
    (https://docs.solanapay.com/spec#reference), it makes two equal payments in one blockhash window
    different transactions (else they would share one signature and the second would be dropped as
    already processed), and makes each payment findable with ``getSignaturesForAddress``.
    """
    return Pubkey(hashlib.sha256(b"numpay:payment:" + payment_id.bytes).digest())


def _with_reference(instruction: Instruction, reference: Pubkey) -> Instruction:
    accounts = [*instruction.accounts, AccountMeta(reference, is_signer=False, is_writable=False)]
    return Instruction(instruction.program_id, instruction.data, accounts)


def build_instructions(*, payment: Payment, fee_payer: Pubkey, create_recipient_account: bool) -> list[Instruction]:
    """SOL: a system transfer. SPL: optional idempotent ATA create (funded by the fee payer) and
    ``transfer_checked``. The transfer carries the payment's :func:`payment_reference`. An optional
    memo (signed by the sender) follows.
    """
    sender = Pubkey.from_string(payment.wallet.address)
    recipient = Pubkey.from_string(payment.recipient_address)
    token = payment.token
    instructions: list[Instruction] = []
    if token.is_native:
        instructions.append(_with_reference(
            transfer(TransferParams(from_pubkey=sender, to_pubkey=recipient, lamports=payment.amount)),
            payment_reference(payment.id)))
    else:
        mint, program = Pubkey.from_string(token.mint), Pubkey.from_string(token.token_program)
        destination = token.associated_token_account(payment.recipient_address)
        if create_recipient_account:
            instructions.append(create_idempotent_associated_token_account(fee_payer, recipient, mint, program))
        instructions.append(_with_reference(transfer_checked(TransferCheckedParams(
            program_id=program, source=token.associated_token_account(payment.wallet.address), mint=mint,
            dest=destination, owner=sender, amount=payment.amount, decimals=token.decimals)),
            payment_reference(payment.id)))
    if payment.memo:
        instructions.append(create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=sender,
                                                   message=payment.memo.encode())))
    return instructions


def _sign_attempt(*, payment: Payment, blockhash: Hash, last_valid_block_height: int, number: int,
                  reserve: bool) -> PaymentAttempt:
    """Compile, validate and co-sign (relayer), sign (custody) and store one attempt. Inside an atomic block."""
    fee_payer = relayer.fee_payer_pubkey()
    message = compile_message(instructions=build_instructions(
        payment=payment, fee_payer=fee_payer, create_recipient_account=payment.creates_recipient_token_account),
        fee_payer=fee_payer, blockhash=blockhash)
    cosigned = relayer.relayer_cosign(user=payment.sender, message=message, reference=payment.id, reserve=reserve)
    wallet_signature = wallet_sign(wallet=payment.wallet, message=bytes(message))
    tx = assemble(message=message, signatures={fee_payer: cosigned.signature,
                                               Pubkey.from_string(payment.wallet.address): wallet_signature})
    if reserve:
        payment.sponsored_lamports = cosigned.cost_lamports
    return PaymentAttempt.objects.create(
        payment=payment, number=number, signed_transaction=bytes(tx), signature=str(tx.signatures[0]),
        blockhash=str(blockhash), last_valid_block_height=last_valid_block_height)


def _transition(payment: Payment, to_status: str, *, note: str = "") -> None:
    """Move ``payment`` to ``to_status`` (monotonic; timestamps and an event recorded). Caller saves."""
    allowed = _ALLOWED_TRANSITIONS.get(payment.status, set())
    if to_status not in allowed:
        raise ValueError(f"payment {payment.id}: {payment.status} -> {to_status} is not allowed")
    PaymentEvent.objects.create(payment=payment, from_status=payment.status, to_status=to_status, note=note[:300])
    payment.status = to_status
    field = _STATUS_TIMESTAMP.get(to_status)
    if field:
        setattr(payment, field, timezone.now())


# --- create -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PaymentPlan:
    """A validated payment request, before authorization under the wallet lock.

    :ivar amount: base units. :ivar available: chain balance minus open reservations, base units.
    """

    wallet: Wallet
    token: Token
    recipient: Recipient
    amount: int
    memo: str
    creates_recipient_token_account: bool
    available: int

    @property
    def ui_amount(self) -> str:
        return format_amount(self.amount, decimals=self.token.decimals)


def payment_plan(*, user: Any, request: PaymentRequest, client: ChainClient | None = None,
                 check_balance: bool = True) -> PaymentPlan:
    """Validate a payment request without creating anything (the review step, and the first half of
    :func:`payment_create`, which skips the balance check here: its binding one runs under the lock).

    :param check_balance: also check the available balance (advisory); ``available`` is ``-1`` when not.
    :raises ApplicationError: as :func:`payment_create`.
    """
    client = client or get_chain_client()
    wallet = wallet_for_user(user=user)
    if wallet.status != Wallet.Status.ACTIVE:
        raise ApplicationError("wallet_frozen", "This wallet is frozen; contact support.", status=403)
    token = token_get(symbol=request.token)
    recipient = resolve_recipient(to=request.to, sender_wallet=wallet)
    amount = parse_amount(request.amount, decimals=token.decimals)
    if amount > MAX_PAYMENT_BASE_UNITS:
        raise ApplicationError("amount_too_large", "The amount is too large.", extra={"field": "amount"})
    memo = validate_memo(request.memo)
    creates_account, recipient_exists = _recipient_account_state(client=client, token=token, recipient=recipient)
    if token.is_native and not recipient_exists:
        minimum = client.minimum_balance_for_rent_exemption(0)
        if amount < minimum:
            raise ApplicationError("amount_below_rent_minimum", "A new Solana address must receive at least "
                                   f"{format_amount(minimum, decimals=9)} SOL.", extra={"field": "amount"})
    available = -1
    if check_balance:
        available = available_balance(client=client, wallet=wallet, token=token)
        _check_available(token=token, amount=amount, available=available, client=client)
    return PaymentPlan(wallet=wallet, token=token, recipient=recipient, amount=amount, memo=memo,
                       creates_recipient_token_account=creates_account, available=available)


def _check_available(*, token: Token, amount: int, available: int, client: ChainClient) -> None:
    if amount > available:
        can_send = format_amount(max(available, 0), decimals=token.decimals)
        raise ApplicationError("insufficient_funds", f"You can send at most {can_send} {token.symbol} right now.",
                               extra={"field": "amount", "available": str(max(available, 0))})
    if token.is_native:
        remaining = available - amount
        minimum = client.minimum_balance_for_rent_exemption(0)
        if 0 < remaining < minimum:
            raise ApplicationError("would_leave_dust", "Solana needs a wallet to keep at least "
                                   f"{format_amount(minimum, decimals=9)} SOL or nothing; send all or less.",
                                   extra={"field": "amount"})


def payment_create(*, user: Any, request: PaymentRequest, idempotency_key: str | None = None,
                   client: ChainClient | None = None) -> tuple[Payment, bool]:
    """Authorize, reserve, sign and store a payment; enqueue its submission after commit.

    :param request: the body; ``amount`` is a decimal string in token units (``"12.50"``).
    :param idempotency_key: the ``Idempotency-Key`` header (max 255 characters), optional.
    :returns: ``(payment, created)``; ``created`` is ``False`` for an idempotent replay.
    :raises ApplicationError: ``recipient_*``, ``invalid_address``, ``unknown_token``, ``invalid_amount``,
        ``amount_not_positive``, ``too_many_decimals``, ``amount_too_large``, ``memo_too_long``,
        ``insufficient_funds``, ``amount_below_rent_minimum``, ``would_leave_dust``, ``wallet_frozen``,
        ``sponsorship_budget_exceeded`` (429), ``transaction_not_allowed``.
    :raises UnprocessableError: ``idempotency_key_reused`` (422).
    :raises ChainUnavailableError: the chain could not be reached (nothing was stored).
    """
    key = (idempotency_key or "").strip() or None
    if key is not None and len(key) > 255:
        raise ApplicationError("invalid_idempotency_key", "The Idempotency-Key header is longer than 255 characters.")
    fingerprint = request.fingerprint()
    if key is not None:
        replay = _replay(user=user, key=key, fingerprint=fingerprint)
        if replay is not None:
            return replay, False
    client = client or get_chain_client()
    plan = payment_plan(user=user, request=request, client=client, check_balance=False)
    wallet, token, recipient, amount, memo = plan.wallet, plan.token, plan.recipient, plan.amount, plan.memo
    blockhash = client.latest_blockhash()
    try:
        with transaction.atomic():
            locked_wallet = wallet_qs_select_for_update().get(pk=wallet.pk)
            if key is not None:
                replay = _replay(user=user, key=key, fingerprint=fingerprint)
                if replay is not None:
                    return replay, False
            available = available_balance(client=client, wallet=locked_wallet, token=token)
            _check_available(token=token, amount=amount, available=available, client=client)
            payment = Payment.objects.create(
                sender=user, wallet=locked_wallet, recipient_input=request.to.strip()[:254],
                recipient_address=recipient.address, recipient_wallet=recipient.wallet, token=token, amount=amount,
                memo=memo, idempotency_key=key, request_fingerprint=fingerprint,
                creates_recipient_token_account=plan.creates_recipient_token_account)
            PaymentEvent.objects.create(payment=payment, from_status="", to_status=Payment.Status.CREATED)
            attempt = _sign_attempt(payment=payment, blockhash=blockhash.blockhash,
                                    last_valid_block_height=blockhash.last_valid_block_height, number=1, reserve=True)
            _transition(payment, Payment.Status.APPROVED, note="policy: default (no approval required)")
            payment.signature = attempt.signature
            payment.save()
            transaction.on_commit(lambda: _enqueue_submit(payment.id))
    except IntegrityError:
        if key is None:
            raise
        replay = _replay(user=user, key=key, fingerprint=fingerprint)
        if replay is None:
            raise
        return replay, False
    return payment, True


def _replay(*, user: Any, key: str, fingerprint: str) -> Payment | None:
    existing = Payment.objects.filter(sender=user, idempotency_key=key).first()
    if existing is not None and existing.request_fingerprint != fingerprint:
        raise UnprocessableError("idempotency_key_reused", "This Idempotency-Key was already used for a different payment.")
    return existing


def _recipient_account_state(*, client: ChainClient, token: Token, recipient: Recipient) -> tuple[bool, bool]:
    """``(needs associated token account creation, recipient account exists)``."""
    owner = Pubkey.from_string(recipient.address)
    if token.is_native:
        return False, client.account_exists(owner)
    exists = client.account_exists(token.associated_token_account(recipient.address))
    return not exists, exists


def _enqueue_submit(payment_id: uuid.UUID) -> None:
    from .tasks import payment_submit

    payment_submit.delay(str(payment_id))


# --- submit and confirm (Celery) -------------------------------------------------------------------
def payment_submit(*, payment_id: uuid.UUID | str, client: ChainClient | None = None) -> Payment | None:
    """Send the payment's live attempt (stored bytes) and mark it submitted. Safe to repeat.

    :returns: the payment, or ``None`` if it does not exist.
    :raises ChainUnavailableError: transient; the task retries.
    """
    client = client or get_chain_client()
    payment = Payment.objects.filter(pk=payment_id).select_related("token").first()
    if payment is None or payment.is_terminal:
        return payment
    attempt = payment.attempts.order_by("-number").first()
    if attempt is None:
        return payment
    _send(client=client, payment=payment, attempt=attempt)
    return Payment.objects.get(pk=payment.pk)


def _send(*, client: ChainClient, payment: Payment, attempt: PaymentAttempt) -> None:
    """Send (or re-send) an attempt's stored bytes with preflight.

    A preflight failure on an attempt's very first send proves it was never broadcast: the payment fails
    at once (no fee). On a re-send an earlier copy may still be in flight, so the error is only recorded;
    once the blockhash expires unseen, the next attempt's first send decides.
    """
    first_try = attempt.last_sent_at is None
    PaymentAttempt.objects.filter(pk=attempt.pk).update(last_sent_at=timezone.now())
    try:
        client.send_raw_transaction(bytes(attempt.signed_transaction), skip_preflight=False)
    except ChainRequestError as exc:
        if _is_already_processed(exc):
            pass
        elif _is_blockhash_not_found(exc):
            logger.info("payment %s attempt %s: blockhash not found on send; checking status", payment.id, attempt.number)
            return
        else:
            err = _preflight_error(exc)
            if err is None:
                raise
            if first_try:
                _fail(payment_id=payment.id, attempt_id=attempt.id, err=err, landed=False)
            else:
                PaymentAttempt.objects.filter(pk=attempt.pk).update(error_detail=err)
            return
    with transaction.atomic():
        locked = payment_qs_select_for_update().get(pk=payment.pk)
        PaymentAttempt.objects.filter(pk=attempt.pk).update(
            status=Case(When(status=PaymentAttempt.Status.PENDING, then=Value(PaymentAttempt.Status.SENT)),
                        default=F("status")),
            last_sent_at=timezone.now(), send_count=F("send_count") + 1)
        if locked.status == Payment.Status.APPROVED:
            _transition(locked, Payment.Status.SUBMITTED, note=f"attempt {attempt.number} sent")
            locked.save()


def _is_already_processed(exc: ChainRequestError) -> bool:
    return "AlreadyProcessed" in json.dumps(exc.data, default=str) or "already been processed" in exc.message


def _is_blockhash_not_found(exc: ChainRequestError) -> bool:
    return "BlockhashNotFound" in json.dumps(exc.data, default=str) or "Blockhash not found" in exc.message


def _preflight_error(exc: ChainRequestError) -> Any | None:
    """The transaction error of a -32002 preflight (simulation) failure, as JSON, if there is one."""
    if exc.rpc_code != PREFLIGHT_FAILURE_CODE or not isinstance(exc.data, dict):
        return None
    return exc.data.get("err")


def payment_check(*, payment_id: uuid.UUID | str, client: ChainClient | None = None) -> Payment | None:
    """Advance one payment now (see :func:`payments_next_steps`).

    :returns: the payment (re-read), or ``None`` if it does not exist.
    :raises ChainUnavailableError: transient; the task retries.
    """
    client = client or get_chain_client()
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None or payment.is_terminal:
        return payment
    for step in payments_next_steps(payments=[payment], client=client):
        payment_step_take(step=step, client=client)
    return Payment.objects.get(pk=payment.pk)


#: Seconds before an unseen, still valid attempt is sent again.
RESEND_AFTER_SECONDS = 1.0


@dataclass(frozen=True)
class NextStep:
    """What a payment needs now: ``kind`` is ``confirm | fail | renew | resend | wait``."""

    payment: Payment
    kind: str
    attempt: PaymentAttempt | None = None
    status: SignatureStatus | None = None


def payments_next_steps(*, payments: list[Payment], client: ChainClient | None = None) -> list[NextStep]:
    """Decide each open payment's next step with one ``getBlockHeight`` and one ``getSignatureStatuses``
    per 256 signatures: confirm / fail from the statuses, ``resend`` an unseen attempt while its blockhash
    is valid (at most every :data:`RESEND_AFTER_SECONDS`), ``renew`` (new attempt) once it provably never
    landed, else ``wait``.

    :raises ChainUnavailableError: transient; the caller retries.
    """
    client = client or get_chain_client()
    attempts_by_payment: dict[uuid.UUID, list[PaymentAttempt]] = {p.pk: [] for p in payments}
    for attempt in PaymentAttempt.objects.filter(payment__in=payments).order_by("payment_id", "number"):
        attempts_by_payment[attempt.payment_id].append(attempt)
    signatures = [a.signature for attempts in attempts_by_payment.values() for a in attempts]
    if not signatures:
        return [NextStep(payment=p, kind="wait") for p in payments]
    # Read the height first: if it is already past a live attempt's window and its signature is still
    # unknown afterwards, that transaction can never land.
    height = client.block_height()
    statuses: dict[str, SignatureStatus | None] = {}
    for start in range(0, len(signatures), 256):
        chunk = signatures[start:start + 256]
        statuses.update(zip(chunk, client.signature_statuses([Signature.from_string(s) for s in chunk]), strict=True))
    return [_next_step(payment=p, attempts=attempts_by_payment[p.pk], height=height, statuses=statuses)
            for p in payments]


def _next_step(*, payment: Payment, attempts: list[PaymentAttempt], height: int,
               statuses: dict[str, SignatureStatus | None]) -> NextStep:
    if not attempts:
        return NextStep(payment=payment, kind="wait")
    for attempt in attempts:
        status = statuses.get(attempt.signature)
        if status is None:
            continue
        if status.err is not None:
            return NextStep(payment=payment, kind="fail", attempt=attempt, status=status)
        if status.confirmation_status in ("confirmed", "finalized"):
            return NextStep(payment=payment, kind="confirm", attempt=attempt, status=status)
        return NextStep(payment=payment, kind="wait")  # processed: wait for confirmation
    live = attempts[-1]
    if height > live.last_valid_block_height:
        return NextStep(payment=payment, kind="renew", attempt=live)
    if live.last_sent_at is None or (timezone.now() - live.last_sent_at).total_seconds() >= RESEND_AFTER_SECONDS:
        return NextStep(payment=payment, kind="resend", attempt=live)
    return NextStep(payment=payment, kind="wait")


def payment_step_take(*, step: NextStep, client: ChainClient | None = None) -> None:
    """Carry out one :class:`NextStep` (each action re-checks under the payment's row lock)."""
    client = client or get_chain_client()
    payment, attempt, status = step.payment, step.attempt, step.status
    if step.kind == "fail" and attempt is not None and status is not None:
        _fail(payment_id=payment.pk, attempt_id=attempt.id, err=status.err, landed=True, slot=status.slot,
              fee_payer_cost=_fee_payer_cost(client, attempt.signature))
    elif step.kind == "confirm" and attempt is not None and status is not None:
        _confirm(payment_id=payment.pk, attempt_id=attempt.id, status=status,
                 fee_payer_cost=_fee_payer_cost(client, attempt.signature))
    elif step.kind == "renew" and attempt is not None:
        _new_attempt(client=client, payment_id=payment.pk, expired_attempt_id=attempt.id)
    elif step.kind == "resend" and attempt is not None:
        _send(client=client, payment=payment, attempt=attempt)


def _new_attempt(*, client: ChainClient, payment_id: uuid.UUID, expired_attempt_id: int) -> None:
    blockhash = client.latest_blockhash()
    with transaction.atomic():
        payment = payment_qs_select_for_update().select_related("wallet", "token", "sender").get(pk=payment_id)
        latest = payment.attempts.order_by("-number").first()
        if payment.is_terminal or latest is None or latest.id != expired_attempt_id:
            return  # someone else already moved on
        PaymentAttempt.objects.filter(pk=latest.pk).update(status=PaymentAttempt.Status.EXPIRED)
        attempt = _sign_attempt(payment=payment, blockhash=blockhash.blockhash,
                                last_valid_block_height=blockhash.last_valid_block_height,
                                number=latest.number + 1, reserve=False)
        payment.signature = attempt.signature
        payment.save(update_fields=["signature", "updated_at"])
        PaymentEvent.objects.create(payment=payment, from_status=payment.status, to_status=payment.status,
                                    note=f"attempt {latest.number} expired unseen; attempt {attempt.number} signed")
    logger.info("payment %s: attempt %s expired unseen, created attempt %s", payment_id, latest.number, attempt.number)
    _send(client=client, payment=Payment.objects.get(pk=payment_id), attempt=attempt)


def _fee_payer_cost(client: ChainClient, signature: str) -> int | None:
    """Lamports the fee payer (account 0) actually lost in a landed transaction (fee + any rent)."""
    tx = client.get_transaction_json(Signature.from_string(signature))
    if tx is None or not tx.get("meta"):
        return None
    return tx["meta"]["preBalances"][0] - tx["meta"]["postBalances"][0]


def _confirm(*, payment_id: uuid.UUID, attempt_id: int, status: SignatureStatus, fee_payer_cost: int | None) -> None:
    with transaction.atomic():
        payment = payment_qs_select_for_update().select_related("token", "wallet", "recipient_wallet").get(pk=payment_id)
        if payment.is_terminal:
            return
        attempt = PaymentAttempt.objects.get(pk=attempt_id)
        PaymentAttempt.objects.filter(pk=attempt_id).update(status=PaymentAttempt.Status.LANDED)
        if payment.status == Payment.Status.APPROVED:
            _transition(payment, Payment.Status.SUBMITTED, note="landed before the send was recorded")
        _transition(payment, Payment.Status.CONFIRMED, note=f"{status.confirmation_status} at slot {status.slot}")
        payment.signature, payment.slot = attempt.signature, status.slot
        payment.save()
        relayer.sponsorship_settle(reference=payment.id, actual_lamports=fee_payer_cost)
        transaction.on_commit(lambda: _forget_balances(payment))


def _fail(*, payment_id: uuid.UUID, attempt_id: int, err: Any, landed: bool, slot: int | None = None,
          fee_payer_cost: int | None = None) -> None:
    with transaction.atomic():
        payment = payment_qs_select_for_update().select_related("token", "wallet").get(pk=payment_id)
        if payment.is_terminal:
            return
        attempt = PaymentAttempt.objects.get(pk=attempt_id)
        PaymentAttempt.objects.filter(pk=attempt_id).update(status=PaymentAttempt.Status.FAILED, error_detail=err)
        code, message = explain_transaction_error(err, token=payment.token)
        _transition(payment, Payment.Status.FAILED, note=message)
        payment.error_code, payment.error_message, payment.error_detail = code, message, err
        payment.signature, payment.slot = attempt.signature, slot
        payment.save()
        if landed:
            # the fee was paid even though the transaction failed
            relayer.sponsorship_settle(reference=payment.id, actual_lamports=fee_payer_cost)
        else:
            relayer.sponsorship_release(reference=payment.id)
        transaction.on_commit(lambda: _forget_balances(payment))


def _forget_balances(payment: Payment) -> None:
    keys = [balance_cache_key(payment.wallet.address, payment.token.symbol),
            balance_cache_key(payment.wallet.address, "SOL"),
            balance_cache_key(payment.recipient_address, payment.token.symbol)]
    cache.delete_many(keys)


_TOKEN_ERRORS = {
    1: ("insufficient_funds", "The sender's balance was too low when the payment reached the network."),
    3: ("mint_mismatch", "The token account belongs to a different token."),
    4: ("owner_mismatch", "The token account is not owned by the sender."),
    17: ("account_frozen", "The token account is frozen by the token issuer."),
}


def explain_transaction_error(err: Any, *, token: Token) -> tuple[str, str]:
    """A stable code and a plain-words sentence for a Solana transaction error (as JSON).

    Codes come from the runtime's ``TransactionError`` / ``InstructionError`` and the SPL Token program's
    error enum (https://github.com/solana-program/token, ``TokenError``).
    """
    text = json.dumps(err, default=str)
    if "InsufficientFundsForRent" in text:
        return ("insufficient_funds_for_rent",
                "Solana requires the receiving account to hold a minimum balance; the amount was too small.")
    if isinstance(err, dict) and "InstructionError" in err:
        detail = err["InstructionError"][1] if len(err["InstructionError"]) > 1 else None
        if isinstance(detail, dict) and "Custom" in detail:
            custom = detail["Custom"]
            if token.is_native and custom == 1:
                return "insufficient_funds", "The sender's SOL balance was too low when the payment reached the network."
            if custom in _TOKEN_ERRORS and not token.is_native:
                return _TOKEN_ERRORS[custom]
            return "program_error", f"The network rejected the payment (program error {custom})."
        return "instruction_error", f"The network rejected the payment ({detail})."
    if "InsufficientFundsForFee" in text:
        return "fee_payer_unfunded", "Numpay's fee payer could not pay the network fee. Please try again later."
    if "BlockhashNotFound" in text:
        return "expired", "The payment took too long to reach the network."
    return "transaction_error", f"The network rejected the payment ({text[:120]})."
