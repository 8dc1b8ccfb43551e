"""Property-based fuzzing (hypothesis, bounded): no input moves vault funds without a valid
authority, with one the program moves exactly what the limits allow, and a key holding only
`recovery_cancel` can at most end the pending recovery."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from programs.wallet.tests.authenticator import PLACEHOLDER, RP_ID_HASH, Passkey, approved, protect, send_approved
from programs.wallet.tests.conftest import DAY, SOL, START_TIME, Chain, make_wallet
from wallets.program import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    INSTRUCTIONS_SYSVAR_ID,
    SECP256R1_PROGRAM_ID,
    SOL_MINT,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    Limit,
    SolTransfer,
    TokenTransfer,
    add_authority,
    execute,
    guardian_change_hash,
    guardians_apply,
    guardians_cancel,
    guardians_propose,
    recovery_approve,
    recovery_cancel,
    recovery_execute,
    recovery_start,
    recovery_withdraw,
    remove_authority,
    set_limits,
    set_permissions,
    set_settings,
)
from wallets.program.instructions import PERMISSION_GUARDIAN, PERMISSION_RECOVERY_CANCEL, PERMISSION_SPEND, Authority

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


class Arena:
    """One chain shared by the examples of a property: a victim wallet holding SOL and tokens, an
    attacker with their own wallet, and the accounts an attacker could name."""

    def __init__(self) -> None:
        self.chain = Chain()
        chain = self.chain
        self.mint, mint_authority = chain.create_mint()
        self.victim = make_wallet(chain, extra_limits=[Limit(self.mint, 10**12, 10**12, DAY)])
        self.victim_tokens = chain.mint_to(self.mint, mint_authority, self.victim.vault, 10**9)
        # the victim has a guardian change pending for a very long time: applying it (or a mutated
        # copy) early, or cancelling / replacing it without the victim's key, must never work
        victim = self.victim.owner.pubkey()
        self.victim_guardian = Passkey().public_key
        pending = [
            set_settings(chain.program_id, victim, victim, rp_id_hash=RP_ID_HASH, guardian_change_delay=2**32 - 1),
            guardians_propose(chain.program_id, victim, victim, [self.victim_guardian], 1),
        ]
        assert not chain.send(pending, [self.victim.owner]).failed
        self.attacker = make_wallet(chain, extra_limits=[Limit(self.mint, 10**12, 10**12, DAY)])
        # a protected wallet (passkey owner) and valid passkey approvals of a payment and of a
        # manage action on it: mutated or re-wired copies must never land
        self.protected = make_wallet(chain)
        self.passkey = Passkey()
        assert not protect(chain, self.protected, self.passkey).failed
        far = START_TIME + 10 * 365 * DAY
        me = self.protected.owner.pubkey()
        # two guardians (threshold 2, no timelock) and their valid joint approval of a recovery
        guardians = [Passkey(), Passkey()]
        for guardian in guardians:
            add = add_authority(
                chain.program_id, me, PLACEHOLDER, Authority.passkey(guardian.public_key, PERMISSION_GUARDIAN)
            )
            assert not send_approved(chain, self.protected, add, [self.passkey]).failed
        settings = set_settings(
            chain.program_id, me, PLACEHOLDER, rp_id_hash=RP_ID_HASH, guardian_threshold=2, guardian_change_delay=DAY
        )
        assert not send_approved(chain, self.protected, settings, [self.passkey]).failed
        pending = [guardian.public_key for guardian in guardians[:1]]
        proposal = guardians_propose(chain.program_id, me, PLACEHOLDER, pending, 1)
        assert not send_approved(chain, self.protected, proposal, [self.passkey]).failed
        start = recovery_start(chain.program_id, me, PLACEHOLDER, Passkey().public_key)
        self.approved = [
            approved(
                chain,
                self.protected,
                execute(chain.program_id, me, PLACEHOLDER, [SolTransfer(self.attacker.vault, SOL)]),
                [self.passkey],
                far,
            ),
            approved(
                chain,
                self.protected,
                set_limits(
                    chain.program_id, me, PLACEHOLDER, self.passkey.public_key, Limit(SOL_MINT, 2**64 - 1, 2**64 - 1)
                ),
                [self.passkey],
                far,
            ),
        ]
        self.approved.append(approved(chain, self.protected, start, guardians, far))  # all at the same nonce
        new_guardians = [Passkey().public_key, Passkey().public_key]
        propose = guardians_propose(chain.program_id, me, PLACEHOLDER, new_guardians, 2)
        self.approved.append(approved(chain, self.protected, propose, [self.passkey], far))
        cancel = guardians_cancel(chain.program_id, me, PLACEHOLDER, guardian_change_hash(pending, 1))
        self.approved.append(approved(chain, self.protected, cancel, [self.passkey], far))
        self._guarded_setup()
        self.stranger = Keypair()
        chain.airdrop(self.stranger.pubkey(), 10 * SOL)
        self.signers = [self.stranger, self.attacker.owner, chain.fee_payer]
        self.pool = [
            self.victim.config,
            self.victim.vault,
            self.victim_tokens,
            self.victim.owner.pubkey(),  # named, never signing
            self.attacker.config,
            self.attacker.vault,
            self.mint,
            Pubkey(bytes(32)),
            TOKEN_PROGRAM_ID,
            TOKEN_2022_PROGRAM_ID,
            ASSOCIATED_TOKEN_PROGRAM_ID,
            *[signer.pubkey() for signer in self.signers],
            self.protected.config,
            self.protected.vault,
            INSTRUCTIONS_SYSVAR_ID,
            SECP256R1_PROGRAM_ID,
            Keypair().pubkey(),
            self.guarded.config,
            self.guarded.vault,
            self.canceller.pubkey(),
        ]

    def _guarded_setup(self) -> None:
        """A protected wallet whose custody key holds `spend | recovery_cancel`, one guardian (threshold
        1, a timelock of a century: never executable here), a recovery pending, and an Ed25519 key
        holding only `recovery_cancel` with a SOL limit (so a missed permission check would pay)."""
        chain = self.chain
        self.guarded = make_wallet(chain)
        self.guarded_owner = Passkey()
        sent = protect(chain, self.guarded, self.guarded_owner, custody_permissions=PERMISSION_SPEND
                       | PERMISSION_RECOVERY_CANCEL)
        assert not sent.failed
        me, self.guardian = self.guarded.owner.pubkey(), Passkey()
        self.canceller = Keypair()
        chain.airdrop(self.canceller.pubkey(), 10 * SOL)
        for action in (
            add_authority(chain.program_id, me, PLACEHOLDER, Authority.passkey(self.guardian.public_key,
                                                                               PERMISSION_GUARDIAN)),
            add_authority(chain.program_id, me, PLACEHOLDER, Authority(self.canceller.pubkey(),
                                                                       PERMISSION_RECOVERY_CANCEL)),
            set_limits(chain.program_id, me, PLACEHOLDER, self.canceller.pubkey(), Limit(SOL_MINT, SOL, SOL)),
            set_settings(chain.program_id, me, PLACEHOLDER, rp_id_hash=RP_ID_HASH, guardian_threshold=1,
                         recovery_timelock=100 * 365 * DAY),
        ):
            assert not send_approved(chain, self.guarded, action, [self.guarded_owner]).failed
        self.guarded_recovery_start()

    def guarded_recovery_start(self) -> None:
        """The guardian starts a recovery of the guarded wallet (its clock runs at once)."""
        start = recovery_start(self.chain.program_id, self.guarded.owner.pubkey(), PLACEHOLDER, Passkey().public_key)
        assert not send_approved(self.chain, self.guarded, start, [self.guardian]).failed

    def guarded_state(self) -> tuple[int, bytes]:
        return self.chain.balance(self.guarded.vault), self.chain.data(self.guarded.config)

    def canceller_templates(self) -> list[Instruction]:
        """Every action on the guarded wallet, signed by the canceller, well formed."""
        program, me, key = self.chain.program_id, self.guarded.owner.pubkey(), self.canceller.pubkey()
        config = self.chain.config_of(me)
        recovery_id, new_owner, other = config.recovery_id, config.recovery_new_owner, Passkey().public_key
        return [
            execute(program, me, key, [SolTransfer(key, SOL // 10)]),
            add_authority(program, me, key, Authority(key, 3)),
            remove_authority(program, me, key, self.guarded_owner.public_key),
            set_limits(program, me, key, key, Limit(SOL_MINT, 2**64 - 1, 2**64 - 1)),
            set_permissions(program, me, key, key, 3),
            set_settings(program, me, key, rp_id_hash=RP_ID_HASH, guardian_threshold=1),
            recovery_start(program, me, key, other),
            recovery_approve(program, me, key, recovery_id, new_owner or other),
            recovery_withdraw(program, me, key, recovery_id, new_owner or other),
            recovery_cancel(program, me, key, recovery_id),
            recovery_execute(program, me, recovery_id),
            guardians_propose(program, me, key, [other], 1),
            guardians_cancel(program, me, key, guardian_change_hash([other], 1)),
            guardians_apply(program, me, [other], 1),
        ]

    def protected_state(self) -> tuple[int, bytes]:
        return self.chain.balance(self.protected.vault), self.chain.data(self.protected.config)

    def victim_state(self) -> tuple[int, int | None, bytes]:
        chain = self.chain
        return chain.balance(self.victim.vault), chain.token_balance(self.victim_tokens), chain.data(self.victim.config)

    def valid_templates(self) -> list[Instruction]:
        """Well-formed instructions on the victim's wallet, signed (by the attacker) as if allowed."""
        program, victim, signer = self.chain.program_id, self.victim.owner.pubkey(), self.attacker.owner.pubkey()
        payer = self.chain.fee_payer.pubkey()
        return [
            execute(program, victim, signer, [SolTransfer(signer, SOL)]),
            execute(program, victim, signer, [TokenTransfer(self.mint, signer, 10**6, 6, payer)]),
            add_authority(program, victim, signer, Authority(signer, 3)),
            remove_authority(program, victim, signer, victim),
            set_limits(program, victim, signer, signer, Limit(SOL_MINT, 2**64 - 1, 2**64 - 1)),
            guardians_propose(program, victim, signer, [self.victim_guardian], 1),
            guardians_cancel(program, victim, signer, guardian_change_hash([self.victim_guardian], 1)),
            guardians_apply(program, victim, [self.victim_guardian], 1),
        ]


