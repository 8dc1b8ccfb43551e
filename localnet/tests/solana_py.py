"""solana-py as the conformance tests use it: its ``AsyncClient`` driven from synchronous tests, and the
SPL Token steps the removed ``spl.token.client.Token`` used to take.

solana-py 0.41 ships no synchronous ``Client`` and no ``spl.token.client`` any more. These tests are
about solana-py compatibility (localnet's answers must parse into solana-py's / solders' typed
responses), so they keep calling solana-py's own client: :class:`SyncAsyncClient` runs each
``AsyncClient`` coroutine to completion on one private event loop, which keeps the tests flat and
synchronous. :class:`Token` builds the same instructions with ``spl.token.instructions`` and sends
them through that client.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment, Confirmed, Processed
from solana.rpc.models import TxOpts
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.responses import SendTransactionResp
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction
from spl.token.constants import MINT_LEN
from spl.token.instructions import (
    create_associated_token_account,
    get_associated_token_address,
    initialize_mint,
    mint_to,
    transfer_checked,
)
from spl.token.models import InitializeMintParams, MintToParams, TransferCheckedParams

#: Send, then wait until ``confirmed`` (what ``Token``'s ``opts=`` with ``skip_confirmation=False`` did).
CONFIRM = TxOpts(skip_confirmation=False, preflight_commitment=Confirmed)


class _Loop:
    """One event loop on a daemon thread, shared by every :class:`SyncAsyncClient` of the process."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="solana-py-loop", daemon=True).start()
                cls._loop = loop
            return cls._loop


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run one coroutine on the shared loop and return its result (its exception is raised here)."""
    return asyncio.run_coroutine_threadsafe(coroutine, _Loop.get()).result()


class SyncAsyncClient:
    """solana-py's ``AsyncClient`` with every coroutine method called synchronously.

    ``SyncAsyncClient(url, commitment=Confirmed, timeout=30).get_balance(pubkey).value`` is exactly
    ``(await AsyncClient(url, ...).get_balance(pubkey)).value``: same request, same typed response,
    same exceptions (``RPCException``, ``SolanaRpcException``).
    """

    def __init__(self, endpoint: str, commitment: Commitment | None = None, timeout: float | None = 30, **options: Any):
        async def make() -> AsyncClient:
            return AsyncClient(endpoint, commitment=commitment, timeout=timeout, **options)

        self.async_client: AsyncClient = run(make())

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.async_client, name)
        if not asyncio.iscoroutinefunction(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            return run(method(*args, **kwargs))

        return call

    def close(self) -> None:
        """Close the underlying HTTP connections."""
        run(self.async_client.close())


def send_instructions(
    client: SyncAsyncClient, instructions: list[Instruction], payer: Keypair, *signers: Keypair, opts: TxOpts = CONFIRM
) -> SendTransactionResp:
    """Sign ``instructions`` (``payer`` pays) with a fresh blockhash and send them with ``opts``."""
    blockhash = client.get_latest_blockhash(Processed).value.blockhash
    message = Message.new_with_blockhash(instructions, payer.pubkey(), blockhash)
    return client.send_transaction(Transaction([payer, *signers], message, blockhash), opts=opts)


class Token:
    """The SPL Token steps the tests take (the subset of the removed ``spl.token.client.Token``).

    :ivar pubkey: the mint address.
    :ivar program_id: Token or Token-2022.
    """

    def __init__(self, client: SyncAsyncClient, pubkey: Pubkey, program_id: Pubkey, payer: Keypair) -> None:
        self.client = client
        self.pubkey = pubkey
        self.program_id = program_id
        self.payer = payer

    @classmethod
    def create_mint(
        cls, client: SyncAsyncClient, payer: Keypair, mint_authority: Pubkey, decimals: int, program_id: Pubkey
    ) -> Token:
        """Create and initialize a mint (no freeze authority); returns once it is confirmed."""
        mint = Keypair()
        lamports = client.get_minimum_balance_for_rent_exemption(MINT_LEN).value
        send_instructions(
            client,
            [
                create_account(
                    CreateAccountParams(
                        from_pubkey=payer.pubkey(), to_pubkey=mint.pubkey(), lamports=lamports, space=MINT_LEN,
                        owner=program_id,
                    )
                ),
                initialize_mint(
                    InitializeMintParams(
                        decimals=decimals, program_id=program_id, mint=mint.pubkey(), mint_authority=mint_authority
                    )
                ),
            ],
            payer,
            mint,
        )
        return cls(client, mint.pubkey(), program_id, payer)

    def create_associated_token_account(self, owner: Pubkey) -> Pubkey:
        """Create ``owner``'s associated token account (the payer funds it); returns its address."""
        instruction = create_associated_token_account(self.payer.pubkey(), owner, self.pubkey, self.program_id)
        send_instructions(self.client, [instruction], self.payer)
        return get_associated_token_address(owner, self.pubkey, self.program_id)

    def mint_to(self, dest: Pubkey, mint_authority: Keypair, amount: int, opts: TxOpts = CONFIRM) -> SendTransactionResp:
        """Mint ``amount`` base units to ``dest``."""
        instruction = mint_to(
            MintToParams(
                program_id=self.program_id, mint=self.pubkey, dest=dest, mint_authority=mint_authority.pubkey(),
                amount=amount,
            )
        )
        return send_instructions(self.client, [instruction], self.payer, *self._others(mint_authority), opts=opts)

    def transfer_checked(
        self, source: Pubkey, dest: Pubkey, owner: Keypair, amount: int, decimals: int, opts: TxOpts = CONFIRM
    ) -> SendTransactionResp:
        """``TransferChecked`` of ``amount`` base units from ``source`` to ``dest``."""
        instruction = transfer_checked(
            TransferCheckedParams(
                program_id=self.program_id, source=source, mint=self.pubkey, dest=dest, owner=owner.pubkey(),
                amount=amount, decimals=decimals,
            )
        )
        return send_instructions(self.client, [instruction], self.payer, *self._others(owner), opts=opts)

    def _others(self, signer: Keypair) -> list[Keypair]:
        return [] if signer.pubkey() == self.payer.pubkey() else [signer]
