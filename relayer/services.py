"""Writes for the relayer: co-signing as fee payer, the per-user daily sponsorship budget, the balance watch.

DESIGN.md "Fee sponsorship": every co-signed message passes :func:`relayer.validation.validate_sponsored_message`;
each user has a daily budget (fees + rent, lamports, ``RELAYER_DAILY_BUDGET_LAMPORTS``) reserved under a row
lock in the caller's DB transaction (DESIGN.md "Payments: the invariants" 1), released when the payment
ends without landing and settled when it lands.
"""

from __future__ import annotations

import collections
import functools
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature

from numpay.core import sql
from numpay.core.errors import ApplicationError, ConflictError
from numpay.core.money import format_amount
from numpay.core.solana import get_chain_client
from numpay.core.solana.programs import SOL_DECIMALS, TOKEN_ACCOUNT_LEN
from relayer.app_settings import app_settings

from .lock_objects import sponsorship_charge_qs_select_for_update, sponsorship_day_qs_select_for_update
from .models import FeePayer, SponsorshipCharge, SponsorshipDay
from .selectors import sponsorship_today
from .signer import get_fee_payer
from .validation import validate_sponsored_message

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class CosignResult:
    """The fee payer's signature over a message and what the message may cost it.

    :ivar signature: Ed25519 signature of the fee payer over the serialized message.
    :ivar cost_lamports: the maximum lamports the fee payer can lose with the message (validator estimate).
    """

    signature: Signature
    cost_lamports: int


def fee_payer_pubkey() -> Pubkey:
    """The relayer fee payer's address (from the configured signer; no key material leaves it)."""
    return get_fee_payer().pubkey()


@functools.lru_cache(maxsize=4)
def _chain_ata_rent_lamports(rpc_url: str) -> int:
    return get_chain_client().minimum_balance_for_rent_exemption(TOKEN_ACCOUNT_LEN)


def ata_rent_lamports() -> int:
    """Rent-exempt minimum of an SPL token account (165 bytes), in lamports.

    ``app_settings.ATA_RENT_LAMPORTS`` when set above zero (tests, or pinning the value); otherwise
    asked from the chain once per process and RPC URL (``getMinimumBalanceForRentExemption``).

    :raises ChainUnavailableError: the chain does not answer (first call only).
    """
    configured = int(getattr(settings, "RELAYER_ATA_RENT_LAMPORTS", 0) or 0)
    if configured > 0:
        return configured
    return _chain_ata_rent_lamports(settings.SOLANA_RPC_URL)


def relayer_cosign(
    *, user: AbstractBaseUser, message: Message, reference: uuid.UUID, reserve: bool = True,
    fresh_reference: bool = False,
) -> CosignResult:
    """Validate ``message``, count its cost against ``user``'s daily budget, and sign it as fee payer.

    Call inside the caller's ``transaction.atomic()`` (the one that records the payment and its attempt),
    so that a rolled-back payment also rolls back its reservation. The budget decision holds a row lock on
    the user's :class:`~relayer.models.SponsorshipDay`, so concurrent calls cannot together exceed the budget.

    One :class:`~relayer.models.SponsorshipCharge` per ``reference`` (the payment id): the first call
    creates it (``reserve=True``); a later attempt of the same payment (``reserve=False``, or a repeated
    ``reserve=True``) re-uses it and only reserves the difference when the new attempt can cost more.

    :param user: the authenticated user the payment belongs to.
    :param message: the compiled legacy message; its first signer must be the fee payer.
    :param reference: the payment id.
    :param reserve: ``True`` for a payment's first attempt; ``False`` to re-sign a new attempt whose charge
        already exists.
    :param fresh_reference: the caller knows no charge exists for ``reference`` (a payment's first signing, in
        the transaction that approves it): the reservation skips looking for one (were there one, the charge's
        unique ``reference`` refuses the INSERT and the caller's transaction rolls back).
    :returns: the fee payer's signature and the maximum cost in lamports.
    :raises ApplicationError: ``transaction_not_allowed`` / ``fee_payer_cap_exceeded`` (HTTP 400, from the
        validator); ``sponsorship_budget_exceeded`` (HTTP 429) when today's reserved lamports plus this cost
        would pass ``RELAYER_DAILY_BUDGET_LAMPORTS``.
    :raises ConflictError: ``sponsorship_not_reserved`` (``reserve=False`` without a charge),
        ``sponsorship_closed`` (the charge was already settled or released), ``sponsorship_reference_conflict``
        (the reference belongs to another user's charge).
    :raises ChainUnavailableError: the ATA rent could not be read from the chain.
    """
    signer = get_fee_payer()
    cost = validate_sponsored_message(message, fee_payer=signer.pubkey(), ata_rent_lamports=ata_rent_lamports())
    # No savepoint: an error inside marks the caller's transaction for rollback (its payment goes too).
    with transaction.atomic(savepoint=False):
        if not (reserve and _sponsorship_reserve_new(user=user, reference=reference, lamports=cost,
                                                     fresh=fresh_reference)):
            _sponsorship_reserve(user=user, reference=reference, lamports=cost, is_new_allowed=reserve)
    return CosignResult(signature=signer.sign_message(bytes(message)), cost_lamports=cost)


