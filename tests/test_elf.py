"""The ELF reader on real files of this machine and on malformed ones: only NotElf, bounded."""

from __future__ import annotations

import io
import random
import struct
import time
import tracemalloc
from pathlib import Path

import pytest

from sconify.elf import (
    CAPTURE_MEMORY,
    ElfCapture,
    ElfInfo,
    NotElf,
    parse_elf,
    parse_elf_at,
    parse_stream,
)

REAL = [
    Path("/bin/ls").resolve(),
    Path("/lib/x86_64-linux-gnu/libc.so.6").resolve(),
    Path("/lib64/ld-linux-x86-64.so.2").resolve(),
]


def _parse_or_none(data: bytes) -> ElfInfo | None:
    try:
        return parse_elf(data)
    except NotElf:
        return None


def _streamed(data: bytes, piece: int = 4096) -> ElfInfo | None:
    capture = ElfCapture(len(data))
    for start in range(0, len(data), piece):
        capture.feed(memoryview(data)[start : start + piece])
    return capture.finish()


def test_real_files_parse_alike_from_memory_and_streamed() -> None:
    ls = REAL[0].read_bytes()
    info = parse_elf(ls)
    assert info.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert "libc.so.6" in info.needed
    for path in REAL:
        data = path.read_bytes()
        assert _streamed(data) == parse_elf(data) == parse_stream(io.BytesIO(data), len(data))


def _ls() -> bytearray:
    return bytearray(REAL[0].read_bytes())


def _phdrs(data: bytearray) -> tuple[int, int, int]:
    (phoff,) = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    return phoff, phentsize, phnum


def _dynamic_phdr(data: bytearray) -> int:
    phoff, phentsize, phnum = _phdrs(data)
    for i in range(phnum):
        if struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 2:
            return phoff + i * phentsize
    raise AssertionError("no PT_DYNAMIC")


def _truncated_header(data: bytearray) -> bytes:
    return bytes(data[:40])


def _truncated_program_headers(data: bytearray) -> bytes:
    phoff, _, _ = _phdrs(data)
    return bytes(data[: phoff + 20])


def _phoff_past_end(data: bytearray) -> bytes:
    struct.pack_into("<Q", data, 32, len(data) + 4096)
    return bytes(data)


def _phnum_huge(data: bytearray) -> bytes:
    struct.pack_into("<H", data, 56, 0xFFFF)
    return bytes(data)


def _phentsize_tiny(data: bytearray) -> bytes:
    struct.pack_into("<H", data, 54, 1)
    return bytes(data)


def _dynamic_past_end(data: bytearray) -> bytes:
    struct.pack_into("<Q", data, _dynamic_phdr(data) + 8, len(data) - 8)
    return bytes(data)


def _dynamic_size_huge(data: bytearray) -> bytes:
    struct.pack_into("<Q", data, _dynamic_phdr(data) + 32, 1 << 62)
    return bytes(data)


def _dynamic_overlaps_the_headers(data: bytearray) -> bytes:
    # the dynamic section "is" the ELF header and program headers: garbage tags, no DT_NULL
    ph = _dynamic_phdr(data)
    struct.pack_into("<QQQQ", data, ph + 8, 0, 0, 0, len(data))
    return bytes(data)


def _strings_far_away(data: bytearray) -> bytes:
    # every DT_NEEDED names a string at a huge offset
    ph = _dynamic_phdr(data)
    offset, size = (
        struct.unpack_from("<Q", data, ph + 8)[0],
        struct.unpack_from("<Q", data, ph + 32)[0],
    )
    for pos in range(offset, offset + size, 16):
        if struct.unpack_from("<q", data, pos)[0] == 1:
            struct.pack_into("<Q", data, pos + 8, (1 << 63) - 1)
    return bytes(data)


def _string_without_end(data: bytearray) -> bytes:
    # the string table runs to the end of the file with no NUL in it
    ph = _dynamic_phdr(data)
    offset = struct.unpack_from("<Q", data, ph + 8)[0]
    for pos in range(offset, len(data) - 16, 16):
        tag = struct.unpack_from("<q", data, pos)[0]
        if tag == 0:
            break
        if tag == 10:  # DT_STRSZ
            struct.pack_into("<Q", data, pos + 8, 1 << 40)
    tail = b"A" * 200_000
    return bytes(data) + tail


def _many_needed(data: bytearray) -> bytes:
    # a dynamic section of 60,000 DT_NEEDED entries
    entries = struct.pack("<qQ", 1, 0) * 60_000 + struct.pack("<qQ", 0, 0)
    start = len(data)
    ph = _dynamic_phdr(data)
    struct.pack_into("<QQQQQ", data, ph + 8, start, 0, 0, len(entries), len(entries))
    return bytes(data) + entries


