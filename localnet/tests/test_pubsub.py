"""The PubSub websocket API, driven by solana-py's ``SolanaWsClient`` (``solana.rpc.websocket_api``)
and, where solders cannot parse a documented shape (``"receivedSignature"``) or a test needs the
raw frames, by the ``websockets`` library."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized, Processed
from solana.rpc.models import MemcmpOpts, TxOpts
from solana.rpc.websocket_api import SolanaWsClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilterMentions
from solders.rpc.responses import (
    AccountNotification,
    LogsNotification,
    ProgramNotification,
    RootNotification,
    SignatureNotification,
    SlotNotification,
)
from solders.signature import Signature
from solders.transaction import Transaction
from spl.token.constants import TOKEN_PROGRAM_ID
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from localnet.testing import Localnet
from localnet.tests.conftest import LAMPORTS_PER_SOL, rpc_call, wait_for, wait_for_status
from localnet.tests.solana_py import SyncAsyncClient, Token
from localnet.tests.test_sol import FEE, transfer_transaction

LEVELS = {"processed": 0, "confirmed": 1, "finalized": 2}
NO_CONFIRMATION = TxOpts(skip_confirmation=True, preflight_commitment=Processed)


def run(coroutine: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
    """Run one test coroutine on a new event loop, bounded by ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def signed_transfer(client: AsyncClient, payer: Keypair, destination: Pubkey, lamports: int) -> Transaction:
    blockhash = (await client.get_latest_blockhash(Processed)).value.blockhash
    return transfer_transaction(payer, destination, lamports, blockhash)


async def status_level(client: AsyncClient, signature: Signature) -> int:
    status = (await client.get_signature_statuses([signature])).value[0]
    assert status is not None
    return LEVELS[str(status.confirmation_status).split(".")[-1].lower()]


async def raw_call(websocket: Any, method: str, params: list[Any], request_id: int = 1) -> dict[str, Any]:
    """Send one request frame and return the next frame (its answer)."""
    await websocket.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
    return json.loads(await websocket.recv())


def pubsub_stats(node: Localnet) -> dict[str, int]:
    return rpc_call(node.url, "localnet_getPubsubStats")["result"]


def test_signature_notifications_come_in_commitment_order_once_each_level_is_reached(
    localnet: Localnet, funded: Callable[[int], Keypair]
) -> None:
    # given a signed transfer and one subscription per commitment level, made before sending
    payer = funded(LAMPORTS_PER_SOL)

    async def scenario() -> list[tuple[str, int, Any, int, int]]:
        client = AsyncClient(localnet.url)
        transaction = await signed_transfer(client, payer, Keypair().pubkey(), 2_000_000)
        signature = transaction.signatures[0]
        seen = []
        async with SolanaWsClient(localnet.ws_url) as websocket:
            subscriptions = {}
            for level in (Finalized, Confirmed, Processed):
                subscription = await websocket.signature_subscribe(signature=signature, commitment=level)
                subscriptions[subscription.subscription_id] = level
            # when it is sent
            await client.send_transaction(transaction, opts=NO_CONFIRMATION)
            for _ in range(3):
                notification = await websocket.recv()
                level_now = await status_level(client, signature)
                assert isinstance(notification, SignatureNotification)
                seen.append(
                    (
                        subscriptions[notification.subscription],
                        notification.result.context.slot,
                        notification.result.value.err,
                        level_now,
                        len(websocket._subscriptions),
                    )
                )
            landed = (await client.get_signature_statuses([signature])).value[0].slot
            # then each subscription ended by itself: the server refuses to cancel them
            refused = []
            for subscription_id in subscriptions:
                async with connect(localnet.ws_url) as raw:
                    refused.append((await raw_call(raw, "signatureUnsubscribe", [subscription_id]))["error"])
        await client.close()
        return seen, landed, refused

    seen, landed, refused = run(scenario())
    # then processed, confirmed, finalized arrive in that order, each when the chain has reached it
    assert [(level, slot, err) for level, slot, err, _now, _left in seen] == [
        (Processed, landed, None),
        (Confirmed, landed, None),
        (Finalized, landed, None),
    ]
    assert [now >= LEVELS[level] for level, _slot, _err, now, _left in seen] == [True, True, True]
    assert [left for *_rest, left in seen] == [2, 1, 0]
    assert refused == [{"code": -32602, "message": "Invalid subscription id."}] * 3


