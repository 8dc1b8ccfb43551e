"""Payment services: plan (the review step), create = authorize -> approve -> sign, expire.

DESIGN.md "Payments: the invariants":

1. Authorize atomically: availability (chain balance minus open reservations, :mod:`payments.authorization`)
   is evaluated and the payment inserted, ``created`` with an ``expires_at``, in one DB transaction under a
   row lock on the sender's wallet.
2. Approve, then sign: signing happens only on approval, with a fresh blockhash. Today no policy asks for
   an approval, so :func:`payment_create` approves in the same transaction (the blockhash was fetched a
   moment before, outside the lock); :func:`payment_approve` is the later path.
3. Outbox: the signed transaction is stored as an attempt before anything is sent; sending and
   confirmation are the relayer's outbox (:mod:`relayer.outbox`; the payment's reactions are in
   :mod:`payments.submission`).
6. Idempotency: (sender, Idempotency-Key) is unique; a replay returns the first payment, the same key
   with another body is refused (422 ``idempotency_key_reused``).
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from numpay.core import sql
from numpay.core.errors import ApplicationError, ConflictError, NotFoundError, UnprocessableError
from numpay.core.money import format_amount, parse_amount
from numpay.core.solana import Blockhash, ChainClient, get_chain_client
from numpay.core.solana.programs import SOL_DECIMALS
from recovery.services import recovery_hold_check
from relayer import outbox
from wallets.app_settings import app_settings as wallets_settings
from wallets.lock_objects import wallet_lock_with_key, wallet_qs_select_for_update
from wallets.models import Token, Wallet, WalletKey
from wallets.services import token_get, wallet_for_user

from . import app_settings, authorization, policies, state_machine
from .authorization import available_balance, check_available
from .lock_objects import payment_qs_select_for_update, payment_qs_select_for_update_skip_locked
from .models import Payment
from .policy_services import payment_policy_decision
from .requests import (
    MAX_PAYMENT_BASE_UNITS,
    PaymentRequest,
    Recipient,
    RecipientAccounts,
    parse_recipient,
    recipient_check_spendable,
    resolve_recipient,
    validate_memo,
)
from .submission import payment_end_expired
from .transactions import payment_sign_attempt

logger = logging.getLogger(__name__)
Status = Payment.Status


@dataclass(frozen=True)
class PaymentTerms:
    """The parts of a payment request that do not depend on who receives it.

    :ivar amount: base units of ``token``.
    """

    wallet: Wallet
    token: Token
    amount: int
    memo: str


@dataclass(frozen=True)
class PaymentPlan:
    """A validated payment request.

    :ivar amount: base units the recipient receives. :ivar network_fee: base units of ``token`` the sender
        pays on top for opening the recipient's token account (0 when none is opened or it is sponsored).
    :ivar available: chain balance minus open reservations, base units (``-1`` when not checked).
    """

    wallet: Wallet
    token: Token
    recipient: Recipient
    amount: int
    memo: str
    creates_recipient_token_account: bool
    network_fee: int
    available: int
    #: the spending-policy decision (:mod:`payments.policies`): checks, approvals required.
    policy: policies.Decision | None = None

    @property
    def ui_amount(self) -> str:
        return format_amount(self.amount, decimals=self.token.decimals)

    @property
    def ui_network_fee(self) -> str:
        return format_amount(self.network_fee, decimals=self.token.decimals)

    @property
    def ui_total(self) -> str:
        return format_amount(self.amount + self.network_fee, decimals=self.token.decimals)


def payment_terms(*, user: Any, request: PaymentRequest) -> PaymentTerms:
    """Check what does not depend on who the recipient is: the wallet may pay, the form of ``to`` (nothing
    looked up), the token, the amount, the memo.

    :raises ApplicationError: ``wallet_frozen`` (403), ``wallet_unclaimed`` (403: paid by email before sign-up,
        the email not confirmed yet), ``recipient_required``, ``invalid_address``,
        ``unknown_token``, ``invalid_amount``,
        ``amount_not_positive``, ``too_many_decimals``, ``amount_too_large``, ``memo_too_long``, ``invalid_memo``.
    """
    wallet = wallet_for_user(user=user)
    if wallet.status != Wallet.Status.ACTIVE:
        raise ApplicationError("wallet_frozen", "This wallet is frozen; contact support.", status=403)
    if wallet.claim_email:
        raise ApplicationError("wallet_unclaimed", "Confirm your email address to use the money sent to it "
                               "(we sent you a link).", status=403)
    parse_recipient(request.to)
    token = token_get(symbol=request.token)
    amount = parse_amount(request.amount, decimals=token.decimals)
    if amount > MAX_PAYMENT_BASE_UNITS:
        raise ApplicationError("amount_too_large", "The amount is too large.", extra={"field": "amount"})
    return PaymentTerms(wallet=wallet, token=token, amount=amount, memo=validate_memo(request.memo))


def payment_plan(*, user: Any, request: PaymentRequest, client: ChainClient | None = None) -> PaymentPlan:
    """Validate a payment request without creating anything (the review step): the same checks, in the
    same order, as :func:`payment_create` makes under the wallet lock.

    :raises ApplicationError: as :func:`payment_create`.
    """
    client = client or get_chain_client()
    terms = payment_terms(user=user, request=request)
    available = available_balance(client=client, wallet=terms.wallet, token=terms.token)
    decision = payment_policy_decision(user=user, wallet=terms.wallet, token=terms.token, amount=terms.amount,
                                       recipient=request.to)
    plan = _plan(terms=terms, request=request, available=available, client=client, reserve=False)
    return replace(plan, policy=decision)


def _plan(*, terms: PaymentTerms, request: PaymentRequest, available: int, client: ChainClient,
          reserve: bool = True) -> PaymentPlan:
    """Check the amount against ``available`` *before* looking at the recipient, so a refusal never
    tells whether an email has an account; then resolve the recipient, the accounts the payment opens
    and their network fee, and check the whole debit."""
    _check_available(client=client, token=terms.token, debit=terms.amount, available=available)
    recipient = resolve_recipient(to=request.to, sender_wallet=terms.wallet, reserve_email_wallet=reserve)
    if recipient.is_new_email_wallet:  # the review step: the wallet would be reserved now, with nothing on-chain
        target = RecipientAccounts(account=None, token_account=None)
    else:
        target = recipient_check_spendable(client=client, recipient=recipient, token=terms.token,
                                           sender_wallet=terms.wallet)
    creates_account = not terms.token.is_native and not target.has_token_account
    if terms.token.is_native and target.account is None:
        minimum = client.minimum_balance_for_rent_exemption(0)
        if terms.amount < minimum:
            raise ApplicationError("amount_below_rent_minimum", "A new Solana address must receive at least "
                                   f"{format_amount(minimum, decimals=SOL_DECIMALS)} SOL.", extra={"field": "amount"})
    network_fee = 0
    if creates_account and recipient.wallet is None and not recipient.is_new_email_wallet:
        network_fee = _account_creation_fee(terms.token)
        _check_available(client=client, token=terms.token, debit=terms.amount + network_fee, available=available)
    return PaymentPlan(wallet=terms.wallet, token=terms.token, recipient=recipient, amount=terms.amount,
                       memo=terms.memo, creates_recipient_token_account=creates_account, network_fee=network_fee,
                       available=available)


def _account_creation_fee(token: Token) -> int:
    """The operator-set price of opening a token account outside Numpay, in base units of ``token``.

    :raises ApplicationError: ``recipient_account_missing`` when the operator set none for this token.
    """
    if token.account_creation_fee is None:
        raise ApplicationError("recipient_account_missing", f"That address has no {token.symbol} account yet, and "
                               f"Numpay cannot open one for it. Ask the recipient to open one first.",
                               extra={"field": "to"})
    return token.account_creation_fee


def _check_available(*, client: ChainClient, token: Token, debit: int, available: int) -> None:
    minimum = client.minimum_balance_for_rent_exemption(0) if token.is_native and debit <= available else 0
    check_available(token=token, debit=debit, available=available, rent_exempt_minimum=minimum)


def payment_create(*, user: Any, request: PaymentRequest, idempotency_key: str | None = None,
                   client: ChainClient | None = None) -> tuple[Payment, bool]:
    """Authorize and reserve a payment under the wallet lock; approve and sign it when no approval is
    needed (:func:`payments.authorization.approval_required`; today: always), and enqueue its submission
    after commit; otherwise it waits ``awaiting_approval``.

    Checks run in a fixed order so that refusals leak nothing about other people: first what depends
    only on the sender (token, amount, memo, then the available balance), then the recipient.

    :param request: the body; ``amount`` is a decimal string in token units (``"12.50"``).
    :param idempotency_key: the ``Idempotency-Key`` header (max 255 characters), optional.
    :returns: ``(payment, created)``; ``created`` is ``False`` for an idempotent replay.
    :raises ApplicationError: ``wallet_frozen`` (403), ``recovery_payments_held`` (409, a recovery's timelock
        runs), ``unknown_token``, ``invalid_amount``,
        ``amount_not_positive``, ``too_many_decimals``, ``amount_too_large``, ``memo_too_long``,
        ``invalid_memo``, ``insufficient_funds``, ``would_leave_dust``, ``recipient_required``,
        ``invalid_address``, ``invalid_recipient``, ``recipient_is_sender``,
        ``recipient_account_missing``, ``amount_below_rent_minimum``, ``transaction_not_allowed``,
        ``fee_payer_cap_exceeded``, ``sponsorship_budget_exceeded`` (429); the spending policies' refusals
        (:mod:`payments.policies`): ``limit_exceeded``, ``velocity_exceeded``, ``recipient_not_allowed``.
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
    terms = payment_terms(user=user, request=request)
    # fresh (at most a second old): the approval below follows at once
    blockhash = client.recent_blockhash(max_age=app_settings.blockhash_reuse_seconds())
    try:
        with transaction.atomic(), state_machine.events_batched():
            locked_wallet = wallet_lock_with_key(terms.wallet.pk)  # signed below
            recovery_hold_check(wallet=locked_wallet)  # held while a recovery's timelock runs (issue 10)
            if key is not None:
                # Again under the lock: a request with the same key that held it before us has committed by
                # now. Needed before the sponsorship reservation below: the payment's INSERT comes last, and
                # meeting that payment's key only then would wait on it while holding the day's budget row.
                replay = _replay(user=user, key=key, fingerprint=fingerprint)
                if replay is not None:
                    return replay, False
            available = available_balance(client=client, wallet=locked_wallet, token=terms.token)
            # spending policies: the rolling caps' usage is read here, under the wallet lock (reserve -> commit)
            decision = payment_policy_decision(user=user, wallet=locked_wallet, token=terms.token,
                                               amount=terms.amount, recipient=request.to)
            plan = replace(_plan(terms=terms, request=request, available=available, client=client), policy=decision)
            payment = _authorize(user=user, wallet=locked_wallet, plan=plan, request=request, key=key,
                                 fingerprint=fingerprint)
            reason = authorization.approval_required(payment)
            if reason is None:
                _approve(payment, blockhash=blockhash, note="policy: default (no approval required)",
                         envelope=getattr(locked_wallet, "key", None))
            else:
                state_machine.transition(payment, Status.AWAITING_APPROVAL, note=reason)
                payment.save()  # the INSERT (see _authorize)
    except IntegrityError:
        if key is None:
            raise
        replay = _replay(user=user, key=key, fingerprint=fingerprint)
        if replay is None:
            raise
        return replay, False
    return payment, True