def _interp_huge(data: bytearray) -> bytes:
    phoff, phentsize, phnum = _phdrs(data)
    for i in range(phnum):
        ph = phoff + i * phentsize
        if struct.unpack_from("<I", data, ph)[0] == 3:
            struct.pack_into("<Q", data, ph + 32, 1 << 40)
    return bytes(data)


def _interp_not_utf8(data: bytearray) -> bytes:
    at = bytes(data).index(b"/lib64/ld-linux")
    data[at + 1] = 0xE9
    return bytes(data)


MALFORMED = {
    "truncated-header": _truncated_header,
    "truncated-program-headers": _truncated_program_headers,
    "phoff-past-end": _phoff_past_end,
    "phnum-huge": _phnum_huge,
    "phentsize-tiny": _phentsize_tiny,
    "dynamic-past-end": _dynamic_past_end,
    "dynamic-size-huge": _dynamic_size_huge,
    "dynamic-overlaps-headers": _dynamic_overlaps_the_headers,
    "strings-far-away": _strings_far_away,
    "string-without-end": _string_without_end,
    "many-needed": _many_needed,
    "interp-huge": _interp_huge,
    "interp-not-utf8": _interp_not_utf8,
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_elf_is_not_elf_or_parsed_in_bounds(case: str) -> None:
    data = MALFORMED[case](_ls())
    reads: list[int] = []

    def read_at(offset: int, count: int) -> bytes:
        reads.append(count)
        return data[offset : offset + count]

    try:
        info = parse_elf_at(read_at, len(data))
    except NotElf:
        info = None
    if info is not None:
        assert all(isinstance(n, str) for n in info.needed)
    assert _streamed(data) == info
    assert sum(reads) < 8 << 20, "a malformed file made the parser read megabytes"


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        choice = rng.random()
        if choice < 0.5:
            # a field of the headers or the dynamic section: where the parser looks
            pos = rng.randrange(min(len(out), 4096))
            out[pos] = rng.randrange(256)
        elif choice < 0.7:
            pos = rng.randrange(0, min(len(out), 4096) - 8)
            out[pos : pos + 8] = rng.choice(
                [b"\xff" * 8, bytes(8), struct.pack("<Q", len(out) + rng.randrange(1 << 16))]
            )
        elif choice < 0.85:
            pos = rng.randrange(len(out))
            out[pos] = rng.randrange(256)
        else:
            del out[rng.randrange(64, len(out)) :]
    return bytes(out)


def test_seeded_mutation_fuzz_never_raises_anything_but_not_elf() -> None:
    """A fixed number of mutations of real files (seed fixed, a few seconds): parse_elf
    raises nothing but NotElf, and the streaming capture agrees with it."""
    rng = random.Random(20240909)
    sources = [p.read_bytes() for p in REAL]
    # the dynamic section and strings of ls lie in its first pages; keep inputs small and fast
    sources = [s[:65536] if len(s) > 65536 else s for s in sources] + sources[:1]
    started = time.monotonic()
    outcomes = {"parsed": 0, "not elf": 0}
    for _ in range(3000):
        data = _mutate(rng, rng.choice(sources))
        info = _parse_or_none(data)
        outcomes["parsed" if info else "not elf"] += 1
        assert _streamed(data, piece=rng.choice([7, 4096, 1 << 20])) == info
    assert outcomes["parsed"] and outcomes["not elf"], outcomes
    assert time.monotonic() - started < 120


def test_capture_spools_a_large_file_and_keeps_little_in_memory(tmp_path: Path) -> None:
    ls = REAL[0].read_bytes()
    zeros = bytes(1 << 20)
    count = 8 * CAPTURE_MEMORY // len(zeros)
    capture = ElfCapture(len(ls) + count * len(zeros), spool_dir=str(tmp_path))
    tracemalloc.start()
    try:
        capture.feed(ls)
        for _ in range(count):
            capture.feed(zeros)
        info = capture.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info == parse_elf(ls)
    assert peak < 3 * CAPTURE_MEMORY, f"{peak} bytes held for a {count} MiB file"


def test_capture_keeps_nothing_of_a_static_or_non_elf_file() -> None:
    not_elf = ElfCapture(1 << 30)
    not_elf.feed(b"#!/bin/sh\n" + bytes(1 << 20))
    assert not_elf.finish() is None
    fake = ElfCapture(1 << 30)
    fake.feed(b"\x7fELF" + bytes(1 << 20))  # class 0: not an ELF file this reader reads
    assert fake.finish() is None
