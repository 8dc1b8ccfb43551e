"""Assembling Solana transactions from instructions and independently produced signatures.

Signatures may come from different places (custody ``sign`` for the wallet, the relayer's signer for the
fee payer), so a message is compiled once, each signer signs its serialized bytes, and the signatures are
placed in the order of the message's signer keys (Solana transaction format:
https://solana.com/docs/core/transactions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from solders.hash import Hash
from solders.instruction import Instruction
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction


def compile_message(*, instructions: Sequence[Instruction], fee_payer: Pubkey, blockhash: Hash) -> Message:
    """A legacy message whose first signer (and fee payer) is ``fee_payer``."""
    return Message.new_with_blockhash(list(instructions), fee_payer, blockhash)


def message_signers(message: Message) -> list[Pubkey]:
    """The keys that must sign, in signature order."""
    return list(message.account_keys[: message.header.num_required_signatures])


def assemble(*, message: Message, signatures: Mapping[Pubkey, Signature]) -> VersionedTransaction:
    """Place signatures in signer order.

    :raises KeyError: a required signer's signature is missing.
    """
    ordered = [signatures[key] for key in message_signers(message)]
    return VersionedTransaction.populate(message, ordered)