def test_signature_already_confirmed_is_notified_at_once(
    client: SyncAsyncClient, localnet: Localnet, funded: Callable[[int], Keypair]
) -> None:
    # given a transfer that is already confirmed
    payer = funded(LAMPORTS_PER_SOL)
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    signature = client.send_transaction(transfer_transaction(payer, Keypair().pubkey(), 2_000_000, blockhash)).value
    status = wait_for_status(client, signature, "confirmed")

    async def scenario() -> SignatureNotification:
        async with SolanaWsClient(localnet.ws_url) as websocket:
            # when a client subscribes to it at confirmed
            await websocket.signature_subscribe(signature=signature, commitment=Confirmed)
            return await asyncio.wait_for(websocket.recv(), 2)

    notification = run(scenario())
    # then the notification follows the answer at once
    assert (notification.result.context.slot, notification.result.value.err) == (status.slot, None)


def test_received_notification_precedes_the_final_one(localnet: Localnet, funded: Callable[[int], Keypair]) -> None:
    # given a subscription with enableReceivedNotification (raw frames: solders cannot parse the
    # documented "receivedSignature" value)
    payer = funded(LAMPORTS_PER_SOL)

    async def scenario() -> tuple[list[dict[str, Any]], int]:
        client = AsyncClient(localnet.url)
        transaction = await signed_transfer(client, payer, Keypair().pubkey(), 2_000_000)
        signature = transaction.signatures[0]
        async with connect(localnet.ws_url) as websocket:
            answer = await raw_call(
                websocket,
                "signatureSubscribe",
                [str(signature), {"commitment": "confirmed", "enableReceivedNotification": True}],
            )
            # when the transaction is sent
            await client.send_transaction(transaction, opts=NO_CONFIRMATION)
            frames = [json.loads(await websocket.recv()) for _ in range(2)]
        await client.close()
        return frames, answer["result"]

    frames, subscription = run(scenario())
    # then "receivedSignature" comes first, then the confirmed status
    assert [frame["method"] for frame in frames] == ["signatureNotification", "signatureNotification"]
    assert [frame["params"]["subscription"] for frame in frames] == [subscription, subscription]
    assert frames[0]["params"]["result"]["value"] == "receivedSignature"
    assert frames[1]["params"]["result"]["value"] == {"err": None}


@pytest.mark.parametrize("encoding", ["base58", "base64", "jsonParsed"])
def test_account_subscribe_notifies_each_change_in_the_encoding_asked(
    localnet: Localnet, funded: Callable[[int], Keypair], encoding: str
) -> None:
    # given a funded account watched at processed and at confirmed
    payer = funded(LAMPORTS_PER_SOL)

    async def scenario() -> list[dict[str, Any]]:
        client = AsyncClient(localnet.url)
        async with connect(localnet.ws_url) as websocket:
            for number, level in enumerate(("processed", "confirmed"), start=1):
                await raw_call(
                    websocket, "accountSubscribe", [str(payer.pubkey()), {"commitment": level, "encoding": encoding}], number
                )
            # when it pays a transfer
            transaction = await signed_transfer(client, payer, Keypair().pubkey(), 3_000_000)
            await client.send_transaction(transaction, opts=NO_CONFIRMATION)
            frames = [json.loads(await websocket.recv()) for _ in range(2)]
        await client.close()
        return frames

    frames = run(scenario())
    expected = rpc_call(
        localnet.url, "getAccountInfo", [str(payer.pubkey()), {"encoding": encoding, "commitment": "confirmed"}]
    )
    # then both levels notify once, in order, with the state getAccountInfo shows
    assert [frame["method"] for frame in frames] == ["accountNotification", "accountNotification"]
    assert [frame["params"]["subscription"] > 0 for frame in frames] == [True, True]
    assert frames[0]["params"]["subscription"] < frames[1]["params"]["subscription"]
    values = [frame["params"]["result"]["value"] for frame in frames]
    assert values == [expected["result"]["value"], expected["result"]["value"]]
    assert values[0]["lamports"] == LAMPORTS_PER_SOL - 3_000_000 - FEE
    assert frames[0]["params"]["result"]["context"]["slot"] == frames[1]["params"]["result"]["context"]["slot"]


