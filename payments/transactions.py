"""Building and signing a payment's transaction (one outbox attempt).

A smart wallet's payment is one ``execute`` of the Numpay wallet program (docs/wallet-program.md), signed
by the wallet's custody key as its authority: the transfer out of the vault (SOL, or the token with an
idempotent creation of the recipient's token account, rent from the fee payer only when the account is
missing), the network fee as a second transfer, and the payment's reference key as an extra account.
Until the wallet's config is on-chain, a ``create`` (rent from the fee payer) goes in front of it; the
program makes it a no-op once the config exists.

A keypair wallet's message: the transfer (SOL ``transfer`` or SPL ``transfer_checked``, carrying the payment's reference
key), an idempotent creation of the recipient's associated token account when needed (rent from the fee
payer), and an optional memo. The relayer validates and co-signs it as fee payer; custody signs for the
wallet (Solana transaction format: https://solana.com/docs/core/transactions).
"""

from __future__ import annotations

import hashlib
import uuid

from django.core.cache import cache
from solders.compute_budget import set_compute_unit_limit
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.instructions import create_idempotent_associated_token_account, transfer_checked
from spl.token.models import TransferCheckedParams

from numpay.core.errors import ApplicationError
from numpay.core.solana import Blockhash, ChainClient, get_chain_client
from numpay.core.solana.programs import MEMO_PROGRAM_ID
from numpay.core.transactions import assemble, compile_message, message_signers
from relayer import services as relayer
from wallets import program as wallet_program
from wallets.models import Token, Wallet, WalletKey
from wallets.selectors import tokens_active
from wallets.services import wallet_sign
from wallets.smart import config_create_instruction, wallet_config_read, wallet_program_id

from .models import Payment, PaymentApproval, PaymentAttempt


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


#: Compute units the Memo program (v2) spends per character, by the character's UTF-8 length, with margin.
#: Measured on the agave runtime: about 350 / 540 / 11,100 / 17,300 per 1- / 2- / 3- / 4-byte character
#: (it formats the memo with ``{:?}`` into its log, and escaping is costly above the ASCII range),
#: plus about 15,000 fixed. Without an explicit limit, 20 emoji already exceed an instruction's default
#: 200,000 units and the payment fails on chain with ``ProgramFailedToComplete``.
MEMO_UNITS_PER_CHARACTER = {1: 400, 2: 1_000, 3: 12_500, 4: 19_000}
MEMO_FIXED_UNITS = 20_000
#: What every other instruction of a payment may use (the runtime's default per instruction).
INSTRUCTION_UNITS = 200_000
#: The largest transaction the network takes, bytes (``PACKET_DATA_SIZE``: https://solana.com/docs/core/transactions).
MAX_TRANSACTION_BYTES = 1232
#: The most compute units one transaction may ask for (https://solana.com/docs/core/fees#compute-budget).
MAX_TRANSACTION_UNITS = 1_400_000


def memo_compute_units(memo: str) -> int:
    """Compute units the Memo program needs for ``memo`` (an upper estimate; see
    :data:`MEMO_UNITS_PER_CHARACTER`)."""
    return MEMO_FIXED_UNITS + sum(MEMO_UNITS_PER_CHARACTER[len(ch.encode())] for ch in memo)


def payment_compute_unit_limit(*, memo: str, other_instructions: int) -> int:
    """The compute unit limit a payment with ``memo`` asks for: the memo's estimate plus the default for
    each other instruction (pure). :raises ValueError: it cannot fit one transaction."""
    units = memo_compute_units(memo) + INSTRUCTION_UNITS * other_instructions
    if units > MAX_TRANSACTION_UNITS:
        raise ValueError(f"a payment with this memo needs {units} compute units, above {MAX_TRANSACTION_UNITS}")
    return units


def wallet_config_exists(*, client: ChainClient, wallet: Wallet) -> bool:
    """Whether ``wallet``'s config is on-chain (a config never goes away, so a seen one is remembered for an
    hour in the shared cache). Keypair wallets have none and need none: ``True``.

    :raises ChainUnavailableError: the chain could not be read.
    """
    if not wallet.is_smart:
        return True
    key = f"wallet-config:{wallet.config_address}"
    if cache.get(key):
        return True
    exists = wallet_config_read(client=client, wallet=wallet) is not None
    if exists:
        cache.set(key, True, 3600)
    return exists