_arena: Arena | None = None


def arena() -> Arena:
    global _arena  # noqa: PLW0603 - one chain for all examples keeps the fuzz fast
    if _arena is None:
        _arena = Arena()
    return _arena


@st.composite
def attacks(draw: st.DrawFn) -> tuple[Instruction, list[Keypair]]:
    world = arena()
    templates = world.valid_templates()
    style = draw(st.sampled_from(["random", "mutated", "reshuffled"]))
    if style == "random":
        data = draw(st.binary(max_size=220))
        count = draw(st.integers(0, 12))
        accounts = [
            AccountMeta(draw(st.sampled_from(world.pool)), draw(st.booleans()), draw(st.booleans())) for _ in range(count)
        ]
    else:
        template = draw(st.sampled_from(templates))
        data = bytearray(template.data)
        accounts = list(template.accounts)
        if style == "mutated":
            for _ in range(draw(st.integers(1, 6))):
                if data:
                    data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        else:
            for _ in range(draw(st.integers(1, 4))):
                position = draw(st.integers(0, len(accounts) - 1))
                accounts[position] = AccountMeta(draw(st.sampled_from(world.pool)), draw(st.booleans()), draw(st.booleans()))
        data = bytes(data)
    signing = {meta.pubkey for meta in accounts if meta.is_signer}
    signers = [signer for signer in world.signers if signer.pubkey() in signing]
    # a meta that asks for a signature we cannot give (the victim's owner) becomes non-signing
    keys = {signer.pubkey() for signer in signers}
    accounts = [AccountMeta(m.pubkey, m.is_signer and m.pubkey in keys, m.is_writable) for m in accounts]
    return Instruction(world.chain.program_id, data, accounts), signers


