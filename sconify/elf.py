"""Just enough ELF to find what the dynamic loader will open: interpreter, DT_NEEDED, run paths."""

from __future__ import annotations

import struct
from dataclasses import dataclass

ELF_MAGIC = b"\x7fELF"
_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_RPATH, _DT_RUNPATH = 0, 1, 5, 15, 29


@dataclass(frozen=True)
class ElfInfo:
    """The dynamic-linking facts of one ELF file."""

    machine: int
    interpreter: str | None
    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]

    @property
    def is_dynamic(self) -> bool:
        """True when the loader resolves libraries for this file."""
        return self.interpreter is not None or bool(self.needed)


class NotElf(ValueError):
    """The bytes are not an ELF file this parser understands."""


def parse_elf(data: bytes) -> ElfInfo:
    """Parse the program headers and dynamic section of an ELF image held in ``data``."""
    if len(data) < 64 or not data.startswith(ELF_MAGIC):
        raise NotElf("not an ELF file")
    cls, endian = data[4], data[5]
    if cls not in (1, 2) or endian not in (1, 2):
        raise NotElf("unknown ELF class or byte order")
    end = "<" if endian == 1 else ">"
    is64 = cls == 2
    try:
        if is64:
            (machine,) = struct.unpack_from(end + "H", data, 18)
            (phoff,) = struct.unpack_from(end + "Q", data, 32)
            phentsize, phnum = struct.unpack_from(end + "HH", data, 54)
            ph_fmt = end + "IIQQQQQQ"
        else:
            (machine,) = struct.unpack_from(end + "H", data, 18)
            (phoff,) = struct.unpack_from(end + "I", data, 28)
            phentsize, phnum = struct.unpack_from(end + "HH", data, 42)
            ph_fmt = end + "IIIIIIII"
        loads: list[tuple[int, int, int]] = []
        dynamic: tuple[int, int] | None = None
        interp: str | None = None
        for i in range(phnum):
            fields = struct.unpack_from(ph_fmt, data, phoff + i * phentsize)
            if is64:
                p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = fields[:6]
            else:
                p_type, p_offset, p_vaddr, _paddr, p_filesz = fields[:5]
            if p_type == _PT_LOAD:
                loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == _PT_DYNAMIC:
                dynamic = (p_offset, p_filesz)
            elif p_type == _PT_INTERP:
                interp = data[p_offset : p_offset + p_filesz].split(b"\0", 1)[0].decode()
        if dynamic is None:
            return ElfInfo(machine, interp, (), (), ())
        entries = _dynamic_entries(data, dynamic, end, is64)
    except struct.error as err:
        raise NotElf(f"truncated ELF file: {err}") from None

    strtab_vaddr = next((v for tag, v in entries if tag == _DT_STRTAB), None)
    if strtab_vaddr is None:
        return ElfInfo(machine, interp, (), (), ())
    strtab = _vaddr_to_offset(strtab_vaddr, loads)

    def string(offset: int) -> str:
        start = strtab + offset
        return data[start : data.index(b"\0", start)].decode("utf-8", "surrogateescape")

    needed = tuple(string(v) for tag, v in entries if tag == _DT_NEEDED)
    rpath = tuple(p for tag, v in entries if tag == _DT_RPATH for p in string(v).split(":") if p)
    runpath = tuple(
        p for tag, v in entries if tag == _DT_RUNPATH for p in string(v).split(":") if p
    )
    return ElfInfo(machine, interp, needed, rpath, runpath)


def _dynamic_entries(
    data: bytes, dynamic: tuple[int, int], end: str, is64: bool
) -> list[tuple[int, int]]:
    offset, size = dynamic
    fmt = end + ("qQ" if is64 else "iI")
    step = struct.calcsize(fmt)
    out = []
    for pos in range(offset, offset + size - step + 1, step):
        tag, value = struct.unpack_from(fmt, data, pos)
        if tag == _DT_NULL:
            break
        out.append((tag, value))
    return out


def _vaddr_to_offset(vaddr: int, loads: list[tuple[int, int, int]]) -> int:
    for p_vaddr, p_offset, p_filesz in loads:
        if p_vaddr <= vaddr < p_vaddr + p_filesz:
            return vaddr - p_vaddr + p_offset
    raise NotElf("string table outside every loadable segment")
