"""Co-signing and the per-user daily sponsorship budget (reserve, refuse, release, settle)."""

from __future__ import annotations

import datetime
import logging
import uuid

import pytest
from django.db import transaction
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from spl.token.instructions import create_idempotent_associated_token_account

from numpay.core.errors import ApplicationError, ChainRequestError, ChainUnavailableError, ConflictError
from numpay.core.solana.programs import MEMO_PROGRAM_ID
from numpay.core.transactions import assemble
from relayer import services, tasks
from relayer.models import FeePayer, SponsorshipCharge, SponsorshipDay
from relayer.selectors import sponsorship_spent_today, sponsorship_today, sponsorship_total_today

from .conftest import ATA_RENT_LAMPORTS, DAILY_BUDGET_LAMPORTS

pytestmark = pytest.mark.django_db

RECIPIENT = Pubkey(bytes([3] * 32))
MINT = Pubkey(bytes([4] * 32))
SOL_TRANSFER_COST = 10_000  # 2 signatures x 5000 lamports


def _sol_payment(fee_payer: Keypair, sender: Keypair, lamports: int = 1_000) -> Message:
    instruction = transfer(TransferParams(from_pubkey=sender.pubkey(), to_pubkey=RECIPIENT, lamports=lamports))
    return Message.new_with_blockhash([instruction], fee_payer.pubkey(), Hash.default())


def _cosign(user, message: Message, reference: uuid.UUID, *, reserve: bool = True) -> services.CosignResult:
    with transaction.atomic():
        return services.relayer_cosign(user=user, message=message, reference=reference, reserve=reserve)


def _reserved(user) -> int:
    return SponsorshipDay.objects.get(user=user, day=sponsorship_today()).reserved_lamports


class FakeChain:
    def __init__(self, *, balance: int = 0, rent: int = 0, is_up: bool = True):
        self.balance, self.rent, self.is_up = balance, rent, is_up
        self.rent_calls = 0

    def get_balance(self, address: Pubkey) -> int:
        if not self.is_up:
            raise ChainUnavailableError()
        return self.balance

    def minimum_balance_for_rent_exemption(self, size: int) -> int:
        self.rent_calls += 1
        assert size == 165
        return self.rent


# --- co-signing ----------------------------------------------------------------------------------------


def test_cosign_signs_as_fee_payer_and_reserves_the_cost(user, fee_payer, sender):
    # given a SOL payment message with the relayer's fee payer first
    message = _sol_payment(fee_payer, sender)
    reference = uuid.uuid4()

    # when
    result = _cosign(user, message, reference)

    # then the fee payer signed the exact message bytes and the cost is reserved for today
    assert result.cost_lamports == SOL_TRANSFER_COST
    assert result.signature.verify(fee_payer.pubkey(), bytes(message))
    charge = SponsorshipCharge.objects.get(reference=reference)
    assert (charge.user, charge.day, charge.lamports, charge.estimated_lamports, charge.status) == (
        user, sponsorship_today(), SOL_TRANSFER_COST, SOL_TRANSFER_COST, SponsorshipCharge.Status.RESERVED)
    assert _reserved(user) == SOL_TRANSFER_COST
    assert sponsorship_spent_today(user=user) == SOL_TRANSFER_COST
    assert sponsorship_total_today() == SOL_TRANSFER_COST


def test_cosigned_signature_assembles_into_a_fully_signed_transaction(user, fee_payer, sender):
    message = _sol_payment(fee_payer, sender)

    result = _cosign(user, message, uuid.uuid4())
    tx = assemble(message=message, signatures={
        fee_payer.pubkey(): result.signature, sender.pubkey(): sender.sign_message(bytes(message))})

    assert tx.verify_with_results() == [True, True]
    assert tx.signatures[0] == result.signature


def test_fee_payer_pubkey_is_the_configured_signer(fee_payer):
    assert services.fee_payer_pubkey() == fee_payer.pubkey()


def test_ata_rent_is_counted_in_the_reservation(user, fee_payer, sender):
    message = Message.new_with_blockhash(
        [create_idempotent_associated_token_account(fee_payer.pubkey(), RECIPIENT, MINT)],
        fee_payer.pubkey(), Hash.default())

    with pytest.raises(ApplicationError) as caught:
        _cosign(user, message, uuid.uuid4())

    # the budget (100_000 lamports in tests) cannot cover one rent of 2_039_280 lamports
    assert caught.value.code == "sponsorship_budget_exceeded"


