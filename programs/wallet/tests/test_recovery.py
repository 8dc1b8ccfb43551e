"""Guardian recovery with a timelock: guardians (passkeys with the `guardian` bit) approve a new owner
passkey; after the timelock anyone may execute it. Every refusal asserts the vault and the config
are unchanged."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from solders.instruction import Instruction
from solders.keypair import Keypair

from programs.wallet.tests.authenticator import (
    PLACEHOLDER,
    RP_ID_HASH,
    Passkey,
    approved,
    protect,
    send_approved,
    vault_and_config,
)
from programs.wallet.tests.conftest import DAY, SOL, Chain, Wallet, make_wallet
from wallets.program import (
    SOL_MINT,
    Authority,
    Limit,
    ProgramErrorCode,
    SolTransfer,
    add_authority,
    execute,
    recovery_approve,
    recovery_cancel,
    recovery_execute,
    recovery_start,
    recovery_withdraw,
    remove_authority,
    set_limits,
    set_settings,
)
from wallets.program.instructions import KIND_SECP256R1, PERMISSION_GUARDIAN, PERMISSION_MANAGE, PERMISSION_SPEND

E = ProgramErrorCode
TIMELOCK = 2 * DAY


@dataclass
class Setup:
    chain: Chain
    wallet: Wallet
    owner: Passkey
    guardians: list[Passkey]
    new_owner: Passkey

    @property
    def me(self):  # noqa: ANN201
        return self.wallet.owner.pubkey()

    def config(self):  # noqa: ANN201
        return self.chain.config_of(self.me)

    def now(self) -> int:
        return self.chain.svm.get_clock().unix_timestamp

    def start(self, *guardians: Passkey):  # noqa: ANN201
        action = recovery_start(self.chain.program_id, self.me, PLACEHOLDER, self.new_owner.public_key)
        return send_approved(self.chain, self.wallet, action, guardians)

    def approve_instructions(self, *guardians: Passkey, recovery_id: int | None = None) -> list[Instruction]:
        recovery_id = self.config().recovery_id if recovery_id is None else recovery_id
        action = recovery_approve(self.chain.program_id, self.me, PLACEHOLDER, recovery_id, self.new_owner.public_key)
        return approved(self.chain, self.wallet, action, guardians)

    def approve(self, *guardians: Passkey):  # noqa: ANN201
        return self.chain.send(self.approve_instructions(*guardians), [])

    def withdraw(self, *guardians: Passkey):  # noqa: ANN201
        action = recovery_withdraw(
            self.chain.program_id, self.me, PLACEHOLDER, self.config().recovery_id, self.new_owner.public_key
        )
        return send_approved(self.chain, self.wallet, action, guardians)

    def cancel_by_owner(self):  # noqa: ANN201
        action = recovery_cancel(self.chain.program_id, self.me, PLACEHOLDER, self.config().recovery_id)
        return send_approved(self.chain, self.wallet, action, [self.owner])

    def execute(self):  # noqa: ANN201
        relayer = Keypair()
        self.chain.airdrop(relayer.pubkey(), SOL)
        return self.chain.send(
            [recovery_execute(self.chain.program_id, self.me, self.config().recovery_id)], [], payer=relayer
        )


def add_guardians(chain: Chain, wallet: Wallet, owner: Passkey, count: int) -> list[Passkey]:
    guardians = [Passkey() for _ in range(count)]
    me = wallet.owner.pubkey()
    for guardian in guardians:
        action = add_authority(
            chain.program_id, me, PLACEHOLDER, Authority.passkey(guardian.public_key, PERMISSION_GUARDIAN)
        )
        sent = send_approved(chain, wallet, action, [owner])
        assert not sent.failed, sent.logs
    return guardians


@pytest.fixture
def setup(chain: Chain, wallet: Wallet) -> Setup:
    owner = Passkey()
    assert not protect(chain, wallet, owner).failed
    guardians = add_guardians(chain, wallet, owner, 3)
    settings = set_settings(
        chain.program_id,
        wallet.owner.pubkey(),
        PLACEHOLDER,
        rp_id_hash=RP_ID_HASH,
        guardian_threshold=2,
        recovery_timelock=TIMELOCK,
    )
    assert not send_approved(chain, wallet, settings, [owner]).failed
    return Setup(chain, wallet, owner, guardians, Passkey())


def refused(s: Setup, sent_fn, code: int) -> None:  # noqa: ANN001
    before = vault_and_config(s.chain, s.wallet)
    sent = sent_fn()
    assert sent.failed
    assert sent.error_code == code, sent.logs
    assert vault_and_config(s.chain, s.wallet) == before


# --- the recovery that works


def test_guardians_recover_the_wallet_after_the_timelock(setup: Setup) -> None:
    s = setup
    g1, g2, g3 = s.guardians
    # when one guardian starts and a second approves
    assert not s.start(g1).failed
    config = s.config()
    assert (config.recovery_pending, config.recovery_executes_at, config.recovery_new_owner) == (
        True,
        0,
        s.new_owner.public_key,
    )
    assert not s.approve(g2).failed
    started = s.now()
    config = s.config()
    assert config.recovery_executes_at == started + TIMELOCK
    assert len(config.recovery_approving_slots) == 2
    # then nobody can execute before the timelock
    s.chain.set_time(started + TIMELOCK - 1)
    refused(s, s.execute, E.RECOVERY_NOT_READY)
    # and anyone (a relayer) can at the timelock
    s.chain.set_time(started + TIMELOCK)
    sent = s.execute()
    assert not sent.failed, sent.logs
    config = s.config()
    assert not config.recovery_pending
    new = config.authority(s.new_owner.public_key)
    assert (new.kind, new.permissions) == (KIND_SECP256R1, PERMISSION_MANAGE | PERMISSION_SPEND)
    assert config.authority(s.owner.public_key) is None
    assert config.authority(s.me).permissions == PERMISSION_SPEND  # the custody key stays a capped spender
    assert config.limit(s.me, SOL_MINT).per_transaction_cap == SOL // 10
    assert all(config.authority(g.public_key).permissions == PERMISSION_GUARDIAN for g in (g1, g2, g3))
    # and the new owner manages the wallet (its limits first: deny by default), the old cannot
    limit = set_limits(s.chain.program_id, s.me, PLACEHOLDER, s.new_owner.public_key, Limit(SOL_MINT, SOL, SOL))
    assert not send_approved(s.chain, s.wallet, limit, [s.new_owner]).failed
    recipient = Keypair().pubkey()
    pay = execute(s.chain.program_id, s.me, PLACEHOLDER, [SolTransfer(recipient, SOL)])
    assert not send_approved(s.chain, s.wallet, pay, [s.new_owner]).failed
    assert s.chain.balance(recipient) == SOL
    refused(s, lambda: send_approved(s.chain, s.wallet, pay, [s.owner]), E.UNKNOWN_AUTHORITY)


def test_a_custodial_wallet_with_guardians_recovers_to_a_passkey(chain: Chain) -> None:
    # given a custodial wallet (the custody key is the owner) with two guardians and threshold 2
    wallet = make_wallet(chain)
    me = wallet.owner.pubkey()
    guardians = [Passkey(), Passkey()]
    setup_instructions = [
        set_settings(chain.program_id, me, me, rp_id_hash=RP_ID_HASH, guardian_threshold=2, recovery_timelock=0)
    ]
    setup_instructions += [
        add_authority(chain.program_id, me, me, Authority.passkey(g.public_key, PERMISSION_GUARDIAN)) for g in guardians
    ]
    assert not chain.send(setup_instructions, [wallet.owner]).failed
    s = Setup(chain, wallet, Passkey(), guardians, Passkey())
    # when both guardians start it together, with no timelock
    assert not s.start(*guardians).failed
    assert s.config().recovery_executes_at == s.now()
    sent = s.execute()
    # then the passkey owns the wallet and the custody key only spends
    assert not sent.failed, sent.logs
    config = s.config()
    assert config.authority(me).permissions == PERMISSION_SPEND
    assert config.authority(s.new_owner.public_key).permissions == PERMISSION_MANAGE | PERMISSION_SPEND


# --- refusals


def test_too_few_approvals_never_execute(setup: Setup) -> None:
    assert not setup.start(setup.guardians[0]).failed
    setup.chain.set_time(setup.now() + 10 * TIMELOCK)
    refused(setup, setup.execute, E.RECOVERY_NOT_READY)


def test_a_non_guardian_cannot_start_or_approve(setup: Setup) -> None:
    s = setup
    refused(s, lambda: s.start(s.owner), E.PERMISSION_DENIED)  # the owner's passkey is no guardian
    refused(s, lambda: s.start(Passkey()), E.UNKNOWN_AUTHORITY)
    assert not s.start(s.guardians[0]).failed
    refused(s, lambda: s.approve(s.owner), E.PERMISSION_DENIED)
    # the custody key (an Ed25519 spender) cannot either
    action = recovery_approve(s.chain.program_id, s.me, s.me, s.config().recovery_id, s.new_owner.public_key)
    refused(s, lambda: s.chain.send([action], [s.wallet.owner]), E.PERMISSION_DENIED)


def test_the_same_guardian_cannot_approve_twice(setup: Setup) -> None:
    s = setup
    g1 = s.guardians[0]
    refused(s, lambda: s.start(g1, g1), E.DUPLICATE_APPROVAL)
    assert not s.start(g1).failed
    refused(s, lambda: s.approve(g1), E.DUPLICATE_APPROVAL)
    assert s.config().recovery_executes_at == 0


def test_an_approval_of_an_earlier_request_cannot_be_replayed(setup: Setup) -> None:
    s = setup
    g1, g2, _ = s.guardians
    # given request 1 approved by g2 (the landed instructions kept), then cancelled by the owner
    assert not s.start(g1).failed
    first_id = s.config().recovery_id
    approval = s.approve_instructions(g2)
    assert not s.chain.send(approval, []).failed
    assert not s.cancel_by_owner().failed
    # when request 2 (same new owner) is open
    assert not s.start(g1).failed
    assert s.config().recovery_id == first_id + 1
    # then neither the replayed approval nor a fresh approval naming request 1 counts
    refused(s, lambda: s.chain.send(approval, []), E.CHALLENGE_MISMATCH)
    refused(s, lambda: s.chain.send(s.approve_instructions(g2, recovery_id=first_id), []), E.RECOVERY_MISMATCH)
    assert s.config().recovery_executes_at == 0


def test_an_approval_for_another_new_owner_is_refused(setup: Setup) -> None:
    s = setup
    assert not s.start(s.guardians[0]).failed
    other = recovery_approve(s.chain.program_id, s.me, PLACEHOLDER, s.config().recovery_id, Passkey().public_key)
    refused(s, lambda: send_approved(s.chain, s.wallet, other, [s.guardians[1]]), E.RECOVERY_MISMATCH)


def test_a_cancelled_request_never_executes(setup: Setup) -> None:
    s = setup
    assert not s.start(s.guardians[0]).failed
    assert not s.approve(s.guardians[1]).failed
    # the custody key (no longer an owner) cannot cancel; the owner's passkey can
    cancel = recovery_cancel(s.chain.program_id, s.me, s.me, s.config().recovery_id)
    refused(s, lambda: s.chain.send([cancel], [s.wallet.owner]), E.PERMISSION_DENIED)
    assert not s.cancel_by_owner().failed
    s.chain.set_time(s.now() + TIMELOCK)
    refused(s, s.execute, E.NO_RECOVERY_PENDING)


def test_a_recovery_executes_once(setup: Setup) -> None:
    s = setup
    assert not s.start(*s.guardians[:2]).failed
    s.chain.set_time(s.now() + TIMELOCK)
    assert not s.execute().failed
    refused(s, s.execute, E.NO_RECOVERY_PENDING)


def test_a_withdrawal_below_the_threshold_stops_the_clock(setup: Setup) -> None:
    s = setup
    g1, g2, g3 = s.guardians
    assert not s.start(g1).failed
    refused(s, lambda: s.withdraw(g2), E.NOTHING_TO_WITHDRAW)
    assert not s.approve(g2).failed
    assert s.config().recovery_executes_at != 0
    # when g2 withdraws
    assert not s.withdraw(g2).failed
    # then the clock stopped and the request cannot execute
    assert s.config().recovery_executes_at == 0
    s.chain.set_time(s.now() + 10 * TIMELOCK)
    refused(s, s.execute, E.RECOVERY_NOT_READY)
    # and a new approval starts a full timelock from now
    assert not s.approve(g3).failed
    assert s.config().recovery_executes_at == s.now() + TIMELOCK


def test_a_removed_guardians_approval_no_longer_counts(setup: Setup) -> None:
    s = setup
    g1, g2, _ = s.guardians
    assert not s.start(g1).failed
    assert not s.approve(g2).failed
    # when the owner removes g2 (its slot may be reused)
    remove = remove_authority(s.chain.program_id, s.me, PLACEHOLDER, g2.public_key)
    assert not send_approved(s.chain, s.wallet, remove, [s.owner]).failed
    assert s.config().recovery_executes_at == 0
    # and a new guardian takes the slot: g2's old approval is not inherited
    add_guardians(s.chain, s.wallet, s.owner, 1)
    assert len(s.config().recovery_approving_slots) == 1
    s.chain.set_time(s.now() + TIMELOCK)
    refused(s, s.execute, E.RECOVERY_NOT_READY)


def test_recovery_is_off_without_a_guardian_threshold(chain: Chain, wallet: Wallet) -> None:
    owner = Passkey()
    assert not protect(chain, wallet, owner).failed
    guardians = add_guardians(chain, wallet, owner, 1)
    s = Setup(chain, wallet, owner, guardians, Passkey())
    refused(s, lambda: s.start(guardians[0]), E.RECOVERY_DISABLED)


def test_one_pending_recovery_per_wallet(setup: Setup) -> None:
    s = setup
    assert not s.start(s.guardians[0]).failed
    s.new_owner = Passkey()
    refused(s, lambda: s.start(s.guardians[1]), E.RECOVERY_PENDING)


def test_the_new_owner_cannot_be_an_existing_passkey(setup: Setup) -> None:
    s = setup
    s.new_owner = s.guardians[2]
    refused(s, lambda: s.start(s.guardians[0]), E.AUTHORITY_EXISTS)


def test_an_ed25519_owner_cancels_by_signing(chain: Chain) -> None:
    # given a custodial wallet (the custody key owns it) with a pending recovery
    wallet = make_wallet(chain)
    me = wallet.owner.pubkey()
    guardians = [Passkey(), Passkey()]
    instructions = [
        set_settings(chain.program_id, me, me, rp_id_hash=RP_ID_HASH, guardian_threshold=2, recovery_timelock=DAY)
    ]
    instructions += [
        add_authority(chain.program_id, me, me, Authority.passkey(g.public_key, PERMISSION_GUARDIAN)) for g in guardians
    ]
    assert not chain.send(instructions, [wallet.owner]).failed
    s = Setup(chain, wallet, Passkey(), guardians, Passkey())
    assert not s.start(*guardians).failed
    # when the owner signs recovery_cancel naming another request id, nothing changes
    wrong = recovery_cancel(chain.program_id, me, me, s.config().recovery_id + 1)
    refused(s, lambda: chain.send([wrong], [wallet.owner]), E.RECOVERY_MISMATCH)
    # and with the pending id the request ends
    sent = chain.send([recovery_cancel(chain.program_id, me, me, s.config().recovery_id)], [wallet.owner])
    assert not sent.failed, sent.logs
    config = s.config()
    assert (config.recovery_pending, config.recovery_approvals, config.recovery_executes_at) == (False, 0, 0)
    chain.set_time(s.now() + DAY)
    refused(s, s.execute, E.NO_RECOVERY_PENDING)
