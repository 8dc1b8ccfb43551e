"""Compute units per instruction stay within the budgets published in docs/wallet-program.md
("Size and compute units"). The measured values are in ``MEASURED`` (update the doc with them)."""

from __future__ import annotations

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from programs.wallet.tests.authenticator import PLACEHOLDER, RP_ID_HASH, Passkey, send_approved
from programs.wallet.tests.conftest import DAY, PROGRAM_SO, SOL, Chain, Sent, make_wallet
from wallets.program import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SOL_MINT,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    Authority,
    Limit,
    SolTransfer,
    TokenTransfer,
    add_authority,
    create,
    execute,
    guardians_apply,
    guardians_propose,
    recovery_execute,
    recovery_start,
    remove_authority,
    set_limits,
    set_permissions,
    set_settings,
)
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND

#: Ceilings (compute units) per instruction; the doc lists the measured values under them.
BUDGETS = {
    "create": 30_000,
    "execute: 1 SOL transfer": 12_000,
    "execute: 1 token transfer, new recipient account": 45_000,
    "execute: 1 token transfer, existing recipient account": 25_000,
    "execute: 1 Token-2022 transfer, new recipient account": 45_000,
    "execute: 4 transfers (SOL + 3 tokens)": 100_000,
    "add_authority": 6_000,
    "set_limits": 6_000,
    "remove_authority": 6_000,
    "set_permissions": 6_000,
    "set_settings": 6_000,
    "execute, passkey-approved: 1 SOL transfer, 1 approval": 25_000,
    "execute, passkey-approved: 1 SOL transfer, 2 approvals (joint)": 35_000,
    "add_authority, passkey-approved": 20_000,
    "recovery_start, passkey-approved (2 guardians)": 30_000,
    "recovery_execute": 10_000,
    "guardians_propose, passkey-approved (2 guardians)": 25_000,
    "guardians_apply (2 guardians)": 15_000,
}
PROGRAM_SIZE_CEILING = 128 * 1024  # bytes


def recipient_for(mint: Pubkey, token_program: Pubkey = TOKEN_PROGRAM_ID) -> Pubkey:
    """A recipient whose associated token account for ``mint`` has the canonical bump 255. The Associated
    Token program's ``create_idempotent`` (every token transfer runs it) finds that address by trying bumps
    from 255 down, 1,500 units per try, so a random recipient costs 1,500 x (tries - 1) more: a measure that
    must compare with a budget takes recipients found at the first try (one random key in two)."""
    while True:
        recipient = Keypair().pubkey()
        _, bump = Pubkey.find_program_address([bytes(recipient), bytes(token_program), bytes(mint)],
                                              ASSOCIATED_TOKEN_PROGRAM_ID)
        if bump == 255:
            return recipient


