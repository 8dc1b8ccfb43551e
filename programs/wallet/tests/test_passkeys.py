"""Passkey (Secp256r1) authorities and passkey-approved actions: real P-256 keys, real WebAuthn
authenticatorData / clientDataJSON, the secp256r1 precompile in LiteSVM. Every refusal asserts that
the vault and the config are unchanged."""

from __future__ import annotations

import hashlib
import struct

import pytest
from solders.account import Account
from solders.compute_budget import set_compute_unit_limit
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from programs.wallet.tests.authenticator import (
    FLAG_UP,
    FLAG_UV,
    PLACEHOLDER,
    RP_ID_HASH,
    Passkey,
    approved,
    challenge_for,
    expiry,
    protect,
    send_approved,
    vault_and_config,
)
from programs.wallet.tests.conftest import DAY, SOL, SOLANA_FEE, Chain, Wallet, make_wallet
from wallets.program import (
    SECP256R1_PROGRAM_ID,
    SOL_MINT,
    Authority,
    Limit,
    ProgramErrorCode,
    SolTransfer,
    TokenTransfer,
    add_authority,
    approve_with_passkeys,
    associated_token_address,
    config_address,
    create,
    decode_config,
    execute,
    remove_authority,
    set_limits,
    set_permissions,
    set_settings,
    vault_address,
)
from wallets.program.approvals import secp256r1_instruction, split_approved
from wallets.program.instructions import KIND_SECP256R1, PERMISSION_GUARDIAN, PERMISSION_MANAGE, PERMISSION_SPEND

E = ProgramErrorCode


@pytest.fixture
def passkey() -> Passkey:
    return Passkey()


@pytest.fixture
def protected(chain: Chain, wallet: Wallet, passkey: Passkey) -> Wallet:
    sent = protect(chain, wallet, passkey)
    assert not sent.failed, sent.logs
    return wallet


def pay(chain: Chain, wallet: Wallet, recipient: Pubkey, amount: int) -> Instruction:
    return execute(chain.program_id, wallet.owner.pubkey(), PLACEHOLDER, [SolTransfer(recipient, amount)])


def refused(chain: Chain, wallet: Wallet, instructions: list[Instruction], code: int, signers=()) -> None:  # noqa: ANN001
    before = vault_and_config(chain, wallet)
    sent = chain.send(instructions, list(signers))
    assert sent.failed
    assert sent.error_code == code, sent.logs
    assert vault_and_config(chain, wallet) == before


# --- authorities of kind 2 and protected mode


def test_protected_mode_in_one_transaction_by_the_custody_key(chain: Chain, wallet: Wallet, passkey: Passkey) -> None:
    # when the custody key switches the wallet to protected mode
    sent = protect(chain, wallet, passkey)

    # then the passkey is a kind-2 owner, the custody key a capped spender, the RP ID hash stored
    assert not sent.failed, sent.logs
    config = chain.config_of(wallet.owner.pubkey())
    entry = config.authority(passkey.public_key)
    assert (entry.kind, entry.permissions, entry.key) == (
        KIND_SECP256R1,
        PERMISSION_SPEND | PERMISSION_MANAGE,
        passkey.public_key,
    )
    assert config.passkey_keys == (passkey.public_key,)
    assert config.authority(wallet.owner.pubkey()).permissions == PERMISSION_SPEND
    assert config.limit(wallet.owner.pubkey(), SOL_MINT).per_transaction_cap == SOL // 10
    assert config.rp_id_hash == RP_ID_HASH
    assert config.nonce == 0  # signer actions do not count

    # and the custody key can no longer manage
    me = wallet.owner.pubkey()
    refused(
        chain,
        wallet,
        [add_authority(chain.program_id, me, me, Authority(Keypair().pubkey(), PERMISSION_MANAGE))],
        E.PERMISSION_DENIED,
        [wallet.owner],
    )


def test_create_accepts_a_passkey_authority(chain: Chain, passkey: Passkey) -> None:
    owner = Keypair()
    authorities = [Authority(owner.pubkey(), PERMISSION_SPEND), Authority.passkey(passkey.public_key, PERMISSION_MANAGE)]
    sent = chain.send([create(chain.program_id, owner.pubkey(), chain.fee_payer.pubkey(), authorities)], [owner])
    assert not sent.failed, sent.logs
    assert chain.config_of(owner.pubkey()).authority(passkey.public_key).kind == KIND_SECP256R1