def test_ata_rent_with_a_large_enough_budget_is_reserved(settings, user, fee_payer):
    settings.RELAYER_DAILY_BUDGET_LAMPORTS = 5_000_000
    message = Message.new_with_blockhash(
        [create_idempotent_associated_token_account(fee_payer.pubkey(), RECIPIENT, MINT)],
        fee_payer.pubkey(), Hash.default())

    result = _cosign(user, message, uuid.uuid4())

    assert result.cost_lamports == 5_000 + ATA_RENT_LAMPORTS
    assert _reserved(user) == 5_000 + ATA_RENT_LAMPORTS


def test_refused_message_reserves_nothing(user, fee_payer, sender):
    # given a transfer out of the fee payer's own account
    drain = transfer(TransferParams(from_pubkey=fee_payer.pubkey(), to_pubkey=RECIPIENT, lamports=10**9))
    message = Message.new_with_blockhash([drain], fee_payer.pubkey(), Hash.default())
    reference = uuid.uuid4()

    with pytest.raises(ApplicationError) as caught:
        _cosign(user, message, reference)

    assert caught.value.code == "transaction_not_allowed"
    assert caught.value.extra == {"reason": "fee_payer_in_instruction"}
    assert not SponsorshipCharge.objects.exists()
    assert not SponsorshipDay.objects.exists()


# --- the daily budget ----------------------------------------------------------------------------------


def test_budget_up_to_the_limit_is_accepted(user, fee_payer, sender):
    # given 9 payments already reserved: 90_000 of 100_000 lamports
    for _ in range(9):
        _cosign(user, _sol_payment(fee_payer, sender), uuid.uuid4())

    # when the 10th brings it to exactly the budget
    _cosign(user, _sol_payment(fee_payer, sender), uuid.uuid4())

    assert _reserved(user) == DAILY_BUDGET_LAMPORTS


def test_budget_exceeded_is_refused_with_429_and_changes_nothing(user, fee_payer, sender):
    # given the budget is used up
    for _ in range(10):
        _cosign(user, _sol_payment(fee_payer, sender), uuid.uuid4())
    reference = uuid.uuid4()

    # when one more payment asks for sponsorship
    with pytest.raises(ApplicationError) as caught:
        _cosign(user, _sol_payment(fee_payer, sender), reference)

    # then it is refused and nothing more is reserved
    assert caught.value.code == "sponsorship_budget_exceeded"
    assert caught.value.status == 429
    assert caught.value.extra == {
        "budget_lamports": DAILY_BUDGET_LAMPORTS, "used_lamports": DAILY_BUDGET_LAMPORTS, "cost_lamports": 10_000}
    assert _reserved(user) == DAILY_BUDGET_LAMPORTS
    assert not SponsorshipCharge.objects.filter(reference=reference).exists()
    assert SponsorshipCharge.objects.count() == 10


def test_budget_is_per_user(user, other_user, fee_payer, sender):
    for _ in range(10):
        _cosign(user, _sol_payment(fee_payer, sender), uuid.uuid4())

    _cosign(other_user, _sol_payment(fee_payer, sender), uuid.uuid4())

    assert sponsorship_spent_today(user=other_user) == SOL_TRANSFER_COST
    assert sponsorship_total_today() == DAILY_BUDGET_LAMPORTS + SOL_TRANSFER_COST


def test_yesterdays_spend_does_not_count_today(user, fee_payer, sender):
    SponsorshipDay.objects.create(user=user, day=sponsorship_today() - datetime.timedelta(days=1),
                                  reserved_lamports=DAILY_BUDGET_LAMPORTS)

    _cosign(user, _sol_payment(fee_payer, sender), uuid.uuid4())

    assert _reserved(user) == SOL_TRANSFER_COST
    assert sponsorship_total_today() == SOL_TRANSFER_COST


def test_reservation_rolls_back_with_the_callers_transaction(user, fee_payer, sender):
    # given the caller's transaction fails after co-signing (e.g. the custody signature fails)
    def create_payment() -> None:
        with transaction.atomic():
            services.relayer_cosign(user=user, message=_sol_payment(fee_payer, sender), reference=uuid.uuid4())
            raise RuntimeError("custody failed")

    with pytest.raises(RuntimeError):
        create_payment()

    # then the reservation went with it
    assert not SponsorshipCharge.objects.exists()
    assert sponsorship_spent_today(user=user) == 0


# --- further attempts of the same payment --------------------------------------------------------------