def test_account_subscribe_json_parsed_token_account(
    client: SyncAsyncClient, localnet: Localnet, funded: Callable[[int], Keypair]
) -> None:
    # given a token account watched with jsonParsed through solana-py
    payer = funded(10 * LAMPORTS_PER_SOL)
    token = Token.create_mint(client, payer, payer.pubkey(), 6, TOKEN_PROGRAM_ID)
    account = token.create_associated_token_account(payer.pubkey())

    async def scenario() -> AccountNotification:
        async with SolanaWsClient(localnet.ws_url) as websocket:
            await websocket.account_subscribe(pubkey=account, commitment=Confirmed, encoding="jsonParsed")
            # when tokens are minted to it
            await asyncio.to_thread(token.mint_to, account, payer, 7_500_000, NO_CONFIRMATION)
            return await websocket.recv()

    notification = run(scenario())
    # then the notification carries the parsed token account
    parsed = notification.result.value.data.parsed
    assert parsed["type"] == "account"
    assert parsed["info"]["tokenAmount"]["amount"] == "7500000"
    assert parsed["info"]["mint"] == str(token.pubkey)
    assert notification.result.value.owner == TOKEN_PROGRAM_ID


def test_program_subscribe_applies_filters(
    client: SyncAsyncClient, localnet: Localnet, funded: Callable[[int], Keypair]
) -> None:
    # given two mints with a token account each, and a Token-program subscription filtered on mint A
    payer = funded(10 * LAMPORTS_PER_SOL)
    mint_a = Token.create_mint(client, payer, payer.pubkey(), 6, TOKEN_PROGRAM_ID)
    mint_b = Token.create_mint(client, payer, payer.pubkey(), 6, TOKEN_PROGRAM_ID)
    account_a = mint_a.create_associated_token_account(payer.pubkey())
    account_b = mint_b.create_associated_token_account(payer.pubkey())

    async def scenario() -> list[ProgramNotification]:
        async with SolanaWsClient(localnet.ws_url) as websocket:
            await websocket.program_subscribe(
                program_id=TOKEN_PROGRAM_ID,
                commitment=Processed,
                encoding="base64",
                filters=[165, MemcmpOpts(offset=0, bytes=str(mint_a.pubkey))],
            )
            # when both accounts receive tokens (B first)
            await asyncio.to_thread(mint_b.mint_to, account_b, payer, 1, NO_CONFIRMATION)
            await asyncio.to_thread(mint_a.mint_to, account_a, payer, 2, NO_CONFIRMATION)
            first = await websocket.recv()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(websocket.recv(), 0.5)
            return [first]

    notifications = run(scenario())
    # then only mint A's account is notified
    assert [notification.result.value.pubkey for notification in notifications] == [account_a]
    data = bytes(notifications[0].result.value.account.data)
    assert (len(data), data[:32], int.from_bytes(data[64:72], "little")) == (165, bytes(mint_a.pubkey), 2)


