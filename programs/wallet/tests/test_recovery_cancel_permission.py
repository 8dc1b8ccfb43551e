"""The `recovery_cancel` permission (bit 3 = 8): an authority holding it may end a pending recovery
and do nothing else; `manage` implies it. Protected mode gives it to the custody key, so Numpay can
block (never perform) a recovery an operator froze. Every refusal asserts the vault and the config
are unchanged."""

from __future__ import annotations

import pytest
from solders.instruction import Instruction
from solders.keypair import Keypair

from programs.wallet.tests.authenticator import PLACEHOLDER, RP_ID_HASH, Passkey, protect, send_approved
from programs.wallet.tests.conftest import SOL, Chain, Wallet
from programs.wallet.tests.test_recovery import TIMELOCK, Setup, add_guardians, refused
from wallets.program import (
    SOL_MINT,
    Authority,
    Limit,
    ProgramErrorCode,
    SolTransfer,
    add_authority,
    execute,
    guardian_change_hash,
    guardians_cancel,
    guardians_propose,
    recovery_approve,
    recovery_cancel,
    recovery_start,
    recovery_withdraw,
    remove_authority,
    set_limits,
    set_permissions,
    set_settings,
)
from wallets.program.instructions import (
    PERMISSION_GUARDIAN,
    PERMISSION_MANAGE,
    PERMISSION_RECOVERY_CANCEL,
    PERMISSION_SPEND,
)

E = ProgramErrorCode
CANCEL = PERMISSION_RECOVERY_CANCEL


@pytest.fixture
def setup(chain: Chain, wallet: Wallet) -> Setup:
    """A protected wallet as Numpay now writes it (custody key: `spend | recovery_cancel`), three
    guardians, threshold 2, and a recovery started on-chain with its clock running."""
    owner = Passkey()
    assert not protect(chain, wallet, owner, custody_permissions=PERMISSION_SPEND | CANCEL).failed
    guardians = add_guardians(chain, wallet, owner, 3)
    settings = set_settings(
        chain.program_id, wallet.owner.pubkey(), PLACEHOLDER, rp_id_hash=RP_ID_HASH, guardian_threshold=2,
        recovery_timelock=TIMELOCK,
    )
    assert not send_approved(chain, wallet, settings, [owner]).failed
    s = Setup(chain, wallet, owner, guardians, Passkey())
    assert not s.start(*guardians[:2]).failed
    assert s.config().recovery_executes_at == s.now() + TIMELOCK
    return s


def _cancel_signed_by(s: Setup, signer: Keypair, recovery_id: int | None = None):  # noqa: ANN202
    recovery_id = s.config().recovery_id if recovery_id is None else recovery_id
    return s.chain.send([recovery_cancel(s.chain.program_id, s.me, signer.pubkey(), recovery_id)], [signer])


def _add_canceller(s: Setup) -> Keypair:
    """An Ed25519 key holding only `recovery_cancel`, with a SOL limit (so a missing permission check
    would let it pay)."""
    canceller = Keypair()
    s.chain.airdrop(canceller.pubkey(), SOL)
    add = add_authority(s.chain.program_id, s.me, PLACEHOLDER, Authority(canceller.pubkey(), CANCEL))
    assert not send_approved(s.chain, s.wallet, add, [s.owner]).failed
    limit = set_limits(s.chain.program_id, s.me, PLACEHOLDER, canceller.pubkey(), Limit(SOL_MINT, SOL, SOL))
    assert not send_approved(s.chain, s.wallet, limit, [s.owner]).failed
    assert s.config().authority(canceller.pubkey()).permissions == CANCEL
    return canceller


# --- what it allows


def test_the_custody_key_cancels_a_running_recovery_and_the_owner_keeps_the_wallet(setup: Setup) -> None:
    s = setup
    # when the custody key (spend | recovery_cancel, no manage) signs recovery_cancel
    sent = _cancel_signed_by(s, s.wallet.owner)
    # then the request is cleared and can never execute
    assert not sent.failed, sent.logs
    config = s.config()
    assert (config.recovery_pending, config.recovery_approvals, config.recovery_executes_at) == (False, 0, 0)
    s.chain.set_time(s.now() + TIMELOCK)
    refused(s, s.execute, E.NO_RECOVERY_PENDING)
    # and the owner's passkey still owns the wallet, the custody key is as it was
    config = s.config()
    assert config.authority(s.owner.public_key).permissions == PERMISSION_SPEND | PERMISSION_MANAGE
    assert config.authority(s.new_owner.public_key) is None
    assert config.authority(s.me).permissions == PERMISSION_SPEND | CANCEL


