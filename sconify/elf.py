"""Just enough ELF to find what the dynamic loader will open: interpreter, DT_NEEDED, run paths.

The bytes come from layers, so they may be anything that starts with ``\\x7fELF``. The parser
reads only the ranges it needs (the header, the program headers, ``PT_INTERP``, the dynamic
section and the strings it names), each through ``read_at`` and each capped, so a hostile
header cannot make it allocate much, read much or loop: every count, offset and size is
checked against the file and the caps below, and anything out of bounds is :class:`NotElf`.
:class:`ElfCapture` gives it the bytes of a file that streams past (a tar member) in bounded
memory: small files in memory, large ones spooled to a temporary file.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, cast

ELF_MAGIC = b"\x7fELF"
_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_STRSZ, _DT_RPATH, _DT_RUNPATH = 0, 1, 5, 10, 15, 29

#: Program headers read at most (real files have about 10-20; 0xffff means "see section 0").
MAX_PHNUM = 1024
#: A program header entry at most this long (the standard ones are 32 and 56 bytes).
MAX_PHENTSIZE = 256
#: Bytes of the dynamic section read at most (65,536 entries of a 64-bit file).
MAX_DYNAMIC_BYTES = 1 << 20
#: DT_NEEDED, DT_RPATH and DT_RUNPATH entries read at most, together.
MAX_NAMES = 1024
#: The longest interpreter path, library name or run path list read.
MAX_STRING = 64 << 10
_FIRST_READ = 256

ReadAt = Callable[[int, int], bytes]


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


@dataclass(frozen=True)
class _Header:
    machine: int
    end: str
    is64: bool
    phoff: int
    phentsize: int
    phnum: int

    @property
    def table_end(self) -> int:
        return self.phoff + self.phentsize * self.phnum


def _header(head: bytes, size: int) -> _Header:
    """Check the ELF header (the first 64 bytes) against the file's ``size``."""
    if size < 64 or len(head) < 64 or not head.startswith(ELF_MAGIC):
        raise NotElf("not an ELF file")
    cls, endian = head[4], head[5]
    if cls not in (1, 2) or endian not in (1, 2):
        raise NotElf("unknown ELF class or byte order")
    end = "<" if endian == 1 else ">"
    is64 = cls == 2
    (machine,) = struct.unpack_from(end + "H", head, 18)
    if is64:
        (phoff,) = struct.unpack_from(end + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(end + "HH", head, 54)
    else:
        (phoff,) = struct.unpack_from(end + "I", head, 28)
        phentsize, phnum = struct.unpack_from(end + "HH", head, 42)
    if phnum:
        if phnum > MAX_PHNUM:
            raise NotElf(f"{phnum} program headers")
        if not (56 if is64 else 32) <= phentsize <= MAX_PHENTSIZE:
            raise NotElf(f"program header entries of {phentsize} bytes")
    header = _Header(machine, end, is64, phoff, phentsize, phnum)
    if header.table_end > size:
        raise NotElf("the program headers lie past the end of the file")
    return header


def _read_exact(read_at: ReadAt, offset: int, count: int, what: str) -> bytes:
    data = read_at(offset, count)
    if len(data) != count:
        raise NotElf(f"the {what} lies past the end of the file")
    return data


def _program_headers(
    read_at: ReadAt, header: _Header, size: int
) -> tuple[list[tuple[int, int, int]], tuple[int, int] | None, tuple[int, int] | None]:
    """``(loads, dynamic, interp)``: the loadable segments as (vaddr, offset, filesz), and the
    file ranges of the dynamic section and the interpreter path (first PT_INTERP, as the kernel
    takes it; last PT_DYNAMIC, as glibc's loader does)."""
    table = _read_exact(read_at, header.phoff, header.phentsize * header.phnum, "program headers")
    fmt = header.end + ("IIQQQQQQ" if header.is64 else "IIIIIIII")
    loads: list[tuple[int, int, int]] = []
    dynamic: tuple[int, int] | None = None
    interp: tuple[int, int] | None = None
    for i in range(header.phnum):
        fields = struct.unpack_from(fmt, table, i * header.phentsize)
        if header.is64:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = fields[:6]
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz = fields[:5]
        if p_type == _PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == _PT_DYNAMIC:
            if p_offset > size or p_filesz > size - p_offset:
                raise NotElf("the dynamic section lies past the end of the file")
            dynamic = (p_offset, p_filesz)
        elif p_type == _PT_INTERP and interp is None:
            if p_offset > size or p_filesz > size - p_offset or p_filesz > MAX_STRING:
                raise NotElf("the interpreter path lies past the end of the file")
            interp = (p_offset, p_filesz)
    return loads, dynamic, interp


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def parse_elf_at(read_at: ReadAt, size: int) -> ElfInfo:
    """Parse the ELF file of ``size`` bytes that ``read_at(offset, count)`` reads (fewer bytes
    only at the end of the file); raises only :class:`NotElf`."""
    try:
        return _parse(read_at, size)
    except struct.error as err:
        raise NotElf(f"truncated ELF file: {err}") from None


def _parse(read_at: ReadAt, size: int) -> ElfInfo:
    header = _header(read_at(0, 64), size)
    loads, dynamic, interp_range = _program_headers(read_at, header, size)
    interp = None
    if interp_range is not None:
        raw = _read_exact(read_at, interp_range[0], interp_range[1], "interpreter path")
        interp = _decode(raw.split(b"\0", 1)[0])
    if dynamic is None:
        return ElfInfo(header.machine, interp, (), (), ())
    entries = _dynamic_entries(read_at, dynamic, header)
    strtab_vaddr = next((v for tag, v in entries if tag == _DT_STRTAB), None)
    if strtab_vaddr is None:
        return ElfInfo(header.machine, interp, (), (), ())
    strsz = next((v for tag, v in entries if tag == _DT_STRSZ), None)
    strtab = _vaddr_to_offset(strtab_vaddr, loads)
    limit = size if strsz is None else min(size, strtab + strsz)
    if strtab > size:
        raise NotElf("the string table lies past the end of the file")
    wanted = [(tag, v) for tag, v in entries if tag in (_DT_NEEDED, _DT_RPATH, _DT_RUNPATH)]
    if len(wanted) > MAX_NAMES:
        raise NotElf(f"{len(wanted)} library names and run paths")
    names: dict[int, list[str]] = {_DT_NEEDED: [], _DT_RPATH: [], _DT_RUNPATH: []}
    for tag, offset in wanted:
        names[tag].append(_string(read_at, strtab, offset, limit))
    return ElfInfo(
        header.machine,
        interp,
        tuple(names[_DT_NEEDED]),
        tuple(p for s in names[_DT_RPATH] for p in s.split(":") if p),
        tuple(p for s in names[_DT_RUNPATH] for p in s.split(":") if p),
    )


def _dynamic_entries(
    read_at: ReadAt, dynamic: tuple[int, int], header: _Header
) -> list[tuple[int, int]]:
    offset, size = dynamic
    fmt = header.end + ("qQ" if header.is64 else "iI")
    step = struct.calcsize(fmt)
    data = read_at(offset, min(size, MAX_DYNAMIC_BYTES))
    out: list[tuple[int, int]] = []
    for pos in range(0, len(data) - step + 1, step):
        tag, value = struct.unpack_from(fmt, data, pos)
        if tag == _DT_NULL:
            return out
        out.append((tag, value))
    if size > MAX_DYNAMIC_BYTES:
        raise NotElf(f"a dynamic section of {size} bytes without its end in the first ones")
    return out


def _string(read_at: ReadAt, strtab: int, offset: int, limit: int) -> str:
    """The NUL-terminated string at ``strtab + offset``, read in small steps (most are short)."""
    start = strtab + offset
    if start >= limit:
        raise NotElf("a string lies outside the string table")
    count = min(_FIRST_READ, limit - start)
    while True:
        data = read_at(start, count)
        end = data.find(b"\0")
        if end >= 0:
            return _decode(data[:end])
        if len(data) < count or count >= min(MAX_STRING, limit - start):
            raise NotElf("a string without its end in the string table")
        count = min(MAX_STRING, limit - start)


def _vaddr_to_offset(vaddr: int, loads: list[tuple[int, int, int]]) -> int:
    for p_vaddr, p_offset, p_filesz in loads:
        if p_vaddr <= vaddr < p_vaddr + p_filesz:
            return vaddr - p_vaddr + p_offset
    raise NotElf("string table outside every loadable segment")


def parse_elf(data: bytes) -> ElfInfo:
    """Parse the program headers and dynamic section of an ELF image held in ``data``."""
    view = memoryview(data)
    return parse_elf_at(lambda offset, count: bytes(view[offset : offset + count]), len(data))


def parse_elf_file(handle: BinaryIO, size: int) -> ElfInfo:
    """Parse the ELF file of ``size`` bytes open (seekable) as ``handle``."""

    def read_at(offset: int, count: int) -> bytes:
        handle.seek(offset)
        return handle.read(count)

    return parse_elf_at(read_at, size)


#: Bytes an :class:`ElfCapture` keeps in memory before it spools to a temporary file.
CAPTURE_MEMORY = 8 << 20
#: Bytes of a file's start kept to read its program headers.
_HEAD_LIMIT = 64 + MAX_PHNUM * MAX_PHENTSIZE


class ElfCapture:
    """The dynamic-linking facts of a file of ``size`` bytes, fed in pieces as it streams past.

    Only the start is kept until the program headers are read; a file with neither a dynamic
    section nor an interpreter (a static binary) is then done. Otherwise the string table may
    be anywhere in the file, so the rest is kept too: in memory up to :data:`CAPTURE_MEMORY`,
    then in a temporary file in ``spool_dir``. Memory stays bounded whatever the file.
    """

    def __init__(self, size: int, spool_dir: str | None = None) -> None:
        self._size = size
        self._spool_dir = spool_dir
        self._head = bytearray()
        self._spool: tempfile.SpooledTemporaryFile[bytes] | None = None
        self._info: ElfInfo | None = None
        self._done = size < 64

    def feed(self, piece: bytes | memoryview) -> None:
        """The next bytes of the file."""
        if self._done:
            return
        if self._spool is not None:
            self._spool.write(piece)
            return
        if not self._head and len(piece) >= len(ELF_MAGIC) and piece[:4] != ELF_MAGIC:
            self._stop()
            return
        self._head += piece
        try:
            self._decide()
        except NotElf:
            self._stop()

    def _decide(self) -> None:
        if len(self._head) < 64:
            return
        header = _header(bytes(self._head[:64]), self._size)
        if header.table_end > _HEAD_LIMIT:
            raise NotElf("the program headers lie far into the file")
        if len(self._head) < header.table_end:
            return
        head = bytes(self._head)
        _, dynamic, interp = _program_headers(
            lambda offset, count: head[offset : offset + count], header, self._size
        )
        if dynamic is None and interp is None:
            self._info = ElfInfo(header.machine, None, (), (), ())
            self._stop()
            return
        # closed by finish() or close(), whichever the caller reaches
        self._spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            CAPTURE_MEMORY, dir=self._spool_dir
        )
        self._spool.write(self._head)
        self._head = bytearray()

    def _stop(self) -> None:
        self._done = True
        self._head = bytearray()

    def finish(self) -> ElfInfo | None:
        """The facts, or None when the file is not an ELF file this parser reads."""
        try:
            if self._spool is not None:
                spool, self._spool = self._spool, None
                with spool:
                    return parse_elf_file(cast(BinaryIO, spool), self._size)
            return self._info
        except NotElf:
            return None
        finally:
            self._stop()

    def close(self) -> None:
        """Drop what was kept (when the file is abandoned before :meth:`finish`)."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        self._stop()


def parse_stream(stream: BinaryIO, size: int, spool_dir: str | None = None) -> ElfInfo | None:
    """The facts of the ``size``-byte file read from ``stream`` (None if it is not ELF)."""
    capture = ElfCapture(size, spool_dir)
    try:
        while piece := stream.read(1 << 20):
            capture.feed(piece)
        return capture.finish()
    finally:
        capture.close()


__all__ = [
    "ELF_MAGIC",
    "ElfCapture",
    "ElfInfo",
    "NotElf",
    "parse_elf",
    "parse_elf_at",
    "parse_elf_file",
    "parse_stream",
]
