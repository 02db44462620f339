"""A one-pass reader of layer tars: large reads, headers parsed by hand, file bytes hashed in
place.

It reads what :mod:`tarfile` reads in stream mode and gives the same answers: an entry's
``name`` is what tarfile calls ``member.name`` (:mod:`sconify.mutate.protect` finds entries
again by it while rewriting layers with tarfile), decoded the same way (``tarfile.ENCODING``
with ``surrogateescape``; pax values UTF-8 first, ``hdrcharset=BINARY`` honoured), and its type,
mode, owner, size and link target are tarfile's too. Read: ustar (with its name prefix),
old v7 headers (a ``'\\0'`` entry named with a trailing slash is a directory), GNU tar (long
names ``'L'``, long link targets ``'K'``, base-256 numbers) and pax (``'x'`` extended headers,
``'g'`` global headers); ``'7'`` (contiguous) is a regular file; an entry of any other type
(``'V'``, ``'Z'``...) is refused: the engines do not extract it, and its data could not be
carried into a rewritten layer.

Where tarfile would quietly stop or guess, this reader refuses: a layer decides what is
encrypted, so a reader that sees fewer entries, or other names, than the container engine
extracting the same bytes would leave files unprotected without a word. The engines read
layers with Go's ``archive/tar``, so whatever tarfile and Go read differently, and whatever Go
refuses, is refused too (``tests/mutate/test_tar_differential.py`` checks this against Go
itself, over a corpus of odd tars and a seeded fuzzer).
Refused (:class:`TarFormatError`): a bad checksum or a malformed number in any header (tarfile
ends the archive there after its first entry), a number either reader reads otherwise (tarfile
takes ``int()`` of the text before the first NUL, so also ``"\t7"``, ``"+7"``, ``"0o7"``,
``"1_7"``; Go takes octal digits once spaces and NULs are trimmed from the whole field, so
``"\0\0017"`` is 15 to it, and refuses base-256 numbers over 63 bits), a stream that ends
inside a header or inside an entry's data or padding, a header missing after an extension
header, a block of zeros followed by anything but another one or the end of the stream (Go
reads that block, tarfile stops), malformed or overlong pax records, pax numbers Go does not
parse (``strconv.ParseInt``: no spaces, underscores or non-ASCII digits; times must be whole
seconds and an optional fraction of decimal digits),
a NUL in a pax keyword or in a path, link path or user or group name (Go refuses those
records), negative sizes, a pax ``hdrcharset`` that is not UTF-8.
Refused as unsupported (:class:`UnsupportedTar`), because no tool that builds images writes
them and the readers disagree on them: GNU sparse files (``'S'`` and the pax ``GNU.sparse.*``
forms; tarfile and Go expand them, sconify would have to too), multi-volume continuations
(``'M'``: the file's start is in another archive), Solaris ``'X'`` headers (Go does not apply
them), an empty GNU long name or link target and an empty pax ``path``, ``linkpath``,
``size``, ``uid`` or ``gid`` (Go ignores them and keeps the header's field, tarfile applies
them: an entry with an empty name is taken for the root and skipped, while Go extracts it under
its header's name), global headers that set a path, link target, size or owner (tarfile applies
them to every later entry, Go to none), global headers whose name makes the engines act on them
(they skip the type, but create the parent directories of its name, or take it for a
whiteout), two extension headers of one kind for one entry or a long name beside a pax path
(the first wins in tarfile, the last or the GNU one in Go), a global header between an
extension header and its entry, extension data over 1 MiB (Go's limit) or padded with anything
but zeros, a name prefix in a header without the ustar magic (Go ignores it there), star
headers whose prefix or times Go reads otherwise, and v7 directory names that Go reads
otherwise.
Nothing falls back to tarfile: a stream cannot be read twice, and these layers are broken or
hostile rather than merely unusual.

A stream that ends cleanly at a header boundary without the end-of-archive blocks is read as
complete, as tarfile and Go do; a blob cut short there fails its digest check in the store.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import struct
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

BLOCK = 512
READ_SIZE = 1 << 20
ENCODING = tarfile.ENCODING
_ERRORS = "surrogateescape"

REGTYPE, AREGTYPE, CONTTYPE = b"0", b"\0", b"7"
LNKTYPE, SYMTYPE, DIRTYPE = b"1", b"2", b"5"
REGULAR_TYPES = frozenset({REGTYPE, AREGTYPE, CONTTYPE})
_LONGNAME, _LONGLINK, _PAX, _GLOBAL = b"L", b"K", b"x", b"g"
_UNSUPPORTED = {
    b"S": "a GNU sparse file",
    b"M": "a multi-volume continuation (the rest of a file from another archive)",
    b"X": "a Solaris extended header",
}
# Types whose size field does not count data blocks after the header (tarfile and Go agree).
_HEADER_ONLY = frozenset({b"1", b"2", b"3", b"4", b"5", b"6"})
_MAX_SPECIAL = 1 << 20
_PAX_NAME_FIELDS = frozenset({"path", "linkpath", "uname", "gname"})
_GLOBAL_REFUSED = ("path", "linkpath", "size", "uid", "gid")
_ZEROS = bytes(BLOCK)
_USTAR_MAGIC = b"ustar\0"
_STAR_TRAILER = b"tar\0"
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")
_OCTAL = re.compile(rb" *([0-7]*)( *)")
_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_TIME = re.compile(r"[+-]?([0-9]+)(?:\.[0-9]*)?")  # Go's parsePAXTime
_PAX_TIMES = frozenset({"mtime", "atime", "ctime"})
_PAX_APPLIED = frozenset({"path", "linkpath", "size", "uid", "gid", *_PAX_TIMES})
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_HDRCHARSET = re.compile(rb"\d+ hdrcharset=([^\n]+)\n")
_CACHE_LIMIT = 4096


class TarFormatError(ValueError):
    """The stream is not a tar this reader accepts: corrupt, truncated or ambiguous."""


class UnsupportedTar(TarFormatError):
    """A tar feature this reader refuses (sparse files, multi-volume archives...)."""


@dataclass(slots=True)
class TarEntry:
    """One entry, as :mod:`tarfile` reads it: ``name`` is tarfile's ``member.name``, ``type``
    its one-byte ``member.type`` (a v7 directory already ``DIRTYPE``); ``linkname`` is only
    read for hard and symbolic links (empty otherwise)."""

    name: str
    type: bytes
    mode: int
    uid: int
    gid: int
    size: int
    linkname: str

    def isreg(self) -> bool:
        """A regular file (tarfile's ``isreg``): its data is the file's content."""
        return self.type in REGULAR_TYPES


def _nts(data: bytes) -> str:
    end = data.find(0)
    return (data if end < 0 else data[:end]).decode(ENCODING, _ERRORS)


def _number(field: bytes) -> int:
    """A numeric header field as both tarfile's ``nti`` and Go's ``parseNumeric`` read it;
    refused where either fails or they differ."""
    first = field[0]
    if first == 0o200 or first == 0o377:
        value = int.from_bytes(field[1:], "big")
        if first == 0o377:
            value -= 256 ** (len(field) - 1)
        if not _INT64_MIN <= value <= _INT64_MAX:  # Go refuses what does not fit in an int64
            raise TarFormatError(f"number field {field!r} out of range")
        return value
    # tarfile: int() of the text before the first NUL, stripped of any whitespace (so also
    # "\t7", "+7", "0o7", "1_7"); Go: octal digits only, once spaces and NULs are trimmed from
    # both ends of the whole field, up to the NUL that follows.
    head, _, rest = field.partition(b"\0")
    match = _OCTAL.fullmatch(head)
    if match is None:
        raise TarFormatError(f"invalid number field {field!r}")
    digits, trailing = match.groups()
    # tarfile stops at the first NUL, Go skips leading NULs: "\0\0017\0" is 0 to one, 15 to Go;
    # and Go keeps the spaces before a NUL that is followed by more text ("7 \0x")
    if (not digits or trailing) and rest.strip(b" \0"):
        raise TarFormatError(f"number field {field!r} is read differently by other tar readers")
    return int(digits, 8) if digits else 0


def _signed_checksum(header: bytes) -> int:
    signed: tuple[int, ...] = struct.unpack_from("148b8x356b", header)
    return 256 + sum(signed)


def _go_int(value: str) -> int | None:
    """``value`` as Go's ``strconv.ParseInt(value, 10, 64)`` reads it (and then int() too), or
    ``None`` where Go fails (int() alone also takes spaces, underscores, non-ASCII digits)."""
    if _GO_INT.fullmatch(value) is None:
        return None
    number = int(value)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def _pax_int(records: dict[str, str], key: str) -> int:
    number = _go_int(records[key])
    if number is None:
        raise TarFormatError(f"pax {key} {records[key]!r} is not a number")
    return number


def _check_local_pax(records: dict[str, str], at: int) -> None:
    """Refuse the pax records of one entry that Go and tarfile apply differently, or that Go
    refuses: an empty value (Go keeps the header's field, tarfile applies it: an empty name, a
    size of 0) and times Go cannot parse (tarfile reads 0)."""
    for key, value in records.items():
        if key not in _PAX_APPLIED:
            continue
        if key in _PAX_TIMES:
            if not value:  # a time nobody compares: Go keeps the header's, tarfile reads 0
                continue
            match = _GO_TIME.fullmatch(value)
            if match is None or (
                len(match.group(1)) > 18 and _go_int(value.partition(".")[0]) is None
            ):
                raise TarFormatError(f"pax {key} {value!r} is not a time at offset {at}")
        elif not value:
            raise UnsupportedTar(f"an empty pax {key} at offset {at}")


def _check_global_name(header: bytes, at: int) -> None:
    """Refuse a global header whose name the engines act on: they skip its type but, going by
    its name first, create its parent directories or apply it as a whiteout."""
    if header[345]:
        raise UnsupportedTar(f"a global pax header with a name prefix at offset {at}")
    name = _nts(header[:100])
    clean = posixpath.normpath("/" + name.lstrip("/"))
    escapes = ".." in name.split("/")  # the engines refuse the layer there, sconify too
    if escapes or (clean != "/" and (clean.count("/") != 1 or clean.startswith("/.wh."))):
        raise UnsupportedTar(f"a global pax header named {name!r} at offset {at}")


def _decode_pax(value: bytes, encoding: str, fallback: str) -> str:
    try:
        return value.decode(encoding, "strict")
    except UnicodeDecodeError:
        return value.decode(fallback, _ERRORS)


class TarScanner:
    """Reads a tar stream entry by entry.

    Call :meth:`next` until it returns ``None``; for a regular file, :meth:`digest_data` may be
    called before the next :meth:`next` (data not read is skipped). Raises
    :class:`TarFormatError` for what it refuses; the stream's own errors pass through.
    """

    def __init__(self, stream: BinaryIO, read_size: int = READ_SIZE) -> None:
        self._stream = stream
        self._read_size = read_size
        self._buf = b""
        self._pos = 0
        self._base = 0  # stream offset of _buf[0]
        self._left = 0  # data of the current entry not read yet
        self._pad = 0
        self._done = False
        self._globals: dict[str, str] = {}
        self._ids: dict[bytes, tuple[int, int, int]] = {}
        self._valid: set[bytes] = set()

    def _read(self) -> bool:
        """Replace the (fully read) buffer with the next chunk of the stream; False at its end."""
        chunk = self._stream.read(self._read_size)
        if not chunk:
            return False
        self._base += len(self._buf)
        self._buf, self._pos = chunk, 0
        return True

    def _ensure(self, count: int) -> bool:
        """Have ``count`` unread bytes in the buffer, or all that is left of the stream."""
        have = len(self._buf) - self._pos
        if have >= count:
            return True
        pieces = [self._buf[self._pos :]]
        while have < count:
            chunk = self._stream.read(self._read_size)
            if not chunk:
                break
            pieces.append(chunk)
            have += len(chunk)
        self._base += self._pos
        self._buf, self._pos = b"".join(pieces), 0
        return have >= count

    def _skip(self, count: int) -> None:
        while True:
            available = len(self._buf) - self._pos
            if count <= available:
                self._pos += count
                return
            count -= available
            self._pos = len(self._buf)
            if not self._read():
                raise TarFormatError(f"unexpected end of data at offset {self.offset()}")

    def _take(self, count: int) -> bytes:
        if not self._ensure(count):
            raise TarFormatError(f"unexpected end of data at offset {self._base + len(self._buf)}")
        data = self._buf[self._pos : self._pos + count]
        self._pos += count
        return data

    def offset(self) -> int:
        """How far into the stream the reader is."""
        return self._base + self._pos

    def next(self) -> TarEntry | None:
        """The next entry, or ``None`` at the end of the archive."""
        if self._done:
            return None
        if self._left or self._pad:
            end = self._pos + self._left + self._pad
            if end <= len(self._buf):
                self._pos = end
            else:
                self._skip(self._left + self._pad)
            self._left = self._pad = 0
        long_name: str | None = None
        long_link: str | None = None
        pax: dict[str, str] | None = None
        chained = False  # an extension header of this entry (not a global one) was read
        pending = False  # some extension header was read: an entry must follow
        while True:
            at = self._base + self._pos
            if len(self._buf) - self._pos < BLOCK and not self._ensure(BLOCK):
                if self._pos < len(self._buf):
                    raise TarFormatError(f"truncated header at offset {at}")
                if pending:
                    raise TarFormatError(f"the stream ends after an extension header ({at})")
                if at == 0:
                    raise TarFormatError("empty file")
                self._done = True
                return None
            pos = self._pos
            header = self._buf[pos : pos + BLOCK]
            self._pos = pos + BLOCK
            if header == _ZEROS:
                if pending:
                    raise TarFormatError(f"no entry after an extension header at offset {at}")
                self._end(at)
                return None

            # the usual field: octal digits up to a NUL, which every reader reads alike (int()
            # alone would also take "+7", " 7", "0o7"...; _number refuses 8 and 9 too)
            digits = header[148:156].partition(b"\0")[0]
            try:
                stored = int(digits, 8) if digits.isdigit() else _number(header[148:156])
            except TarFormatError:
                raise
            except ValueError:
                stored = _number(header[148:156])
            unsigned = (
                (zlib.adler32(header[:256]) & 0xFFFF)
                + (zlib.adler32(header[256:]) & 0xFFFF)
                + 254
                - sum(header[148:156])
            )
            if stored != unsigned and stored != _signed_checksum(header):
                raise TarFormatError(f"bad checksum in the header at offset {at}")
            ids = header[100:124]
            owner = self._ids.get(ids)
            if owner is None:
                owner = (_number(header[100:108]), _number(header[108:116]), _number(ids[16:]))
                if len(self._ids) < _CACHE_LIMIT:
                    self._ids[ids] = owner
            digits = header[124:136].partition(b"\0")[0]
            try:
                size = int(digits, 8) if digits.isdigit() else _number(header[124:136])
            except TarFormatError:
                raise
            except ValueError:
                size = _number(header[124:136])
            # tarfile refuses a header whose mtime or device numbers do not parse; they are
            # mostly the same few values, so each distinct field is checked once
            mtime_dev = header[136:148] + header[329:345]
            if mtime_dev not in self._valid:
                _number(mtime_dev[:12])
                _number(mtime_dev[12:20])
                _number(mtime_dev[20:])
                if len(self._valid) < _CACHE_LIMIT:
                    self._valid.add(mtime_dev)
            if header[508:512] == _STAR_TRAILER and header[257:263] == _USTAR_MAGIC:
                # Go reads a star header's access and change times, and refuses bad ones
                try:
                    _number(header[476:488])
                    _number(header[488:500])
                except TarFormatError:
                    raise UnsupportedTar(
                        f"a star header with times read differently at offset {at}"
                    ) from None
            if size < 0:
                raise TarFormatError(f"negative size in the header at offset {at}")
            kind = header[156:157]
            if kind in _HEADER_ONLY or kind in REGULAR_TYPES:
                return self._entry(header, kind, owner, size, long_name, long_link, pax, at)

            pending = True
            if kind in (_LONGNAME, _LONGLINK):
                chained = True
                text = _nts(self._special(size, at))
                if not text:
                    # Go ignores it (the header's own name stays), tarfile applies it
                    what = "name" if kind == _LONGNAME else "link target"
                    raise UnsupportedTar(f"an empty GNU long {what} at offset {at}")
                if kind == _LONGNAME:
                    if long_name is not None:
                        raise UnsupportedTar(f"two GNU long names for one entry at offset {at}")
                    long_name = text
                else:
                    if long_link is not None:
                        raise UnsupportedTar(f"two GNU long links for one entry at offset {at}")
                    long_link = text
                continue
            if kind == _PAX:
                chained = True
                if pax is not None:
                    raise UnsupportedTar(f"two pax headers for one entry at offset {at}")
                local = self._pax(self._special(size, at), size, at)
                _check_local_pax(local, at)
                pax = {**self._globals, **local}
                continue
            if kind == _GLOBAL:
                if chained:
                    raise UnsupportedTar(f"a global pax header inside an entry at offset {at}")
                _check_global_name(header, at)
                self._globals.update(self._pax(self._special(size, at), size, at))
                for key in self._globals:
                    if key in _GLOBAL_REFUSED or key.startswith("GNU.sparse."):
                        raise UnsupportedTar(
                            f"a global pax header sets {key} for every later entry (offset {at})"
                        )
                continue
            refused = _UNSUPPORTED.get(kind)
            if refused is not None:
                raise UnsupportedTar(f"{refused} at offset {at}")
            # The engines refuse to extract such an entry, unless its name makes it a whiteout
            # (they look at the name first); its data could not be copied into a rewritten
            # layer either (tarfile keeps only regular files' data), leaving Go out of step.
            raise UnsupportedTar(f"an entry of unknown type {kind!r} at offset {at}")

    def _end(self, at: int) -> None:
        """After a block of zeros: Go reads one more block and refuses the archive unless it is
        zeros too or the stream ends there (tarfile stops at the first)."""
        if not self._ensure(BLOCK):
            if self._pos < len(self._buf):
                raise TarFormatError(f"a partial block after an end-of-archive block at {at}")
        elif self._buf[self._pos : self._pos + BLOCK] != _ZEROS:
            raise TarFormatError(f"data after a single end-of-archive block at offset {at}")
        self._done = True

    def _special(self, size: int, at: int) -> bytes:
        """The data of an extension header, with its padding (tarfile parses both)."""
        if size > _MAX_SPECIAL:
            raise UnsupportedTar(f"an extension header of {size} bytes at offset {at}")
        data = self._take(-(-size // BLOCK) * BLOCK)
        if data.count(0, size) != len(data) - size:
            raise TarFormatError(f"an extension header padded with data at offset {at}")
        return data

    def _pax(self, data: bytes, size: int, at: int) -> dict[str, str]:
        """The pax records of one header, as tarfile parses them (a global ``hdrcharset``
        still in force); refuse what Go would not read."""
        records: dict[str, str] = {}
        match = _HDRCHARSET.search(data)
        if match is not None:
            try:
                records["hdrcharset"] = match.group(1).decode("utf-8")
            except UnicodeDecodeError:
                raise TarFormatError(f"pax hdrcharset is not UTF-8 at offset {at}") from None
        charset = records.get("hdrcharset", self._globals.get("hdrcharset"))
        encoding = ENCODING if charset == "BINARY" else "utf-8"
        pos = 0
        while match := _PAX_RECORD.match(data, pos):
            length = int(match.group(1))
            end = pos + length
            if length == 0 or match.end(2) > end - 2 or data[end - 1 : end] != b"\n":
                raise TarFormatError(f"malformed pax record at offset {at}")
            raw_key = match.group(2)
            value = data[match.end(2) + 1 : end - 1]
            keyword = _decode_pax(raw_key, "utf-8", "utf-8")
            if keyword in _PAX_NAME_FIELDS:
                if 0 in value:  # Go refuses the header, tarfile keeps the NUL
                    raise TarFormatError(f"a NUL in the pax {keyword} at offset {at}")
                records[keyword] = _decode_pax(value, encoding, ENCODING)
            else:
                if 0 in raw_key:
                    raise TarFormatError(f"a NUL in a pax keyword at offset {at}")
                records[keyword] = _decode_pax(value, "utf-8", "utf-8")
            pos = end
        if pos != size:
            raise TarFormatError(f"malformed pax record at offset {at}")
        return records

    def _entry(
        self,
        header: bytes,
        kind: bytes,
        owner: tuple[int, int, int],
        size: int,
        long_name: str | None,
        long_link: str | None,
        pax: dict[str, str] | None,
        at: int,
    ) -> TarEntry:
        raw_name = _nts(header[:100])
        name = raw_name
        v7_type = kind == AREGTYPE
        if v7_type and name.endswith("/"):
            kind = DIRTYPE
        if kind == DIRTYPE:
            name = name.rstrip("/")
        prefix = _nts(header[345:500]) if header[345] else ""
        if prefix:
            if header[257:263] != _USTAR_MAGIC:
                raise UnsupportedTar(f"a name prefix without the ustar magic at offset {at}")
            if header[508:512] == _STAR_TRAILER and 0 not in header[345:476]:
                raise UnsupportedTar(f"a star header with a name prefix read differently ({at})")
            name = prefix + "/" + name
            if kind == DIRTYPE:
                name = name.rstrip("/")
        linkname = _nts(header[157:257]) if kind in (LNKTYPE, SYMTYPE) else ""
        mode, uid, gid = owner
        go_name = prefix + "/" + raw_name if prefix else raw_name
        if long_name is not None:
            go_name = name = long_name
            if kind == DIRTYPE:
                name = name.removesuffix("/")
        if long_link is not None:
            linkname = long_link
        if pax is not None:
            if "path" in pax:
                if long_name is not None:
                    raise UnsupportedTar(f"a GNU long name and a pax path at offset {at}")
                go_name = pax["path"]
                name = go_name.rstrip("/")
            if "linkpath" in pax:
                if long_link is not None:
                    raise UnsupportedTar(f"a GNU long link and a pax linkpath at offset {at}")
                linkname = pax["linkpath"]
            if "size" in pax:
                size = _pax_int(pax, "size")
                if size < 0:
                    raise TarFormatError(f"negative pax size at offset {at}")
            if "uid" in pax:
                uid = _pax_int(pax, "uid")
            if "gid" in pax:
                gid = _pax_int(pax, "gid")
            for key in pax:
                if key.startswith("GNU.sparse."):
                    raise UnsupportedTar(f"a GNU sparse file (pax {key}) at offset {at}")
        # tarfile takes a v7 directory from the header's name, Go from the final (long) name
        if v7_type and go_name.endswith("/") != (kind == DIRTYPE):
            raise UnsupportedTar(f"a v7 entry that is a directory to some readers at offset {at}")
        if kind not in _HEADER_ONLY:
            self._left = size
            self._pad = -size % BLOCK
        return TarEntry(name, kind, mode, uid, gid, size, linkname)

    def digest_data(self, keep_prefix: bytes, keep_limit: int) -> tuple[str, bytes | None]:
        """Read the current entry's data: its sha256 (hex), and the data itself when it starts
        with ``keep_prefix`` and is at most ``keep_limit`` bytes long."""
        size = self._left
        if len(self._buf) - self._pos < len(keep_prefix):
            self._ensure(min(size, len(keep_prefix)))
        buf, pos = self._buf, self._pos
        end = pos + size
        keep = size <= keep_limit and buf.startswith(keep_prefix, pos, end)
        if end <= len(buf):
            self._pos = end
            self._left = 0
            digest = hashlib.sha256(memoryview(buf)[pos:end]).hexdigest()
            return digest, buf[pos:end] if keep else None
        digest_of = hashlib.sha256()
        kept: list[bytes] = []
        while True:
            piece = memoryview(self._buf)[self._pos : self._pos + self._left]
            digest_of.update(piece)
            if keep:
                kept.append(bytes(piece))
            self._pos += len(piece)
            self._left -= len(piece)
            if not self._left:
                break
            if not self._read():
                raise TarFormatError(f"unexpected end of data at offset {self.offset()}")
        return digest_of.hexdigest(), b"".join(kept) if keep else None

    def data_chunks(self) -> Iterator[memoryview]:
        """Yield the rest of the current entry's data in pieces (each valid until the next is
        asked for), for a caller that reads a large file in bounded memory."""
        while self._left:
            if self._pos >= len(self._buf) and not self._read():
                raise TarFormatError(f"unexpected end of data at offset {self.offset()}")
            piece = memoryview(self._buf)[self._pos : self._pos + self._left]
            self._pos += len(piece)
            self._left -= len(piece)
            yield piece