def _sponsorship_reserve_new(*, user: AbstractBaseUser, reference: uuid.UUID, lamports: int, fresh: bool) -> bool:
    """The common case in two or three statements: no charge for ``reference`` yet (not looked up when
    ``fresh``), and today's row takes ``lamports`` within the budget (``UPDATE ... WHERE reserved + lamports
    <= budget``, which also takes the day's row lock first, as the lock order says); then the charge is
    inserted.

    :returns: ``False`` when the general path must decide (a charge exists, no day row yet, or the budget
        would be exceeded: it then raises with the figures); nothing was written.
    """
    if not fresh and SponsorshipCharge.objects.filter(reference=reference).exists():
        return False
    day, now = sponsorship_today(), timezone.now()
    taken = sql.execute(_reserve_on_day_sql(), [
        lamports, sql.moment(now), sql.value(SponsorshipDay, "user", user.pk), sql.value(SponsorshipDay, "day", day),
        app_settings.DAILY_BUDGET_LAMPORTS - lamports])
    if not taken:
        return False
    sql.execute(_insert_charge_sql(), [
        sql.value(SponsorshipCharge, "id", uuid.uuid4()), sql.value(SponsorshipCharge, "user", user.pk),
        sql.value(SponsorshipCharge, "day", day), sql.value(SponsorshipCharge, "reference", reference),
        lamports, lamports, SponsorshipCharge.Status.RESERVED.value, sql.moment(now), sql.moment(now)])
    return True


_CHARGE_COLUMNS = ("id", "user", "day", "reference", "lamports", "estimated_lamports", "status", "created_at",
                   "updated_at")


@functools.cache
def _reserve_on_day_sql() -> str:
    """:func:`_sponsorship_reserve_new`'s UPDATE, written once (numpay/core/sql.py: every payment runs it): the one
    ``SponsorshipDay.objects.filter(user, day, reserved_lamports__lte=budget - lamports).update(...)`` sends."""
    reserved = sql.column(SponsorshipDay, "reserved_lamports")
    return (f"UPDATE {sql.table(SponsorshipDay)} SET {reserved} = {reserved} + %s, "  # noqa: S608 - model names; values are parameters
            f"{sql.column(SponsorshipDay, 'updated_at')} = %s WHERE {sql.column(SponsorshipDay, 'user')} = %s "
            f"AND {sql.column(SponsorshipDay, 'day')} = %s AND {reserved} <= %s")


@functools.cache
def _insert_charge_sql() -> str:
    """:func:`_sponsorship_reserve_new`'s INSERT of the charge, every column of ``SponsorshipCharge`` named (a new
    column without a database default fails here at once, in every test that pays)."""
    columns = ", ".join(sql.column(SponsorshipCharge, name) for name in _CHARGE_COLUMNS)
    return f"INSERT INTO {sql.table(SponsorshipCharge)} ({columns}) VALUES ({sql.placeholders(_CHARGE_COLUMNS)})"  # noqa: S608 - model names; values are parameters


