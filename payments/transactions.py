"""Building and signing a payment's transaction (one outbox attempt).

The message: the transfer (SOL ``transfer`` or SPL ``transfer_checked``, carrying the payment's reference
key), an idempotent creation of the recipient's associated token account when needed (rent from the fee
payer), and an optional memo. The relayer validates and co-signs it as fee payer; custody signs for the
wallet (Solana transaction format: https://solana.com/docs/core/transactions).
"""

from __future__ import annotations

import hashlib
import uuid

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.instructions import create_idempotent_associated_token_account, transfer_checked
from spl.token.models import TransferCheckedParams

from numpay.core.chain import Blockhash
from numpay.core.transactions import assemble, compile_message
from relayer import services as relayer
from wallets.services import wallet_sign

from .models import Payment, PaymentAttempt


def payment_reference(payment_id: uuid.UUID) -> Pubkey:
    """The payment's reference key: 32 bytes derived from its id (need not be on the curve).

    Added read-only, non-signer to the transfer instruction as Solana Pay does with ``reference``
    (https://docs.solanapay.com/spec#reference), it makes two equal payments in one blockhash window
    different transactions (else they would share one signature and the second would be dropped as
    already processed), and makes each payment findable with ``getSignaturesForAddress``.
    """
    return Pubkey(hashlib.sha256(b"numpay:payment:" + payment_id.bytes).digest())


def _with_reference(instruction: Instruction, reference: Pubkey) -> Instruction:
    accounts = [*instruction.accounts, AccountMeta(reference, is_signer=False, is_writable=False)]
    return Instruction(instruction.program_id, instruction.data, accounts)


def build_instructions(*, payment: Payment, fee_payer: Pubkey, create_recipient_account: bool) -> list[Instruction]:
    """SOL: a system transfer. SPL: optional idempotent ATA create (funded by the fee payer) and
    ``transfer_checked``. The transfer carries the payment's :func:`payment_reference`. An optional
    memo (signed by the sender) follows.
    """
    sender = Pubkey.from_string(payment.wallet.address)
    recipient = Pubkey.from_string(payment.recipient_address)
    token = payment.token
    instructions: list[Instruction] = []
    if token.is_native:
        instructions.append(_with_reference(
            transfer(TransferParams(from_pubkey=sender, to_pubkey=recipient, lamports=payment.amount)),
            payment_reference(payment.id)))
    else:
        mint, program = Pubkey.from_string(token.mint), Pubkey.from_string(token.token_program)
        destination = token.associated_token_account(payment.recipient_address)
        if create_recipient_account:
            instructions.append(create_idempotent_associated_token_account(fee_payer, recipient, mint, program))
        instructions.append(_with_reference(transfer_checked(TransferCheckedParams(
            program_id=program, source=token.associated_token_account(payment.wallet.address), mint=mint,
            dest=destination, owner=sender, amount=payment.amount, decimals=token.decimals)),
            payment_reference(payment.id)))
    if payment.memo:
        instructions.append(create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=sender,
                                                   message=payment.memo.encode())))
    return instructions


def payment_sign_attempt(*, payment: Payment, blockhash: Blockhash, number: int, reserve: bool) -> PaymentAttempt:
    """Compile, validate and co-sign (relayer), sign (custody) and store one attempt of ``payment``.

    Call inside an atomic block holding the payment's (or, at creation, its wallet's) row lock.

    :param reserve: ``True`` on the first attempt: the relayer reserves the sponsorship against the
        sender's daily budget and ``payment.sponsored_lamports`` is set (the caller saves the payment);
        ``False`` for a renewal, which re-uses the reservation.
    :raises ApplicationError: ``transaction_not_allowed``, ``fee_payer_cap_exceeded``,
        ``sponsorship_budget_exceeded`` (from the relayer).
    """
    fee_payer = relayer.fee_payer_pubkey()
    message = compile_message(instructions=build_instructions(
        payment=payment, fee_payer=fee_payer, create_recipient_account=payment.creates_recipient_token_account),
        fee_payer=fee_payer, blockhash=blockhash.blockhash)
    cosigned = relayer.relayer_cosign(user=payment.sender, message=message, reference=payment.id, reserve=reserve)
    wallet_signature = wallet_sign(wallet=payment.wallet, message=bytes(message))
    tx = assemble(message=message, signatures={fee_payer: cosigned.signature,
                                               Pubkey.from_string(payment.wallet.address): wallet_signature})
    if reserve:
        payment.sponsored_lamports = cosigned.cost_lamports
    return PaymentAttempt.objects.create(
        payment=payment, number=number, signed_transaction=bytes(tx), signature=str(tx.signatures[0]),
        blockhash=str(blockhash.blockhash), last_valid_block_height=blockhash.last_valid_block_height)
