"""The committed program is an SBPF v3 ELF as the agave 4.x loader wants it, and the linker's
syscall hash is the one the runtime uses (docs/wallet-program.md, "Build")."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

from programs.wallet.tests.conftest import PROGRAM_SO

LINKER = Path(__file__).resolve().parents[1] / "build" / "link_sbpf.py"


def _linker():  # noqa: ANN202 - a script, loaded by path
    spec = importlib.util.spec_from_file_location("link_sbpf", LINKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_program_is_an_sbpf_v3_elf() -> None:
    elf = PROGRAM_SO.read_bytes()
    e_type, e_machine, _, e_entry, e_phoff, e_shoff, e_flags, _, e_phentsize, e_phnum, _, e_shnum = struct.unpack_from(
        "<HHIQQQIHHHHH", elf, 16
    )
    assert elf[:4] == b"\x7fELF"
    assert (e_type, e_machine, e_flags) == (3, 247, 3)
    assert (e_phoff, e_phentsize, e_shoff, e_shnum) == (64, 56, 0, 0)
    headers = [struct.unpack_from("<IIQQQQQQ", elf, 64 + i * 56) for i in range(e_phnum)]
    assert [(h[0], h[1], h[3]) for h in headers] == [(1, 4, 0), (1, 1, 1 << 32)]  # PT_LOAD R at 0, X at 1<<32
    text = headers[1]
    assert text[3] <= e_entry < text[3] + text[5]
    assert e_entry % 8 == 0
    assert text[2] + text[5] == len(elf)  # offset + file size: the code segment ends the file


def test_syscall_hashes_match_the_runtime() -> None:
    murmur3_32 = _linker().murmur3_32
    assert murmur3_32(b"abort") == 0xB6FC1A11  # SIMD-0178's example
    assert murmur3_32(b"sol_log_") == 0x207559BD