def _sponsorship_reserve(*, user: AbstractBaseUser, reference: uuid.UUID, lamports: int, is_new_allowed: bool) -> None:
    known = SponsorshipCharge.objects.filter(reference=reference).only("user_id", "day").first()
    if known is not None and known.user_id != user.pk:
        raise ConflictError("sponsorship_reference_conflict", "This payment reference belongs to another user.")
    if known is None and not is_new_allowed:
        raise ConflictError("sponsorship_not_reserved", "No sponsorship was reserved for this payment.")
    day = known.day if known is not None else sponsorship_today()

    day_row = sponsorship_day_qs_select_for_update().filter(user=user, day=day).first()
    if day_row is None:
        SponsorshipDay.objects.get_or_create(user=user, day=day)  # the unique (user, day) decides a race
        day_row = sponsorship_day_qs_select_for_update().get(user=user, day=day)
    charge = sponsorship_charge_qs_select_for_update().filter(reference=reference).first()
    if charge is None and not is_new_allowed:  # pragma: no cover - charges are never deleted
        raise ConflictError("sponsorship_not_reserved", "No sponsorship was reserved for this payment.")
    if charge is not None and charge.user_id != user.pk:  # pragma: no cover - created by a racing request
        raise ConflictError("sponsorship_reference_conflict", "This payment reference belongs to another user.")
    if charge is not None and charge.status != SponsorshipCharge.Status.RESERVED:
        raise ConflictError("sponsorship_closed", "This payment's sponsorship is already closed.")

    additional = lamports if charge is None else max(0, lamports - charge.lamports)
    budget = app_settings.DAILY_BUDGET_LAMPORTS
    if additional and day_row.reserved_lamports + additional > budget:
        raise ApplicationError(
            "sponsorship_budget_exceeded",
            "You have used today's free network fees. Please try again tomorrow (the allowance resets at 00:00 UTC).",
            status=429,
            extra={"budget_lamports": budget, "used_lamports": day_row.reserved_lamports, "cost_lamports": additional},
        )
    if charge is None:
        SponsorshipCharge.objects.create(
            user=user, day=day, reference=reference, lamports=lamports, estimated_lamports=lamports
        )
    elif additional:
        charge.lamports = lamports
        charge.estimated_lamports = max(charge.estimated_lamports, lamports)
        charge.save(update_fields=["lamports", "estimated_lamports", "updated_at"])
    if additional:
        SponsorshipDay.objects.filter(pk=day_row.pk).update(
            reserved_lamports=F("reserved_lamports") + additional, updated_at=timezone.now()
        )


def _locked_charge(reference: uuid.UUID) -> SponsorshipCharge | None:
    """The charge for ``reference`` locked after its day row (the documented lock order), or ``None``."""
    known = SponsorshipCharge.objects.filter(reference=reference).only("user_id", "day").first()
    if known is None:
        return None
    sponsorship_day_qs_select_for_update().filter(user_id=known.user_id, day=known.day).first()
    return sponsorship_charge_qs_select_for_update().get(pk=known.pk)


def _day_add(charge: SponsorshipCharge, lamports: int) -> None:
    if lamports:
        SponsorshipDay.objects.filter(user_id=charge.user_id, day=charge.day).update(
            reserved_lamports=F("reserved_lamports") + lamports, updated_at=timezone.now()
        )


def sponsorship_release(*, reference: uuid.UUID) -> SponsorshipCharge | None:
    """Give a payment's reserved lamports back to its day's budget: the payment ended without landing.

    Idempotent: a released charge stays released; a settled charge is left alone (the fee payer paid), and
    an unknown reference is a no-op.

    :param reference: the payment id given to :func:`relayer_cosign`.
    :returns: the charge, or ``None`` when there is none for ``reference``.
    """
    with transaction.atomic(savepoint=False):  # inside the caller's transaction: no savepoint of its own
        charge = _locked_charge(reference)
        if charge is None or charge.status == SponsorshipCharge.Status.RELEASED:
            return charge
        if charge.status == SponsorshipCharge.Status.SETTLED:
            logger.warning("Sponsorship %s is settled; not releasing it", reference)
            return charge
        _day_add(charge, -charge.lamports)
        charge.status = SponsorshipCharge.Status.RELEASED
        charge.save(update_fields=["status", "updated_at"])
        return charge


def sponsorship_settle(*, reference: uuid.UUID, actual_lamports: int | None = None) -> SponsorshipCharge | None:
    """Record that a payment's transaction landed: the fee payer paid for it.

    With ``actual_lamports`` (what the fee payer really lost, e.g. the fee from the transaction's meta plus
    rent of accounts it funded), the day is adjusted by the difference from the reservation. A charge that
    was released and then lands after all is counted again. Idempotent: a settled charge is left alone.

    :param reference: the payment id given to :func:`relayer_cosign`.
    :param actual_lamports: the actual cost in lamports, or ``None`` to keep the reserved estimate.
    :returns: the charge, or ``None`` when there is none for ``reference``.
    :raises ValueError: ``actual_lamports`` is negative.
    """
    if actual_lamports is not None and actual_lamports < 0:
        raise ValueError("actual_lamports must not be negative")
    with transaction.atomic(savepoint=False):  # inside the caller's transaction: no savepoint of its own
        charge = _locked_charge(reference)
        if charge is None or charge.status == SponsorshipCharge.Status.SETTLED:
            return charge
        lamports = charge.lamports if actual_lamports is None else actual_lamports
        counted = charge.lamports if charge.status == SponsorshipCharge.Status.RESERVED else 0
        _day_add(charge, lamports - counted)
        charge.lamports = lamports
        charge.status = SponsorshipCharge.Status.SETTLED
        charge.save(update_fields=["lamports", "status", "updated_at"])
        return charge


