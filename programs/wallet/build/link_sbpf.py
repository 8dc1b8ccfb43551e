#!/usr/bin/env python3
"""Numpay's linker step: one LLVM ``bpfel`` relocatable object -> an SBPF v3 program (.so).

``llc-22 -march=bpfel -mcpu=v3 -filetype=obj`` writes an ``ET_REL`` object; the Solana loader
(solana-sbpf >= 0.14, agave 4.x) wants an SBPF v3 ELF (SIMD-0178, 0189, 0377):

* ``e_flags`` 3, ``e_machine`` 247 (EM_BPF), ``e_type`` ET_DYN, program headers right after the
  64-byte ELF header, no section headers, no dynamic section, symbols or relocations;
* program header 0: ``PT_LOAD``, ``PF_R``, vaddr 0: read-only data (``.rodata*``, ``.data.rel.ro*``);
* program header 1: ``PT_LOAD``, ``PF_X``, vaddr ``1 << 32``: the code (``.text*``);
* calls to undefined symbols become static syscalls (``src = 0``, ``imm = murmur3_32(name)``), calls
  inside the program become pc-relative internal calls (``src = 1``), ``lddw`` and absolute
  relocations are resolved to final virtual addresses.

Writable static data cannot exist in an SBPF program: the linker refuses it. The output depends only
on the input bytes (no timestamps, no paths), so a build can be compared byte for byte.

Usage: ``link_sbpf.py input.o output.so [entry_symbol]`` (entry symbol defaults to ``entrypoint``).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

RODATA_VADDR = 0
TEXT_VADDR = 1 << 32
EM_BPF = 247
ET_DYN = 3
PT_LOAD = 1
PF_X, PF_R = 1, 4
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
SHT_SYMTAB, SHT_NOBITS, SHT_REL = 2, 8, 9
STT_SECTION = 3
R_BPF_64_64, R_BPF_64_ABS64, R_BPF_64_ABS32, R_BPF_64_NODYLD32, R_BPF_64_32 = 1, 2, 3, 4, 10
OPCODE_CALL = 0x85


class LinkError(Exception):
    """The object cannot be turned into an SBPF v3 program (the message says why)."""


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 (x86, 32-bit): the SBPF v3 syscall number of a syscall name.

    :param data: the syscall name, e.g. ``b"sol_log_"``.
    :returns: the 32-bit hash used as the ``imm`` of a static syscall instruction.
    """
    mask = 0xFFFFFFFF

    def rotl(value: int, shift: int) -> int:
        return ((value << shift) | (value >> (32 - shift))) & mask

    def scramble(k: int) -> int:
        return (rotl((k * 0xCC9E2D51) & mask, 15) * 0x1B873593) & mask

    h = seed & mask
    whole = len(data) - len(data) % 4
    for i in range(0, whole, 4):
        h ^= scramble(struct.unpack_from("<I", data, i)[0])
        h = (rotl(h, 13) * 5 + 0xE6546B64) & mask
    tail = data[whole:]
    if tail:
        h ^= scramble(int.from_bytes(tail, "little"))
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    return h ^ (h >> 16)


class _Section:
    def __init__(self, raw: tuple[int, ...], name: str) -> None:
        (self.name_offset, self.type, self.flags, _, self.offset, self.size, self.link, self.info, self.align, _) = raw
        self.name = name


def _read_sections(obj: bytes) -> list[_Section]:
    if obj[:4] != b"\x7fELF" or obj[4] != 2 or obj[5] != 1:
        raise LinkError("not a little-endian ELF64 object")
    e_type, e_machine = struct.unpack_from("<HH", obj, 16)
    if e_type != 1 or e_machine != EM_BPF:
        raise LinkError("need an ET_REL object for EM_BPF (llc -march=bpfel -filetype=obj)")
    (e_shoff,) = struct.unpack_from("<Q", obj, 40)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", obj, 58)
    raw = [struct.unpack_from("<IIQQQQIIQQ", obj, e_shoff + i * e_shentsize) for i in range(e_shnum)]
    names_at = raw[e_shstrndx][4]
    sections = []
    for entry in raw:
        start = names_at + entry[0]
        sections.append(_Section(entry, obj[start : obj.index(b"\0", start)].decode()))
    return sections