def test_resign_without_reserve_reuses_the_reservation(user, fee_payer, sender):
    reference = uuid.uuid4()
    first = _cosign(user, _sol_payment(fee_payer, sender), reference)

    # when a new attempt (another blockhash) is signed for the same payment
    message = Message.new_with_blockhash(
        [transfer(TransferParams(from_pubkey=sender.pubkey(), to_pubkey=RECIPIENT, lamports=1_000))],
        fee_payer.pubkey(), Hash.new_unique())
    second = _cosign(user, message, reference, reserve=False)

    # then it is signed, but nothing more is reserved
    assert second.signature != first.signature
    assert second.signature.verify(fee_payer.pubkey(), bytes(message))
    assert second.cost_lamports == SOL_TRANSFER_COST
    assert SponsorshipCharge.objects.get().lamports == SOL_TRANSFER_COST
    assert _reserved(user) == SOL_TRANSFER_COST


def test_repeated_reserve_for_the_same_reference_does_not_double_count(user, fee_payer, sender):
    reference = uuid.uuid4()
    _cosign(user, _sol_payment(fee_payer, sender), reference)

    _cosign(user, _sol_payment(fee_payer, sender), reference)

    assert SponsorshipCharge.objects.count() == 1
    assert _reserved(user) == SOL_TRANSFER_COST


def test_costlier_new_attempt_reserves_only_the_difference(user, fee_payer, sender):
    reference = uuid.uuid4()
    _cosign(user, _sol_payment(fee_payer, sender), reference)
    # given a new attempt with a memo signed by a third key: 3 signatures = 15_000 lamports
    co_signer = Keypair()
    memo = Instruction(MEMO_PROGRAM_ID, b"x", [])
    message = Message.new_with_blockhash(
        [transfer(TransferParams(from_pubkey=sender.pubkey(), to_pubkey=RECIPIENT, lamports=1)),
         transfer(TransferParams(from_pubkey=co_signer.pubkey(), to_pubkey=RECIPIENT, lamports=1)), memo],
        fee_payer.pubkey(), Hash.default())

    result = _cosign(user, message, reference, reserve=False)

    assert result.cost_lamports == 15_000
    charge = SponsorshipCharge.objects.get()
    assert (charge.lamports, charge.estimated_lamports) == (15_000, 15_000)
    assert _reserved(user) == 15_000


def test_resign_without_a_reservation_is_refused_and_reserves_nothing(user, fee_payer, sender):
    with pytest.raises(ConflictError) as caught:
        _cosign(user, _sol_payment(fee_payer, sender), uuid.uuid4(), reserve=False)

    assert caught.value.code == "sponsorship_not_reserved"
    assert not SponsorshipCharge.objects.exists()
    assert not SponsorshipDay.objects.exists()


def test_reference_of_another_user_is_refused(user, other_user, fee_payer, sender):
    reference = uuid.uuid4()
    _cosign(user, _sol_payment(fee_payer, sender), reference)

    with pytest.raises(ConflictError) as caught:
        _cosign(other_user, _sol_payment(fee_payer, sender), reference, reserve=False)

    assert caught.value.code == "sponsorship_reference_conflict"
    assert sponsorship_spent_today(user=other_user) == 0


def test_resign_after_release_is_refused(user, fee_payer, sender):
    reference = uuid.uuid4()
    _cosign(user, _sol_payment(fee_payer, sender), reference)
    services.sponsorship_release(reference=reference)

    with pytest.raises(ConflictError) as caught:
        _cosign(user, _sol_payment(fee_payer, sender), reference, reserve=False)

    assert caught.value.code == "sponsorship_closed"
    assert _reserved(user) == 0


# --- release and settle --------------------------------------------------------------------------------


def test_release_gives_the_lamports_back_and_is_idempotent(user, fee_payer, sender):
    reference = uuid.uuid4()
    _cosign(user, _sol_payment(fee_payer, sender), reference)

    first = services.sponsorship_release(reference=reference)
    second = services.sponsorship_release(reference=reference)

    assert first.status == second.status == SponsorshipCharge.Status.RELEASED
    assert _reserved(user) == 0
    assert sponsorship_spent_today(user=user) == 0


def test_release_of_an_unknown_reference_is_a_no_op(user):
    assert services.sponsorship_release(reference=uuid.uuid4()) is None
    assert services.sponsorship_settle(reference=uuid.uuid4()) is None


