"""``jsonParsed`` rendering of instructions for ``getTransaction`` (solana-transaction-status parsers).

Known programs (System transfer / createAccount, SPL Token and Token-2022 transfer, transferChecked,
mintTo, mintToChecked, burn, initializeMint(2), initializeAccount(3), closeAccount, SPL Memo, the
Associated Token Account program) are parsed; everything else is rendered partially decoded
(``{"programId", "accounts", "data", "stackHeight"}``) exactly like a validator does for programs it
cannot parse.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID

from localnet.codec import TOKEN_PROGRAM_IDS, TOKEN_PROGRAM_NAMES, b58encode, ui_amount

MEMO_PROGRAM_IDS = (
    Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"),
    Pubkey.from_string("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo"),
)
ASSOCIATED_TOKEN_PROGRAM_ID = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")


def parse_instruction(
    keys: Sequence[Pubkey], program_index: int, accounts: Sequence[int], data: bytes, stack_height: int | None
) -> dict[str, Any]:
    """Render one compiled instruction in ``jsonParsed`` form.

    :param keys: the transaction's full account list (static then loaded).
    :param program_index: index of the program in ``keys``.
    :param accounts: indexes into ``keys``.
    :param data: instruction data.
    :param stack_height: invocation depth (``None`` for top-level instructions).
    :returns: ``{"program", "programId", "parsed", "stackHeight"}`` or the partially decoded form.
    """
    program = keys[program_index]
    names = [str(keys[index]) for index in accounts]
    parsed: Any = None
    program_name = None
    try:
        if program == SYSTEM_PROGRAM_ID:
            program_name, parsed = "system", _system(names, data)
        elif program in TOKEN_PROGRAM_IDS:
            program_name, parsed = TOKEN_PROGRAM_NAMES[program], _token(names, data)
        elif program in MEMO_PROGRAM_IDS:
            program_name, parsed = "spl-memo", data.decode("utf-8")
        elif program == ASSOCIATED_TOKEN_PROGRAM_ID:
            program_name, parsed = "spl-associated-token-account", _associated(names, data)
    except (struct.error, IndexError, UnicodeDecodeError):
        parsed = None
    if parsed is None:
        return {"accounts": names, "data": b58encode(data), "programId": str(program), "stackHeight": stack_height}
    return {"parsed": parsed, "program": program_name, "programId": str(program), "stackHeight": stack_height}


def _system(names: list[str], data: bytes) -> dict[str, Any] | None:
    (tag,) = struct.unpack_from("<I", data, 0)
    if tag == 2:
        (lamports,) = struct.unpack_from("<Q", data, 4)
        return {"info": {"destination": names[1], "lamports": lamports, "source": names[0]}, "type": "transfer"}
    if tag == 0:
        lamports, space = struct.unpack_from("<QQ", data, 4)
        owner = str(Pubkey.from_bytes(data[20:52]))
        return {
            "info": {"lamports": lamports, "newAccount": names[1], "owner": owner, "source": names[0], "space": space},
            "type": "createAccount",
        }
    return None


def _token(names: list[str], data: bytes) -> dict[str, Any] | None:
    tag = data[0]
    if tag == 3:
        (amount,) = struct.unpack_from("<Q", data, 1)
        return {
            "info": {"amount": str(amount), "authority": names[2], "destination": names[1], "source": names[0]},
            "type": "transfer",
        }
    if tag == 12:
        amount, decimals = struct.unpack_from("<QB", data, 1)
        return {
            "info": {
                "authority": names[3],
                "destination": names[2],
                "mint": names[1],
                "source": names[0],
                "tokenAmount": ui_amount(amount, decimals),
            },
            "type": "transferChecked",
        }
    if tag == 7:
        (amount,) = struct.unpack_from("<Q", data, 1)
        return {
            "info": {"account": names[1], "amount": str(amount), "mint": names[0], "mintAuthority": names[2]},
            "type": "mintTo",
        }
    if tag == 14:
        amount, decimals = struct.unpack_from("<QB", data, 1)
        return {
            "info": {
                "account": names[1],
                "mint": names[0],
                "mintAuthority": names[2],
                "tokenAmount": ui_amount(amount, decimals),
            },
            "type": "mintToChecked",
        }
    if tag == 8:
        (amount,) = struct.unpack_from("<Q", data, 1)
        return {
            "info": {"account": names[0], "amount": str(amount), "authority": names[2], "mint": names[1]},
            "type": "burn",
        }
    if tag in (0, 20):
        decimals = data[1]
        mint_authority = str(Pubkey.from_bytes(data[2:34]))
        info: dict[str, Any] = {"decimals": decimals, "mint": names[0], "mintAuthority": mint_authority}
        if data[34] == 1:
            info["freezeAuthority"] = str(Pubkey.from_bytes(data[35:67]))
        if tag == 0:
            info["rentSysvar"] = names[1]
        return {"info": info, "type": "initializeMint" if tag == 0 else "initializeMint2"}
    if tag == 1:
        return {
            "info": {"account": names[0], "mint": names[1], "owner": names[2], "rentSysvar": names[3]},
            "type": "initializeAccount",
        }
    if tag == 18:
        return {
            "info": {"account": names[0], "mint": names[1], "owner": str(Pubkey.from_bytes(data[1:33]))},
            "type": "initializeAccount3",
        }
    if tag == 9:
        return {"info": {"account": names[0], "destination": names[1], "owner": names[2]}, "type": "closeAccount"}
    return None


def _associated(names: list[str], data: bytes) -> dict[str, Any] | None:
    kind = data[0] if data else 0
    if kind not in (0, 1):
        return None
    return {
        "info": {
            "account": names[1],
            "mint": names[3],
            "source": names[0],
            "systemProgram": names[4],
            "tokenProgram": names[5],
            "wallet": names[2],
        },
        "type": "create" if kind == 0 else "createIdempotent",
    }