def sponsorship_settle_many(actual_lamports: Mapping[uuid.UUID, int | None]) -> int:
    """:func:`sponsorship_settle` for several payments at once (the outbox poller's round), with the same
    rules, in three reads and few writes: the charges' days are locked in (user, day) order, then the charges in
    id order (the documented lock order, so it never deadlocks with the one-by-one services), the charges are
    updated with one statement per distinct settled amount and each day once with the sum of its changes.

    :param actual_lamports: payment id -> the fee payer's actual cost in lamports (``None``: keep the estimate).
    :returns: how many charges were settled now.
    :raises ValueError: a cost is negative.
    """
    if any(lamports is not None and lamports < 0 for lamports in actual_lamports.values()):
        raise ValueError("actual_lamports must not be negative")
    if not actual_lamports:
        return 0
    with transaction.atomic(savepoint=False):  # inside the caller's transaction: no savepoint of its own
        known = list(SponsorshipCharge.objects.filter(reference__in=list(actual_lamports))
                     .values_list("pk", "user_id", "day"))
        if not known:
            return 0
        days = sorted({(user_id, day) for _, user_id, day in known})
        lock_days = Q()
        for user_id, day in days:
            lock_days |= Q(user_id=user_id, day=day)
        list(sponsorship_day_qs_select_for_update().filter(lock_days).order_by("user_id", "day")
             .values_list("pk", flat=True))
        charges = list(sponsorship_charge_qs_select_for_update().filter(pk__in=[pk for pk, _, _ in known])
                       .order_by("pk"))
        now, changed, deltas = timezone.now(), [], collections.Counter()
        for charge in charges:
            if charge.status == SponsorshipCharge.Status.SETTLED:
                continue
            actual = actual_lamports[charge.reference]
            lamports = charge.lamports if actual is None else actual
            counted = charge.lamports if charge.status == SponsorshipCharge.Status.RESERVED else 0
            deltas[(charge.user_id, charge.day)] += lamports - counted
            charge.lamports, charge.status, charge.updated_at = lamports, SponsorshipCharge.Status.SETTLED, now
            changed.append(charge)
        # one UPDATE per distinct settled amount (under load nearly every charge of a round settles at the same
        # figure): Django's bulk_update would build a CASE of every charge for every column instead
        by_lamports: dict[int, list[uuid.UUID]] = collections.defaultdict(list)
        for charge in changed:
            by_lamports[charge.lamports].append(charge.pk)
        for lamports, pks in sorted(by_lamports.items()):
            SponsorshipCharge.objects.filter(pk__in=sorted(pks)).update(
                lamports=lamports, status=SponsorshipCharge.Status.SETTLED, updated_at=now)
        for (user_id, day), delta in sorted(deltas.items()):
            if delta:
                SponsorshipDay.objects.filter(user_id=user_id, day=day).update(
                    reserved_lamports=F("reserved_lamports") + delta, updated_at=now)
        return len(changed)


def fee_payer_balance_check() -> FeePayer:
    """Read the fee payer's SOL balance from the chain, record it, and alert operators when it is low.

    The alert is a ``logger.error`` naming the (public) address, the balance and the threshold
    (``RELAYER_FEE_PAYER_ALERT_LAMPORTS``); nothing secret is logged.

    :returns: the updated :class:`~relayer.models.FeePayer` row.
    :raises ChainUnavailableError: the chain does not answer (the Celery task retries it).
    """
    address = fee_payer_pubkey()
    balance = get_chain_client().get_balance(address)
    threshold = app_settings.FEE_PAYER_ALERT_LAMPORTS
    is_below = balance < threshold
    fee_payer, _ = FeePayer.objects.update_or_create(
        address=str(address),
        defaults={"last_balance_lamports": balance, "last_checked_at": timezone.now(), "is_below_threshold": is_below},
    )
    if is_below:
        logger.error(
            "Relayer fee payer %s is low: %d lamports (%s SOL), alert threshold %d lamports. Top it up.",
            address,
            balance,
            format_amount(balance, decimals=SOL_DECIMALS),
            threshold,
        )
    return fee_payer
