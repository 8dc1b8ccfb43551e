"""Delayed guardian changes (``guardians_propose`` / ``guardians_apply`` / ``guardians_cancel``,
docs/wallet-program.md "12–14 Guardian changes"): an owner proposes a guardian set, the chain lets
anyone apply it only after ``guardian_change_delay``. Every refusal asserts the vault and the config
are unchanged."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest
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
from programs.wallet.tests.conftest import DAY, SOL, Chain, Sent, Wallet
from wallets.program import (
    Authority,
    ProgramErrorCode,
    add_authority,
    guardian_change_hash,
    guardian_set_body,
    guardians_apply,
    guardians_cancel,
    guardians_propose,
    recovery_approve,
    recovery_execute,
    recovery_start,
    set_settings,
)
from wallets.program.instructions import (
    KIND_SECP256R1,
    PERMISSION_GUARDIAN,
    PERMISSION_MANAGE,
    PERMISSION_SPEND,
    TAG_GUARDIANS_PROPOSE,
)

E = ProgramErrorCode
DELAY = 3 * DAY
TIMELOCK = DAY


@dataclass
class Setup:
    chain: Chain
    wallet: Wallet
    owner: Passkey

    @property
    def me(self):  # noqa: ANN201
        return self.wallet.owner.pubkey()

    def config(self):  # noqa: ANN201
        return self.chain.config_of(self.me)

    def now(self) -> int:
        return self.chain.svm.get_clock().unix_timestamp

    def propose(self, keys: list[bytes], threshold: int, by: Passkey | None = None) -> Sent:
        action = guardians_propose(self.chain.program_id, self.me, PLACEHOLDER, keys, threshold)
        return send_approved(self.chain, self.wallet, action, [by or self.owner])

    def apply(self, keys: list[bytes], threshold: int) -> Sent:
        relayer = Keypair()
        self.chain.airdrop(relayer.pubkey(), SOL)
        return self.chain.send([guardians_apply(self.chain.program_id, self.me, keys, threshold)], [], payer=relayer)

    def cancel(self, change_hash: bytes, by: Passkey | None = None) -> Sent:
        action = guardians_cancel(self.chain.program_id, self.me, PLACEHOLDER, change_hash)
        return send_approved(self.chain, self.wallet, action, [by or self.owner])

    def guardians(self) -> set[bytes]:
        return {
            bytes(entry.key)
            for entry in self.config().authorities
            if entry.permissions & PERMISSION_GUARDIAN
        }


@pytest.fixture
def setup(chain: Chain, wallet: Wallet) -> Setup:
    owner = Passkey()
    assert not protect(chain, wallet, owner).failed
    settings = set_settings(
        chain.program_id,
        wallet.owner.pubkey(),
        PLACEHOLDER,
        rp_id_hash=RP_ID_HASH,
        recovery_timelock=TIMELOCK,
        guardian_change_delay=DELAY,
    )
    assert not send_approved(chain, wallet, settings, [owner]).failed
    return Setup(chain, wallet, owner)


def refused(s: Setup, sent_fn, code: int) -> None:  # noqa: ANN001
    before = vault_and_config(s.chain, s.wallet)
    sent = sent_fn()
    assert sent.failed
    assert sent.error_code == code, sent.logs
    assert vault_and_config(s.chain, s.wallet) == before


def keys(*passkeys: Passkey) -> list[bytes]:
    return [p.public_key for p in passkeys]


# --- the changes that work


def test_set_settings_writes_the_delay_and_old_clients_write_zero(setup: Setup) -> None:
    config = setup.config()
    assert (config.guardian_change_delay, config.recovery_timelock) == (DELAY, TIMELOCK)
    # a client that writes the six reserved bytes as zeros (the layout before the delay) sets 0
    legacy = set_settings(setup.chain.program_id, setup.me, PLACEHOLDER, rp_id_hash=RP_ID_HASH)
    data = bytes(legacy.data)
    assert data[35:41] == bytes(6)
    assert not send_approved(setup.chain, setup.wallet, legacy, [setup.owner]).failed
    assert setup.config().guardian_change_delay == 0


def test_guardians_are_added_only_after_the_delay(setup: Setup) -> None:
    s = setup
    g1, g2 = Passkey(), Passkey()
    # when the owner proposes two guardians with threshold 2
    proposed_at = s.now()
    sent = s.propose(keys(g1, g2), 2)
    assert not sent.failed, sent.logs
    config = s.config()
    assert (config.guardian_change_pending, config.guardian_change_effective_at) == (True, proposed_at + DELAY)
    assert config.guardian_change_hash == hashlib.sha256(guardian_set_body(keys(g1, g2), 2)).digest()
    assert s.guardians() == set()
    # then nobody can apply it before the delay
    s.chain.set_time(proposed_at + DELAY - 1)
    refused(s, lambda: s.apply(keys(g1, g2), 2), E.GUARDIAN_CHANGE_NOT_READY)
    # and anyone can at the delay
    s.chain.set_time(proposed_at + DELAY)
    sent = s.apply(keys(g1, g2), 2)
    assert not sent.failed, sent.logs
    config = s.config()
    assert s.guardians() == {g1.public_key, g2.public_key}
    entries = [config.authority(g.public_key) for g in (g1, g2)]
    assert [(e.kind, e.permissions, e.expires_at) for e in entries] == [(KIND_SECP256R1, PERMISSION_GUARDIAN, 0)] * 2
    assert (config.guardian_threshold, config.guardian_change_pending, config.guardian_change_hash) == (2, False, None)
    # and applying again finds nothing pending
    refused(s, lambda: s.apply(keys(g1, g2), 2), E.NO_GUARDIAN_CHANGE_PENDING)


def test_a_removal_clears_the_guardians_recovery_approval_and_stops_the_clock(setup: Setup) -> None:
    s = setup
    g1, g2, g3 = Passkey(), Passkey(), Passkey()
    assert not s.propose(keys(g1, g2, g3), 2).failed
    s.chain.set_time(s.now() + DELAY)
    assert not s.apply(keys(g1, g2, g3), 2).failed
    # given a recovery approved by g1 and g2 (the clock runs)
    new_owner = Passkey()
    start = recovery_start(s.chain.program_id, s.me, PLACEHOLDER, new_owner.public_key)
    assert not send_approved(s.chain, s.wallet, start, [g1, g2]).failed
    assert s.config().recovery_executes_at != 0
    # when the owner's change removing g2 is applied
    assert not s.propose(keys(g1, g3), 2).failed
    s.chain.set_time(s.now() + DELAY)
    assert not s.apply(keys(g1, g3), 2).failed
    # then g2 is gone with its approval, the clock stopped, and g2 can no longer approve
    config = s.config()
    assert s.guardians() == {g1.public_key, g3.public_key}
    assert config.authority(g2.public_key) is None
    assert (len(config.recovery_approving_slots), config.recovery_executes_at) == (1, 0)
    approve = recovery_approve(s.chain.program_id, s.me, PLACEHOLDER, config.recovery_id, new_owner.public_key)
    refused(s, lambda: send_approved(s.chain, s.wallet, approve, [g2]), E.UNKNOWN_AUTHORITY)
    # and g3's approval starts a full timelock
    assert not send_approved(s.chain, s.wallet, approve, [g3]).failed
    assert s.config().recovery_executes_at == s.now() + TIMELOCK


def test_a_later_proposal_replaces_the_earlier_one(setup: Setup) -> None:
    s = setup
    g1, g2 = Passkey(), Passkey()
    assert not s.propose(keys(g1), 1).failed
    s.chain.set_time(s.now() + DELAY // 2)
    assert not s.propose(keys(g2), 1).failed
    assert s.config().guardian_change_effective_at == s.now() + DELAY
    s.chain.set_time(s.now() + DELAY)
    refused(s, lambda: s.apply(keys(g1), 1), E.GUARDIAN_CHANGE_MISMATCH)
    assert not s.apply(keys(g2), 1).failed
    assert s.guardians() == {g2.public_key}


def test_the_owner_cancels_a_pending_change(setup: Setup) -> None:
    s = setup
    g1 = Passkey()
    assert not s.propose(keys(g1), 1).failed
    change = guardian_change_hash(keys(g1), 1)
    refused(s, lambda: s.cancel(bytes(32)), E.GUARDIAN_CHANGE_MISMATCH)
    sent = s.cancel(change)
    assert not sent.failed, sent.logs
    config = s.config()
    assert (config.guardian_change_pending, config.guardian_change_effective_at, config.guardian_change_hash) == (
        False,
        0,
        None,
    )
    s.chain.set_time(s.now() + DELAY)
    refused(s, lambda: s.apply(keys(g1), 1), E.NO_GUARDIAN_CHANGE_PENDING)
    refused(s, lambda: s.cancel(change), E.NO_GUARDIAN_CHANGE_PENDING)


def test_an_ed25519_owner_proposes_and_cancels_by_signing(chain: Chain, wallet: Wallet) -> None:
    # a custodial wallet: the custody key is the owner; delay 0 applies at once
    me = wallet.owner.pubkey()
    g1 = Passkey()
    assert not chain.send([guardians_propose(chain.program_id, me, me, keys(g1), 1)], [wallet.owner]).failed
    assert chain.config_of(me).guardian_change_effective_at == chain.svm.get_clock().unix_timestamp
    change = guardian_change_hash(keys(g1), 1)
    assert not chain.send([guardians_cancel(chain.program_id, me, me, change)], [wallet.owner]).failed
    assert not chain.send([guardians_propose(chain.program_id, me, me, keys(g1), 1)], [wallet.owner]).failed
    relayer = Keypair()
    chain.airdrop(relayer.pubkey(), SOL)
    assert not chain.send([guardians_apply(chain.program_id, me, keys(g1), 1)], [], payer=relayer).failed
    assert chain.config_of(me).authority(g1.public_key).permissions == PERMISSION_GUARDIAN


def test_an_authority_holding_guardian_and_more_loses_only_the_guardian_bit(chain: Chain, wallet: Wallet) -> None:
    me = wallet.owner.pubkey()
    co_owner = Passkey()
    setup_instructions = [
        set_settings(chain.program_id, me, me, rp_id_hash=RP_ID_HASH),
        add_authority(
            chain.program_id, me, me, Authority.passkey(co_owner.public_key, PERMISSION_MANAGE | PERMISSION_GUARDIAN)
        ),
        guardians_propose(chain.program_id, me, me, [], 0),
    ]
    assert not chain.send(setup_instructions, [wallet.owner]).failed
    relayer = Keypair()
    chain.airdrop(relayer.pubkey(), SOL)
    assert not chain.send([guardians_apply(chain.program_id, me, [], 0)], [], payer=relayer).failed
    assert chain.config_of(me).authority(co_owner.public_key).permissions == PERMISSION_MANAGE


def test_a_recovery_ends_the_old_owners_pending_change(setup: Setup) -> None:
    s = setup
    g1, g2 = Passkey(), Passkey()
    assert not s.propose(keys(g1, g2), 1).failed
    s.chain.set_time(s.now() + DELAY)
    assert not s.apply(keys(g1, g2), 1).failed
    # given the old owner proposes dropping g2, and a recovery by g1 executes first
    assert not s.propose(keys(g1), 1).failed
    new_owner = Passkey()
    start = recovery_start(s.chain.program_id, s.me, PLACEHOLDER, new_owner.public_key)
    assert not send_approved(s.chain, s.wallet, start, [g1]).failed
    s.chain.set_time(s.now() + TIMELOCK)
    relayer = Keypair()
    s.chain.airdrop(relayer.pubkey(), SOL)
    recovery_id = s.config().recovery_id
    assert not s.chain.send([recovery_execute(s.chain.program_id, s.me, recovery_id)], [], payer=relayer).failed
    # then the old owner's proposal is gone and cannot be applied
    assert not s.config().guardian_change_pending
    s.chain.set_time(s.now() + DELAY)
    refused(s, lambda: s.apply(keys(g1), 1), E.NO_GUARDIAN_CHANGE_PENDING)


# --- refusals


def test_a_non_owner_cannot_propose(setup: Setup) -> None:
    s = setup
    g1 = Passkey()
    assert not s.propose(keys(g1), 1).failed
    s.chain.set_time(s.now() + DELAY)
    assert not s.apply(keys(g1), 1).failed
    pending_before = s.config().guardian_change_pending
    refused(s, lambda: s.propose(keys(Passkey()), 1, by=g1), E.PERMISSION_DENIED)  # a guardian
    refused(s, lambda: s.propose(keys(Passkey()), 1, by=Passkey()), E.UNKNOWN_AUTHORITY)  # a stranger
    # the custody key (a capped spender in protected mode) cannot either
    custody = guardians_propose(s.chain.program_id, s.me, s.me, keys(Passkey()), 1)
    refused(s, lambda: s.chain.send([custody], [s.wallet.owner]), E.PERMISSION_DENIED)
    stranger = Keypair()
    s.chain.airdrop(stranger.pubkey(), SOL)
    signed = guardians_propose(s.chain.program_id, s.me, stranger.pubkey(), keys(Passkey()), 1)
    refused(s, lambda: s.chain.send([signed], [stranger]), E.UNKNOWN_AUTHORITY)
    assert s.config().guardian_change_pending == pending_before is False


def test_apply_with_another_body_is_refused(setup: Setup) -> None:
    s = setup
    g1, g2 = Passkey(), Passkey()
    assert not s.propose(keys(g1, g2), 1).failed
    s.chain.set_time(s.now() + DELAY)
    refused(s, lambda: s.apply(keys(g1, g2), 2), E.GUARDIAN_CHANGE_MISMATCH)  # another threshold
    refused(s, lambda: s.apply(keys(g2, g1), 1), E.GUARDIAN_CHANGE_MISMATCH)  # another order
    refused(s, lambda: s.apply(keys(g1, Passkey()), 1), E.GUARDIAN_CHANGE_MISMATCH)


def test_apply_with_nothing_pending_is_refused(setup: Setup) -> None:
    refused(setup, lambda: setup.apply(keys(Passkey()), 1), E.NO_GUARDIAN_CHANGE_PENDING)


def test_a_non_owner_cannot_cancel(setup: Setup) -> None:
    s = setup
    g1 = Passkey()
    assert not s.propose(keys(g1), 1).failed
    change = guardian_change_hash(keys(g1), 1)
    refused(s, lambda: s.cancel(change, by=Passkey()), E.UNKNOWN_AUTHORITY)
    custody = guardians_cancel(s.chain.program_id, s.me, s.me, change)
    refused(s, lambda: s.chain.send([custody], [s.wallet.owner]), E.PERMISSION_DENIED)
    assert s.config().guardian_change_pending


def test_a_replayed_passkey_approval_is_refused(setup: Setup) -> None:
    s = setup
    g1 = Passkey()
    proposal = approved(s.chain, s.wallet, guardians_propose(s.chain.program_id, s.me, PLACEHOLDER, keys(g1), 1), [s.owner])
    assert not s.chain.send(proposal, []).failed
    cancel_action = guardians_cancel(s.chain.program_id, s.me, PLACEHOLDER, guardian_change_hash(keys(g1), 1))
    cancel = approved(s.chain, s.wallet, cancel_action, [s.owner])
    assert not s.chain.send(cancel, []).failed
    # the landed proposal approval, replayed after the cancel, does not propose again
    refused(s, lambda: s.chain.send(proposal, []), E.CHALLENGE_MISMATCH)
    assert not s.config().guardian_change_pending
    # nor does a landed cancel approval cancel a later proposal
    assert not s.propose(keys(g1), 1).failed
    refused(s, lambda: s.chain.send(cancel, []), E.CHALLENGE_MISMATCH)


def test_malformed_guardian_sets_are_refused(setup: Setup) -> None:
    s = setup
    g1, g2 = Passkey(), Passkey()
    refused(s, lambda: s.propose(keys(g1, g1), 1), E.INVALID_INSTRUCTION_DATA)  # duplicate keys
    refused(s, lambda: s.propose(keys(g1, g2), 3), E.INVALID_INSTRUCTION_DATA)  # threshold > count
    refused(s, lambda: s.propose([], 1), E.INVALID_INSTRUCTION_DATA)

    def raw(data: bytes) -> Sent:
        action = guardians_propose(s.chain.program_id, s.me, PLACEHOLDER, keys(g1), 1)
        action = type(action)(action.program_id, data, action.accounts)
        return send_approved(s.chain, s.wallet, action, [s.owner])

    body = guardian_set_body(keys(g1), 1)
    refused(s, lambda: raw(bytes([TAG_GUARDIANS_PROPOSE]) + body[:-1]), E.INVALID_INSTRUCTION_DATA)  # truncated
    refused(s, lambda: raw(bytes([TAG_GUARDIANS_PROPOSE]) + body + b"\x00"), E.INVALID_INSTRUCTION_DATA)  # extended
    bad_prefix = body[:2] + b"\x04" + body[3:]
    refused(s, lambda: raw(bytes([TAG_GUARDIANS_PROPOSE]) + bad_prefix), E.INVALID_INSTRUCTION_DATA)
    nine = bytes([1, 9]) + b"".join(Passkey().public_key for _ in range(9))
    refused(s, lambda: raw(bytes([TAG_GUARDIANS_PROPOSE]) + nine), E.INVALID_INSTRUCTION_DATA)


def test_an_owner_key_cannot_be_proposed_as_guardian(setup: Setup) -> None:
    refused(setup, lambda: setup.propose(keys(setup.owner), 1), E.AUTHORITY_EXISTS)


def test_a_guardian_set_that_overflows_the_slots_is_refused(setup: Setup) -> None:
    # the custody key and the owner passkey hold two slots: at most 6 guardians fit
    s = setup
    six = [Passkey() for _ in range(6)]
    seven = [*six, Passkey()]
    refused(s, lambda: s.propose(keys(*seven), 1), E.AUTHORITY_TABLE_FULL)
    assert not s.propose(keys(*six), 1).failed
    s.chain.set_time(s.now() + DELAY)
    # and when the wallet filled up after the proposal, apply refuses too
    extra = add_authority(s.chain.program_id, s.me, PLACEHOLDER, Authority.passkey(Passkey().public_key, PERMISSION_SPEND))
    assert not send_approved(s.chain, s.wallet, extra, [s.owner]).failed
    refused(s, lambda: s.apply(keys(*six), 1), E.AUTHORITY_TABLE_FULL)


def test_apply_has_no_passkey_form(setup: Setup) -> None:
    s = setup
    g1 = Passkey()
    assert not s.propose(keys(g1), 1).failed
    s.chain.set_time(s.now() + DELAY)
    apply = guardians_apply(s.chain.program_id, s.me, keys(g1), 1)
    with pytest.raises(ValueError, match="signer form"):
        approved(s.chain, s.wallet, apply, [s.owner])