def test_settle_keeps_the_estimate_and_is_idempotent(user, fee_payer, sender):
    reference = uuid.uuid4()
    _cosign(user, _sol_payment(fee_payer, sender), reference)

    services.sponsorship_settle(reference=reference)
    charge = services.sponsorship_settle(reference=reference, actual_lamports=1)

    assert (charge.status, charge.lamports) == (SponsorshipCharge.Status.SETTLED, SOL_TRANSFER_COST)
    assert _reserved(user) == SOL_TRANSFER_COST


def test_settle_with_the_actual_cost_adjusts_the_day(settings, user, fee_payer, sender):
    settings.RELAYER_DAILY_BUDGET_LAMPORTS = 5_000_000
    reference = uuid.uuid4()
    message = Message.new_with_blockhash(
        [create_idempotent_associated_token_account(fee_payer.pubkey(), RECIPIENT, MINT)],
        fee_payer.pubkey(), Hash.default())
    _cosign(user, message, reference)

    # when it lands and the recipient's account already existed: only the fee was paid
    charge = services.sponsorship_settle(reference=reference, actual_lamports=5_000)

    assert (charge.status, charge.lamports, charge.estimated_lamports) == (
        SponsorshipCharge.Status.SETTLED, 5_000, 5_000 + ATA_RENT_LAMPORTS)
    assert _reserved(user) == 5_000


def test_release_after_settle_leaves_the_settled_charge(user, fee_payer, sender):
    reference = uuid.uuid4()
    _cosign(user, _sol_payment(fee_payer, sender), reference)
    services.sponsorship_settle(reference=reference)

    charge = services.sponsorship_release(reference=reference)

    assert charge.status == SponsorshipCharge.Status.SETTLED
    assert _reserved(user) == SOL_TRANSFER_COST


def test_settle_after_release_counts_the_charge_again(user, fee_payer, sender):
    reference = uuid.uuid4()
    _cosign(user, _sol_payment(fee_payer, sender), reference)
    services.sponsorship_release(reference=reference)

    charge = services.sponsorship_settle(reference=reference, actual_lamports=10_000)

    assert charge.status == SponsorshipCharge.Status.SETTLED
    assert _reserved(user) == 10_000


def test_settling_many_at_once_gives_what_settling_one_by_one_gives(user, other_user, fee_payer, sender):
    references = [uuid.uuid4() for _ in range(6)]
    for index, reference in enumerate(references):
        _cosign(user if index < 4 else other_user, _sol_payment(fee_payer, sender), reference)
    services.sponsorship_release(reference=references[2])  # released, then lands after all: counted again
    services.sponsorship_settle(reference=references[3], actual_lamports=4_000)  # settled already: left alone
    cost = SOL_TRANSFER_COST

    # when one poller round settles them together: equal and unequal actual costs, and one keeping its estimate
    settled = services.sponsorship_settle_many({references[0]: cost, references[1]: cost + 7, references[2]: None,
                                                references[3]: 1, references[4]: cost - 3, references[5]: cost - 3})

    assert settled == 5
    charges = {charge.reference: charge for charge in SponsorshipCharge.objects.filter(reference__in=references)}
    assert {charge.status for charge in charges.values()} == {SponsorshipCharge.Status.SETTLED}
    assert [charges[reference].lamports for reference in references] == [cost, cost + 7, cost, 4_000, cost - 3,
                                                                          cost - 3]
    assert _reserved(user) == cost + (cost + 7) + cost + 4_000
    assert _reserved(other_user) == 2 * (cost - 3)
    # and again: nothing changes
    assert services.sponsorship_settle_many(dict.fromkeys(references, 1)) == 0
    assert _reserved(user) == cost + (cost + 7) + cost + 4_000


def test_settle_with_negative_actual_is_refused(user, fee_payer, sender):
    reference = uuid.uuid4()
    _cosign(user, _sol_payment(fee_payer, sender), reference)

    with pytest.raises(ValueError, match="negative"):
        services.sponsorship_settle(reference=reference, actual_lamports=-1)

    assert SponsorshipCharge.objects.get().status == SponsorshipCharge.Status.RESERVED
    assert _reserved(user) == SOL_TRANSFER_COST


def test_released_lamports_can_be_reserved_again(user, fee_payer, sender):
    references = [uuid.uuid4() for _ in range(10)]
    for reference in references:
        _cosign(user, _sol_payment(fee_payer, sender), reference)
    services.sponsorship_release(reference=references[0])

    _cosign(user, _sol_payment(fee_payer, sender), uuid.uuid4())

    assert _reserved(user) == DAILY_BUDGET_LAMPORTS