@FUZZ
@given(attack=attacks())
def test_no_input_moves_the_victims_funds_without_the_victims_authority(attack: tuple[Instruction, list[Keypair]]) -> None:
    # given the victim's vault, token account and config
    world = arena()
    instruction, signers = attack
    before = world.victim_state()
    # when anyone but the victim's authority sends anything
    sent = world.chain.send([instruction], signers)
    event(f"error {sent.error_code}" if sent.failed else "succeeded")
    # then the victim's funds and config are as they were
    assert world.victim_state() == before


@st.composite
def passkey_attacks(draw: st.DrawFn) -> tuple[list[Instruction], str]:
    """A valid passkey-approved instruction pair with the program instruction changed: data bytes
    flipped (never to the same value), accounts replaced by other keys, or the approvals section
    moved to another instruction's body."""
    world = arena()
    precompile, program_instruction = draw(st.sampled_from(world.approved))
    data = bytearray(program_instruction.data)
    accounts = list(program_instruction.accounts)
    style = draw(st.sampled_from(["flip", "rewire", "truncate", "append"]))
    if style == "flip":
        for position in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=4, unique=True)):
            data[position] ^= draw(st.integers(1, 255))
    elif style == "rewire":
        position = draw(st.integers(0, len(accounts) - 1))
        key = draw(st.sampled_from([key for key in world.pool if key != accounts[position].pubkey]))
        accounts[position] = AccountMeta(key, False, draw(st.booleans()))
    elif style == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    else:
        data += draw(st.binary(min_size=1, max_size=8))
    signing = {meta.pubkey for meta in accounts if meta.is_signer}
    assert signing <= {world.chain.fee_payer.pubkey()}
    return [precompile, Instruction(world.chain.program_id, bytes(data), accounts)], style