def payment_execute_instruction(*, payment: Payment, fee_payer: Pubkey) -> Instruction:
    """The smart wallet payment's ``execute`` in its Ed25519-signer form (custody key as authority), with the
    payment's reference key: what a custody-signed transaction carries, and what a passkey approves in a
    protected wallet (:func:`wallets.program.approval_challenge` binds its transfers and every account from
    the destinations on: recipient, amount, network fee, fee payer as rent payer, mint, token program)."""
    return _smart_instructions(payment=payment, fee_payer=fee_payer,
                               create_recipient_account=payment.creates_recipient_token_account,
                               create_config=False, config_tokens=[])[-1]


def _passkey_approvals(payment: Payment) -> list[PaymentApproval]:
    """The payment's accepted on-chain-form approvals (protected wallet), in approval order."""
    return list(PaymentApproval.objects.filter(payment=payment, used_at__isnull=False, onchain_nonce__isnull=False)
                .select_related("authenticator").order_by("used_at"))


def _smart_instructions(*, payment: Payment, fee_payer: Pubkey, create_recipient_account: bool,
                        create_config: bool, config_tokens: list[Token]) -> list[Instruction]:
    wallet, token = payment.wallet, payment.token
    authority = Pubkey.from_string(wallet.signing_address)
    recipient = Pubkey.from_string(payment.recipient_address)
    transfers: list[wallet_program.SolTransfer | wallet_program.TokenTransfer] = []
    if token.is_native:
        transfers.append(wallet_program.SolTransfer(destination=recipient, amount=payment.amount))
    else:
        mint, program = Pubkey.from_string(token.mint), Pubkey.from_string(token.token_program)
        transfers.append(wallet_program.TokenTransfer(
            mint=mint, destination=recipient, amount=payment.amount, decimals=token.decimals,
            payer=fee_payer if create_recipient_account else authority, token_program=program))
        if payment.network_fee:
            transfers.append(wallet_program.TokenTransfer(
                mint=mint, destination=fee_payer, amount=payment.network_fee, decimals=token.decimals,
                payer=authority, token_program=program))
    program_id = wallet_program_id()
    instructions = []
    if create_config:
        instructions.append(config_create_instruction(wallet=wallet, payer=fee_payer, tokens=config_tokens))
    instructions.append(_with_reference(
        wallet_program.execute(program_id, authority, authority, transfers), payment_reference(payment.id)))
    return instructions


def build_instructions(*, payment: Payment, fee_payer: Pubkey, create_recipient_account: bool,
                       create_config: bool = False, config_tokens: list[Token] | None = None) -> list[Instruction]:
    """SOL: a system transfer. SPL: optional idempotent ATA create (funded by the fee payer),
    ``transfer_checked``, and the network fee (``payment.network_fee`` base units, for opening a token
    account outside Numpay) as a second ``transfer_checked`` to the fee payer's associated token account
    for the mint. The transfer carries the payment's :func:`payment_reference`. An optional
    memo (signed by the sender's custody key) follows, with an explicit compute unit limit that fits it
    (:func:`payment_compute_unit_limit`; no compute unit price, so the fee does not change).
    """
    sender = Pubkey.from_string(payment.wallet.signing_address)
    recipient = Pubkey.from_string(payment.recipient_address)
    token = payment.token
    instructions: list[Instruction] = []
    if payment.wallet.is_smart:
        instructions = _smart_instructions(payment=payment, fee_payer=fee_payer,
                                           create_recipient_account=create_recipient_account,
                                           create_config=create_config, config_tokens=config_tokens or [])
    elif token.is_native:
        instructions.append(_with_reference(
            transfer(TransferParams(from_pubkey=sender, to_pubkey=recipient, lamports=payment.amount)),
            payment_reference(payment.id)))
    else:
        mint, program = Pubkey.from_string(token.mint), Pubkey.from_string(token.token_program)
        destination = token.associated_token_account(payment.recipient_address)
        if create_recipient_account:
            instructions.append(create_idempotent_associated_token_account(fee_payer, recipient, mint, program))
        source = token.associated_token_account(payment.wallet.address)
        instructions.append(_with_reference(transfer_checked(TransferCheckedParams(
            program_id=program, source=source, mint=mint, dest=destination, owner=sender, amount=payment.amount,
            decimals=token.decimals)), payment_reference(payment.id)))
        if payment.network_fee:
            instructions.append(transfer_checked(TransferCheckedParams(
                program_id=program, source=source, mint=mint, dest=token.associated_token_account(str(fee_payer)),
                owner=sender, amount=payment.network_fee, decimals=token.decimals)))
    needs_approval = bool((payment.policy_decision or {}).get("approvals_required"))
    approvals = _passkey_approvals(payment) if needs_approval and payment.wallet.is_smart and not create_config else []
    if approvals:
        # protected wallet, above the custody key's on-chain cap: the passkey-approved execute, verified on-chain
        # through the secp256r1 precompile instruction in front of it
        instructions = wallet_program.approve_with_passkeys(
            instructions[-1], [_assertion(approval) for approval in approvals],
            expires_at=int(approvals[0].expires_at.timestamp()), precompile_index=1 if payment.memo else 0)
    if payment.memo:
        limit = payment_compute_unit_limit(memo=payment.memo, other_instructions=len(instructions))
        instructions.insert(0, set_compute_unit_limit(limit))
        instructions.append(create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=sender,
                                                   message=payment.memo.encode())))
    return instructions


