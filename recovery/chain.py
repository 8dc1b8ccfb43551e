"""The on-chain step of a recovery: the instructions of the transaction the sweep submits through the outbox
(:func:`execution_instructions`), and the program's refusals in plain words.

This is the one place that knows the Numpay wallet program's recovery instructions (docs/wallet-program.md).
Until ``recovery_execute`` is merged into the program (branch wt/program), the transaction of a smart wallet
only makes sure its config exists (``create``, a no-op on an existing config), so the execution goes through
the real outbox and lands; the owner change itself is then the off-chain hand-over alone. A keypair wallet has
no on-chain authority to change: its recovery is off-chain only (empty list).
"""

from __future__ import annotations

from typing import Any

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from numpay.core.solana import ChainClient
from wallets.program import error_sentence
from wallets.selectors import tokens_active
from wallets.smart import config_create_instruction


def execution_instructions(*, request: Any, fee_payer: Pubkey, client: ChainClient) -> list[Instruction]:
    """The instructions that execute ``request`` (a :class:`~recovery.models.RecoveryRequest`) on-chain, in
    order; empty when the wallet has nothing on-chain to change.

    :param fee_payer: the relayer's fee payer (funds the config's rent when it is created here).
    """
    wallet = request.wallet
    if not wallet.is_smart:
        return []
    return [config_create_instruction(wallet=wallet, payer=fee_payer, tokens=list(tokens_active()))]


def explain_error(err: Any) -> str | None:
    """A plain sentence for the program's custom error in a transaction error (``{"InstructionError": [i,
    {"Custom": n}]}``), or ``None``."""
    try:
        code = err["InstructionError"][1]["Custom"]
    except (KeyError, IndexError, TypeError):
        return None
    return error_sentence(int(code))