def _authorize(*, user: Any, wallet: Wallet, plan: PaymentPlan, request: PaymentRequest, key: str | None,
               fingerprint: str) -> Payment:
    """The ``created`` payment, inserted by the caller's next ``save()`` in this same transaction (one INSERT
    of the row in its state at commit, with its events, instead of an INSERT then an UPDATE): from the commit
    on, its debit is reserved (it counts in every availability check until it ends). Inside the transaction
    that holds ``wallet``'s row lock, after :func:`_plan` checked the debit against the available balance read
    under that lock."""
    payment = Payment(
        sender=user, wallet=wallet, recipient_input=request.to.strip()[:254],
        recipient_address=plan.recipient.address, recipient_wallet=plan.recipient.wallet, token=plan.token,
        amount=plan.amount, network_fee=plan.network_fee, memo=plan.memo, idempotency_key=key,
        request_fingerprint=fingerprint, creates_recipient_token_account=plan.creates_recipient_token_account,
        policy_decision=plan.policy.as_json() if plan.policy is not None else None,
        expires_at=timezone.now() + timedelta(seconds=app_settings.approval_ttl_seconds()))
    state_machine.record_created(payment)
    return payment


def _approve(payment: Payment, *, blockhash: Blockhash, note: str, envelope: WalletKey | None = None) -> None:
    """Sign attempt 1 with ``blockhash`` (the relayer reserves the sponsorship), move to ``approved`` with
    the submission deadline, and send after commit. The caller holds the payment's (or its wallet's) lock
    (``envelope``: the wallet's key row read with that lock, if it was)."""
    attempt = payment_sign_attempt(payment=payment, blockhash=blockhash, number=1, reserve=True, envelope=envelope)
    state_machine.transition(payment, Status.APPROVED, note=note)
    payment.signature = attempt.signature
    payment.expires_at = timezone.now() + timedelta(seconds=app_settings.submission_ttl_seconds())
    payment.save()
    outbox.enqueue_send(outbox.get_kind("payment"), payment.id)