def test_logs_subscribe_all_and_mentions(localnet: Localnet, funded: Callable[[int], Keypair]) -> None:
    # given a subscription to all logs and one to logs mentioning a recipient
    payer = funded(LAMPORTS_PER_SOL)
    recipient, bystander = Keypair().pubkey(), Keypair().pubkey()

    async def scenario() -> tuple[list[LogsNotification], list[LogsNotification], list[Signature]]:
        client = AsyncClient(localnet.url)
        async with SolanaWsClient(localnet.ws_url) as everything, SolanaWsClient(localnet.ws_url) as mentions:
            await everything.logs_subscribe(commitment=Confirmed)
            await mentions.logs_subscribe(filter_=RpcTransactionLogsFilterMentions(recipient), commitment=Confirmed)
            # when one transfer goes to the bystander, then one to the recipient
            sent = []
            for destination in (bystander, recipient):
                transaction = await signed_transfer(client, payer, destination, 2_000_000)
                sent.append((await client.send_transaction(transaction, opts=NO_CONFIRMATION)).value)
            seen_all: list[LogsNotification] = []
            while {item.result.value.signature for item in seen_all} < set(sent):
                seen_all.append(await everything.recv())
            seen_mentions = [await mentions.recv()]
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(mentions.recv(), 0.5)
        await client.close()
        return seen_all, seen_mentions, sent

    seen_all, seen_mentions, sent = run(scenario())
    # then "all" sees both (among others' transactions), "mentions" only the recipient's
    mine = [item for item in seen_all if item.result.value.signature in sent]
    assert [item.result.value.signature for item in mine] == sent
    assert [item.result.value.signature for item in seen_mentions] == [sent[1]]
    assert seen_mentions[0].result.value.err is None
    assert seen_mentions[0].result.value.logs == [
        "Program 11111111111111111111111111111111 invoke [1]",
        "Program 11111111111111111111111111111111 success",
    ]


def test_logs_subscribe_refuses_two_mentions(localnet: Localnet) -> None:
    async def scenario() -> dict[str, Any]:
        async with connect(localnet.ws_url) as websocket:
            addresses = [str(Keypair().pubkey()), str(Keypair().pubkey())]
            return await raw_call(websocket, "logsSubscribe", [{"mentions": addresses}])

    answer = run(scenario())
    assert answer["error"] == {"code": -32602, "message": "Invalid params: Invalid Request: Only 1 address supported"}


def test_slot_and_root_subscribe(localnet: Localnet) -> None:
    # given slot and root subscriptions
    async def scenario() -> tuple[list[SlotNotification], list[RootNotification]]:
        async with SolanaWsClient(localnet.ws_url) as websocket:
            await websocket.slot_subscribe()
            await websocket.root_subscribe()
            # when a few slots pass
            slots: list[SlotNotification] = []
            roots: list[RootNotification] = []
            while len(slots) < 3 or len(roots) < 3:
                notification = await websocket.recv()
                (slots if isinstance(notification, SlotNotification) else roots).append(notification)
        return slots, roots

    slots, roots = run(scenario())
    # then consecutive slots, each with its parent and the root 32 slots behind; roots follow
    numbers = [item.result.slot for item in slots[:3]]
    assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]
    assert [(item.result.parent, item.result.root) for item in slots[:3]] == [(slot - 1, slot - 32) for slot in numbers]
    root_numbers = [item.result for item in roots[:3]]
    assert root_numbers == [root_numbers[0], root_numbers[0] + 1, root_numbers[0] + 2]