def test_the_same_passkey_cannot_be_added_twice(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    action = add_authority(chain.program_id, protected.owner.pubkey(), PLACEHOLDER, Authority.passkey(passkey.public_key, 1))
    refused(chain, protected, approved(chain, protected, action, [passkey]), E.AUTHORITY_EXISTS)


def test_set_permissions_refuses_to_leave_no_owner(chain: Chain, wallet: Wallet) -> None:
    me = wallet.owner.pubkey()
    refused(chain, wallet, [set_permissions(chain.program_id, me, me, me, PERMISSION_SPEND)], E.LAST_OWNER, [wallet.owner])


def test_set_settings_refuses_a_joint_threshold_of_one(chain: Chain, wallet: Wallet) -> None:
    me = wallet.owner.pubkey()
    instruction = set_settings(chain.program_id, me, me, rp_id_hash=RP_ID_HASH, joint_threshold=1)
    refused(chain, wallet, [instruction], E.INVALID_INSTRUCTION_DATA, [wallet.owner])


# --- passkey-approved execute


def test_a_passkey_approved_sol_payment_lands_and_bumps_the_nonce(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    recipient = Keypair().pubkey()
    vault_before = chain.balance(protected.vault)
    relayer_before = chain.balance(chain.fee_payer.pubkey())

    # when the passkey approves 1.5 SOL (above the custody key's cap) and the relayer submits it
    sent = send_approved(chain, protected, pay(chain, protected, recipient, 3 * SOL // 2), [passkey])

    # then it lands under the passkey's own limit and the nonce moved; the relayer paid two
    # signature fees (its own and the precompile's secp256r1 signature) and nothing else
    assert not sent.failed, sent.logs
    assert chain.balance(chain.fee_payer.pubkey()) == relayer_before - 2 * SOLANA_FEE
    assert chain.balance(recipient) == 3 * SOL // 2
    assert chain.balance(protected.vault) == vault_before - 3 * SOL // 2
    config = chain.config_of(protected.owner.pubkey())
    assert config.nonce == 1
    assert config.limit(passkey.public_key, SOL_MINT).spent == 3 * SOL // 2


def test_a_passkey_approved_token_payment_lands(chain: Chain, passkey: Passkey) -> None:
    usdc, usdc_authority = chain.create_mint()
    wallet = make_wallet(chain)
    chain.mint_to(usdc, usdc_authority, wallet.vault, 10**9)
    assert not protect(chain, wallet, passkey).failed
    me = wallet.owner.pubkey()
    sent = send_approved(
        chain,
        wallet,
        set_limits(chain.program_id, me, PLACEHOLDER, passkey.public_key, Limit(usdc, 10**8, 10**8)),
        [passkey],
    )
    assert not sent.failed, sent.logs
    recipient = Keypair().pubkey()
    action = execute(
        chain.program_id, me, PLACEHOLDER, [TokenTransfer(usdc, recipient, 25 * 10**6, 6, chain.fee_payer.pubkey())]
    )

    sent = send_approved(chain, wallet, action, [passkey])

    assert not sent.failed, sent.logs
    assert chain.token_balance(associated_token_address(recipient, usdc)) == 25 * 10**6
    assert chain.config_of(me).nonce == 2


def test_the_passkeys_limits_apply_to_a_single_approval(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    action = pay(chain, protected, Keypair().pubkey(), 2 * SOL + 1)
    refused(chain, protected, approved(chain, protected, action, [passkey]), E.PER_TRANSACTION_LIMIT_EXCEEDED)


def test_a_signer_payment_does_not_make_a_pending_approval_stale(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    # given a passkey approval waiting while the custody key pays within its caps
    recipient = Keypair().pubkey()
    instructions = approved(chain, protected, pay(chain, protected, recipient, SOL), [passkey])
    me = protected.owner.pubkey()
    custody = chain.send(
        [execute(chain.program_id, me, me, [SolTransfer(Keypair().pubkey(), SOL // 20)])], [protected.owner]
    )
    assert not custody.failed, custody.logs
    assert chain.config_of(me).nonce == 0

    # then the approval still lands
    sent = chain.send(instructions, [])
    assert not sent.failed, sent.logs
    assert chain.balance(recipient) == SOL


def test_payment_get_client_data_is_accepted(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    recipient = Keypair().pubkey()
    action = pay(chain, protected, recipient, SOL)
    expires_at = expiry(chain)
    assertion = passkey.get_assertion(challenge_for(chain, protected, action, expires_at), type_="payment.get")
    sent = chain.send(approve_with_passkeys(action, [assertion], expires_at=expires_at), [])
    assert not sent.failed, sent.logs
    assert chain.balance(recipient) == SOL


# --- joint approval (2-of-n)


@pytest.fixture
def jointly_owned(chain: Chain, wallet: Wallet, passkey: Passkey) -> tuple[Wallet, Passkey, Passkey]:
    assert not protect(chain, wallet, passkey, joint_threshold=2).failed
    second = Passkey()
    me = wallet.owner.pubkey()
    add = add_authority(
        chain.program_id, me, PLACEHOLDER, Authority.passkey(second.public_key, PERMISSION_SPEND | PERMISSION_MANAGE)
    )
    sent = send_approved(chain, wallet, add, [passkey])
    assert not sent.failed, sent.logs
    sent = send_approved(
        chain, wallet, set_limits(chain.program_id, me, PLACEHOLDER, second.public_key, Limit(SOL_MINT, SOL, SOL)), [passkey]
    )
    assert not sent.failed, sent.logs
    return wallet, passkey, second


def test_two_distinct_owner_passkeys_together_lift_the_limits(chain: Chain, jointly_owned) -> None:  # noqa: ANN001
    wallet, first, second = jointly_owned
    recipient = Keypair().pubkey()
    spent_before = chain.config_of(wallet.owner.pubkey()).limit(first.public_key, SOL_MINT).spent

    # when both owners approve 5 SOL (above either one's caps)
    sent = send_approved(chain, wallet, pay(chain, wallet, recipient, 5 * SOL), [first, second])

    # then it lands and no counter moved
    assert not sent.failed, sent.logs
    assert chain.balance(recipient) == 5 * SOL
    config = chain.config_of(wallet.owner.pubkey())
    assert config.limit(first.public_key, SOL_MINT).spent == spent_before
    assert config.limit(second.public_key, SOL_MINT).spent == 0


def test_one_owner_passkey_alone_stays_within_its_limits(chain: Chain, jointly_owned) -> None:  # noqa: ANN001
    wallet, first, _ = jointly_owned
    action = pay(chain, wallet, Keypair().pubkey(), 5 * SOL)
    refused(chain, wallet, approved(chain, wallet, action, [first]), E.PER_TRANSACTION_LIMIT_EXCEEDED)


def test_the_same_passkey_twice_does_not_count_as_two_owners(chain: Chain, jointly_owned) -> None:  # noqa: ANN001
    wallet, first, _ = jointly_owned
    action = pay(chain, wallet, Keypair().pubkey(), 5 * SOL)
    refused(chain, wallet, approved(chain, wallet, action, [first, first]), E.DUPLICATE_APPROVAL)


def test_a_spend_only_second_passkey_does_not_lift_the_limits(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    me = protected.owner.pubkey()
    spender = Passkey()
    settings = set_settings(chain.program_id, me, PLACEHOLDER, rp_id_hash=RP_ID_HASH, joint_threshold=2)
    assert not send_approved(chain, protected, settings, [passkey]).failed
    add = add_authority(chain.program_id, me, PLACEHOLDER, Authority.passkey(spender.public_key, PERMISSION_SPEND))
    assert not send_approved(chain, protected, add, [passkey]).failed
    limit = set_limits(chain.program_id, me, PLACEHOLDER, spender.public_key, Limit(SOL_MINT, SOL, SOL))
    assert not send_approved(chain, protected, limit, [passkey]).failed
    action = pay(chain, protected, Keypair().pubkey(), 5 * SOL)
    refused(chain, protected, approved(chain, protected, action, [passkey, spender]), E.PER_TRANSACTION_LIMIT_EXCEEDED)


# --- passkey-approved manage actions


def test_passkey_approved_manage_actions(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    me, program = protected.owner.pubkey(), chain.program_id
    other = Passkey()
    guardian = Authority.passkey(other.public_key, PERMISSION_GUARDIAN)
    for action in [
        add_authority(program, me, PLACEHOLDER, guardian),
        set_permissions(program, me, PLACEHOLDER, other.public_key, PERMISSION_GUARDIAN | PERMISSION_SPEND),
        set_limits(program, me, PLACEHOLDER, other.public_key, Limit(SOL_MINT, 1, 1)),
        set_permissions(program, me, PLACEHOLDER, me, PERMISSION_SPEND | PERMISSION_MANAGE),
        remove_authority(program, me, PLACEHOLDER, other.public_key),
    ]:
        sent = send_approved(chain, protected, action, [passkey])
        assert not sent.failed, sent.logs
    config = chain.config_of(me)
    assert config.nonce == 5
    assert config.authority(other.public_key) is None
    assert config.authority(me).permissions == PERMISSION_SPEND | PERMISSION_MANAGE


def test_the_last_owner_passkey_cannot_remove_itself(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    action = remove_authority(chain.program_id, protected.owner.pubkey(), PLACEHOLDER, passkey.public_key)
    refused(chain, protected, approved(chain, protected, action, [passkey]), E.LAST_OWNER)


# --- adversarial: every one fails on-chain and changes nothing


def _swap_program_instruction(instructions: list[Instruction], program_instruction: Instruction) -> list[Instruction]:
    return [instructions[0], program_instruction]


def test_an_assertion_for_another_amount_is_refused(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    recipient = Keypair().pubkey()
    expires_at = expiry(chain)
    approved_action = pay(chain, protected, recipient, SOL // 2)
    assertion = passkey.get_assertion(challenge_for(chain, protected, approved_action, expires_at))
    instructions = approve_with_passkeys(pay(chain, protected, recipient, SOL), [assertion], expires_at=expires_at)
    refused(chain, protected, instructions, E.CHALLENGE_MISMATCH)


def test_an_assertion_for_another_recipient_is_refused(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    expires_at = expiry(chain)
    approved_action = pay(chain, protected, Keypair().pubkey(), SOL)
    assertion = passkey.get_assertion(challenge_for(chain, protected, approved_action, expires_at))
    instructions = approve_with_passkeys(pay(chain, protected, Keypair().pubkey(), SOL), [assertion], expires_at=expires_at)
    refused(chain, protected, instructions, E.CHALLENGE_MISMATCH)


def test_an_assertion_for_another_mint_is_refused(chain: Chain, passkey: Passkey) -> None:
    usdc, usdc_authority = chain.create_mint()
    eurc, eurc_authority = chain.create_mint()
    wallet = make_wallet(chain)
    chain.mint_to(usdc, usdc_authority, wallet.vault, 10**9)
    chain.mint_to(eurc, eurc_authority, wallet.vault, 10**9)
    assert not protect(chain, wallet, passkey).failed
    me = wallet.owner.pubkey()
    for mint in (usdc, eurc):
        limit = set_limits(chain.program_id, me, PLACEHOLDER, passkey.public_key, Limit(mint, 10**8, 10**8))
        assert not send_approved(chain, wallet, limit, [passkey]).failed
    recipient, payer = Keypair().pubkey(), chain.fee_payer.pubkey()

    def action(mint: Pubkey) -> Instruction:
        return execute(chain.program_id, me, PLACEHOLDER, [TokenTransfer(mint, recipient, 10**6, 6, payer)])

    expires_at = expiry(chain)
    assertion = passkey.get_assertion(challenge_for(chain, wallet, action(usdc), expires_at))
    refused(chain, wallet, approve_with_passkeys(action(eurc), [assertion], expires_at=expires_at), E.CHALLENGE_MISMATCH)


def test_a_landed_approval_cannot_be_replayed(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    instructions = approved(chain, protected, pay(chain, protected, Keypair().pubkey(), SOL // 2), [passkey])
    assert not chain.send(instructions, []).failed
    refused(chain, protected, instructions, E.CHALLENGE_MISMATCH)


def test_an_approval_over_an_old_nonce_is_refused(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    action = pay(chain, protected, Keypair().pubkey(), SOL // 2)
    assert not send_approved(chain, protected, pay(chain, protected, Keypair().pubkey(), 1_000_000), [passkey]).failed
    expires_at = expiry(chain)
    assertion = passkey.get_assertion(challenge_for(chain, protected, action, expires_at, nonce=0))
    refused(chain, protected, approve_with_passkeys(action, [assertion], expires_at=expires_at), E.CHALLENGE_MISMATCH)


def test_an_approval_for_another_wallet_is_refused(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    # given a second wallet of the same user with the same passkey
    other = make_wallet(chain)
    assert not protect(chain, other, passkey).failed
    recipient = Keypair().pubkey()
    expires_at = expiry(chain)
    assertion = passkey.get_assertion(challenge_for(chain, other, pay(chain, other, recipient, SOL), expires_at))
    # when the approval of a payment from `other` is used on `protected`
    instructions = approve_with_passkeys(pay(chain, protected, recipient, SOL), [assertion], expires_at=expires_at)
    refused(chain, protected, instructions, E.CHALLENGE_MISMATCH)
    assert chain.balance(recipient) == 0


def test_an_expired_approval_is_refused(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    action = pay(chain, protected, Keypair().pubkey(), SOL)
    instructions = approved(chain, protected, action, [passkey], expires_at=expiry(chain, 60))
    chain.set_time(expiry(chain, 61))
    refused(chain, protected, instructions, E.APPROVAL_EXPIRED)


def test_an_approval_valid_exactly_until_expires_at(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    expires_at = expiry(chain, 60)
    instructions = approved(
        chain, protected, pay(chain, protected, Keypair().pubkey(), SOL), [passkey], expires_at=expires_at
    )
    chain.set_time(expires_at)
    assert not chain.send(instructions, []).failed


def test_precompile_offsets_pointing_to_another_instruction_are_refused(
    chain: Chain, protected: Wallet, passkey: Passkey
) -> None:
    # given a valid assertion, and a precompile instruction whose message lives in another
    # (also valid) precompile instruction: the signature verifies, but not over its own bytes
    action = pay(chain, protected, Keypair().pubkey(), SOL)
    instructions = approved(chain, protected, action, [passkey])
    pointing = bytearray(instructions[0].data)
    struct.pack_into("<H", pointing, 2 + 12, 1)  # message_instruction_index = 1 (the copy below)
    forged = Instruction(SECP256R1_PROGRAM_ID, bytes(pointing), [])
    copy = instructions[0]
    program_instruction = _reindex(instructions[1], 0)
    refused(chain, protected, [forged, copy, program_instruction], E.INVALID_PRECOMPILE_INSTRUCTION)


def _reindex(program_instruction: Instruction, precompile_index: int) -> Instruction:
    data = bytearray(program_instruction.data)
    body_len = struct.unpack_from("<H", data, 1)[0]
    at = 3 + body_len + 16
    struct.pack_into("<H", data, at, precompile_index)
    return Instruction(program_instruction.program_id, bytes(data), program_instruction.accounts)


def test_a_passkey_that_is_not_the_wallets_is_refused(chain: Chain, protected: Wallet) -> None:
    action = pay(chain, protected, Keypair().pubkey(), SOL)
    refused(chain, protected, approved(chain, protected, action, [Passkey()]), E.UNKNOWN_AUTHORITY)


def test_a_removed_passkey_is_refused(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    me = protected.owner.pubkey()
    second = Passkey()
    add = add_authority(
        chain.program_id, me, PLACEHOLDER, Authority.passkey(second.public_key, PERMISSION_SPEND | PERMISSION_MANAGE)
    )
    assert not send_approved(chain, protected, add, [passkey]).failed
    assert not send_approved(
        chain, protected, remove_authority(chain.program_id, me, PLACEHOLDER, second.public_key), [passkey]
    ).failed
    action = pay(chain, protected, Keypair().pubkey(), SOL // 100)
    refused(chain, protected, approved(chain, protected, action, [second]), E.UNKNOWN_AUTHORITY)


@pytest.mark.parametrize("flags", [FLAG_UV, FLAG_UP, 0], ids=["no UP", "no UV", "neither"])
def test_user_presence_and_verification_are_required(chain: Chain, protected: Wallet, passkey: Passkey, flags: int) -> None:
    action = pay(chain, protected, Keypair().pubkey(), SOL)
    expires_at = expiry(chain)
    assertion = passkey.get_assertion(challenge_for(chain, protected, action, expires_at), flags=flags)
    refused(chain, protected, approve_with_passkeys(action, [assertion], expires_at=expires_at), E.USER_NOT_VERIFIED)


def test_another_relying_party_is_refused(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    action = pay(chain, protected, Keypair().pubkey(), SOL)
    expires_at = expiry(chain)
    challenge = challenge_for(chain, protected, action, expires_at)
    assertion = passkey.get_assertion(challenge, rp_id_hash=hashlib.sha256(b"evil.example").digest())
    refused(chain, protected, approve_with_passkeys(action, [assertion], expires_at=expires_at), E.RELYING_PARTY_MISMATCH)


def test_a_client_data_json_that_is_not_the_signed_one_is_refused(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    # given a valid precompile instruction, and the program instruction carrying other clientDataJSON
    action = pay(chain, protected, Keypair().pubkey(), SOL)
    expires_at = expiry(chain)
    challenge = challenge_for(chain, protected, action, expires_at)
    good = passkey.get_assertion(challenge)
    other_json = good.client_data_json.replace(b"numpay.example", b"numpay.evil00")
    tampered = type(good)(good.public_key, good.authenticator_data, other_json, good.signature)
    instructions = [secp256r1_instruction([good]), approve_with_passkeys(action, [tampered], expires_at=expires_at)[1]]
    refused(chain, protected, instructions, E.CLIENT_DATA_MISMATCH)


@pytest.mark.parametrize("type_", ["webauthn.create", "payment.create", "webauthn.got"])
def test_a_client_data_type_other_than_get_is_refused(chain: Chain, protected: Wallet, passkey: Passkey, type_: str) -> None:
    action = pay(chain, protected, Keypair().pubkey(), SOL)
    expires_at = expiry(chain)
    assertion = passkey.get_assertion(challenge_for(chain, protected, action, expires_at), type_=type_)
    refused(chain, protected, approve_with_passkeys(action, [assertion], expires_at=expires_at), E.INVALID_CLIENT_DATA_TYPE)


def test_the_challenge_must_be_exact(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    # a challenge with the right prefix but one more character
    action = pay(chain, protected, Keypair().pubkey(), SOL)
    expires_at = expiry(chain)
    challenge = challenge_for(chain, protected, action, expires_at)
    longer = passkey.client_data(challenge).replace(b'","origin"', b'A","origin"')
    assertion = passkey.get_assertion(challenge, client_data_json=longer)
    refused(chain, protected, approve_with_passkeys(action, [assertion], expires_at=expires_at), E.CHALLENGE_MISMATCH)


@pytest.mark.parametrize("substitute", ["random key", "forged copy", "clock sysvar"])
def test_the_instructions_sysvar_cannot_be_substituted(
    chain: Chain, protected: Wallet, passkey: Passkey, substitute: str
) -> None:
    instructions = approved(chain, protected, pay(chain, protected, Keypair().pubkey(), SOL), [passkey])
    if substitute == "clock sysvar":
        fake = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")
    else:
        fake = Keypair().pubkey()
        if substitute == "forged copy":
            # an account whose data looks like an Instructions sysvar naming the real precompile
            real = chain.svm.get_account(Pubkey.from_string("Sysvar1nstructions1111111111111111111111111"))
            data = bytes(real.data) if real is not None else bytes(64)
            chain.svm.set_account(
                fake, Account(10**9, data, Pubkey.from_string("Sysvar1111111111111111111111111111111111111"), False, 0)
            )
    program_instruction = instructions[1]
    accounts = list(program_instruction.accounts)
    accounts[2] = AccountMeta(fake, False, False)
    forged = Instruction(program_instruction.program_id, bytes(program_instruction.data), accounts)
    refused(chain, protected, [instructions[0], forged], E.INVALID_INSTRUCTIONS_SYSVAR)


def test_a_passkey_without_spend_cannot_pay(chain: Chain, wallet: Wallet, passkey: Passkey) -> None:
    assert not protect(chain, wallet, passkey, passkey_permissions=PERMISSION_MANAGE).failed
    action = pay(chain, wallet, Keypair().pubkey(), SOL)
    refused(chain, wallet, approved(chain, wallet, action, [passkey]), E.PERMISSION_DENIED)


def test_a_guardian_passkey_cannot_manage(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    me = protected.owner.pubkey()
    guardian = Passkey()
    add = add_authority(chain.program_id, me, PLACEHOLDER, Authority.passkey(guardian.public_key, PERMISSION_GUARDIAN))
    assert not send_approved(chain, protected, add, [passkey]).failed
    action = add_authority(chain.program_id, me, PLACEHOLDER, Authority(Keypair().pubkey(), PERMISSION_MANAGE))
    refused(chain, protected, approved(chain, protected, action, [guardian]), E.PERMISSION_DENIED)


def test_an_approval_is_refused_when_the_wallet_has_no_rp_id(chain: Chain, passkey: Passkey) -> None:
    owner = Keypair()
    authorities = [
        Authority(owner.pubkey(), PERMISSION_SPEND),
        Authority.passkey(passkey.public_key, PERMISSION_MANAGE | PERMISSION_SPEND),
    ]
    assert not chain.send([create(chain.program_id, owner.pubkey(), chain.fee_payer.pubkey(), authorities)], [owner]).failed
    wallet = Wallet(owner, *_addresses(chain, owner.pubkey()))
    action = add_authority(chain.program_id, owner.pubkey(), PLACEHOLDER, Authority(Keypair().pubkey(), PERMISSION_SPEND))
    refused(chain, wallet, approved(chain, wallet, action, [passkey]), E.RELYING_PARTY_MISMATCH)


def _addresses(chain: Chain, creator: Pubkey) -> tuple[Pubkey, Pubkey]:
    config, _ = config_address(chain.program_id, creator)
    return config, vault_address(chain.program_id, config)[0]


def test_the_passkey_form_of_create_is_refused(chain: Chain, passkey: Passkey) -> None:
    owner = Keypair()
    instruction = create(
        chain.program_id, owner.pubkey(), chain.fee_payer.pubkey(), [Authority(owner.pubkey(), PERMISSION_MANAGE)]
    )
    data = bytes([0x80]) + struct.pack("<H", len(instruction.data) - 1) + bytes(instruction.data)[1:]
    sent = chain.send([Instruction(chain.program_id, data, instruction.accounts)], [owner])
    assert sent.error_code == E.INVALID_INSTRUCTION_DATA
    assert chain.svm.get_account(_addresses(chain, owner.pubkey())[0]) is None


def test_config_decoding_round_trips_the_settings(chain: Chain, protected: Wallet) -> None:
    config = decode_config(chain.data(protected.config))
    assert (config.joint_threshold, config.guardian_threshold, config.recovery_timelock) == (0, 0, 0)
    assert config.rp_id_hash == RP_ID_HASH
    assert DAY > 0


def test_a_compute_budget_instruction_in_front_moves_the_precompile_index(
    chain: Chain, protected: Wallet, passkey: Passkey
) -> None:
    # given the relayer's compute budget instruction first: the precompile is instruction 1
    recipient = Keypair().pubkey()
    action = pay(chain, protected, recipient, SOL)
    expires_at = expiry(chain)
    assertion = passkey.get_assertion(challenge_for(chain, protected, action, expires_at))
    budget = set_compute_unit_limit(100_000)
    # when the approval names index 0 (wrong), it is refused; with index 1 it lands
    wrong = approve_with_passkeys(action, [assertion], expires_at=expires_at, precompile_index=0)
    refused(chain, protected, [budget, *wrong], E.INVALID_PRECOMPILE_INSTRUCTION)
    right = approve_with_passkeys(action, [assertion], expires_at=expires_at, precompile_index=1)
    sent = chain.send([budget, *right], [])
    assert not sent.failed, sent.logs
    assert chain.balance(recipient) == SOL


def test_split_approved_returns_the_signer_forms_body(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    action = pay(chain, protected, Keypair().pubkey(), SOL)
    program_instruction = approved(chain, protected, action, [passkey])[1]
    tag, body, section = split_approved(bytes(program_instruction.data))
    assert (tag, body) == (action.data[0], bytes(action.data[1:]))
    assert struct.unpack_from("<qB", section)[1] == 1
    with pytest.raises(ValueError, match="not a passkey-approved instruction"):
        split_approved(bytes(action.data))


def test_an_expired_passkey_authority_cannot_approve(chain: Chain, protected: Wallet, passkey: Passkey) -> None:
    # given a second owner passkey that expires in an hour
    me = protected.owner.pubkey()
    session = Passkey()
    expires = chain.svm.get_clock().unix_timestamp + 3600
    record = Authority.passkey(session.public_key, PERMISSION_SPEND | PERMISSION_MANAGE, expires_at=expires)
    assert not send_approved(chain, protected, add_authority(chain.program_id, me, PLACEHOLDER, record), [passkey]).failed
    limit = set_limits(chain.program_id, me, PLACEHOLDER, session.public_key, Limit(SOL_MINT, SOL, SOL))
    assert not send_approved(chain, protected, limit, [passkey]).failed
    # when its expiry has passed, its approval (made while it was still valid) is refused
    instructions = approved(chain, protected, pay(chain, protected, Keypair().pubkey(), SOL // 10), [session], expires + 600)
    chain.set_time(expires)
    refused(chain, protected, instructions, E.AUTHORITY_EXPIRED)
