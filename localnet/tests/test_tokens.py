"""SPL Token and Token-2022 through solana-py (``solana_py.Token``: the steps of the removed
``spl.token.client.Token``) and ``jsonParsed`` reads."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.models import MemcmpOpts, TokenAccountOpts, TxOpts
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

from localnet.testing import Localnet
from localnet.tests.conftest import LAMPORTS_PER_SOL, rpc_call, wait_for, wait_for_status
from localnet.tests.solana_py import SyncAsyncClient, Token

PROGRAMS = pytest.mark.parametrize(
    ("program_id", "program_name"),
    [(TOKEN_PROGRAM_ID, "spl-token"), (TOKEN_2022_PROGRAM_ID, "spl-token-2022")],
    ids=["token", "token-2022"],
)
CONFIRM = TxOpts(skip_confirmation=False, preflight_commitment=Confirmed)



def make_token(client: SyncAsyncClient, payer: Keypair, program_id: Pubkey) -> tuple[Token, Pubkey, Keypair, Pubkey]:
    """Mint (6 decimals) + payer's ATA holding 1.000000 + a second owner's ATA holding 0.250000."""
    token = Token.create_mint(client, payer, payer.pubkey(), 6, program_id)
    source = token.create_associated_token_account(payer.pubkey())
    token.mint_to(source, payer, 1_000_000, opts=CONFIRM)
    receiver = Keypair()
    destination = token.create_associated_token_account(receiver.pubkey())
    result = token.transfer_checked(source, destination, payer, 250_000, 6, opts=CONFIRM)
    wait_for_status(client, result.value, "confirmed")
    return token, source, receiver, destination


@PROGRAMS
def test_mint_ata_mint_to_transfer_checked(
    client: SyncAsyncClient, funded: Callable[[int], Keypair], program_id: Pubkey, program_name: str
) -> None:
    # given
    payer = funded(10 * LAMPORTS_PER_SOL)
    # when
    token, source, _receiver, destination = make_token(client, payer, program_id)
    # then
    assert client.get_token_account_balance(source, Confirmed).value.amount == "750000"
    assert client.get_token_account_balance(destination, Confirmed).value.ui_amount_string == "0.25"
    supply = client.get_token_supply(token.pubkey, Confirmed).value
    assert (supply.amount, supply.decimals) == ("1000000", 6)


@PROGRAMS
def test_token_accounts_by_owner_json_parsed(
    client: SyncAsyncClient, funded: Callable[[int], Keypair], program_id: Pubkey, program_name: str
) -> None:
    # given
    payer = funded(10 * LAMPORTS_PER_SOL)
    token, _source, receiver, destination = make_token(client, payer, program_id)
    # when
    by_mint = client.get_token_accounts_by_owner_json_parsed(
        receiver.pubkey(), TokenAccountOpts(mint=token.pubkey), Confirmed
    ).value
    by_program = client.get_token_accounts_by_owner(
        receiver.pubkey(), TokenAccountOpts(program_id=program_id), Confirmed
    ).value
    # then
    assert [entry.pubkey for entry in by_mint] == [destination]
    data = by_mint[0].account.data
    expected_info = {
        "isNative": False,
        "mint": str(token.pubkey),
        "owner": str(receiver.pubkey()),
        "state": "initialized",
        "tokenAmount": {"amount": "250000", "decimals": 6, "uiAmount": 0.25, "uiAmountString": "0.25"},
    }
    if program_id == TOKEN_2022_PROGRAM_ID:
        expected_info["extensions"] = [{"extension": "immutableOwner"}]
    assert data.program == program_name
    assert data.parsed == {"info": expected_info, "type": "account"}
    assert [entry.pubkey for entry in by_program] == [destination]


@PROGRAMS
def test_mint_json_parsed(
    localnet: Localnet, client: SyncAsyncClient, funded: Callable[[int], Keypair], program_id: Pubkey, program_name: str
) -> None:
    # given
    payer = funded(10 * LAMPORTS_PER_SOL)
    token = Token.create_mint(client, payer, payer.pubkey(), 2, program_id)
    # when
    answer = rpc_call(
        localnet.url, "getAccountInfo", [str(token.pubkey), {"encoding": "jsonParsed", "commitment": "confirmed"}]
    )
    # then
    assert answer["result"]["value"]["data"] == {
        "parsed": {
            "info": {
                "decimals": 2,
                "freezeAuthority": None,
                "isInitialized": True,
                "mintAuthority": str(payer.pubkey()),
                "supply": "0",
            },
            "type": "mint",
        },
        "program": program_name,
        "space": 82,
    }
    assert answer["result"]["value"]["owner"] == str(program_id)


@PROGRAMS
def test_transaction_meta_has_token_balances(
    client: SyncAsyncClient, funded: Callable[[int], Keypair], program_id: Pubkey, program_name: str
) -> None:
    # given
    payer = funded(10 * LAMPORTS_PER_SOL)
    token, source, receiver, destination = make_token(client, payer, program_id)
    # when
    result = token.transfer_checked(source, destination, payer, 50_000, 6, opts=CONFIRM)
    wait_for_status(client, result.value, "confirmed")
    meta = client.get_transaction(
        result.value, "json", Confirmed, max_supported_transaction_version=0
    ).value.transaction.meta
    # then
    pre = {(balance.owner, balance.ui_token_amount.amount) for balance in meta.pre_token_balances}
    post = {(balance.owner, balance.ui_token_amount.amount) for balance in meta.post_token_balances}
    assert pre == {(payer.pubkey(), "750000"), (receiver.pubkey(), "250000")}
    assert post == {(payer.pubkey(), "700000"), (receiver.pubkey(), "300000")}
    assert {balance.mint for balance in meta.post_token_balances} == {token.pubkey}
    assert meta.fee == 5_000


def test_program_accounts_with_filters(client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given
    payer = funded(10 * LAMPORTS_PER_SOL)
    token, source, receiver, destination = make_token(client, payer, TOKEN_PROGRAM_ID)
    # when
    holders = client.get_program_accounts(
        TOKEN_PROGRAM_ID, Confirmed, "base64", filters=[165, MemcmpOpts(offset=0, bytes=str(token.pubkey))]
    ).value
    mints = client.get_program_accounts(
        TOKEN_PROGRAM_ID, Confirmed, "base64", filters=[82, MemcmpOpts(offset=4, bytes=str(payer.pubkey()))]
    ).value
    # then
    assert sorted(str(entry.pubkey) for entry in holders) == sorted([str(source), str(destination)])
    assert [entry.pubkey for entry in mints] == [token.pubkey]


def test_multiple_accounts_mixes_found_and_missing(client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given
    payer = funded(3 * LAMPORTS_PER_SOL)
    missing = Keypair().pubkey()
    # when
    accounts = client.get_multiple_accounts([payer.pubkey(), missing], Processed).value
    # then
    assert accounts[0].lamports == 3 * LAMPORTS_PER_SOL
    assert accounts[1] is None


def test_ata_creation_records_inner_instructions(client: SyncAsyncClient, funded: Callable[[int], Keypair]) -> None:
    # given an associated token account created through the ATA program (which invokes System and Token)
    payer = funded(10 * LAMPORTS_PER_SOL)
    token = Token.create_mint(client, payer, payer.pubkey(), 0, TOKEN_PROGRAM_ID)
    account = token.create_associated_token_account(payer.pubkey())
    creation = wait_for(lambda: client.get_signatures_for_address(account, commitment=Confirmed).value)
    # when
    fetched = client.get_transaction(creation[-1].signature, "json", Confirmed, max_supported_transaction_version=0).value
    # then
    transaction = fetched.transaction
    keys = transaction.transaction.message.account_keys
    inner = transaction.meta.inner_instructions
    invoked = [str(keys[instruction.program_id_index]) for instruction in inner[0].instructions]
    assert len(creation) == 1
    assert inner[0].index == 0
    assert "11111111111111111111111111111111" in invoked
    assert str(TOKEN_PROGRAM_ID) in invoked
    assert all(instruction.stack_height == 2 for instruction in inner[0].instructions)