@FUZZ
@given(attack=passkey_attacks())
def test_no_changed_passkey_approval_moves_funds(attack: tuple[list[Instruction], str]) -> None:
    # given a protected wallet and a valid passkey approval the attacker has seen
    world = arena()
    instructions, style = attack
    before = world.protected_state()
    # when the attacker changes it and submits it
    sent = world.chain.send(instructions, [])
    event(f"{style}: error {sent.error_code}" if sent.failed else f"{style}: succeeded")
    # then it fails and the protected wallet is as it was
    assert sent.failed
    assert world.protected_state() == before


def test_the_unchanged_passkey_approvals_would_land() -> None:
    # The approvals the fuzz mutates are valid: each lands on a copy of the arena's chain state
    # (proved here on a fresh arena so the shared one keeps its nonce).
    for index in range(len(Arena().approved)):
        world = Arena()
        precompile, program_instruction = world.approved[index]
        sent = world.chain.send([precompile, program_instruction], [])
        assert not sent.failed, sent.logs


@FUZZ
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, 2), st.integers(0, 700_000_000)), min_size=1, max_size=4), min_size=1, max_size=3
    )
)
def test_the_owner_moves_exactly_what_the_limits_allow(batches: list[list[tuple[int, int]]]) -> None:
    # given a fresh period, caps of 1 SOL per transaction and 1.5 SOL per day, three funded recipients
    world = arena()
    chain, wallet = world.chain, world.victim
    owner = wallet.owner.pubkey()
    recipients = [Pubkey(bytes([index + 1]) * 32) for index in range(3)]
    for recipient in recipients:
        if chain.balance(recipient) == 0:
            chain.airdrop(recipient, SOL)
    chain.airdrop(wallet.vault, 5 * SOL)
    chain.send([set_limits(chain.program_id, owner, owner, owner, Limit(SOL_MINT, SOL, 3 * SOL // 2, DAY))], [wallet.owner])
    chain.set_time(chain.svm.get_clock().unix_timestamp + DAY)
    spent = 0
    for batch in batches:
        vault_before = chain.balance(wallet.vault)
        total = sum(amount for _, amount in batch)
        allowed = all(amount > 0 for _, amount in batch) and total <= SOL and spent + total <= 3 * SOL // 2
        # when the owner sends the batch
        transfers = [SolTransfer(recipients[index], amount) for index, amount in batch]
        sent = chain.send([execute(chain.program_id, owner, owner, transfers)], [wallet.owner])
        # then it passes exactly when the model allows it, and moves exactly the batch
        assert sent.failed is not allowed, (batch, spent, sent.logs)
        assert chain.balance(wallet.vault) == vault_before - (total if allowed else 0)
        spent += total if allowed else 0
        now = chain.svm.get_clock().unix_timestamp
        assert chain.config_of(owner).limit(owner, SOL_MINT).spent_at(now) == spent


#: The config bytes of the pending recovery (pending flag, approvals, reserved, new owner, executes_at):
#: what `recovery_cancel` clears (docs/wallet-program.md, "Config account").
RECOVERY_BYTES = slice(2056, 2112)


@st.composite
def canceller_attacks(draw: st.DrawFn) -> tuple[Instruction, str]:
    """A well-formed action on the guarded wallet signed by its canceller, mutated or re-wired (the
    canceller keeps signing)."""
    world = arena()
    template = draw(st.sampled_from(world.canceller_templates()))
    data, accounts = bytearray(template.data), list(template.accounts)
    style = draw(st.sampled_from(["as is", "mutated", "reshuffled"]))
    if style == "mutated":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif style == "reshuffled":
        for _ in range(draw(st.integers(1, 3))):
            position = draw(st.integers(0, len(accounts) - 1))
            accounts[position] = AccountMeta(draw(st.sampled_from(world.pool)), False, draw(st.booleans()))
    canceller = world.canceller.pubkey()
    accounts = [AccountMeta(m.pubkey, m.pubkey == canceller and m.is_signer, m.is_writable) for m in accounts]
    accounts.append(AccountMeta(canceller, True, False))  # it always signs (an extra account is ignored)
    return Instruction(world.chain.program_id, bytes(data), accounts), f"{style} tag {template.data[0]}"


@FUZZ
@given(attack=canceller_attacks())
def test_a_recovery_cancel_key_can_at_most_end_the_pending_recovery(attack: tuple[Instruction, str]) -> None:
    # given the guarded wallet with a recovery pending and a key holding only recovery_cancel
    world = arena()
    if not world.chain.config_of(world.guarded.owner.pubkey()).recovery_pending:
        world.guarded_recovery_start()
    instruction, what = attack
    vault_before, config_before = world.guarded_state()
    cancelled = bytearray(config_before)
    cancelled[RECOVERY_BYTES] = bytes(RECOVERY_BYTES.stop - RECOVERY_BYTES.start)
    # when that key signs anything
    sent = world.chain.send([instruction], [world.canceller])
    event(f"{what}: error {sent.error_code}" if sent.failed else f"{what}: succeeded")
    # then no lamport moved, and the config is unchanged or only lost its pending recovery
    vault_after, config_after = world.guarded_state()
    assert vault_after == vault_before
    assert config_after in (config_before, bytes(cancelled))
    if not sent.failed:
        assert instruction.data[0] == 10  # recovery_cancel is the only action that lands


def test_the_fuzz_inputs_reach_the_program() -> None:
    # A fuzz that never gets past the first check proves little: a valid template signed by the
    # attacker reaches the authority check.
    world = arena()
    template = world.valid_templates()[0]
    sent = world.chain.send([template], [world.attacker.owner])
    assert sent.error_code == 6009
    assert struct.unpack_from("<B", template.data)[0] == 1
