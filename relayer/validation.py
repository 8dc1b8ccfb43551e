"""The rules every transaction the relayer co-signs as fee payer must pass (deny by default).

Source of the rules: ../shared/DESIGN.md "Fee sponsorship" — the fee payer appears in no instruction
except as funder of an associated-token-account creation when sponsorship of rent is allowed; the
lamports it may lose per transaction are capped; only allowlisted programs run.

Fee arithmetic follows the Solana docs:

- Transaction fees (https://solana.com/docs/core/fees): base fee = 5000 lamports per signature; the
  prioritization fee = ceil(compute unit price (micro-lamports) x compute unit limit / 1_000_000).
- Compute budget (https://solana.com/docs/core/fees#compute-budget): without ``SetComputeUnitLimit`` the
  limit defaults to 200_000 compute units per non-compute-budget instruction, capped at 1_400_000
  (an upper bound: newer validators give built-in programs less); a duplicate compute budget instruction
  fails the transaction, and we refuse it before that.
- Legacy message layout (https://solana.com/docs/core/transactions): ``account_keys[0]`` is the fee payer
  and the first ``num_required_signatures`` keys sign.
- Associated Token Account program (https://spl.solana.com/associated-token-account): ``Create`` (data
  empty or ``[0]``) and ``CreateIdempotent`` (``[1]``) take ``[funder, ata, wallet, mint, system_program,
  token_program]``; the funder pays the new account's rent.
- System program ``Transfer`` is instruction index 2 (u32 LE) followed by the lamports (u64 LE).
- The Numpay wallet program (docs/wallet-program.md): ``create`` (tag 0) takes ``[config, creator,
  payer, system]`` and the payer funds the config's rent (2,272 bytes; nothing when the config exists);
  ``execute`` (tag 1) takes ``[config, vault, authority, system, ...]`` then 24-byte transfers whose byte
  7 (token transfers) names the payer of the recipient token account's rent. The program debits no
  other account than the vault and these named, signing payers, and calls only System, Token /
  Token-2022 and Associated Token (its CPIs).
- Rent (https://solana.com/docs/core/fees#rent): the rent-exempt minimum is linear in the account size,
  ``(128 + data bytes) x lamports per byte-year x 2``. A Token-2022 associated token account carries the
  extensions its mint requires (ImmutableOwner, TransferFeeAmount, NonTransferableAccount,
  TransferHookAccount, PausableAccount: at most 195 bytes today), so its rent is priced at
  :data:`TOKEN_2022_ACCOUNT_MAX_LEN` by scaling the 165-byte rent.
"""

from __future__ import annotations

from solders.message import Message
from solders.pubkey import Pubkey

from numpay.core.errors import ApplicationError
from numpay.core.solana.programs import (
    ACCOUNT_STORAGE_OVERHEAD,
    ASSOCIATED_TOKEN_PROGRAM_ID,
    COMPUTE_BUDGET_PROGRAM_ID,
    LAMPORTS_PER_SIGNATURE,
    MEMO_PROGRAM_ID,
    MEMO_V1_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_ACCOUNT_MAX_LEN,
    TOKEN_2022_PROGRAM_ID,
    TOKEN_ACCOUNT_LEN,
    TOKEN_PROGRAM_ID,
)
from relayer.app_settings import app_settings
from wallets.program.approvals import SECP256R1_PROGRAM_ID, split_approved
from wallets.program.config import CONFIG_LEN
from wallets.program.instructions import (
    FIRST_EXTRA_ACCOUNT,
    MAX_TRANSFERS,
    PASSKEY_FLAG,
    TAG_CREATE,
    TAG_EXECUTE,
    TRANSFER_KIND_SOL,
    TRANSFER_KIND_TOKEN,
)
from wallets.smart import wallet_program_id

#: Signatures one secp256r1 precompile instruction may check (the wallet program takes up to 8 approvals).
MAX_PRECOMPILE_SIGNATURES = 8

MICRO_LAMPORTS_PER_LAMPORT = 1_000_000
DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT = 200_000
MAX_COMPUTE_UNIT_LIMIT = 1_400_000