def link(obj: bytes, entry_symbol: str = "entrypoint") -> bytes:
    """Link one relocatable BPF object into an SBPF v3 shared object.

    :param obj: the bytes of the ``ET_REL`` object written by ``llc -march=bpfel -mcpu=v3``.
    :param entry_symbol: the exported function the loader starts at.
    :returns: the bytes of the SBPF v3 ELF.
    :raises LinkError: on writable data, ``.bss``, an unknown relocation type, an unresolved call,
        or a missing entry symbol.
    """
    sections = _read_sections(obj)
    rodata, text = bytearray(), bytearray()
    placed: dict[int, tuple[bytearray, int, int]] = {}  # section index -> (buffer, offset, segment vaddr)
    for index, section in enumerate(sections):
        if not section.flags & SHF_ALLOC or section.size == 0 or section.name.startswith(".eh_frame"):
            continue
        if section.flags & SHF_EXECINSTR:
            buffer, vaddr = text, TEXT_VADDR
        elif not section.flags & SHF_WRITE or section.name.startswith(".data.rel.ro"):
            buffer, vaddr = rodata, RODATA_VADDR
        else:
            raise LinkError(f"writable section {section.name} ({section.size} bytes): SBPF has no writable static data")
        if section.type == SHT_NOBITS:
            raise LinkError(f"{section.name}: zero-initialised sections are not supported")
        buffer.extend(bytes(-len(buffer) % max(section.align, 1)))
        placed[index] = (buffer, len(buffer), vaddr)
        buffer.extend(obj[section.offset : section.offset + section.size])
    rodata.extend(bytes(-len(rodata) % 8))

    symtab = next(s for s in sections if s.type == SHT_SYMTAB)
    strtab = sections[symtab.link]
    symbols = []
    for k in range(symtab.size // 24):
        st_name, st_info, _, st_shndx, st_value, _ = struct.unpack_from("<IBBHQQ", obj, symtab.offset + k * 24)
        start = strtab.offset + st_name
        symbols.append((obj[start : obj.index(b"\0", start)].decode(), st_info, st_shndx, st_value))

    def address_of(symbol: tuple[str, int, int, int]) -> int:
        _, _, shndx, value = symbol
        if shndx not in placed:
            raise LinkError(f"symbol {symbol[0]!r} lives in a discarded section")
        _, offset, vaddr = placed[shndx]
        return vaddr + offset + value

    for relocations in sections:
        if relocations.type != SHT_REL or relocations.info not in placed:
            continue  # .rel.BTF, .rel.eh_frame, debug sections
        buffer, section_offset, _ = placed[relocations.info]
        for k in range(relocations.size // 16):
            r_offset, r_info = struct.unpack_from("<QQ", obj, relocations.offset + k * 16)
            kind, symbol = r_info & 0xFFFFFFFF, symbols[r_info >> 32]
            at = section_offset + r_offset
            if kind == R_BPF_64_64:  # lddw: the addend is the low immediate
                value = address_of(symbol) + struct.unpack_from("<I", buffer, at + 4)[0]
                struct.pack_into("<I", buffer, at + 4, value & 0xFFFFFFFF)
                struct.pack_into("<I", buffer, at + 12, value >> 32)
            elif kind == R_BPF_64_ABS64:
                value = address_of(symbol) + struct.unpack_from("<Q", buffer, at)[0]
                struct.pack_into("<Q", buffer, at, value)
            elif kind == R_BPF_64_ABS32:
                value = address_of(symbol) + struct.unpack_from("<I", buffer, at)[0]
                struct.pack_into("<I", buffer, at, value & 0xFFFFFFFF)
            elif kind == R_BPF_64_32:
                if buffer is not text or buffer[at] != OPCODE_CALL:
                    raise LinkError(f"R_BPF_64_32 not on a call instruction at {at:#x}")
                if symbol[2] == 0:  # undefined: a syscall
                    buffer[at + 1] &= 0x0F
                    struct.pack_into("<I", buffer, at + 4, murmur3_32(symbol[0].encode()))
                else:
                    (imm,) = struct.unpack_from("<i", buffer, at + 4)
                    target = address_of(symbol)
                    if symbol[1] & 0xF == STT_SECTION:
                        target += (imm + 1) * 8
                    pc = at // 8
                    buffer[at + 1] = (buffer[at + 1] & 0x0F) | 0x10
                    struct.pack_into("<i", buffer, at + 4, (target - TEXT_VADDR) // 8 - pc - 1)
            elif kind == R_BPF_64_NODYLD32:
                continue
            else:
                raise LinkError(f"unsupported relocation type {kind} in {sections[relocations.info].name}")

    for at in range(0, len(text), 8):
        if text[at] == OPCODE_CALL and struct.unpack_from("<i", text, at + 4)[0] == -1:
            raise LinkError(f"unresolved call at text+{at:#x}")

    entry = next((s for s in symbols if s[0] == entry_symbol and s[2] != 0), None)
    if entry is None:
        raise LinkError(f"no entry symbol {entry_symbol!r}")
    e_entry = address_of(entry)
    if e_entry < TEXT_VADDR or e_entry % 8:
        raise LinkError("entry point is not an aligned code address")

    headers = 2 if rodata else 1
    offset = 64 + headers * 56
    program_headers = b""
    if rodata:
        program_headers += _program_header(PF_R, offset, RODATA_VADDR, len(rodata))
        offset += len(rodata)
    program_headers += _program_header(PF_X, offset, TEXT_VADDR, len(text))
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    elf_header = ident + struct.pack("<HHIQQQIHHHHHH", ET_DYN, EM_BPF, 1, e_entry, 64, 0, 3, 64, 56, headers, 64, 0, 0)
    return elf_header + program_headers + bytes(rodata) + bytes(text)


def _program_header(flags: int, offset: int, vaddr: int, size: int) -> bytes:
    return struct.pack("<IIQQQQQQ", PT_LOAD, flags, offset, vaddr, vaddr, size, size, 8)


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    try:
        program = link(Path(argv[1]).read_bytes(), *argv[3:4])
    except LinkError as error:
        print(f"link_sbpf: {error}", file=sys.stderr)
        return 1
    Path(argv[2]).write_bytes(program)
    print(f"link_sbpf: wrote {argv[2]} ({len(program)} bytes, SBPF v3)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