def payment_approve(*, payment_id: uuid.UUID | str, note: str, client: ChainClient | None = None) -> Payment:
    """Approve a ``created`` / ``awaiting_approval`` payment: sign it with a fresh blockhash and submit it.

    :param note: what approved it (recorded in the payment's event), e.g. ``"passkey step-up"``.
    :raises ApplicationError: ``payment_not_approvable`` (409) when it is no longer waiting for approval,
        ``payment_expired`` (409) past its ``expires_at``; the relayer's refusals as :func:`payment_create`.
    """
    client = client or get_chain_client()
    blockhash = client.latest_blockhash()
    with transaction.atomic():
        payment = payment_qs_select_for_update().select_related("wallet", "token", "sender").get(pk=payment_id)
        if payment.status not in (Status.CREATED, Status.AWAITING_APPROVAL):
            raise ApplicationError("payment_not_approvable", "This payment is not waiting for an approval.", status=409)
        if payment.expires_at is not None and payment.expires_at <= timezone.now():
            raise ApplicationError("payment_expired", "This payment expired before it was approved.", status=409)
        _approve(payment, blockhash=blockhash, note=note)
    return payment


def payment_reclaim(*, user: Any, payment_id: uuid.UUID | str, client: ChainClient | None = None
                    ) -> tuple[Payment, bool]:
    """Take back a payment ``user`` sent to an email nobody has claimed (``wallets.claims``), once
    ``NUMPAY_UNCLAIMED_RECLAIM_DAYS`` have passed since it was confirmed: a payment of the same amount from
    the waiting wallet back to the sender, signed by that wallet's custody key, submitted like any payment.
    Idempotent: a second call returns the first reclaim.

    :returns: ``(the reclaim payment, created)``.
    :raises NotFoundError: ``payment_not_found`` (not a payment ``user`` sent).
    :raises ConflictError: ``payment_not_reclaimable`` (not confirmed, not to an unclaimed email, or itself
        a reclaim), ``payment_reclaim_too_early``.
    :raises ApplicationError: ``insufficient_funds``; the relayer's refusals as :func:`payment_create`.
    """
    client = client or get_chain_client()
    original = Payment.objects.filter(pk=payment_id, sender=user).select_related("recipient_wallet", "token").first() \
        if _is_uuid(payment_id) else None
    if original is None:
        raise NotFoundError("payment_not_found", "No such payment.")
    blockhash = client.latest_blockhash()
    with transaction.atomic():
        wallet = (wallet_qs_select_for_update().get(pk=original.recipient_wallet_id)
                  if original.recipient_wallet_id else None)
        existing = Payment.objects.filter(reclaim_of=original).first()
        if existing is not None:
            return existing, False
        if original.status != Status.CONFIRMED or wallet is None or not wallet.claim_email \
                or original.reclaim_of_id is not None:
            raise ConflictError("payment_not_reclaimable", "Only a confirmed payment to an email nobody has claimed "
                                "can be taken back.")
        due = original.confirmed_at + timedelta(days=wallets_settings.UNCLAIMED_RECLAIM_DAYS)
        if timezone.now() < due:
            raise ConflictError("payment_reclaim_too_early", "You can take this payment back from "
                                f"{due:%Y-%m-%d %H:%M} UTC if nobody has claimed it by then.")
        token = original.token
        available = available_balance(client=client, wallet=wallet, token=token)
        _check_available(client=client, token=token, debit=original.amount, available=available)
        sender_wallet = wallet_for_user(user=user)
        reclaim = Payment.objects.create(
            sender=user, wallet=wallet, recipient_input=user.email, recipient_address=sender_wallet.address,
            recipient_wallet=sender_wallet, token=token, amount=original.amount, reclaim_of=original,
            creates_recipient_token_account=not token.is_native and client.get_account_info(
                token.associated_token_account(sender_wallet.address)) is None,
            expires_at=timezone.now() + timedelta(seconds=app_settings.approval_ttl_seconds()))
        state_machine.record_created(reclaim, note=f"takes back the unclaimed payment {original.id}")
        _approve(reclaim, blockhash=blockhash, note="reclaim: unclaimed after the claim period")
    return reclaim, True


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def payments_expire_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Expire payments abandoned before approval (``created`` / ``awaiting_approval`` past ``expires_at``):
    their reservation ends with the open state, and any sponsorship is released. Rows another worker holds
    are skipped (``SKIP LOCKED``) and left for the next run.

    :returns: how many payments were expired.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = list(payment_qs_select_for_update_skip_locked().select_related("wallet", "token").filter(
            status__in=(Status.CREATED, Status.AWAITING_APPROVAL), expires_at__lte=now).order_by("expires_at")[:limit])
        for payment in due:
            payment_end_expired(payment, message="The payment was not approved in time.")
    if due:
        logger.info("expired %d payment(s) abandoned before approval", len(due))
    return len(due)