ALLOWED_PROGRAM_IDS: frozenset[Pubkey] = frozenset({
    SYSTEM_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    ASSOCIATED_TOKEN_PROGRAM_ID,
    MEMO_PROGRAM_ID,
    MEMO_V1_PROGRAM_ID,
    COMPUTE_BUDGET_PROGRAM_ID,
})

_SYSTEM_TRANSFER = 2
_ATA_CREATE_DATA = (b"", b"\x00", b"\x01")
_ATA_ACCOUNT_COUNT = 6
_ATA_TOKEN_PROGRAM_POSITION = 5

# Compute budget instruction tags and the exact data length each must have.
_CB_REQUEST_HEAP_FRAME = 1
_CB_SET_COMPUTE_UNIT_LIMIT = 2
_CB_SET_COMPUTE_UNIT_PRICE = 3
_CB_SET_LOADED_ACCOUNTS_DATA_SIZE_LIMIT = 4
_CB_DATA_LENGTHS = {
    _CB_REQUEST_HEAP_FRAME: 5,
    _CB_SET_COMPUTE_UNIT_LIMIT: 5,
    _CB_SET_COMPUTE_UNIT_PRICE: 9,
    _CB_SET_LOADED_ACCOUNTS_DATA_SIZE_LIMIT: 5,
}