def test_a_cancel_naming_another_request_or_with_nothing_pending_is_refused(setup: Setup) -> None:
    s = setup
    refused(s, lambda: _cancel_signed_by(s, s.wallet.owner, s.config().recovery_id + 1), E.RECOVERY_MISMATCH)
    assert not _cancel_signed_by(s, s.wallet.owner).failed
    refused(s, lambda: _cancel_signed_by(s, s.wallet.owner), E.NO_RECOVERY_PENDING)


def test_a_custody_key_without_the_bit_still_cannot_cancel(chain: Chain, wallet: Wallet) -> None:
    # given a wallet protected before the bit existed (custody key: spend only)
    owner = Passkey()
    assert not protect(chain, wallet, owner).failed
    guardians = add_guardians(chain, wallet, owner, 2)
    settings = set_settings(chain.program_id, wallet.owner.pubkey(), PLACEHOLDER, rp_id_hash=RP_ID_HASH,
                            guardian_threshold=2, recovery_timelock=TIMELOCK)
    assert not send_approved(chain, wallet, settings, [owner]).failed
    s = Setup(chain, wallet, owner, guardians, Passkey())
    assert not s.start(*guardians).failed
    # then the custody key is refused and only the owner's passkey cancels
    refused(s, lambda: _cancel_signed_by(s, wallet.owner), E.PERMISSION_DENIED)
    assert not s.cancel_by_owner().failed


def test_an_owner_with_manage_still_cancels(setup: Setup) -> None:
    assert not setup.cancel_by_owner().failed
    assert not setup.config().recovery_pending


def test_a_passkey_holding_only_the_bit_cancels_with_its_approval(setup: Setup) -> None:
    s = setup
    stopper = Passkey()
    add = add_authority(s.chain.program_id, s.me, PLACEHOLDER, Authority.passkey(stopper.public_key, CANCEL))
    assert not send_approved(s.chain, s.wallet, add, [s.owner]).failed
    cancel = recovery_cancel(s.chain.program_id, s.me, PLACEHOLDER, s.config().recovery_id)
    assert not send_approved(s.chain, s.wallet, cancel, [stopper]).failed
    assert not s.config().recovery_pending


# --- what it never allows


