"""The outbox: every transaction Numpay submits is stored signed, sent after commit, re-sent while its
blockhash lives, renewed only when provably expired, then confirmed or failed (DESIGN.md "Payments: the
invariants" 3, 4 and 5).

Generic over *kinds* of submission. A kind (:class:`OutboxKind`) owns a concrete attempt table (a
subclass of :class:`relayer.models.OutboxAttempt`) and the owner rows those attempts belong to (a payment
today; wallet creation, recovery execution and client-signed relays next); it signs new attempts and
reacts to the outcome (landed, failed, expired). This module decides and acts; the kind never talks to
the chain about sending.

How one submission moves:

1. The owner's service stores attempt 1 inside its DB transaction and calls :func:`enqueue_send`:
   after commit, the ``outbox_submit`` task sends the stored bytes (:func:`submit`).
2. One single-flight poller (``relayer.tasks.outbox_poll``) reads ``getBlockHeight`` once and
   ``getSignatureStatuses`` per 256 signatures for every in-flight owner of every kind, and decides each
   one's next step with :func:`decide_next_step` (pure): ``confirm`` / ``fail`` from a status,
   ``resend`` an unseen attempt while its blockhash is valid (at most every :data:`RESEND_AFTER_SECONDS`),
   ``renew`` once the chain's block height is past the live attempt's ``last_valid_block_height`` and its
   signature is still unknown (it can never land), else ``wait``.
3. :func:`take_step` carries a step out under the owner's row lock, re-checking that nobody moved first
   (the poller itself for ``confirm`` / ``fail``; ``outbox_check`` on a worker thread for the sends).
   ``renew`` asks the kind for a new attempt with a fresh blockhash, or, when the kind says the owner may
   not be renewed any more (past its deadline), reports it expired.

Exactly once: re-sending stored bytes is always safe (same signature; the cluster deduplicates); a new
attempt only after the previous one provably expired, decided under the owner's lock, so there are never
two live attempts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from django.core.cache import cache
from django.db import transaction
from django.db.models import Case, F, Model, QuerySet, Value, When
from django.utils import timezone
from solders.signature import Signature

from numpay.core.solana import (
    AlreadyProcessed,
    Blockhash,
    BlockhashNotFound,
    ChainClient,
    PreflightFailure,
    SignatureStatus,
    get_chain_client,
)

from .models import OutboxAttempt

logger = logging.getLogger(__name__)

#: Seconds before an unseen, still valid attempt is sent again.
RESEND_AFTER_SECONDS = 1.0
#: ``getSignatureStatuses`` takes at most 256 signatures per call (Solana RPC docs).
STATUS_BATCH = 256


class OutboxKind:
    """One kind of submission: its attempt table, its owners, and how it reacts to outcomes.

    Subclasses set :attr:`name`, :attr:`attempt_model`, :attr:`owner_field` and implement the hooks. Hooks
    named ``on_*`` and :meth:`sign_attempt` run inside a DB transaction with the owner's row locked
    (:meth:`lock`); they update the owner and must not talk to the chain.
    """

    #: Stable name, used in task arguments (``"payment"``).
    name: ClassVar[str]
    #: The concrete :class:`~relayer.models.OutboxAttempt` subclass.
    attempt_model: ClassVar[type[OutboxAttempt]]
    #: The attempt model's foreign key to the owner (``"payment"``).
    owner_field: ClassVar[str]
    #: The owner model (``Payment``).
    owner_model: ClassVar[type[Model]]

    def in_flight(self) -> QuerySet[Any]:
        """Owners whose attempts the poller watches, least recently looked at first."""
        raise NotImplementedError

    def lock(self, owner_id: Any) -> Model | None:
        """The owner row locked ``FOR UPDATE`` (with what the hooks need), or ``None``."""
        raise NotImplementedError

    def lock_many(self, owner_ids: Sequence[Any]) -> dict[Any, Model]:
        """Owners locked for :func:`record_outcomes`, by id, with what ``on_landed`` / ``on_failed`` need; an
        owner another transaction holds may be left out (it is re-read in a later round). Default: one
        :meth:`lock` each, in id order."""
        locked = {owner_id: self.lock(owner_id) for owner_id in sorted(owner_ids, key=str)}
        return {owner_id: owner for owner_id, owner in locked.items() if owner is not None}

    @contextmanager
    def outcomes_batched(self) -> Iterator[None]:
        """Wraps the hooks of one :func:`record_outcomes` transaction (a kind may write their rows together
        at the end). Default: nothing."""
        yield

    def prepare_outcomes(self, steps: Sequence[NextStep], *, client: ChainClient) -> None:
        """Chain reads the outcome hooks will need, made before :func:`record_outcomes` takes any lock (e.g.
        into a cache). Default: nothing."""

    def is_open(self, owner: Any) -> bool:
        """Whether the owner still waits for an outcome (else every step is a no-op)."""
        raise NotImplementedError

    def may_renew(self, owner: Any) -> bool:
        """Whether an expired attempt may be replaced by a new one (``False`` past the owner's deadline)."""
        return True

    def sign_attempt(self, owner: Any, *, blockhash: Blockhash, number: int) -> OutboxAttempt:
        """Build, sign and store attempt ``number`` with ``blockhash`` (a renewal)."""
        raise NotImplementedError

    def on_sent(self, owner: Any, attempt: OutboxAttempt) -> None:
        """The attempt's bytes were accepted by the RPC endpoint (maybe not for the first time)."""

    def on_landed(self, owner: Any, attempt: OutboxAttempt, *, status: SignatureStatus,
                  fee_payer_cost: int | None) -> None:
        """The attempt landed without error and reached the client's commitment."""
        raise NotImplementedError

    def on_failed(self, owner: Any, attempt: OutboxAttempt, *, err: Any, landed: bool, slot: int | None,
                  fee_payer_cost: int | None) -> None:
        """The attempt failed: on chain (``landed``; the fee was paid) or in preflight before it was ever
        broadcast (``landed=False``)."""
        raise NotImplementedError

    def on_expired(self, owner: Any, attempt: OutboxAttempt) -> None:
        """The live attempt provably never landed and :meth:`may_renew` said no."""
        raise NotImplementedError

    def touch(self, owner_ids: Iterable[Any]) -> None:
        """Mark owners as looked at now (the poller rotates through them; the sweep reads staleness)."""
        raise NotImplementedError

    def stale_count(self, *, older_than: datetime) -> int:
        """How many in-flight owners nobody looked at since ``older_than``."""
        raise NotImplementedError

    def attempts(self, owners: Sequence[Any]) -> QuerySet[Any]:
        """All attempts of ``owners``, by owner and number."""
        return self.attempt_model.objects.filter(**{f"{self.owner_field}__in": owners}).order_by(
            f"{self.owner_field}_id", "number")

    def latest_attempt(self, owner: Any) -> OutboxAttempt | None:
        return self.attempt_model.objects.filter(**{self.owner_field: owner}).order_by("-number").first()


_KINDS: dict[str, OutboxKind] = {}


def register(kind: OutboxKind) -> None:
    """Make ``kind`` known to the poller and the tasks (from its app's ``AppConfig.ready``)."""
    _KINDS[kind.name] = kind


def kinds() -> list[OutboxKind]:
    """Every registered kind."""
    return list(_KINDS.values())


def get_kind(name: str) -> OutboxKind:
    """:raises KeyError: no kind of that name is registered."""
    return _KINDS[name]


#: Seconds a kind counts as "maybe in flight" after a send was queued or the poller last saw one of its owners
#: in flight (longer than a blockhash lives, ~60-90 s, so a live attempt's owner is always polled).
ACTIVE_SECONDS = 120


def _active_key(kind: OutboxKind) -> str:
    return f"outbox-kind-active:{kind.name}"


def mark_active(kinds_seen: Iterable[OutboxKind]) -> None:
    """Have the poller look at these kinds for the next :data:`ACTIVE_SECONDS` (a send was queued, an owner
    was seen in flight, or the sweep found stale ones)."""
    keys = {_active_key(kind): 1 for kind in kinds_seen}
    if keys:
        cache.set_many(keys, timeout=ACTIVE_SECONDS)


def active_kinds() -> list[OutboxKind]:
    """The kinds the poller reads this round: those marked by :func:`mark_active` (one cache read for all).
    A kind nobody sent for and nothing of which was seen in flight for :data:`ACTIVE_SECONDS` costs the poller
    nothing; the beat sweep marks any kind with stale owners, so nothing in flight is ever left unwatched."""
    every = kinds()
    found = cache.get_many([_active_key(kind) for kind in every])
    return [kind for kind in every if _active_key(kind) in found]


def known_signatures(signatures: Iterable[str]) -> set[str]:
    """Which of ``signatures`` are Numpay's own submissions (any kind, any attempt)."""
    wanted = list(signatures)
    found: set[str] = set()
    for kind in kinds():
        found.update(kind.attempt_model.objects.filter(signature__in=wanted).values_list("signature", flat=True))
    return found


# --- deciding ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NextStep:
    """What an owner needs now: ``kind`` is ``confirm | fail | renew | resend | wait``.

    :ivar attempt: the attempt the step is about (the landed / failed one, or the live one).
    :ivar status: its signature status for ``confirm`` and ``fail``.
    """

    owner: Any
    kind: str
    attempt: OutboxAttempt | None = None
    status: SignatureStatus | None = None


def decide_next_step(*, owner: Any, attempts: Sequence[OutboxAttempt], height: int,
                     statuses: Mapping[str, SignatureStatus | None], is_at_commitment: Any,
                     now: datetime, resend_after: float = RESEND_AFTER_SECONDS) -> NextStep:
    """The next step for one owner, from facts read before (pure: no I/O).

    :param attempts: the owner's attempts, oldest first (the last one is the live one).
    :param height: the chain's block height, read *before* ``statuses``.
    :param statuses: signature -> status (``None``: unknown to the cluster).
    :param is_at_commitment: ``status -> bool``, whether a status reached the configured commitment.
    :param now: the current time, for the re-send interval.
    """
    if not attempts:
        return NextStep(owner=owner, kind="wait")
    for attempt in attempts:
        status = statuses.get(attempt.signature)
        if status is None:
            continue
        if status.err is not None:
            return NextStep(owner=owner, kind="fail", attempt=attempt, status=status)
        if is_at_commitment(status):
            return NextStep(owner=owner, kind="confirm", attempt=attempt, status=status)
        return NextStep(owner=owner, kind="wait")  # landed, below the commitment: wait
    live = attempts[-1]
    # The height was read before the statuses: past the window and still unknown afterwards means never.
    if height > live.last_valid_block_height:
        return NextStep(owner=owner, kind="renew", attempt=live)
    if live.last_sent_at is None or (now - live.last_sent_at).total_seconds() >= resend_after:
        return NextStep(owner=owner, kind="resend", attempt=live)
    return NextStep(owner=owner, kind="wait")


def next_steps(*, kind: OutboxKind, owners: Sequence[Any], client: ChainClient | None = None) -> list[NextStep]:
    """Decide each owner's next step with one ``getBlockHeight`` and one ``getSignatureStatuses`` per 256
    signatures.

    :raises ChainUnavailableError: transient; the caller retries.
    """
    client = client or get_chain_client()
    by_owner: dict[Any, list[OutboxAttempt]] = {owner.pk: [] for owner in owners}
    for attempt in kind.attempts(owners):
        by_owner[getattr(attempt, f"{kind.owner_field}_id")].append(attempt)
    signatures = [a.signature for attempts in by_owner.values() for a in attempts]
    if not signatures:
        return [NextStep(owner=owner, kind="wait") for owner in owners]
    height = client.block_height()
    statuses = signature_statuses(client=client, signatures=signatures)
    now = timezone.now()
    return [decide_next_step(owner=owner, attempts=by_owner[owner.pk], height=height, statuses=statuses,
                             is_at_commitment=client.is_at_commitment, now=now) for owner in owners]


def signature_statuses(*, client: ChainClient, signatures: Sequence[str]) -> dict[str, SignatureStatus | None]:
    """``getSignatureStatuses`` for any number of base58 signatures, in batches of 256."""
    statuses: dict[str, SignatureStatus | None] = {}
    for start in range(0, len(signatures), STATUS_BATCH):
        chunk = list(signatures[start:start + STATUS_BATCH])
        found = client.signature_statuses([Signature.from_string(s) for s in chunk])
        statuses.update(zip(chunk, found, strict=True))
    return statuses


# --- acting --------------------------------------------------------------------------------------------
def enqueue_send(kind: OutboxKind, owner_id: Any) -> None:
    """After the current DB transaction commits, send the owner's live attempt (Celery ``chain`` queue)."""
    from .tasks import outbox_submit

    mark_active([kind])
    transaction.on_commit(lambda: outbox_submit.delay(kind.name, str(owner_id)))


def submit(*, kind: OutboxKind, owner_id: Any, client: ChainClient | None = None,
           and_watch: bool = False) -> Any | None:
    """Send the owner's live attempt (its stored bytes). Safe to repeat.

    :param and_watch: once the send is recorded and the owner still waits for an outcome, ask for its push
        (:func:`watch`) with the attempt just sent (no second read of it).
    :returns: the owner re-read, or ``None`` if it does not exist.
    :raises ChainUnavailableError: transient; the task retries.
    """
    client = client or get_chain_client()
    owner = kind.owner_model.objects.filter(pk=owner_id).first()
    if owner is None or not kind.is_open(owner):
        return owner  # nothing to send any more
    attempt = kind.latest_attempt(owner)
    if attempt is not None:
        sent = send(kind=kind, owner=owner, attempt=attempt, client=client)
        if sent is not None:
            if and_watch and kind.is_open(sent):
                watch(kind=kind, owner=sent, client=client, attempt=attempt)
            return sent
    return type(owner).objects.get(pk=owner.pk)


def send(*, kind: OutboxKind, owner: Any, attempt: OutboxAttempt, client: ChainClient) -> Any | None:
    """Send (or re-send) an attempt's stored bytes with preflight.

    A preflight failure on an attempt's very first send proves it was never broadcast: the owner fails at
    once (no fee). On a re-send an earlier copy may still be in flight, so the error is only recorded;
    once the blockhash expires unseen, the next attempt's first send decides.

    :returns: the owner as it stands after the send was recorded (read under its lock), or ``None`` when the
        send was not recorded (refused, or the owner is gone).
    """
    model = kind.attempt_model
    first_try = attempt.last_sent_at is None
    model.objects.filter(pk=attempt.pk).update(last_sent_at=timezone.now())
    try:
        client.send_raw_transaction(bytes(attempt.signed_transaction), skip_preflight=False)
    except AlreadyProcessed:
        pass
    except BlockhashNotFound:
        logger.info("%s %s attempt %s: blockhash not found on send; checking status", kind.name, owner.pk,
                    attempt.number)
        return None
    except PreflightFailure as exc:
        if first_try:
            _fail(kind=kind, owner_id=owner.pk, attempt_id=attempt.pk, err=exc.err, landed=False)
        else:
            model.objects.filter(pk=attempt.pk).update(error_detail=exc.err)
        return None
    with transaction.atomic():
        locked = kind.lock(owner.pk)
        model.objects.filter(pk=attempt.pk).update(
            status=Case(When(status=OutboxAttempt.Status.PENDING, then=Value(OutboxAttempt.Status.SENT)),
                        default=F("status")),
            last_sent_at=timezone.now(), send_count=F("send_count") + 1)
        if locked is not None and kind.is_open(locked):
            kind.on_sent(locked, attempt)
    return locked


def watch(*, kind: OutboxKind, owner: Any, client: ChainClient | None = None,
          attempt: OutboxAttempt | None = None) -> bool:
    """Have the endpoint push the live attempt's outcome (``signatureSubscribe``) and run a poller round as
    soon as it arrives (``relayer.tasks.poll_now``), instead of waiting for the next scheduled one (DESIGN.md
    invariant 5: "batched poller and/or signatureSubscribe"). That round reads every in-flight status and
    records the pushed outcome with the others it finds, each re-checked under its owner's lock; the poller
    stays scheduled as the fallback and the beat sweep remains the safety net, so a push that never comes
    costs nothing but its speed-up.

    :param attempt: the owner's live attempt when the caller has it (else it is read).
    :returns: whether a push was asked for (``False``: no websocket, or no attempt).
    """
    client = client or get_chain_client()
    if client.ws_url is None:
        return False
    attempt = attempt or kind.latest_attempt(owner)
    if attempt is None:
        return False
    from .tasks import poll_now

    return client.watch_signature(Signature.from_string(attempt.signature), lambda _err, _slot: poll_now())


def check(*, kind: OutboxKind, owner_id: Any, client: ChainClient | None = None) -> Any | None:
    """Advance one owner now (the poller's hand-off, and the admin's "re-check status").

    :returns: the owner re-read, or ``None`` if it does not exist.
    :raises ChainUnavailableError: transient; the task retries.
    """
    client = client or get_chain_client()
    owner = kind.owner_model.objects.filter(pk=owner_id).first()
    if owner is None or not kind.is_open(owner):
        return owner
    for step in next_steps(kind=kind, owners=[owner], client=client):
        take_step(kind=kind, step=step, client=client)
    return type(owner).objects.get(pk=owner.pk)


def take_step(*, kind: OutboxKind, step: NextStep, client: ChainClient | None = None) -> None:
    """Carry out one :class:`NextStep` (each action re-checks under the owner's row lock)."""
    client = client or get_chain_client()
    owner, attempt, status = step.owner, step.attempt, step.status
    if step.kind == "fail" and attempt is not None and status is not None:
        _fail(kind=kind, owner_id=owner.pk, attempt_id=attempt.pk, err=status.err, landed=True, slot=status.slot,
              fee_payer_cost=fee_payer_cost(client, attempt.signature))
    elif step.kind == "confirm" and attempt is not None and status is not None:
        _land(kind=kind, owner_id=owner.pk, attempt=attempt, status=status,
              fee_payer_cost=fee_payer_cost(client, attempt.signature))
    elif step.kind == "renew" and attempt is not None:
        _renew(kind=kind, owner_id=owner.pk, expired_attempt_id=attempt.pk, client=client)
    elif step.kind == "resend" and attempt is not None:
        send(kind=kind, owner=owner, attempt=attempt, client=client)


def record_outcomes(*, kind: OutboxKind, steps: Sequence[NextStep], client: ChainClient | None = None) -> int:
    """Record the outcomes one poller round read (``confirm`` / ``fail`` steps of ``kind``) in one transaction:
    the chain reads first (each landed transaction's cost to the fee payer, read concurrently; the kind's own
    :meth:`OutboxKind.prepare_outcomes`), then one lock of every owner (:meth:`OutboxKind.lock_many`), one
    UPDATE of the landed attempts, and the hooks inside :meth:`OutboxKind.outcomes_batched` (for payments:
    one INSERT of every event, one settlement of every sponsorship). Each owner is re-checked under its lock:
    one that moved meanwhile (a pushed ``outbox_check`` landed it first) is left alone.

    If the batch fails as a whole (nothing of it is kept), each outcome is recorded on its own
    (:func:`take_step`), so one owner cannot hold the others back.

    :returns: how many owners were recorded (those skipped because they moved or were held are not counted).
    :raises ChainUnavailableError: a chain read failed before anything was written (the next round retries).
    """
    client = client or get_chain_client()
    steps = [step for step in steps if step.kind in ("confirm", "fail")
             and step.attempt is not None and step.status is not None]
    if not steps:
        return 0
    costs = _fee_payer_costs(client, steps)
    kind.prepare_outcomes(steps, client=client)
    model = kind.attempt_model
    try:
        with transaction.atomic(), kind.outcomes_batched():
            owners = kind.lock_many([step.owner.pk for step in steps])
            todo = [(step, owners[step.owner.pk]) for step in steps
                    if step.owner.pk in owners and kind.is_open(owners[step.owner.pk])]
            landed = [step.attempt.pk for step, _ in todo if step.kind == "confirm"]
            if landed:
                model.objects.filter(pk__in=landed).update(status=OutboxAttempt.Status.LANDED)
            for step, owner in todo:
                attempt, status = step.attempt, step.status
                if step.kind == "confirm":
                    attempt.status = OutboxAttempt.Status.LANDED  # its other fields are the stored bytes'
                    kind.on_landed(owner, attempt, status=status, fee_payer_cost=costs[step.owner.pk])
                else:
                    model.objects.filter(pk=attempt.pk).update(status=OutboxAttempt.Status.FAILED,
                                                               error_detail=status.err)
                    attempt.status, attempt.error_detail = OutboxAttempt.Status.FAILED, status.err
                    kind.on_failed(owner, attempt, err=status.err, landed=True, slot=status.slot,
                                   fee_payer_cost=costs[step.owner.pk])
    except Exception:
        logger.exception("%s: recording %d outcomes together failed; recording them one by one", kind.name,
                         len(steps))
        for step in steps:
            take_step(kind=kind, step=step, client=client)
        return len(steps)
    return len(todo)


def _renew(*, kind: OutboxKind, owner_id: Any, expired_attempt_id: int, client: ChainClient) -> None:
    blockhash = client.latest_blockhash()
    model = kind.attempt_model
    with transaction.atomic():
        owner = kind.lock(owner_id)
        latest = None if owner is None else kind.latest_attempt(owner)
        if owner is None or not kind.is_open(owner) or latest is None or latest.pk != expired_attempt_id:
            return  # someone else already moved on
        model.objects.filter(pk=latest.pk).update(status=OutboxAttempt.Status.EXPIRED)
        if not kind.may_renew(owner):
            kind.on_expired(owner, latest)
            logger.info("%s %s: attempt %s expired unseen past the deadline; not renewed", kind.name, owner_id,
                        latest.number)
            return
        attempt = kind.sign_attempt(owner, blockhash=blockhash, number=latest.number + 1)
    logger.info("%s %s: attempt %s expired unseen, created attempt %s", kind.name, owner_id, latest.number,
                attempt.number)
    send(kind=kind, owner=owner, attempt=attempt, client=client)


def _land(*, kind: OutboxKind, owner_id: Any, attempt: OutboxAttempt, status: SignatureStatus,
          fee_payer_cost: int | None) -> None:
    with transaction.atomic():
        owner = kind.lock(owner_id)
        if owner is None or not kind.is_open(owner):
            return
        kind.attempt_model.objects.filter(pk=attempt.pk).update(status=OutboxAttempt.Status.LANDED)
        attempt.status = OutboxAttempt.Status.LANDED  # its other fields are the stored bytes' (never change)
        kind.on_landed(owner, attempt, status=status, fee_payer_cost=fee_payer_cost)


def _fail(*, kind: OutboxKind, owner_id: Any, attempt_id: int, err: Any, landed: bool, slot: int | None = None,
          fee_payer_cost: int | None = None) -> None:
    with transaction.atomic():
        owner = kind.lock(owner_id)
        if owner is None or not kind.is_open(owner):
            return
        kind.attempt_model.objects.filter(pk=attempt_id).update(status=OutboxAttempt.Status.FAILED,
                                                                error_detail=err)
        kind.on_failed(owner, kind.attempt_model.objects.get(pk=attempt_id), err=err, landed=landed, slot=slot,
                       fee_payer_cost=fee_payer_cost)


#: ``getTransaction`` calls a poller round makes at once (one per outcome): the round's latency is the slowest
#: one, not their sum.
COST_READS_AT_ONCE = 8


def _fee_payer_costs(client: ChainClient, steps: Sequence[NextStep]) -> dict[Any, int | None]:
    """:func:`fee_payer_cost` of every step's attempt, by owner id, read concurrently (the client is
    thread-safe)."""
    if len(steps) == 1:
        return {steps[0].owner.pk: fee_payer_cost(client, steps[0].attempt.signature)}
    with ThreadPoolExecutor(max_workers=min(COST_READS_AT_ONCE, len(steps))) as pool:
        costs = pool.map(lambda step: fee_payer_cost(client, step.attempt.signature), steps)
        return {step.owner.pk: cost for step, cost in zip(steps, costs, strict=True)}


def fee_payer_cost(client: ChainClient, signature: str) -> int | None:
    """Lamports the fee payer (account 0) actually lost in a landed transaction (fee + any rent it funded),
    from the transaction's ``meta`` pre/post balances; ``None`` when the transaction cannot be read."""
    tx = client.get_transaction_json(Signature.from_string(signature))
    if tx is None or not tx.get("meta"):
        return None
    return tx["meta"]["preBalances"][0] - tx["meta"]["postBalances"][0]
