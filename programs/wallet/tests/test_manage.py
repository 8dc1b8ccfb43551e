"""``add_authority``, ``remove_authority``, ``set_limits``: need ``manage``; the last owner stays."""

from __future__ import annotations

from solders.keypair import Keypair

from programs.wallet.tests.conftest import DAY, SOL, START_TIME, Chain, Wallet
from wallets.program import SOL_MINT, Authority, Limit, SolTransfer, add_authority, execute, remove_authority, set_limits
from wallets.program.errors import ProgramErrorCode
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND


def _add_spender(chain: Chain, wallet: Wallet, spender: Keypair, expires_at: int = 0) -> None:
    owner = wallet.owner.pubkey()
    sent = chain.send(
        [
            add_authority(chain.program_id, owner, owner, Authority(spender.pubkey(), PERMISSION_SPEND, expires_at)),
            set_limits(chain.program_id, owner, owner, spender.pubkey(), Limit(SOL_MINT, SOL // 10, SOL // 5, DAY)),
        ],
        [wallet.owner],
    )
    assert not sent.failed, sent.logs


def test_an_added_spender_spends_within_its_own_limits(chain: Chain, wallet: Wallet) -> None:
    # given the owner adds a spend-only key with 0.1 SOL per transaction
    spender = Keypair()
    _add_spender(chain, wallet, spender)
    recipient = Keypair().pubkey()

    # when the spender pays 0.1 SOL, then tries 0.1 SOL + 1
    paid = chain.send(
        [execute(chain.program_id, wallet.owner.pubkey(), spender.pubkey(), [SolTransfer(recipient, SOL // 10)])], [spender]
    )
    over = chain.send(
        [execute(chain.program_id, wallet.owner.pubkey(), spender.pubkey(), [SolTransfer(recipient, SOL // 10 + 1)])],
        [spender],
    )

    # then the first passes under its own limit, the second is refused
    assert not paid.failed, paid.logs
    assert over.error_code == ProgramErrorCode.PER_TRANSACTION_LIMIT_EXCEEDED
    assert chain.balance(recipient) == SOL // 10
    config = chain.config_of(wallet.owner.pubkey())
    assert config.authority(spender.pubkey()).permissions == PERMISSION_SPEND
    assert config.limit(spender.pubkey(), SOL_MINT).spent == SOL // 10
    assert config.limit(wallet.owner.pubkey(), SOL_MINT).spent == 0
    assert config.nonce == 0  # signer actions do not count: the nonce counts passkey approvals


def test_a_spender_cannot_manage(chain: Chain, wallet: Wallet) -> None:
    # given a spend-only key
    spender, friend = Keypair(), Keypair()
    _add_spender(chain, wallet, spender)
    before = chain.data(wallet.config)
    owner = wallet.owner.pubkey()

    # when it tries to add a key, raise its limit, remove the owner
    added = chain.send(
        [add_authority(chain.program_id, owner, spender.pubkey(), Authority(friend.pubkey(), PERMISSION_SPEND))], [spender]
    )
    raised = chain.send(
        [set_limits(chain.program_id, owner, spender.pubkey(), spender.pubkey(), Limit(SOL_MINT, SOL, SOL))], [spender]
    )
    removed = chain.send([remove_authority(chain.program_id, owner, spender.pubkey(), owner)], [spender])

    # then all are refused and the config is unchanged
    assert [s.error_code for s in (added, raised, removed)] == [ProgramErrorCode.PERMISSION_DENIED] * 3
    assert chain.data(wallet.config) == before


def test_a_removed_authority_can_no_longer_spend_and_its_limits_are_gone(chain: Chain, wallet: Wallet) -> None:
    # given a spender that the owner then removes
    spender = Keypair()
    _add_spender(chain, wallet, spender)
    owner = wallet.owner.pubkey()
    assert not chain.send([remove_authority(chain.program_id, owner, owner, spender.pubkey())], [wallet.owner]).failed
    vault_before = chain.balance(wallet.vault)

    # when the removed key tries to spend
    sent = chain.send([execute(chain.program_id, owner, spender.pubkey(), [SolTransfer(spender.pubkey(), 1)])], [spender])

    # then it is refused, and neither it nor its limit is in the config
    assert sent.error_code == ProgramErrorCode.UNKNOWN_AUTHORITY
    assert chain.balance(wallet.vault) == vault_before
    config = chain.config_of(owner)
    assert config.authority(spender.pubkey()) is None
    assert config.limit(spender.pubkey(), SOL_MINT) is None
    assert [limit.authority for limit in config.limits] == [owner]


def test_the_last_owner_cannot_be_removed_but_one_of_two_can(chain: Chain, wallet: Wallet) -> None:
    owner = wallet.owner.pubkey()
    # when the only owner removes itself
    alone = chain.send([remove_authority(chain.program_id, owner, owner, owner)], [wallet.owner])
    # then refused
    assert alone.error_code == ProgramErrorCode.LAST_OWNER

    # given a second owner
    second = Keypair()
    assert not chain.send(
        [add_authority(chain.program_id, owner, owner, Authority(second.pubkey(), PERMISSION_MANAGE))], [wallet.owner]
    ).failed
    # when the second removes the first
    sent = chain.send([remove_authority(chain.program_id, owner, second.pubkey(), owner)], [second])
    # then it is gone, and the second is now the last owner
    assert not sent.failed, sent.logs
    assert [a.key for a in chain.config_of(owner).authorities] == [second.pubkey()]
    last = chain.send([remove_authority(chain.program_id, owner, second.pubkey(), second.pubkey())], [second])
    assert last.error_code == ProgramErrorCode.LAST_OWNER


def test_an_expired_owner_does_not_count_as_the_remaining_owner(chain: Chain, wallet: Wallet) -> None:
    # given a second owner whose key expires in an hour
    owner = wallet.owner.pubkey()
    temporary = Keypair()
    authority = Authority(temporary.pubkey(), PERMISSION_MANAGE, expires_at=START_TIME + 3600)
    assert not chain.send([add_authority(chain.program_id, owner, owner, authority)], [wallet.owner]).failed

    # when, after the expiry, the permanent owner removes itself
    chain.set_time(START_TIME + 3600)
    sent = chain.send([remove_authority(chain.program_id, owner, owner, owner)], [wallet.owner])

    # then refused: the expired key could not act
    assert sent.error_code == ProgramErrorCode.LAST_OWNER


def test_a_session_key_spends_until_it_expires(chain: Chain, wallet: Wallet) -> None:
    # given a spend key valid for one hour
    session = Keypair()
    _add_spender(chain, wallet, session, expires_at=START_TIME + 3600)
    recipient = Keypair().pubkey()
    pay = execute(chain.program_id, wallet.owner.pubkey(), session.pubkey(), [SolTransfer(recipient, 1_000_000)])

    # when it pays one second before and exactly at its expiry
    chain.set_time(START_TIME + 3599)
    before = chain.send([pay], [session])
    chain.set_time(START_TIME + 3600)
    at_expiry = chain.send([pay], [session])

    # then the first passes and the second is refused
    assert not before.failed, before.logs
    assert at_expiry.error_code == ProgramErrorCode.AUTHORITY_EXPIRED
    assert chain.balance(recipient) == 1_000_000


def test_set_limits_changes_caps_keeping_the_spent_counter_and_deletes(chain: Chain, wallet: Wallet) -> None:
    # given 0.5 SOL spent of a 2 SOL daily cap
    owner = wallet.owner.pubkey()
    recipient = Keypair().pubkey()
    assert not chain.send(
        [execute(chain.program_id, owner, owner, [SolTransfer(recipient, SOL // 2)])], [wallet.owner]
    ).failed

    # when the owner lowers the caps
    lowered = chain.send(
        [set_limits(chain.program_id, owner, owner, owner, Limit(SOL_MINT, SOL // 4, SOL, DAY))], [wallet.owner]
    )

    # then the counter and period start stayed
    assert not lowered.failed, lowered.logs
    limit = chain.config_of(owner).limit(owner, SOL_MINT)
    assert (limit.per_transaction_cap, limit.period_cap, limit.spent, limit.period_start) == (
        SOL // 4,
        SOL,
        SOL // 2,
        START_TIME,
    )

    # when the owner deletes the limit (both caps 0)
    deleted = chain.send([set_limits(chain.program_id, owner, owner, owner, Limit(SOL_MINT, 0, 0, DAY))], [wallet.owner])
    pay = chain.send([execute(chain.program_id, owner, owner, [SolTransfer(recipient, 1)])], [wallet.owner])

    # then spending SOL is denied by default
    assert not deleted.failed, deleted.logs
    assert chain.config_of(owner).limits == ()
    assert pay.error_code == ProgramErrorCode.NO_LIMIT_FOR_MINT
    assert chain.balance(recipient) == SOL // 2


def test_tables_are_bounded(chain: Chain, wallet: Wallet) -> None:
    owner = wallet.owner.pubkey()
    # given 7 more authorities (8 in all)
    for _ in range(7):
        sent = chain.send(
            [add_authority(chain.program_id, owner, owner, Authority(Keypair().pubkey(), PERMISSION_SPEND))], [wallet.owner]
        )
        assert not sent.failed, sent.logs
    # when a ninth is added
    ninth = chain.send(
        [add_authority(chain.program_id, owner, owner, Authority(Keypair().pubkey(), PERMISSION_SPEND))], [wallet.owner]
    )
    # then the table is full
    assert ninth.error_code == ProgramErrorCode.AUTHORITY_TABLE_FULL
    # and an existing key cannot be added twice
    twice = chain.send([add_authority(chain.program_id, owner, owner, Authority(owner, PERMISSION_SPEND))], [wallet.owner])
    assert twice.error_code == ProgramErrorCode.AUTHORITY_EXISTS

    # given 15 more limits for the owner (16 in all)
    for i in range(15):
        mint = Keypair().pubkey()
        sent = chain.send(
            [set_limits(chain.program_id, owner, owner, owner, Limit(mint, i + 1, i + 1, DAY))], [wallet.owner]
        )
        assert not sent.failed, sent.logs
    extra = chain.send(
        [set_limits(chain.program_id, owner, owner, owner, Limit(Keypair().pubkey(), 1, 1, DAY))], [wallet.owner]
    )
    assert extra.error_code == ProgramErrorCode.LIMIT_TABLE_FULL
    assert len(chain.config_of(owner).limits) == 16


def test_set_limits_refuses_a_zero_period(chain: Chain, wallet: Wallet) -> None:
    owner = wallet.owner.pubkey()
    before = chain.data(wallet.config)
    sent = chain.send([set_limits(chain.program_id, owner, owner, owner, Limit(SOL_MINT, 1, 1, 0))], [wallet.owner])
    assert sent.error_code == ProgramErrorCode.INVALID_LIMIT
    assert chain.data(wallet.config) == before