def test_unsubscribe_stops_notifications_and_unknown_ids_are_refused(
    localnet: Localnet, funded: Callable[[int], Keypair]
) -> None:
    # given an account subscription
    payer = funded(LAMPORTS_PER_SOL)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], list[str]]:
        client = AsyncClient(localnet.url)
        async with connect(localnet.ws_url) as websocket:
            subscribed = await raw_call(websocket, "accountSubscribe", [str(payer.pubkey()), {"commitment": "processed"}])
            # when it is cancelled, then the account changes
            wrong_kind = await raw_call(websocket, "slotUnsubscribe", [subscribed["result"]], 2)
            cancelled = await raw_call(websocket, "accountUnsubscribe", [subscribed["result"]], 3)
            again = await raw_call(websocket, "accountUnsubscribe", [subscribed["result"]], 4)
            transaction = await signed_transfer(client, payer, Keypair().pubkey(), 2_000_000)
            await client.send_transaction(transaction, opts=NO_CONFIRMATION)
            extra = []
            try:
                extra.append(await asyncio.wait_for(websocket.recv(), 0.5))
            except TimeoutError:
                pass
        await client.close()
        return wrong_kind, cancelled, again, extra

    wrong_kind, cancelled, again, extra = run(scenario())
    # then nothing more arrives; a second cancel and a cancel of another kind are refused
    assert wrong_kind["error"] == {"code": -32602, "message": "Invalid subscription id."}
    assert cancelled == {"jsonrpc": "2.0", "result": True, "id": 3}
    assert again["error"] == {"code": -32602, "message": "Invalid subscription id."}
    assert extra == []


def test_bad_requests_get_json_rpc_errors(localnet: Localnet) -> None:
    async def scenario() -> list[Any]:
        async with connect(localnet.ws_url) as websocket:
            answers = []
            for frame in ("{not json", "[]", json.dumps({"jsonrpc": "2.0", "id": 5, "method": "getSlot"})):
                await websocket.send(frame)
                answers.append(json.loads(await websocket.recv()))
            answers.append(await raw_call(websocket, "accountSubscribe", ["not-a-key"], 6))
            answers.append(await raw_call(websocket, "accountSubscribe", [str(Keypair().pubkey()), {"encoding": "xml"}], 7))
            return answers

    answers = run(scenario())
    assert [answer["error"]["code"] for answer in answers] == [-32700, -32600, -32601, -32602, -32602]
    assert [answer["id"] for answer in answers] == [None, None, 5, 6, 7]


def test_two_hundred_concurrent_subscribers_all_hear_the_change(
    localnet: Localnet, funded: Callable[[int], Keypair]
) -> None:
    # given 200 connections, each with an account subscription (confirmed) on the same account
    payer = funded(LAMPORTS_PER_SOL)

    async def scenario() -> tuple[list[int], dict[str, int], dict[str, int]]:
        client = AsyncClient(localnet.url)
        websockets = [await connect(localnet.ws_url) for _ in range(200)]
        for websocket in websockets:
            await websocket.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "accountSubscribe",
                        "params": [str(payer.pubkey()), {"commitment": "confirmed", "encoding": "base64"}],
                    }
                )
            )
        for websocket in websockets:
            assert isinstance(json.loads(await websocket.recv())["result"], int)
        during = pubsub_stats(localnet)
        # when the account changes once
        transaction = await signed_transfer(client, payer, Keypair().pubkey(), 2_000_000)
        await client.send_transaction(transaction, opts=NO_CONFIRMATION)
        frames = await asyncio.gather(*(websocket.recv() for websocket in websockets))
        lamports = [json.loads(frame)["params"]["result"]["value"]["lamports"] for frame in frames]
        await asyncio.gather(*(websocket.close() for websocket in websockets))
        await client.close()
        after = wait_for(lambda: pubsub_stats(localnet)["connections"] == 0 and pubsub_stats(localnet))
        return lamports, during, after

    lamports, during, after = run(scenario(), timeout=120)
    # then every subscriber got the new balance, and closing them left nothing behind
    assert lamports == [LAMPORTS_PER_SOL - 2_000_000 - FEE] * 200
    assert during["subscriptions"] >= 200
    assert after == {"connections": 0, "subscriptions": 0, "indexed": 0}