def _signer_form_attempts(s: Setup, canceller: Keypair) -> dict[str, Instruction]:
    """Every action whose signer form needs an authority, signed by ``canceller``, with a valid body."""
    program, me, key = s.chain.program_id, s.me, canceller.pubkey()
    recovery_id, new_owner = s.config().recovery_id, s.new_owner.public_key
    other = Passkey().public_key
    return {
        "execute": execute(program, me, key, [SolTransfer(key, SOL // 100)]),
        "add_authority": add_authority(program, me, key, Authority(Keypair().pubkey(), PERMISSION_MANAGE)),
        "remove_authority": remove_authority(program, me, key, s.owner.public_key),
        "set_limits": set_limits(program, me, key, key, Limit(SOL_MINT, 2**64 - 1, 2**64 - 1)),
        "set_permissions": set_permissions(program, me, key, key, PERMISSION_MANAGE | PERMISSION_SPEND | CANCEL),
        "set_settings": set_settings(program, me, key, rp_id_hash=RP_ID_HASH, guardian_threshold=1),
        "recovery_start": recovery_start(program, me, key, other),
        "recovery_approve": recovery_approve(program, me, key, recovery_id, new_owner),
        "recovery_withdraw": recovery_withdraw(program, me, key, recovery_id, new_owner),
        "guardians_propose": guardians_propose(program, me, key, [other], 1),
        "guardians_cancel": guardians_cancel(program, me, key, guardian_change_hash([other], 1)),
    }


ACTIONS = ["execute", "add_authority", "remove_authority", "set_limits", "set_permissions", "set_settings",
           "recovery_start", "recovery_approve", "recovery_withdraw", "guardians_propose", "guardians_cancel"]


@pytest.mark.parametrize("action", ACTIONS)
def test_an_authority_holding_only_the_bit_can_do_nothing_else(setup: Setup, action: str) -> None:
    # given a key holding only recovery_cancel (and a SOL limit) while a recovery is pending
    s = setup
    canceller = _add_canceller(s)
    instruction = _signer_form_attempts(s, canceller)[action]
    # then every other action it signs is refused, changing nothing
    refused(s, lambda: s.chain.send([instruction], [canceller]), E.PERMISSION_DENIED)
    # and its one power still works
    assert not _cancel_signed_by(s, canceller).failed


@pytest.mark.parametrize("action", ["execute", "add_authority", "set_limits", "set_permissions", "set_settings",
                                    "recovery_start", "guardians_propose"])
def test_the_custody_key_with_spend_and_the_bit_cannot_manage_or_recover(setup: Setup, action: str) -> None:
    s = setup
    instruction = _signer_form_attempts(s, s.wallet.owner)[action]
    if action == "execute":  # it spends, within its caps only (SOL // 10 per transaction)
        instruction = execute(s.chain.program_id, s.me, s.me, [SolTransfer(Keypair().pubkey(), SOL // 10 + 1)])
        refused(s, lambda: s.chain.send([instruction], [s.wallet.owner]), E.PER_TRANSACTION_LIMIT_EXCEEDED)
        return
    refused(s, lambda: s.chain.send([instruction], [s.wallet.owner]), E.PERMISSION_DENIED)


@pytest.mark.parametrize("action", ["execute", "set_permissions", "recovery_approve"])
def test_a_passkey_holding_only_the_bit_approves_nothing_else(setup: Setup, action: str) -> None:
    s = setup
    stopper = Passkey()
    add = add_authority(s.chain.program_id, s.me, PLACEHOLDER, Authority.passkey(stopper.public_key, CANCEL))
    assert not send_approved(s.chain, s.wallet, add, [s.owner]).failed
    limit = set_limits(s.chain.program_id, s.me, PLACEHOLDER, stopper.public_key, Limit(SOL_MINT, SOL, SOL))
    assert not send_approved(s.chain, s.wallet, limit, [s.owner]).failed
    program, me, recovery_id = s.chain.program_id, s.me, s.config().recovery_id
    actions = {
        "execute": execute(program, me, PLACEHOLDER, [SolTransfer(Keypair().pubkey(), SOL // 100)]),
        "set_permissions": set_permissions(program, me, PLACEHOLDER, stopper.public_key, PERMISSION_MANAGE),
        "recovery_approve": recovery_approve(program, me, PLACEHOLDER, recovery_id, s.new_owner.public_key),
    }
    refused(s, lambda: send_approved(s.chain, s.wallet, actions[action], [stopper]), E.PERMISSION_DENIED)


# --- the bit in the authority table


def test_add_authority_and_set_permissions_accept_the_bit_and_refuse_unknown_bits(setup: Setup) -> None:
    s = setup
    program, me, key = s.chain.program_id, s.me, Keypair().pubkey()
    unknown = add_authority(program, me, PLACEHOLDER, Authority(key, CANCEL | 16))
    refused(s, lambda: send_approved(s.chain, s.wallet, unknown, [s.owner]), E.INVALID_INSTRUCTION_DATA)
    known = add_authority(program, me, PLACEHOLDER, Authority(key, CANCEL))
    assert not send_approved(s.chain, s.wallet, known, [s.owner]).failed
    unknown = set_permissions(program, me, PLACEHOLDER, key, PERMISSION_SPEND | 16)
    refused(s, lambda: send_approved(s.chain, s.wallet, unknown, [s.owner]), E.INVALID_INSTRUCTION_DATA)
    every = PERMISSION_SPEND | PERMISSION_MANAGE | PERMISSION_GUARDIAN | CANCEL
    assert not send_approved(s.chain, s.wallet, set_permissions(program, me, PLACEHOLDER, key, every), [s.owner]).failed
    assert s.config().authority(key).permissions == every


def test_the_bit_does_not_make_an_owner(setup: Setup) -> None:
    # the last owner cannot be turned into a mere canceller: no live manage authority would remain
    s = setup
    demote = set_permissions(s.chain.program_id, s.me, PLACEHOLDER, s.owner.public_key, CANCEL | PERMISSION_SPEND)
    refused(s, lambda: send_approved(s.chain, s.wallet, demote, [s.owner]), E.LAST_OWNER)


def test_a_recovery_keeps_the_custody_keys_bit_and_strips_it_from_old_owners(setup: Setup) -> None:
    # given an Ed25519 co-owner holding manage | spend | recovery_cancel
    s = setup
    co_owner = Keypair()
    every = PERMISSION_SPEND | PERMISSION_MANAGE | CANCEL
    add = add_authority(s.chain.program_id, s.me, PLACEHOLDER, Authority(co_owner.pubkey(), every))
    assert not send_approved(s.chain, s.wallet, add, [s.owner]).failed
    # when the recovery executes
    s.chain.set_time(s.config().recovery_executes_at)
    sent = s.execute()
    assert not sent.failed, sent.logs
    # then the old owner's keys lose the power to block the next recovery, Numpay's custody key keeps it
    config = s.config()
    assert config.authority(co_owner.pubkey()).permissions == PERMISSION_SPEND
    assert config.authority(s.me).permissions == PERMISSION_SPEND | CANCEL
    assert config.authority(s.new_owner.public_key).permissions == PERMISSION_MANAGE | PERMISSION_SPEND