def _assertion(approval: PaymentApproval) -> wallet_program.PasskeyAssertion:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from accounts.selectors import passkey_public_key

    key = passkey_public_key(authenticator=approval.authenticator)
    return wallet_program.PasskeyAssertion(
        public_key=key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint),
        authenticator_data=bytes(approval.authenticator_data), client_data_json=bytes(approval.client_data_json),
        signature=bytes(approval.signature))


def payment_sign_attempt(*, payment: Payment, blockhash: Blockhash, number: int, reserve: bool,
                         client: ChainClient | None = None, envelope: WalletKey | None = None) -> PaymentAttempt:
    """Compile, validate and co-sign (relayer), sign (custody) and store one attempt of ``payment``.
    A smart wallet whose config is not on-chain yet gets its ``create`` in the same transaction (each
    attempt re-decides from the chain).

    Call inside an atomic block holding the payment's (or, at creation, its wallet's) row lock.

    :param envelope: the sender wallet's key row read with its lock, if the caller has it (``wallet_sign``).
    :param reserve: ``True`` on the first attempt: the relayer reserves the sponsorship against the
        sender's daily budget and ``payment.sponsored_lamports`` is set (the caller saves the payment);
        ``False`` for a renewal, which re-uses the reservation.
    :raises ApplicationError: ``transaction_not_allowed``, ``fee_payer_cap_exceeded``,
        ``sponsorship_budget_exceeded`` (from the relayer); ``transaction_too_large`` (above 1,232 bytes: e.g. a
        2-of-2 passkey-approved token payment that also opens the recipient's token account).
    """
    fee_payer = relayer.fee_payer_pubkey()
    create_config = not wallet_config_exists(client=client or get_chain_client(), wallet=payment.wallet)
    message = compile_message(instructions=build_instructions(
        payment=payment, fee_payer=fee_payer, create_recipient_account=payment.creates_recipient_token_account,
        create_config=create_config, config_tokens=list(tokens_active()) if create_config else None),
        fee_payer=fee_payer, blockhash=blockhash.blockhash)
    # attempt 1 is signed once, in the transaction that approves the payment: no charge can exist for it yet
    cosigned = relayer.relayer_cosign(user=payment.sender, message=message, reference=payment.id, reserve=reserve,
                                      fresh_reference=reserve and number == 1)
    signatures = {fee_payer: cosigned.signature}
    custody = Pubkey.from_string(payment.wallet.signing_address)
    if custody in message_signers(message):  # not in a passkey-approved execute without a memo
        signatures[custody] = wallet_sign(wallet=payment.wallet, message=bytes(message), envelope=envelope)
    tx = assemble(message=message, signatures=signatures)
    if len(bytes(tx)) > MAX_TRANSACTION_BYTES:
        raise ApplicationError("transaction_too_large", "This payment does not fit one Solana transaction (passkey "
                               "approvals take room); send it without a memo, or in two smaller payments.")
    if reserve:
        payment.sponsored_lamports = cosigned.cost_lamports
    return PaymentAttempt.objects.create(
        payment=payment, number=number, signed_transaction=bytes(tx), signature=str(tx.signatures[0]),
        blockhash=str(blockhash.blockhash), last_valid_block_height=blockhash.last_valid_block_height)