def test_a_subscriber_vanishing_mid_stream_leaves_nothing_and_others_keep_receiving(localnet: Localnet) -> None:
    # given two clients subscribed to slots (plus one account each)
    async def scenario() -> tuple[dict[str, int], dict[str, int], list[int]]:
        vanishing = await connect(localnet.ws_url)
        staying = await connect(localnet.ws_url)
        for websocket in (vanishing, staying):
            await raw_call(websocket, "slotSubscribe", [])
            await raw_call(websocket, "accountSubscribe", [str(Keypair().pubkey())], 2)
            await websocket.recv()
        before = pubsub_stats(localnet)
        # when one of them disappears without a closing handshake (its TCP connection dropped)
        vanishing.transport.abort()
        after = await asyncio.to_thread(
            wait_for, lambda: pubsub_stats(localnet)["connections"] == before["connections"] - 1 and pubsub_stats(localnet)
        )
        slots = [json.loads(await staying.recv())["params"]["result"]["slot"] for _ in range(3)]
        await staying.close()
        return before, after, slots

    before, after, slots = run(scenario())
    # then its two subscriptions are gone and the other client still gets every slot
    assert before["subscriptions"] - after["subscriptions"] == 2
    assert before["indexed"] - after["indexed"] == 2
    assert slots == [slots[0], slots[0] + 1, slots[0] + 2]


def test_subscriptions_end_with_a_restart_and_clients_can_resubscribe(
    fresh_localnet: Callable[..., Localnet],
) -> None:
    # given a client subscribed to slots on a private localnet
    node = fresh_localnet()

    async def before_restart() -> tuple[int, type[BaseException] | None]:
        websocket = SolanaWsClient(node.ws_url)
        await websocket.connect()
        await websocket.slot_subscribe()
        slot = (await websocket.recv()).result.slot
        # when localnet is killed
        await asyncio.to_thread(node.kill)
        error: type[BaseException] | None = None
        try:
            while True:
                await asyncio.wait_for(websocket.recv(), 5)
        except (ConnectionClosed, OSError) as closed:
            error = type(closed)
        await websocket.close()
        return slot, error

    slot_before, error = run(before_restart())
    node.restart()

    async def after_restart() -> int:
        async with SolanaWsClient(node.ws_url) as websocket:
            await websocket.slot_subscribe()
            return (await websocket.recv()).result.slot

    slot_after = run(after_restart())
    # then the old stream ended with an error and a new subscription continues the slot sequence
    assert error is not None
    assert slot_after > slot_before
    assert rpc_call(node.url, "localnet_getPubsubStats")["result"]["connections"] == 0


def test_websocket_port_defaults_to_rpc_port_plus_one(fresh_localnet: Callable[..., Localnet]) -> None:
    # given a localnet on a fixed port with no --ws-port
    probe = fresh_localnet()
    port = probe.port
    probe.stop()
    time.sleep(0.2)
    node = fresh_localnet(port=port)
    # then
    assert node.ws_url == f"ws://127.0.0.1:{port + 1}"


def test_closed_account_is_notified_with_zero_lamports(localnet: Localnet, funded: Callable[[int], Keypair]) -> None:
    # given an account that will send all its lamports away
    payer = funded(LAMPORTS_PER_SOL)

    async def scenario() -> dict[str, Any]:
        client = AsyncClient(localnet.url)
        async with connect(localnet.ws_url) as websocket:
            await raw_call(
                websocket, "accountSubscribe", [str(payer.pubkey()), {"commitment": "processed", "encoding": "base64"}]
            )
            transaction = await signed_transfer(client, payer, Keypair().pubkey(), LAMPORTS_PER_SOL - FEE)
            await client.send_transaction(transaction, opts=NO_CONFIRMATION)
            frame = json.loads(await websocket.recv())
        await client.close()
        return frame["params"]["result"]["value"]

    value = run(scenario())
    assert value == {
        "data": ["", "base64"],
        "executable": False,
        "lamports": 0,
        "owner": "11111111111111111111111111111111",
        "rentEpoch": 0,
        "space": 0,
    }