def payment_cancel(*, user: Any, payment_id: uuid.UUID | str) -> Payment:
    """The sender cancels a payment still waiting for approval (``created`` / ``awaiting_approval``): it ends
    ``rejected`` and its reservation (balance and rolling caps) is released; nothing was signed. Idempotent:
    cancelling a payment already rejected returns it.

    :raises NotFoundError: ``payment_not_found`` (not a payment ``user`` sent).
    :raises ConflictError: ``payment_not_cancellable`` (already approved, sent or ended otherwise).
    """
    if not _is_uuid(payment_id):
        raise NotFoundError("payment_not_found", "No such payment.")
    with transaction.atomic():
        payment = (payment_qs_select_for_update().select_related("wallet", "token")
                   .filter(pk=payment_id, sender=user, reclaim_of__isnull=True).first())
        if payment is None:
            raise NotFoundError("payment_not_found", "No such payment.")
        if payment.status == Status.REJECTED:
            return payment
        if payment.status not in (Status.CREATED, Status.AWAITING_APPROVAL):
            raise ConflictError("payment_not_cancellable", "This payment can no longer be cancelled: it was already "
                                "approved.")
        message = "You cancelled the payment before approving it. Nothing left your wallet."
        state_machine.transition(payment, Status.REJECTED, note="cancelled by the sender")
        payment.error_code, payment.error_message = "payment_cancelled", message
        payment.save()
    return payment


@functools.cache
def _replay_sql() -> str:
    return (f"SELECT {sql.column(Payment, 'id')}, {sql.column(Payment, 'request_fingerprint')} "  # noqa: S608 - model names; values are parameters
            f"FROM {sql.table(Payment)} WHERE {sql.column(Payment, 'sender')} = %s "
            f"AND {sql.column(Payment, 'idempotency_key')} = %s")


def _replay(*, user: Any, key: str, fingerprint: str) -> Payment | None:
    """The payment ``user`` made with ``key`` (the unique (sender, key) index; run twice per keyed create, so
    one hand-written statement: :mod:`numpay.core.sql`), or ``None``.

    :raises UnprocessableError: ``idempotency_key_reused``: the key's payment was made with another body.
    """
    row = sql.fetchone(_replay_sql(), [sql.value(Payment, "sender", user.pk), key])
    if row is None:
        return None
    if row[1] != fingerprint:
        raise UnprocessableError("idempotency_key_reused", "This Idempotency-Key was already used for a different payment.")
    return Payment.objects.get(pk=row[0])