def _token_account_rent(ata_rent_lamports: int, *, is_token_2022: bool) -> int:
    """Rent of a new associated token account in lamports, from the 165-byte rent (rounded up)."""
    if not is_token_2022:
        return ata_rent_lamports
    numerator = ata_rent_lamports * (ACCOUNT_STORAGE_OVERHEAD + TOKEN_2022_ACCOUNT_MAX_LEN)
    return -(-numerator // (ACCOUNT_STORAGE_OVERHEAD + TOKEN_ACCOUNT_LEN))


def _rent_for(ata_rent_lamports: int, data_len: int) -> int:
    """Rent of an account of ``data_len`` bytes, from the 165-byte rent (rent is linear; rounded up)."""
    numerator = ata_rent_lamports * (ACCOUNT_STORAGE_OVERHEAD + data_len)
    return -(-numerator // (ACCOUNT_STORAGE_OVERHEAD + TOKEN_ACCOUNT_LEN))


_CREATE_PAYER_POSITION = 2
_EXECUTE_HEADER_LEN = 8
_TRANSFER_LEN = 24
_TRANSFER_DESTINATION = 1
_TRANSFER_TOKEN_PROGRAM = 5
_TRANSFER_PAYER = 7


def _wallet_program_cost(position: int, keys: list[Pubkey], accounts: list[int], data: bytes, *,
                         ata_rent_lamports: int) -> tuple[int, int]:
    """``(rent of token accounts, rent of wallet configs)`` the fee payer (key 0) may fund in one
    instruction of the Numpay wallet program; refuses any other use of the fee payer.

    - ``create``: the fee payer only as the payer (account 2); priced at the config's rent when
      ``SPONSOR_WALLET_CONFIG_RENT`` is on.
    - ``execute``: the fee payer only as a token transfer's rent payer (priced as an associated token
      account of that transfer's token program, when ``SPONSOR_ATA_RENT`` is on) or as a token transfer's
      destination wallet (it receives); never as config, vault, authority, or anything a transfer debits.
    - Other tags (managing authorities and limits) never name the fee payer.
    """
    where = f"Instruction {position + 1}"
    if data and data[0] & PASSKEY_FLAG:  # the passkey-approved form: its body is read as in the signer form
        try:
            base, body, _approvals = split_approved(data)
        except ValueError:
            raise _refuse("malformed_message", f"{where} is not a well-formed passkey-approved action.") from None
        if base == TAG_CREATE:
            raise _refuse("malformed_message", f"{where} is not a well-formed passkey-approved action.")
        data = bytes([base]) + body
    tag = data[0] if data else None
    fee_payer_uses = [i for i, index in enumerate(accounts) if index == 0]
    if tag == TAG_CREATE:
        if not fee_payer_uses:
            return 0, 0
        if fee_payer_uses != [_CREATE_PAYER_POSITION]:
            raise _refuse("fee_payer_in_instruction", f"{where} uses the relayer's fee payer as a wallet account.")
        if not app_settings.SPONSOR_WALLET_CONFIG_RENT:
            raise _refuse("wallet_config_rent_not_sponsored",
                          f"{where} asks the relayer to pay for a new wallet config, which is turned off.")
        return 0, _rent_for(ata_rent_lamports, CONFIG_LEN)
    if tag != TAG_EXECUTE:
        if fee_payer_uses:
            raise _refuse("fee_payer_in_instruction", f"{where} uses the relayer's fee payer as a wallet account.")
        return 0, 0
    count = data[1] if len(data) > 1 else 0
    if not 1 <= count <= MAX_TRANSFERS or len(data) != _EXECUTE_HEADER_LEN + _TRANSFER_LEN * count:
        raise _refuse("malformed_message", f"{where} is not a well-formed wallet program execute.")
    if any(use < FIRST_EXTRA_ACCOUNT for use in fee_payer_uses):
        raise _refuse("fee_payer_in_instruction", f"{where} uses the relayer's fee payer as a wallet account.")
    allowed: set[int] = set()
    ata_rent = 0
    for number in range(count):
        transfer = data[_EXECUTE_HEADER_LEN + number * _TRANSFER_LEN:][:_TRANSFER_LEN]
        if transfer[0] == TRANSFER_KIND_SOL:
            continue
        if transfer[0] != TRANSFER_KIND_TOKEN or max(transfer[1:8]) >= len(accounts):
            raise _refuse("malformed_message", f"{where} has a transfer the relayer cannot read.")
        if accounts[transfer[_TRANSFER_DESTINATION]] == 0:
            allowed.add(transfer[_TRANSFER_DESTINATION])
        if accounts[transfer[_TRANSFER_PAYER]] == 0:
            if not app_settings.SPONSOR_ATA_RENT:
                raise _refuse("ata_rent_not_sponsored",
                              f"{where} asks the relayer to pay for a new token account, which is turned off.")
            token_program = keys[accounts[transfer[_TRANSFER_TOKEN_PROGRAM]]]
            if token_program not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
                raise _refuse("malformed_message", f"{where} creates a token account for an unknown token program.")
            allowed.add(transfer[_TRANSFER_PAYER])
            ata_rent += _token_account_rent(ata_rent_lamports, is_token_2022=token_program == TOKEN_2022_PROGRAM_ID)
    # A position named by a transfer as payer or destination wallet must be named so by every transfer
    # that names it: the fee payer is never a debited account (source, destination, mint) of any transfer.
    for number in range(count):
        transfer = data[_EXECUTE_HEADER_LEN + number * _TRANSFER_LEN:][:_TRANSFER_LEN]
        named = [transfer[1]] if transfer[0] == TRANSFER_KIND_SOL else [transfer[2], transfer[3], transfer[4],
                                                                         transfer[5], transfer[6]]
        if any(index in allowed or (index < len(accounts) and accounts[index] == 0) for index in named):
            raise _refuse("fee_payer_in_instruction", f"{where} moves funds to or from the relayer's fee payer.")
    if any(use not in allowed for use in fee_payer_uses):
        raise _refuse("fee_payer_in_instruction", f"{where} uses the relayer's fee payer as a wallet account.")
    return ata_rent, 0


def _refuse(reason: str, message: str) -> ApplicationError:
    return ApplicationError("transaction_not_allowed", message, status=400, extra={"reason": reason})


def validate_sponsored_message(message: Message, *, fee_payer: Pubkey, ata_rent_lamports: int) -> int:
    """Check a message the relayer is asked to co-sign as fee payer, and price the worst case.

    Deny by default (DESIGN.md "Fee sponsorship"): every instruction must match one of the rules below,
    anything else is refused.

    1. The message is a legacy :class:`solders.message.Message` whose first signer
       (``account_keys[0]``) is ``fee_payer``, and ``fee_payer`` appears in no other key slot.
    2. Every instruction's program is allowlisted: System, SPL Token, Token-2022, Associated Token
       Account, Memo (v2 and v1), Compute Budget; the secp256r1 precompile (no accounts; its signatures are
       priced like transaction signatures), which carries the wallet program's passkey approvals.
    3. ``fee_payer`` appears in no instruction's accounts, except as account 0 (the funder) of an
       Associated Token Account ``Create`` / ``CreateIdempotent`` instruction, and only when
       ``app_settings.SPONSOR_ATA_RENT`` is on.
    4. System program instructions are only ``Transfer`` (never from the fee payer, by rule 3).
    5. Compute budget instructions are well formed and not repeated (the deprecated ``RequestUnits``
       is refused).
    6. The maximum loss is at most ``app_settings.MAX_LAMPORTS_PER_TX``; the rent of a smart wallet's
       config (once per wallet) comes on top of it.
    7. The Numpay wallet program (``NUMPAY_WALLET_PROGRAM_ID``) is allowed, with the fee payer only
       where :func:`_wallet_program_cost` allows it (config rent, recipient token account rent, or as a
       token transfer's destination wallet); what it calls (System, Token, Token-2022, Associated Token)
       is allowlisted already. Its passkey-approved form (tag | 0x80) is checked on its body as the signer
       form; the secp256r1 precompile instruction in front of it (no accounts, 1..8 signatures) is allowed,
       each of its signatures priced as a signature fee (Solana charges precompile signatures like the
       transaction's own).

    :param message: the compiled legacy message to be signed.
    :param fee_payer: the relayer's fee payer address.
    :param ata_rent_lamports: rent-exempt minimum of a token account (165 bytes), in lamports; charged
        once per ATA creation the fee payer funds (even ``CreateIdempotent``, which may end up free),
        scaled up to :data:`TOKEN_2022_ACCOUNT_MAX_LEN` for a Token-2022 account.
    :returns: the maximum lamports the fee payer can lose with this transaction: 5000 x (required
        signatures + secp256r1 precompile signatures) + the prioritization fee + the rent of each ATA
        creation it funds + the rent of each wallet config it funds.
    :raises ApplicationError: code ``transaction_not_allowed`` (HTTP 400) with ``extra["reason"]`` one
        of ``unsupported_message``, ``malformed_message``, ``fee_payer_not_first_signer``,
        ``fee_payer_duplicated``, ``program_not_allowed``, ``fee_payer_in_instruction``,
        ``ata_rent_not_sponsored``, ``wallet_config_rent_not_sponsored``, ``system_instruction_not_allowed``,
        ``compute_budget_instruction_not_allowed``, ``duplicate_compute_budget_instruction``; or code
        ``fee_payer_cap_exceeded`` (HTTP 400) when the maximum loss is above the per-transaction cap.
    """
    if not isinstance(message, Message):
        raise _refuse("unsupported_message", "Only legacy Solana messages can be sponsored.")
    keys = list(message.account_keys)
    signer_count = message.header.num_required_signatures
    if signer_count < 1 or not keys or keys[0] != fee_payer:
        raise _refuse("fee_payer_not_first_signer", "The relayer's fee payer must be the transaction's first signer.")
    if keys.count(fee_payer) != 1:
        raise _refuse("fee_payer_duplicated", "The relayer's fee payer may appear only once in the transaction.")

    ata_rent_total = 0
    config_rent_total = 0
    wallet_program = wallet_program_id()
    compute_unit_limit: int | None = None
    compute_unit_price = 0
    seen_compute_budget: set[int] = set()
    other_instructions = 0
    precompile_signatures = 0

    for position, instruction in enumerate(message.instructions):
        accounts = list(bytes(instruction.accounts))
        data = bytes(instruction.data)
        if instruction.program_id_index >= len(keys) or any(index >= len(keys) for index in accounts):
            raise _refuse("malformed_message", "The transaction refers to an account that is not in its key list.")
        program_id = keys[instruction.program_id_index]
        if program_id == wallet_program:
            other_instructions += 1
            ata_rent, config_rent = _wallet_program_cost(position, keys, accounts, data,
                                                         ata_rent_lamports=ata_rent_lamports)
            ata_rent_total += ata_rent
            config_rent_total += config_rent
            continue
        if program_id == SECP256R1_PROGRAM_ID:
            # a passkey approval's signature check: no accounts (the fee payer cannot be named); each of its
            # signatures costs a signature fee like the transaction's own
            count = data[0] if data else 0
            if accounts or not 1 <= count <= MAX_PRECOMPILE_SIGNATURES:
                raise _refuse("malformed_message", f"Instruction {position + 1} is not a secp256r1 signature check "
                              "the relayer sponsors.")
            precompile_signatures += count
            other_instructions += 1
            continue
        if program_id not in ALLOWED_PROGRAM_IDS:
            raise _refuse(
                "program_not_allowed",
                f"Instruction {position + 1} calls program {program_id}, which the relayer does not sponsor.",
            )

        if program_id == COMPUTE_BUDGET_PROGRAM_ID:
            tag = data[0] if data else None
            if tag not in _CB_DATA_LENGTHS or len(data) != _CB_DATA_LENGTHS[tag] or accounts:
                raise _refuse(
                    "compute_budget_instruction_not_allowed",
                    f"Instruction {position + 1} is a compute budget instruction the relayer does not sponsor.",
                )
            if tag in seen_compute_budget:
                raise _refuse(
                    "duplicate_compute_budget_instruction",
                    f"Instruction {position + 1} repeats a compute budget instruction.",
                )
            seen_compute_budget.add(tag)
            if tag == _CB_SET_COMPUTE_UNIT_LIMIT:
                compute_unit_limit = int.from_bytes(data[1:5], "little")
            elif tag == _CB_SET_COMPUTE_UNIT_PRICE:
                compute_unit_price = int.from_bytes(data[1:9], "little")
            continue

        other_instructions += 1
        if 0 in accounts:
            is_ata_create = program_id == ASSOCIATED_TOKEN_PROGRAM_ID and data in _ATA_CREATE_DATA
            if not is_ata_create or accounts[0] != 0 or accounts.count(0) != 1:
                raise _refuse(
                    "fee_payer_in_instruction",
                    f"Instruction {position + 1} uses the relayer's fee payer as an account; it may only fund "
                    "the creation of an associated token account.",
                )
            if not app_settings.SPONSOR_ATA_RENT:
                raise _refuse(
                    "ata_rent_not_sponsored",
                    f"Instruction {position + 1} asks the relayer to pay for a new token account, which is turned off.",
                )
            token_program = keys[accounts[_ATA_TOKEN_PROGRAM_POSITION]] if len(accounts) >= _ATA_ACCOUNT_COUNT else None
            if token_program not in (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID):
                raise _refuse(
                    "malformed_message",
                    f"Instruction {position + 1} creates a token account for an unknown token program.",
                )
            ata_rent_total += _token_account_rent(ata_rent_lamports, is_token_2022=token_program == TOKEN_2022_PROGRAM_ID)

        if program_id == SYSTEM_PROGRAM_ID:
            is_transfer = len(data) == 12 and int.from_bytes(data[:4], "little") == _SYSTEM_TRANSFER
            if not is_transfer:
                raise _refuse(
                    "system_instruction_not_allowed",
                    f"Instruction {position + 1} is a System program instruction other than a transfer.",
                )

    if compute_unit_limit is None:
        compute_unit_limit = DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT * other_instructions
    compute_unit_limit = min(compute_unit_limit, MAX_COMPUTE_UNIT_LIMIT)
    priority_fee = -(-compute_unit_price * compute_unit_limit // MICRO_LAMPORTS_PER_LAMPORT)
    max_loss = LAMPORTS_PER_SIGNATURE * (signer_count + precompile_signatures) + priority_fee + ata_rent_total

    cap = app_settings.MAX_LAMPORTS_PER_TX
    if max_loss > cap:
        raise ApplicationError(
            "fee_payer_cap_exceeded",
            f"This transaction could cost the relayer {max_loss} lamports, above its limit of {cap} lamports.",
            status=400,
            extra={"reason": "fee_payer_cap_exceeded", "cost_lamports": max_loss, "cap_lamports": cap},
        )
    return max_loss + config_rent_total