# --- ATA rent lookup -----------------------------------------------------------------------------------


def test_ata_rent_comes_from_the_setting_when_set():
    assert services.ata_rent_lamports() == ATA_RENT_LAMPORTS


def test_ata_rent_is_asked_from_the_chain_once_per_process(settings, monkeypatch):
    settings.RELAYER_ATA_RENT_LAMPORTS = 0
    chain = FakeChain(rent=2_039_280)
    monkeypatch.setattr(services, "get_chain_client", lambda: chain)

    values = [services.ata_rent_lamports(), services.ata_rent_lamports()]

    assert values == [2_039_280, 2_039_280]
    assert chain.rent_calls == 1


# --- fee payer balance watch ---------------------------------------------------------------------------


def test_balance_check_records_the_balance_and_alerts_when_low(settings, monkeypatch, caplog, fee_payer):
    # given the fee payer holds 0.5 SOL and the alert threshold is 1 SOL
    monkeypatch.setattr(services, "get_chain_client", lambda: FakeChain(balance=500_000_000))

    with caplog.at_level(logging.ERROR, logger="relayer.services"):
        row = services.fee_payer_balance_check()

    assert (row.address, row.last_balance_lamports, row.is_below_threshold) == (
        str(fee_payer.pubkey()), 500_000_000, True)
    assert row.last_checked_at is not None
    alerts = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert alerts == [
        f"Relayer fee payer {fee_payer.pubkey()} is low: 500000000 lamports (0.5 SOL), "
        "alert threshold 1000000000 lamports. Top it up."
    ]
    assert settings.RELAYER_FEE_PAYER_KEYPAIR not in caplog.text


def test_balance_check_above_threshold_updates_the_same_row_without_alert(monkeypatch, caplog, fee_payer):
    chain = FakeChain(balance=1)
    monkeypatch.setattr(services, "get_chain_client", lambda: chain)
    services.fee_payer_balance_check()
    chain.balance = 2_000_000_000
    caplog.clear()

    with caplog.at_level(logging.ERROR, logger="relayer.services"):
        row = services.fee_payer_balance_check()

    assert FeePayer.objects.count() == 1
    assert (row.last_balance_lamports, row.is_below_threshold) == (2_000_000_000, False)
    assert not [record for record in caplog.records if record.levelno == logging.ERROR]


def test_balance_check_with_the_chain_down_changes_nothing(monkeypatch, fee_payer):
    monkeypatch.setattr(services, "get_chain_client", lambda: FakeChain(is_up=False))

    with pytest.raises(ChainUnavailableError):
        services.fee_payer_balance_check()

    assert not FeePayer.objects.exists()


class FlakyChain(FakeChain):
    """Unreachable for the first ``failures`` reads, or answering with a terminal JSON-RPC error."""

    def __init__(self, *, balance: int, failures: int = 0, terminal: bool = False):
        super().__init__(balance=balance)
        self.failures, self.terminal, self.calls = failures, terminal, 0

    def get_balance(self, address: Pubkey) -> int:
        self.calls += 1
        if self.terminal:
            raise ChainRequestError("Invalid param", rpc_code=-32602)
        if self.calls <= self.failures:
            raise ChainUnavailableError()
        return self.balance


def test_balance_task_retries_an_unreachable_chain_then_succeeds(monkeypatch, fee_payer):
    chain = FlakyChain(balance=7, failures=2)
    monkeypatch.setattr(services, "get_chain_client", lambda: chain)

    result = tasks.fee_payer_balance_check.apply()

    assert result.get() == 7
    assert chain.calls == 3
    assert FeePayer.objects.get().last_balance_lamports == 7


def test_balance_task_gives_up_after_three_retries(monkeypatch, fee_payer):
    chain = FlakyChain(balance=7, failures=100)
    monkeypatch.setattr(services, "get_chain_client", lambda: chain)

    with pytest.raises(ChainUnavailableError):
        tasks.fee_payer_balance_check.apply().get()
    assert chain.calls == 4  # the first try and 3 retries
    assert not FeePayer.objects.exists()


def test_balance_task_does_not_retry_a_terminal_error(monkeypatch, fee_payer):
    chain = FlakyChain(balance=7, terminal=True)
    monkeypatch.setattr(services, "get_chain_client", lambda: chain)

    with pytest.raises(ChainRequestError):
        tasks.fee_payer_balance_check.apply().get()
    assert chain.calls == 1
    assert not FeePayer.objects.exists()
