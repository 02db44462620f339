"""Regenerate the corpus of odd layer tars (``tests/vectors/tars/<case>.tar``).

Run: ``.venv/bin/python tests/vectors/gen_tars.py``. The outputs are committed; the differential
test (``tests/mutate/test_tar_differential.py``) feeds each to sconify's readers and to Go's
``archive/tar`` (the engines' reader) and checks that sconify either refuses the tar or reads
exactly what Go reads; it also checks that each case is refused or accepted as :data:`CASES`
says, and that the committed files are what this script writes.

Every tar is made by hand, header by header, so that it is byte-for-byte reproducible and
holds exactly the oddity it is named for; most carry :data:`MARKER` in a file that a reader
getting the oddity wrong would leave unprotected.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "tars"
MARKER = b"PLAINTEXT-MARKER-0f3a"
BLOCK = 512
END = bytes(2 * BLOCK)
USTAR = b"ustar\x0000"
GNU = b"ustar  \x00"
V7 = bytes(8)


def checksum(block: bytearray) -> None:
    """Write the (unsigned) checksum of a header block into it."""
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)


def header(
    name: bytes = b"f",
    kind: bytes = b"0",
    size: int = 0,
    *,
    linkname: bytes = b"",
    magic: bytes = USTAR,
    prefix: bytes = b"",
    fields: dict[int, bytes] | None = None,
) -> bytes:
    """One header block, checksummed after ``fields`` (offset: raw bytes) are written."""
    block = bytearray(BLOCK)
    block[0 : len(name)] = name
    block[100:108] = b"0000644\0"
    block[108:116] = b"0001750\0"
    block[116:124] = b"0001750\0"
    block[124:136] = b"%011o\0" % size
    block[136:148] = b"14537005610\0"
    block[156:157] = kind
    block[157 : 157 + len(linkname)] = linkname
    block[257:265] = magic
    if magic != V7:
        block[265:269] = b"root"
        block[297:301] = b"root"
        block[329:345] = b"0000000\x000000000\x00"
    block[345 : 345 + len(prefix)] = prefix
    for offset, value in (fields or {}).items():
        block[offset : offset + len(value)] = value
    checksum(block)
    return bytes(block)


def pad(data: bytes) -> bytes:
    """``data`` padded with zeros to whole blocks."""
    return data + bytes(-len(data) % BLOCK)


def entry(
    name: bytes,
    data: bytes = b"",
    kind: bytes = b"0",
    *,
    linkname: bytes = b"",
    magic: bytes = USTAR,
) -> bytes:
    """A header for ``data`` and the data, padded."""
    return header(name, kind, len(data), linkname=linkname, magic=magic) + pad(data)


def records(*pairs: tuple[str, bytes | str]) -> bytes:
    """Pax records, each ``"%d %s=%s\\n"`` with its length right."""
    out = b""
    for key, value in pairs:
        raw = value if isinstance(value, bytes) else value.encode()
        body = b" " + key.encode("utf-8", "surrogateescape") + b"=" + raw + b"\n"
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length += 1
        out += str(length).encode() + body
    return out


def ext(kind: bytes, payload: bytes, name: bytes = b"././@LongLink") -> bytes:
    """An extension header (``L``, ``K``, ``x``, ``g``...) with its payload."""
    return header(name, kind, len(payload)) + pad(payload)


def pax(*pairs: tuple[str, bytes | str]) -> bytes:
    """A pax extended header (``x``) holding ``pairs``."""
    return ext(b"x", records(*pairs), b"PaxHeaders.0/f")


def gpax(*pairs: tuple[str, bytes | str], name: bytes = b"pax_global_header") -> bytes:
    """A pax global header (``g``) holding ``pairs``."""
    return ext(b"g", records(*pairs), name)


SECRET = entry(b"secret/key.pem", MARKER)
PLAIN = entry(b"app/readme", b"hello\n")


@dataclass(frozen=True)
class Case:
    """One corpus tar, whether sconify refuses it (else it must read it as Go does), and why
    the case is there."""

    tar: bytes
    refused: bool
    why: str


def _old_gnu_sparse() -> bytes:
    fields = {
        386: b"%011o\0" % 0 + b"%011o\0" % len(MARKER),  # one region: offset 0, length
        483: b"%011o\0" % 4096,  # real size
    }
    return header(b"sparse", b"S", len(MARKER), magic=GNU, fields=fields) + pad(MARKER) + END


def _pax_sparse_00() -> bytes:
    rec = records(
        ("GNU.sparse.size", "4096"),
        ("GNU.sparse.numblocks", "1"),
        ("GNU.sparse.offset", "0"),
        ("GNU.sparse.numbytes", str(len(MARKER))),
        ("GNU.sparse.name", "sparse"),
    )
    return ext(b"x", rec, b"PaxHeaders/sparse") + entry(b"GNUSparseFile.0/sparse", MARKER) + END


def _pax_sparse_01() -> bytes:
    rec = records(
        ("GNU.sparse.size", "4096"),
        ("GNU.sparse.numblocks", "1"),
        ("GNU.sparse.map", f"0,{len(MARKER)}"),
        ("GNU.sparse.name", "sparse"),
    )
    return ext(b"x", rec, b"PaxHeaders/sparse") + entry(b"GNUSparseFile.0/sparse", MARKER) + END


def _pax_sparse_10() -> bytes:
    rec = records(
        ("GNU.sparse.major", "1"),
        ("GNU.sparse.minor", "0"),
        ("GNU.sparse.name", "sparse"),
        ("GNU.sparse.realsize", "4096"),
    )
    data = pad(b"1\n0\n%d\n" % len(MARKER)) + MARKER
    return ext(b"x", rec, b"PaxHeaders/sparse") + entry(b"GNUSparseFile.0/sparse", data) + END


def _cases() -> dict[str, Case]:
    cases: dict[str, Case] = {}

    def add(name: str, tar: bytes, refused: bool, why: str) -> None:
        assert name not in cases, name
        cases[name] = Case(tar, refused, why)

    # --- GNU long names and links ------------------------------------------------------------
    add(
        "gnu-longname-empty",
        ext(b"L", b"") + SECRET + END,
        True,
        "Go ignores an empty long name (keeps the header's), tarfile applies it",
    )
    add(
        "gnu-longname-nul-first",
        ext(b"L", b"\0ignored") + SECRET + END,
        True,
        "a long name that is empty up to its first NUL",
    )
    add(
        "gnu-longlink-empty",
        ext(b"K", b"") + header(b"link", b"2", linkname=b"secret/key.pem") + END,
        True,
        "Go ignores an empty long link target",
    )
    add(
        "gnu-longname",
        ext(b"L", b"long/" + b"n" * 200 + b"\0") + entry(b"short", MARKER) + END,
        False,
        "an ordinary GNU long name",
    )
    add(
        "gnu-longname-two",
        ext(b"L", b"first") + ext(b"L", b"second") + entry(b"short", MARKER) + END,
        True,
        "tarfile takes the first long name, Go the last",
    )
    add(
        "gnu-longname-then-pax-path",
        ext(b"L", b"gnu-name") + pax(("path", "pax-name")) + entry(b"short", MARKER) + END,
        True,
        "a long name beside a pax path",
    )
    add(
        "pax-path-then-gnu-longname",
        pax(("path", "pax-name")) + ext(b"L", b"gnu-name") + entry(b"short", MARKER) + END,
        True,
        "tarfile takes the pax path, Go the long name",
    )
    add(
        "gnu-longname-dir-trailing-slash",
        ext(b"L", b"dir/") + header(b"dir/", b"5") + END,
        False,
        "a long directory name with its slash",
    )
    add(
        "gnu-longname-padding-garbage",
        ext(b"L", b"name")[: BLOCK + 4] + b"junk" + bytes(BLOCK - 8) + SECRET + END,
        True,
        "tarfile reads the padding of a long name, Go does not",
    )
    # --- pax records -------------------------------------------------------------------------
    for key in ("path", "linkpath", "size", "uid", "gid"):
        kind = b"2" if key == "linkpath" else b"0"
        target = b"secret/key.pem" if kind == b"2" else b""
        add(
            f"pax-{key}-empty",
            pax((key, ""))
            + entry(b"secret/key.pem", MARKER if kind == b"0" else b"", kind, linkname=target)
            + END,
            True,
            f"Go skips a pax {key} with an empty value, tarfile applies it",
        )
    add("pax-path-nul", pax(("path", b"a\0b")) + SECRET + END, True, "Go refuses NUL in a path")
    add(
        "pax-linkpath-nul",
        pax(("linkpath", b"x\0y")) + header(b"l", b"2", linkname=b"t") + END,
        True,
        "Go refuses NUL in a link target",
    )
    add(
        "pax-key-nul",
        pax(("SCHILY.xattr.user.a\0b", "v")) + SECRET + END,
        True,
        "Go refuses NUL in a key",
    )
    add(
        "pax-path",
        pax(("path", "renamed/" + "p" * 200)) + entry(b"short", MARKER) + END,
        False,
        "an ordinary pax path",
    )
    add(
        "pax-size-larger",
        pax(("size", "4096")) + SECRET + END,
        True,
        "a pax size past the end of the data",
    )
    add(
        "pax-size-smaller",
        pax(("size", "5")) + entry(b"secret/key.pem", MARKER * 40) + END,
        True,
        "a pax size that leaves data to be read as a header",
    )
    add(
        "pax-size-matching",
        pax(("size", str(len(MARKER)))) + SECRET + END,
        False,
        "a pax size equal to the header's",
    )
    add(
        "pax-size-plus-sign",
        pax(("size", f"+{len(MARKER)}")) + SECRET + END,
        False,
        "a sign both read",
    )
    add("pax-uid-underscore", pax(("uid", "1_000")) + SECRET + END, True, "tarfile reads 1000")
    add("pax-uid-space", pax(("uid", " 5")) + SECRET + END, True, "tarfile strips, Go refuses")
    add(
        "pax-uid-unicode-digits",
        pax(("uid", "\u0665")) + SECRET + END,
        True,
        "tarfile reads Arabic-Indic digits",
    )
    add(
        "pax-uid-overflow",
        pax(("uid", str(1 << 64))) + SECRET + END,
        True,
        "Go refuses a uid over 64 bits",
    )
    add("pax-uid-big", pax(("uid", str(1 << 40))) + SECRET + END, False, "a large uid")
    add("pax-mtime-fraction-only", pax(("mtime", ".5")) + SECRET + END, True, "Go refuses it")
    add("pax-mtime-exponent", pax(("mtime", "1e9")) + SECRET + END, True, "Go refuses it")
    add("pax-mtime-fraction", pax(("mtime", "1.25")) + SECRET + END, False, "both read it")
    add("pax-mtime-negative", pax(("mtime", "-1.5")) + SECRET + END, False, "before 1970")
    add("pax-mtime-overflow", pax(("mtime", "9" * 20)) + SECRET + END, True, "Go: over 64 bits")
    add("pax-mtime-empty", pax(("mtime", "")) + SECRET + END, False, "ignored by both")
    add("pax-atime-bad", pax(("atime", "x")) + SECRET + END, True, "Go refuses it")
    bad_record = b"11 path=abX" + records(("mtime", "1"))
    add(
        "pax-record-no-newline",
        ext(b"x", bad_record, b"P") + SECRET + END,
        True,
        "tarfile drops a record's last byte unseen, Go wants a newline",
    )
    add(
        "pax-record-plus-length",
        ext(b"x", records(("mtime", "1")) + b"+11 path=zz\n", b"P") + SECRET + END,
        True,
        "a record tarfile does not see but Go applies",
    )
    add(
        "pax-two-headers",
        pax(("path", "one")) + pax(("path", "two")) + SECRET + END,
        True,
        "tarfile takes the first, Go the last",
    )
    add(
        "pax-hdrcharset-binary",
        pax(("hdrcharset", "BINARY"), ("path", b"bin\xffary")) + entry(b"x", MARKER) + END,
        False,
        "a raw (non-UTF-8) pax path",
    )
    add(
        "pax-path-not-utf8",
        pax(("path", b"caf\xe9")) + entry(b"x", MARKER) + END,
        False,
        "a non-UTF-8 pax path without hdrcharset",
    )
    add(
        "pax-padding-garbage",
        ext(b"x", records(("path", "p")))[: BLOCK + 8] + b"junk" + bytes(BLOCK - 12) + SECRET + END,
        True,
        "tarfile parses the padding of a pax header",
    )
    add(
        "pax-path-trailing-slash-file",
        pax(("path", "secret/key.pem/")) + entry(b"x", MARKER) + END,
        False,
        "a regular file named with a trailing slash",
    )
    add(
        "pax-path-dir-v7",
        pax(("path", "d/")) + header(b"d", b"\0", magic=V7) + END,
        True,
        "a v7 entry that is a directory to Go (final name) and a file to tarfile",
    )
    add(
        "pax-xattr",
        pax(("SCHILY.xattr.user.k", "v")) + SECRET + END,
        False,
        "an extended attribute",
    )
    # --- sparse files ------------------------------------------------------------------------
    add("sparse-old-gnu", _old_gnu_sparse(), True, "GNU sparse 'S': the readers expand it")
    add("sparse-pax-0.0", _pax_sparse_00(), True, "pax GNU.sparse 0.0")
    add("sparse-pax-0.1", _pax_sparse_01(), True, "pax GNU.sparse 0.1")
    add("sparse-pax-1.0", _pax_sparse_10(), True, "pax GNU.sparse 1.0")
    # --- global headers ----------------------------------------------------------------------
    add(
        "pax-global-comment",
        gpax(("comment", "abc123")) + SECRET + END,
        False,
        "a global header as git archive writes it",
    )
    add("pax-global-path", gpax(("path", "x")) + SECRET + END, True, "tarfile applies it")
    add("pax-global-uid", gpax(("uid", "5")) + SECRET + END, True, "tarfile applies it")
    add(
        "pax-global-mtime-bad",
        gpax(("mtime", "soon")) + SECRET + END,
        False,
        "Go does not refuse a bad time in a global header (it ignores the error)",
    )
    add(
        "pax-global-whiteout-name",
        gpax(("comment", "c"), name=b".wh.key.pem") + SECRET + END,
        True,
        "engines take a global header named as a whiteout for one",
    )
    add(
        "pax-global-nested-name",
        gpax(("comment", "c"), name=b"tmp/GlobalHead.1.1") + SECRET + END,
        True,
        "engines create the parent directories of a global header",
    )
    add(
        "pax-global-inside-entry",
        pax(("path", "p")) + gpax(("comment", "c")) + SECRET + END,
        True,
        "Go drops the pax header before a global one, tarfile keeps it",
    )
    add("pax-global-at-end", gpax(("comment", "c")) + END, True, "no entry after it")
    # --- numbers -----------------------------------------------------------------------------
    add(
        "size-base256",
        header(b"secret/key.pem", size=0, fields={124: b"\x80" + (len(MARKER)).to_bytes(11, "big")})
        + pad(MARKER)
        + END,
        False,
        "a base-256 size",
    )
    add(
        "size-negative-base256",
        header(b"secret/key.pem", fields={124: b"\xff" * 12}) + pad(MARKER) + END,
        True,
        "a negative size",
    )
    add(
        "mtime-base256-overflow",
        header(b"a", fields={136: b"\x80" + b"\xff" * 11}) + END,
        True,
        "Go refuses a number over 63 bits",
    )
    add("uid-base256-negative", header(b"a", fields={108: b"\xff" * 8}) + END, False, "uid -1")
    add(
        "octal-leading-spaces",
        header(b"a", b"0", 2, fields={100: b"   644 \0", 124: b"     2     "}) + pad(b"ok") + END,
        False,
        "spaces around octal digits",
    )
    add(
        "octal-leading-nuls",
        header(b"secret/key.pem", fields={124: b"\0\0\0" + b"%08o\0" % len(MARKER)})
        + pad(MARKER)
        + END,
        True,
        "tarfile reads 0, Go skips the NULs",
    )
    add(
        "octal-space-before-nul-then-junk",
        header(b"a", fields={100: b"644 \0x\0\0"}) + END,
        True,
        "tarfile reads 644, Go refuses",
    )
    add(
        "octal-tab", header(b"a", fields={100: b"\t644\0\0\0\0"}) + END, True, "tarfile strips tabs"
    )
    add("octal-underscore", header(b"a", fields={100: b"6_44\0\0\0\0"}) + END, True, "int() reads")
    add("octal-plus", header(b"a", fields={100: b"+644\0\0\0\0"}) + END, True, "int() reads a sign")
    add("octal-0o-prefix", header(b"a", fields={100: b"0o644\0\0\0"}) + END, True, "int() reads")
    add("mode-huge", header(b"a", fields={100: b"7777777\0"}) + END, False, "every mode bit")
    add(
        "mode-base256",
        header(b"a", fields={100: b"\x80" + (0o100755).to_bytes(7, "big")}) + END,
        False,
        "a base-256 mode",
    )
    add(
        "checksum-signed",
        _signed(header(b"signed-\xe9\xe9", b"0", len(MARKER))) + pad(MARKER) + END,
        False,
        "a checksum summing signed bytes (old tars)",
    )
    add(
        "checksum-bad-second",
        PLAIN + _broken(SECRET) + END,
        True,
        "tarfile ends the archive quietly at a bad header",
    )
    # --- formats -----------------------------------------------------------------------------
    add(
        "v7-directory",
        header(b"v7dir/", b"\0", magic=V7) + entry(b"v7dir/f", MARKER, b"\0", magic=V7) + END,
        False,
        "old v7 headers",
    )
    add(
        "v7-directory-with-size",
        header(b"v7dir/", b"\0", 1024, magic=V7) + entry(b"after", MARKER) + END,
        False,
        "a v7 directory's size is not data",
    )
    add(
        "ustar-prefix",
        header(b"key.pem", size=len(MARKER), prefix=b"secret") + pad(MARKER) + END,
        False,
        "a ustar name prefix",
    )
    add(
        "ustar-prefix-dir-only",
        header(b"", b"5", prefix=b"only-prefix/") + END,
        False,
        "a directory named by its prefix alone",
    )
    add(
        "prefix-with-gnu-magic",
        header(b"key.pem", size=len(MARKER), prefix=b"secret", magic=GNU) + pad(MARKER) + END,
        True,
        "tarfile applies a prefix Go ignores in a GNU header",
    )
    add(
        "prefix-without-magic",
        header(b"key.pem", size=len(MARKER), prefix=b"secret", magic=V7) + pad(MARKER) + END,
        True,
        "tarfile applies a prefix Go ignores in a v7 header",
    )
    add(
        "star-trailer-prefix",
        header(b"a", prefix=b"p" * 155, fields={508: b"tar\0"}) + END,
        True,
        "star prefixes are shorter: Go reads 131 bytes, tarfile 155",
    )
    add(
        "star-trailer-short-prefix",
        header(b"key.pem", size=len(MARKER), prefix=b"secret", fields={508: b"tar\0"})
        + pad(MARKER)
        + END,
        False,
        "a star header with a prefix both read the same",
    )
    add(
        "star-bad-atime",
        header(b"a", fields={476: b"zz\0", 508: b"tar\0"}) + END,
        True,
        "Go parses a star header's times and refuses bad ones",
    )
    add("multi-volume", header(b"m", b"M") + END, True, "'M': the start is elsewhere")
    add("solaris-x", ext(b"X", records(("path", "b")), b"P") + SECRET + END, True, "Go ignores it")
    add(
        "typeflag-unknown",
        entry(b"odd", MARKER, b"Z") + END,
        True,
        "engines do not extract it, and a rewrite could not carry its data",
    )
    add("typeflag-volume-label", header(b"label", b"V") + END, True, "a GNU volume label")
    add("contiguous-file", entry(b"c", MARKER, b"7") + END, False, "'7' is a regular file")
    # --- links -------------------------------------------------------------------------------
    add(
        "hardlink-after-target",
        SECRET + header(b"app/hard", b"1", linkname=b"secret/key.pem") + END,
        False,
        "a hard link to an earlier file",
    )
    add(
        "hardlink-before-target",
        header(b"app/hard", b"1", linkname=b"secret/key.pem") + SECRET + END,
        True,
        "a hard link to nothing yet",
    )
    add(
        "symlink",
        header(b"app/link", b"2", linkname=b"../secret/key.pem") + SECRET + END,
        False,
        "a symbolic link",
    )
    add(
        "symlink-absolute",
        header(b"app/link", b"2", linkname=b"/secret/key.pem") + SECRET + END,
        False,
        "an absolute symbolic link",
    )
    add(
        "hardlink-absolute-target",
        SECRET + header(b"app/hard", b"1", linkname=b"/secret/key.pem") + END,
        True,
        "a hard link with an absolute target",
    )
    add(
        "hardlink-to-directory",
        header(b"dir/", b"5") + header(b"app/hard", b"1", linkname=b"dir") + END,
        True,
        "a hard link to a directory",
    )
    add(
        "hardlink-to-symlink",
        header(b"sym", b"2", linkname=b"secret/key.pem")
        + SECRET
        + header(b"app/hard", b"1", linkname=b"sym")
        + END,
        True,
        "a hard link to a symbolic link",
    )
    add(
        "hardlink-to-itself",
        header(b"app/hard", b"1", linkname=b"app/hard") + END,
        True,
        "a hard link to itself",
    )
    add(
        "hardlink-with-size",
        SECRET + header(b"app/hard", b"1", 4096, linkname=b"secret/key.pem") + PLAIN + END,
        False,
        "a hard link whose size is not data",
    )
    add(
        "gnu-longlink-hardlink",
        SECRET + ext(b"K", b"secret/key.pem") + header(b"app/hard", b"1", linkname=b"x") + END,
        False,
        "a hard link target from a GNU long link",
    )
    add(
        "whiteout-file",
        entry(b"secret/.wh.key.pem") + entry(b"secret/.wh..wh..opq") + END,
        False,
        "whiteouts read as files by both",
    )
    # --- names -------------------------------------------------------------------------------
    for label, name in (
        ("dot", b"."),
        ("dotdot", b".."),
        ("slash", b"/"),
        ("dot-slash", b"./"),
        ("a-dotdot-b", b"a/../b"),
        ("double-slash", b"a//b"),
        ("empty", b""),
    ):
        add(
            f"name-{label}",
            entry(name, MARKER) + END,
            label not in ("dot", "dot-slash", "double-slash", "empty"),
            f"a file named {name!r}",
        )
    add(
        "gnu-longname-dotdot",
        ext(b"L", b"../escape") + entry(b"short", MARKER) + END,
        True,
        "a long name escaping the root",
    )
    add("pax-path-dot", pax(("path", ".")) + entry(b"x", MARKER) + END, False, "the root")
    add("pax-path-slash", pax(("path", "/")) + entry(b"x", MARKER) + END, False, "'/' stripped")
    add(
        "gnu-longname-and-pax-size",
        ext(b"L", b"long-name") + pax(("size", str(len(MARKER)))) + entry(b"x", MARKER) + END,
        False,
        "a long name and a pax size",
    )
    add("name-trailing-slash-file", entry(b"secret/key.pem/", MARKER) + END, False, "file 'a/'")
    add("name-raw-bytes", entry(b"caf\xe9-\xff", MARKER) + END, False, "a non-UTF-8 name")
    add("duplicate-entries", SECRET + entry(b"secret/key.pem", b"other") + END, False, "twice")
    # --- stream ends -------------------------------------------------------------------------
    add("trailing-garbage", SECRET + END + b"garbage" * 100, False, "Go never reads it")
    add("trailing-entry", SECRET + END + PLAIN, False, "an entry after the end marker")
    add(
        "one-zero-block-then-entry",
        SECRET + bytes(BLOCK) + PLAIN + END,
        True,
        "Go reads on after one zero block and refuses, tarfile stops",
    )
    add(
        "one-zero-block-then-garbage",
        SECRET + bytes(BLOCK) + b"garbage",
        True,
        "Go reads a partial block after one zero block and refuses",
    )
    add("one-zero-block-at-end", SECRET + bytes(BLOCK), False, "a single end block")
    add("no-end-marker", SECRET, False, "ends at a header boundary")
    add("end-marker-only", END, False, "an empty archive")
    add("empty-file", b"", True, "no bytes at all")
    add("truncated-data", SECRET[: BLOCK + 5], True, "ends inside the data")
    add("truncated-padding", SECRET[: BLOCK + 100], True, "ends inside the padding")
    add("truncated-header", SECRET + PLAIN[:300], True, "ends inside a header")
    add(
        "extension-at-end",
        ext(b"L", b"dangling") + END,
        True,
        "a long name with no entry",
    )
    return cases


def _signed(block: bytes) -> bytes:
    out = bytearray(block)
    rest = out[:148] + out[156:]
    out[148:156] = b"%06o\0 " % (256 + sum(b - 256 if b > 127 else b for b in rest))
    return bytes(out)


def _broken(tar: bytes) -> bytes:
    out = bytearray(tar)
    out[0] ^= 1
    return bytes(out)


CASES = _cases()


def main() -> None:
    """Write every case to ``tests/vectors/tars`` (and nothing else there)."""
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    for name, case in sorted(CASES.items()):
        (OUT / f"{name}.tar").write_bytes(case.tar)
    print(f"{len(CASES)} tars in {OUT}")


if __name__ == "__main__":
    main()