def measure() -> dict[str, int]:
    """Runs one of each instruction on a fresh chain; returns compute units by name."""
    chain = Chain()
    measured: dict[str, int] = {}

    def record(name: str, sent: Sent) -> None:
        assert not sent.failed, (name, sent.logs)
        measured[name] = sent.compute_units

    owner = Keypair()
    record(
        "create",
        chain.send(
            [
                create(
                    chain.program_id,
                    owner.pubkey(),
                    chain.fee_payer.pubkey(),
                    [Authority(owner.pubkey(), PERMISSION_SPEND | PERMISSION_MANAGE)],
                    [(owner.pubkey(), Limit(SOL_MINT, SOL, SOL))],
                )
            ],
            [owner],
        ),
    )
    usdc, usdc_authority = chain.create_mint()
    points, points_authority = chain.create_mint(2, TOKEN_2022_PROGRAM_ID)
    wallet = make_wallet(chain, extra_limits=[Limit(usdc, 10**12, 10**12, DAY), Limit(points, 10**12, 10**12, DAY)])
    chain.mint_to(usdc, usdc_authority, wallet.vault, 10**9)
    chain.mint_to(points, points_authority, wallet.vault, 10**9, TOKEN_2022_PROGRAM_ID)
    me = wallet.owner.pubkey()
    payer = chain.fee_payer.pubkey()

    def run(transfers: list) -> Sent:  # type: ignore[type-arg]
        return chain.send([execute(chain.program_id, me, me, transfers)], [wallet.owner])

    record("execute: 1 SOL transfer", run([SolTransfer(Keypair().pubkey(), SOL // 10)]))
    recipient = recipient_for(usdc)
    record("execute: 1 token transfer, new recipient account", run([TokenTransfer(usdc, recipient, 10**6, 6, payer)]))
    record("execute: 1 token transfer, existing recipient account", run([TokenTransfer(usdc, recipient, 10**6, 6, payer)]))
    record(
        "execute: 1 Token-2022 transfer, new recipient account",
        run([TokenTransfer(points, recipient_for(points, TOKEN_2022_PROGRAM_ID), 100, 2, payer, TOKEN_2022_PROGRAM_ID)]),
    )
    record(
        "execute: 4 transfers (SOL + 3 tokens)",
        run(
            [
                SolTransfer(Keypair().pubkey(), SOL // 10),
                TokenTransfer(usdc, recipient_for(usdc), 10**6, 6, payer),
                TokenTransfer(usdc, recipient, 10**6, 6, payer),
                TokenTransfer(points, recipient_for(points, TOKEN_2022_PROGRAM_ID), 100, 2, payer,
                              TOKEN_2022_PROGRAM_ID),
            ]
        ),
    )
    spender = Keypair().pubkey()
    record(
        "add_authority",
        chain.send([add_authority(chain.program_id, me, me, Authority(spender, PERMISSION_SPEND))], [wallet.owner]),
    )
    record("set_limits", chain.send([set_limits(chain.program_id, me, me, spender, Limit(SOL_MINT, 1, 1))], [wallet.owner]))
    record("remove_authority", chain.send([remove_authority(chain.program_id, me, me, spender)], [wallet.owner]))
    record(
        "set_permissions",
        chain.send([set_permissions(chain.program_id, me, me, me, PERMISSION_SPEND | PERMISSION_MANAGE)], [wallet.owner]),
    )
    record(
        "set_settings",
        chain.send([set_settings(chain.program_id, me, me, rp_id_hash=RP_ID_HASH, joint_threshold=2)], [wallet.owner]),
    )

    # passkeys: two owner passkeys (the precompile's own units are not the program's)
    first, second = Passkey(), Passkey()
    for passkey in (first, second):
        owner_passkey = Authority.passkey(passkey.public_key, PERMISSION_SPEND | PERMISSION_MANAGE)
        assert not chain.send([add_authority(chain.program_id, me, me, owner_passkey)], [wallet.owner]).failed
        assert not chain.send(
            [set_limits(chain.program_id, me, me, passkey.public_key, Limit(SOL_MINT, SOL, SOL))], [wallet.owner]
        ).failed

    pay = execute(chain.program_id, me, PLACEHOLDER, [SolTransfer(Keypair().pubkey(), SOL // 10)])
    record("execute, passkey-approved: 1 SOL transfer, 1 approval", send_approved(chain, wallet, pay, [first]))
    pay = execute(chain.program_id, me, PLACEHOLDER, [SolTransfer(Keypair().pubkey(), 2 * SOL)])
    record(
        "execute, passkey-approved: 1 SOL transfer, 2 approvals (joint)", send_approved(chain, wallet, pay, [first, second])
    )
    add = add_authority(chain.program_id, me, PLACEHOLDER, Authority(Keypair().pubkey(), PERMISSION_SPEND))
    record("add_authority, passkey-approved", send_approved(chain, wallet, add, [first]))

    # guardian changes: the owner's passkey proposes two guardians (delay 0); anyone applies
    guardians, new_owner = [Passkey(), Passkey()], Passkey()
    guardian_keys = [guardian.public_key for guardian in guardians]
    propose = guardians_propose(chain.program_id, me, PLACEHOLDER, guardian_keys, 2)
    record("guardians_propose, passkey-approved (2 guardians)", send_approved(chain, wallet, propose, [first]))
    record("guardians_apply (2 guardians)", chain.send([guardians_apply(chain.program_id, me, guardian_keys, 2)], []))

    # recovery: the two guardians start it together (threshold 2, no timelock); anyone executes it
    settings = set_settings(chain.program_id, me, me, rp_id_hash=RP_ID_HASH, guardian_threshold=2)
    assert not chain.send([settings], [wallet.owner]).failed
    start = recovery_start(chain.program_id, me, PLACEHOLDER, new_owner.public_key)
    record("recovery_start, passkey-approved (2 guardians)", send_approved(chain, wallet, start, guardians))
    recovery_id = chain.config_of(me).recovery_id
    record("recovery_execute", chain.send([recovery_execute(chain.program_id, me, recovery_id)], []))
    return measured


def test_each_instruction_stays_within_its_compute_budget() -> None:
    measured = measure()
    over = {name: (units, BUDGETS[name]) for name, units in measured.items() if units > BUDGETS[name]}
    assert over == {}
    assert set(measured) == set(BUDGETS)


def test_the_program_stays_small() -> None:
    assert PROGRAM_SO.stat().st_size <= PROGRAM_SIZE_CEILING


if __name__ == "__main__":  # prints the table for the doc: python -m programs.wallet.tests.test_compute_units
    print(f"program size: {PROGRAM_SO.stat().st_size} bytes")
    for name, units in measure().items():
        print(f"| {name} | {units:,} |")
