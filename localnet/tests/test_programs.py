"""Programs at genesis (``--bpf-program ADDRESS PATH``): the Numpay wallet program, loaded by localnet,
answers ``getAccountInfo`` like a cluster, executes through JSON-RPC and survives ``kill -9``."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from solana.rpc.commitment import Confirmed, Finalized, Processed
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction

from localnet.testing import Localnet
from localnet.tests.conftest import LAMPORTS_PER_SOL, rpc_call, wait_for_status
from localnet.tests.solana_py import SyncAsyncClient
from wallets.program import Authority, config_address, create, decode_config
from wallets.program.instructions import PERMISSION_MANAGE, PERMISSION_SPEND

WALLET_SO = Path(__file__).resolve().parents[2] / "programs" / "wallet" / "numpay_wallet.so"
PROGRAM_ID = Pubkey.from_string("NPwa11etTest1111111111111111111111111111111")
BPF_LOADER_2 = "BPFLoader2111111111111111111111111111111111"


def create_wallet(client: SyncAsyncClient, program_id: Pubkey) -> tuple[Keypair, Signature]:
    """Send the wallet program's ``create`` for a new funded creator; returns (creator, signature)."""
    creator = Keypair()
    wait_for_status(client, client.request_airdrop(creator.pubkey(), LAMPORTS_PER_SOL).value, "confirmed")
    instruction = create(
        program_id, creator.pubkey(), creator.pubkey(), [Authority(creator.pubkey(), PERMISSION_SPEND | PERMISSION_MANAGE)]
    )
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    signature = client.send_transaction(Transaction([creator], Message([instruction], creator.pubkey()), blockhash)).value
    return creator, signature


def test_genesis_program_answers_like_a_cluster(fresh_localnet: Callable[..., Localnet]) -> None:
    # given a localnet started with the wallet program at a fixed address
    node = fresh_localnet(programs=[(PROGRAM_ID, WALLET_SO)])
    elf = WALLET_SO.read_bytes()
    # when the program account is read at every commitment
    values = [
        rpc_call(node.url, "getAccountInfo", [str(PROGRAM_ID), {"encoding": "base64", "commitment": level}])["result"][
            "value"
        ]
        for level in ("processed", "confirmed", "finalized")
    ]
    rent = rpc_call(node.url, "getMinimumBalanceForRentExemption", [len(elf)])["result"]
    # then it is there at once, executable, owned by BPFLoader2, holding the ELF
    for value in values:
        assert value == {
            "data": [base64.b64encode(elf).decode(), "base64"],
            "executable": True,
            "lamports": rent,
            "owner": BPF_LOADER_2,
            "rentEpoch": 2**64 - 1,
            "space": len(elf),
        }


def test_genesis_program_executes_and_survives_kill_and_restart(fresh_localnet: Callable[..., Localnet]) -> None:
    # given the wallet program at genesis and a wallet created through JSON-RPC
    node = fresh_localnet(programs=[(str(PROGRAM_ID), WALLET_SO)])
    client = SyncAsyncClient(node.url, commitment=Confirmed)
    creator, signature = create_wallet(client, PROGRAM_ID)
    status = wait_for_status(client, signature, "confirmed")
    config = config_address(PROGRAM_ID, creator.pubkey())[0]
    # when localnet is killed and restarted on the same ledger WITHOUT the flag
    node.kill()
    node.programs = []
    node.restart()
    client = SyncAsyncClient(node.url, commitment=Confirmed)
    # then the wallet, the program and its history are still there, and the program still runs
    assert status.err is None
    wallet = decode_config(bytes(client.get_account_info(config, Processed).value.data))
    assert wallet.creator == creator.pubkey()
    assert [entry.key for entry in wallet.authorities] == [creator.pubkey()]
    program = client.get_account_info(PROGRAM_ID, Finalized).value
    assert (program.executable, str(program.owner), bytes(program.data)) == (True, BPF_LOADER_2, WALLET_SO.read_bytes())
    second_creator, second = create_wallet(client, PROGRAM_ID)
    assert wait_for_status(client, second, "confirmed").err is None
    logs = client.get_transaction(second, commitment=Confirmed).value.transaction.meta.log_messages
    assert logs[0] == f"Program {PROGRAM_ID} invoke [1]"
    assert logs[-1] == f"Program {PROGRAM_ID} success"
    assert client.get_account_info(config_address(PROGRAM_ID, second_creator.pubkey())[0], Processed).value is not None


def test_program_flag_given_again_writes_nothing_new(fresh_localnet: Callable[..., Localnet]) -> None:
    # given a ledger where the program was loaded at genesis
    node = fresh_localnet(programs=[(PROGRAM_ID, WALLET_SO)])
    before = rpc_call(node.url, "getAccountInfo", [str(PROGRAM_ID), {"encoding": "base64"}])["result"]["value"]
    # when it restarts with the same flag
    node.restart()
    # then the account is unchanged and no transaction was recorded for it
    assert rpc_call(node.url, "getAccountInfo", [str(PROGRAM_ID), {"encoding": "base64"}])["result"]["value"] == before
    assert rpc_call(node.url, "getTransactionCount")["result"] == 0


def test_bad_program_file_is_refused_at_startup(tmp_path: Path) -> None:
    # given a file that is not an sBPF ELF, and an ELF header with garbage after it
    not_elf = tmp_path / "not.so"
    not_elf.write_bytes(b"hello")
    broken = tmp_path / "broken.so"
    broken.write_bytes(b"\x7fELF" + bytes(60))
    results = []
    # when localnet is started with each
    for path in (not_elf, broken):
        results.append(
            subprocess.run(  # noqa: S603 - our own interpreter and module
                [
                    sys.executable,
                    "-m",
                    "localnet",
                    "--port",
                    "0",
                    "--ledger",
                    str(tmp_path / f"l-{path.stem}"),
                    "--bpf-program",
                    str(PROGRAM_ID),
                    str(path),
                ],
                capture_output=True,
                timeout=60,
                check=False,
                cwd=Path(__file__).resolve().parents[2],
            )
        )
    # then it exits with status 2 and says why, before listening
    assert [result.returncode for result in results] == [2, 2]
    assert results[0].stdout == b""
    assert f"invalid --bpf-program: {not_elf} is not an ELF file" in results[0].stderr.decode()
    assert f"invalid --bpf-program: cannot load the program at {PROGRAM_ID}" in results[1].stderr.decode()


def test_program_address_may_be_a_keypair_file(fresh_localnet: Callable[..., Localnet], tmp_path: Path) -> None:
    # given a program keypair written as the Solana CLI writes it
    keypair = Keypair()
    keypair_file = tmp_path / "program-keypair.json"
    keypair_file.write_text(str(list(bytes(keypair))))
    # when localnet is started with it as the address
    node = fresh_localnet(programs=[(keypair_file, WALLET_SO)])
    # then the program sits at the keypair's public key
    value = rpc_call(node.url, "getAccountInfo", [str(keypair.pubkey()), {"encoding": "base64"}])["result"]["value"]
    assert (value["executable"], value["owner"], value["space"]) == (True, BPF_LOADER_2, len(WALLET_SO.read_bytes()))
