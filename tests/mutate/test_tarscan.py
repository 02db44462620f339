"""The layer tar reader against tarfile: the same index for every tar tarfile reads, and a clear
refusal for what it reads differently from the engines (or not at all)."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import random
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import pytest

from sconify.elf import ELF_MAGIC, ElfInfo, NotElf, parse_elf
from sconify.errors import ImageError, UnsafeLayer
from sconify.mutate.layerindex import LayerIndex, Node, index_tar
from sconify.mutate.tarpaths import Whiteout, clean_name, whiteout_of
from sconify.mutate.tarscan import TarScanner, UnsupportedTar

# --- the oracle: index_tar as it was, on tarfile ------------------------------------------------


def _oracle_hash_member(
    stream: tarfile.TarFile, member: tarfile.TarInfo
) -> tuple[str, ElfInfo | None]:
    handle = stream.extractfile(member)
    assert handle is not None
    digest = hashlib.sha256()
    head = handle.read(1 << 20)
    digest.update(head)
    if head.startswith(ELF_MAGIC) and member.size <= 512 * 1024 * 1024:
        chunks = [head]
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            chunks.append(chunk)
        try:
            return digest.hexdigest(), parse_elf(b"".join(chunks))
        except NotElf:
            return digest.hexdigest(), None
    while chunk := handle.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest(), None


def _oracle_kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.isreg() or member.islnk():
        return "file"
    return "other"


def oracle_index_tar(tar: BinaryIO, name: str) -> LayerIndex:
    """The tarfile-based index_tar this reader replaced (its outputs are the contract)."""
    additions: list[Node] = []
    whiteouts: list[Whiteout] = []
    seen: set[str] = set()
    by_member: dict[str, Node] = {}
    try:
        with tarfile.open(fileobj=tar, mode="r|") as stream:  # type: ignore[call-overload]
            for member in stream:
                path = clean_name(member.name, layer=name)
                if path == "/":
                    continue
                seen.add(path)
                wo = whiteout_of(path)
                if wo is not None:
                    whiteouts.append(wo)
                    continue
                kind = _oracle_kind(member)
                mode = member.mode & 0o7777
                node = Node(path, kind, mode, member.uid, member.gid, 0, member.name)
                if member.islnk():
                    target = clean_name(member.linkname, layer=name)
                    source = by_member.get(target)
                    if source is None or source.kind != "file":
                        raise UnsafeLayer("hard link to nothing")
                    node = replace(
                        node,
                        kind="file",
                        member=source.member,
                        size=source.size,
                        sha256=source.sha256,
                        elf=source.elf,
                    )
                elif kind == "symlink":
                    node = replace(node, target=member.linkname)
                elif kind == "file":
                    sha, elf = _oracle_hash_member(stream, member)
                    node = replace(node, size=member.size, sha256=sha, elf=elf)
                by_member[path] = node
                additions.append(node)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ImageError(f"layer {name} is not a readable tar: {err}") from err
    return LayerIndex(tuple(additions), tuple(whiteouts), frozenset(seen))


# --- helpers -------------------------------------------------------------------------------------


class Dribble:
    """A stream that hands out its bytes in awkward pieces (never what was asked for)."""

    def __init__(self, data: bytes, sizes: Iterator[int]) -> None:
        self._data = io.BytesIO(data)
        self._sizes = sizes

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, next(self._sizes)))


def _streams(data: bytes) -> Iterator[tuple[str, Callable[[], BinaryIO]]]:
    yield "whole", lambda: io.BytesIO(data)
    # byte by byte only for small tars: a few MiB read one byte at a time take seconds
    for piece in (1, 7, 511, 513, 4093, 65537) if len(data) < 1 << 20 else (511, 4093, 65537):
        yield f"by {piece}", lambda p=piece: Dribble(data, itertools.repeat(p))
    yield "random", lambda: Dribble(data, _random_sizes())


def _random_sizes() -> Iterator[int]:
    rng = random.Random(7)
    while True:
        yield rng.randint(1, 3000)


def assert_same(data: bytes, name: str = "0") -> LayerIndex:
    """Our index of ``data`` is the oracle's, whatever the stream's read sizes."""
    expected = oracle_index_tar(io.BytesIO(data), name)
    for label, stream in _streams(data):
        index = index_tar(stream(), name)
        assert index.entries == expected.entries, label
        assert index.whiteouts == expected.whiteouts, label
        assert index.paths == expected.paths, label
    return expected


def refused(data: bytes, *words: str) -> ImageError:
    """Our index refuses ``data`` with an ImageError naming the layer and saying why."""
    with pytest.raises(ImageError) as caught:
        index_tar(io.BytesIO(data), "3 (sha256:ab)")
    assert str(caught.value).startswith("layer 3 (sha256:ab) is not a readable tar: ")
    for word in words:
        assert word in str(caught.value)
    assert caught.value.hint
    return caught.value


def _add(
    tar: tarfile.TarFile,
    name: str,
    kind: bytes = tarfile.REGTYPE,
    data: bytes = b"",
    **fields: object,
) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mtime, info.mode = kind, 1700000000, 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    if kind in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def _host_elf() -> bytes:
    return Path("/bin/true").resolve().read_bytes()


def rich_tar(fmt: int, *, long: bool = True, big_ids: bool = False, heavy: bool = True) -> bytes:
    """Most of what layers hold, in tarfile's ``fmt``."""
    buf = io.BytesIO()
    rng = random.Random(fmt)
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8") as tar:
        _add(tar, "./", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "etc", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "etc/trailing/", tarfile.DIRTYPE, mode=0o700)
        _add(tar, "etc/empty")
        _add(tar, "etc/block", data=b"b" * 1024)
        _add(tar, "etc/odd", data=b"o" * 1000, mode=0o4755, uid=1000, gid=50)
        if heavy:
            _add(tar, "etc/big", data=rng.randbytes(3 * 1024 * 1024 + 17))
            _add(tar, "bin/true", data=_host_elf(), mode=0o755)
        else:
            _add(tar, "bin/true", data=b"not elf")
        _add(tar, "etc/ünïcödé-名前", data=b"u")
        _add(tar, "etc/raw-\udcff\udcfe", data=b"not utf-8 name")
        _add(tar, "bin/fake-elf", data=ELF_MAGIC + b"\x02\x01 not really")
        _add(tar, "bin/tiny", data=b"\x7fEL")
        _add(tar, "bin/hard", tarfile.LNKTYPE, linkname="bin/true")
        _add(tar, "bin/hard2", tarfile.LNKTYPE, linkname="./etc/odd")
        _add(tar, "bin/sym", tarfile.SYMTYPE, linkname="../etc/odd")
        _add(tar, "bin/sym-abs", tarfile.SYMTYPE, linkname="/usr/bin/python3")
        _add(tar, "dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
        _add(tar, "dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)
        _add(tar, "run/fifo", tarfile.FIFOTYPE)
        _add(tar, "old/.wh.gone", data=b"")
        _add(tar, "old/.wh..wh..opq")
        _add(tar, "opt/contiguous", tarfile.CONTTYPE, data=b"c" * 700)
        _add(tar, "x//y/./z", data=b"odd slashes")
        if long:
            deep = "/".join(f"directory-{i:03d}" for i in range(12))
            _add(tar, deep, tarfile.DIRTYPE)
            _add(tar, deep + "/file-name-" + "n" * 120, data=b"long name > 255")
            _add(tar, "d" * 99 + "/" + "e" * 99, data=b"prefix split")
            _add(tar, "f" * 101, data=b"just over 100")
            _add(tar, "long-link", tarfile.SYMTYPE, linkname="t" * 300)
            _add(tar, "long-hard", tarfile.LNKTYPE, linkname=deep + "/file-name-" + "n" * 120)
            _add(tar, "g" * 150 + "/", tarfile.DIRTYPE)
        if big_ids:
            _add(tar, "ids/huge", data=b"h", uid=8**8 + 5, gid=2**40)
            _add(tar, "ids/huge-dir", tarfile.DIRTYPE, uid=2**31, gid=8**7)
    return buf.getvalue()


def _checksum(block: bytearray) -> None:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)


def header(
    name: bytes = b"f",
    kind: bytes = b"0",
    size: int = 0,
    *,
    linkname: bytes = b"",
    magic: bytes = b"ustar\x0000",
    prefix: bytes = b"",
    fields: dict[int, bytes] | None = None,
) -> bytes:
    """One raw header block, checksummed after ``fields`` (offset: bytes) are written."""
    block = bytearray(512)
    block[0 : len(name)] = name
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = b"%011o\0" % size if size >= 0 else b"\xff" * 12
    block[136:148] = b"14537005610\0"
    block[156:157] = kind
    block[157 : 157 + len(linkname)] = linkname
    block[257:265] = magic
    block[345 : 345 + len(prefix)] = prefix
    for offset, value in (fields or {}).items():
        block[offset : offset + len(value)] = value
    _checksum(block)
    return bytes(block)


def data(payload: bytes) -> bytes:
    return payload + bytes(-len(payload) % 512)


def pax(records: dict[str, str | bytes]) -> bytes:
    out = b""
    for key, value in records.items():
        raw = value if isinstance(value, bytes) else value.encode()
        body = b" " + key.encode() + b"=" + raw + b"\n"
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length += 1
        out += str(length).encode() + body
    return out


END = bytes(1024)


def signed_checksum(block: bytes) -> bytes:
    """The same header, its checksum the sum of its bytes read as signed chars (old tars)."""
    out = bytearray(block)
    rest = out[:148] + out[156:]
    out[148:156] = b"%06o\0 " % (256 + sum(b - 256 if b > 127 else b for b in rest))
    return bytes(out)


def entry(name: bytes, payload: bytes = b"", kind: bytes = b"0") -> bytes:
    return header(name, kind, len(payload)) + data(payload)


def extension(kind: bytes, payload: bytes, name: bytes = b"././@LongLink") -> bytes:
    return header(name, kind, len(payload)) + data(payload)


# --- the same answers as tarfile -----------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt",
    [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT],
    ids=["gnu", "pax", "ustar"],
)
def test_tarfile_written_tars_index_the_same(fmt: int) -> None:
    extended = fmt != tarfile.USTAR_FORMAT  # ustar has no long names nor huge ids
    assert_same(rich_tar(fmt, long=extended, big_ids=extended))
    assert_same(rich_tar(fmt, long=extended, big_ids=extended, heavy=False))


def test_the_rich_tar_covers_what_it_claims() -> None:
    index = assert_same(rich_tar(tarfile.GNU_FORMAT, big_ids=True))
    by_path = {n.path: n for n in index.entries}
    assert by_path["/bin/true"].elf is not None and by_path["/bin/fake-elf"].elf is None
    assert by_path["/bin/hard"].sha256 == by_path["/bin/true"].sha256
    assert by_path["/bin/hard"].member == "bin/true"
    assert by_path["/etc/raw-\udcff\udcfe"].member == "etc/raw-\udcff\udcfe"
    assert by_path["/ids/huge"].uid == 8**8 + 5 and by_path["/ids/huge"].gid == 2**40
    assert by_path["/etc/trailing"].kind == "dir"
    assert by_path["/opt/contiguous"].kind == "file" and by_path["/dev/null"].kind == "other"
    assert index.whiteouts == (Whiteout("/old/gone", False), Whiteout("/old", True))
    assert any(len(n.member) > 255 for n in index.entries)
    assert by_path["/long-link"].target == "t" * 300


def test_pax_records_and_a_global_header_index_the_same() -> None:
    buf = io.BytesIO()
    # a global header as git archive writes one (comment=<commit>), and per-entry records
    with tarfile.open(
        fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "abc123"}
    ) as tar:
        info = tarfile.TarInfo("plain")
        info.pax_headers = {"uid": "4000000000", "gid": "7", "SCHILY.xattr.user.k": "v"}
        tar.addfile(info)
        _add(tar, "dir-with-pax-path", tarfile.DIRTYPE, pax_headers={"path": "renamed//"})
        _add(tar, "file", data=b"x" * 5000, pax_headers={"path": "pax-file/", "mtime": "1.5"})
        _add(tar, "link", tarfile.SYMTYPE, linkname="short", pax_headers={"linkpath": "lông"})
    assert_same(buf.getvalue())


def test_hand_made_headers_index_the_same() -> None:
    """What tarfile does not write but reads: v7 directories, prefixes, odd numbers."""
    v7 = b"\0" * 8
    tar = (
        header(b"v7dir/", b"\0", magic=v7)
        + header(b"v7file", b"\0", 3, magic=v7)
        + data(b"abc")
        + header(b"name", prefix=b"some/prefix")
        + header(b"sub/", b"5", prefix=b"pre")
        + header(b"", b"5", prefix=b"only-prefix/")
        + header(b"spaces", b"0", 2, fields={100: b"   644 \0", 124: b"     2     "})
        + data(b"ok")
        + header(b"b256", b"0", 1, fields={108: b"\x80" + bytes(6) + b"\x05"})
        + data(b"x")
        + header(b"b256-size", b"0", 0, fields={124: b"\x80" + bytes(10) + b"\x01"})
        + data(b"y")
        + header(b"negative-uid", fields={108: b"\xff" * 8})
        + signed_checksum(header(b"signed-sum-\xe9\xe9"))
        + header(b"dir-with-size", b"5", 1024)
        + header(b"after-dir", b"0", 1)
        + data(b"!")
        + END
    )
    index = assert_same(tar)
    names = {n.member: n for n in index.entries}
    assert names["v7dir"].kind == "dir" and names["v7file"].kind == "file"
    assert "some/prefix/name" in names and "pre/sub" in names and "only-prefix" in names
    assert names["b256"].uid == 5 and names["b256-size"].size == 1
    assert names["spaces"].mode == 0o644 and names["spaces"].size == 2
    assert names["negative-uid"].uid == -1


@pytest.mark.parametrize("kind", [b"V", b"Z", b"N", b"A"])
def test_entries_of_types_the_engines_do_not_extract_are_refused(kind: bytes) -> None:
    # the engines refuse them (unless named as whiteouts), and a rewrite could not carry their
    # data: Go would then read what follows out of step
    tar = header(b"odd", kind, 600) + data(b"z" * 600) + header(b"after", b"0", 1) + data(b"!")
    with pytest.raises(ImageError, match=f"unknown type {kind!r}"):
        index_tar(io.BytesIO(tar + END), "0")


def test_pax_hdrcharset_binary_names_index_the_same() -> None:
    raw = "bin\udcffary".encode("utf-8", "surrogateescape")
    tar = (
        extension(b"x", pax({"hdrcharset": "BINARY", "path": raw}), b"PaxHeaders/x")
        + entry(b"placeholder", b"data")
        + extension(b"x", pax({"path": raw + b"-strict-fallback"}), b"PaxHeaders/y")
        + entry(b"placeholder2")
        + END
    )
    index = assert_same(tar)
    assert [n.member for n in index.entries] == ["bin\udcffary", "bin\udcffary-strict-fallback"]


def test_stream_ends_and_trailing_bytes_as_tarfile() -> None:
    one = entry(b"a", b"1")
    assert assert_same(one + END + bytes(9 * 1024)).paths == {"/a"}  # a full record of padding
    assert assert_same(one).paths == {"/a"}  # no end marker, cut at a header boundary
    assert assert_same(one + END + b"ignored after the end marker").paths == {"/a"}
    assert assert_same(one + bytes(512)).paths == {"/a"}  # one end block, then the stream ends
    assert assert_same(bytes(1024)).entries == ()
    assert assert_same(one + END + entry(b"hidden")).paths == {"/a"}
    # Go reads the block after a single zero block, and refuses anything but zeros there
    refused(one + bytes(512) + b"tarfile stops, Go reads a partial block", "partial block")
    refused(one + bytes(512) + entry(b"b") + END, "after a single end-of-archive block")


@pytest.mark.parametrize("fmt", ["gnu", "oldgnu", "posix", "ustar", "v7"])
def test_gnu_tar_archives_index_the_same(fmt: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "file").write_bytes(b"hello")
    (root / "dir" / "empty").write_bytes(b"")
    (root / "dir" / "block").write_bytes(b"\1" * 4096)
    (root / "dir" / "ünï").write_bytes(b"u")
    (root / "dir" / "link").symlink_to("file")
    os.link(root / "dir" / "file", root / "dir" / "hard")
    if fmt != "v7":  # v7 has no type for fifos
        os.mkfifo(root / "dir" / "fifo")
    (root / "dir" / ".wh.removed").write_bytes(b"")
    shutil.copy("/bin/true", root / "dir" / "true")
    if fmt in ("gnu", "oldgnu", "posix"):
        long = root / "dir" / ("l" * 90) / ("m" * 90) / ("n" * 90)
        long.mkdir(parents=True)
        (long / "file").write_bytes(b"deep")
        (root / "dir" / "longlink").symlink_to("x" * 200)
    os.chown(root / "dir" / "file", 123456, 654321)
    out = tmp_path / "layer.tar"
    subprocess.run(
        ["tar", f"--format={fmt}", "--numeric-owner", "-C", str(root), "-cf", str(out), "."],
        check=True,
        capture_output=True,
    )
    index = assert_same(out.read_bytes())
    assert "/dir/true" in index.paths and "/dir/hard" in index.paths


def test_damaged_tars_are_refused_or_read_as_tarfile_reads_them() -> None:
    """Bytes flipped in headers (checksums mostly fixed up, to get past them): whenever our
    reader accepts the result, tarfile reads exactly the same; it never fails otherwise than
    with an ImageError."""
    base = rich_tar(tarfile.PAX_FORMAT, heavy=False)
    headers = []
    with tarfile.open(fileobj=io.BytesIO(base)) as tar:
        headers = [m.offset for m in tar.getmembers()] + [m.offset_data - 512 for m in tar]
    rng = random.Random(20240611)
    interesting = b"\0 /.0178\x80\xff\n=x"
    accepted = 0
    for _ in range(1500):
        tar = bytearray(base)
        block = rng.choice(headers)
        for _ in range(rng.choice((1, 1, 2, 3))):
            at = block + rng.randrange(512 if rng.random() < 0.5 else 1024)
            tar[at] = rng.choice(interesting) if rng.random() < 0.7 else rng.randrange(256)
        if rng.random() < 0.8:
            head = bytearray(tar[block : block + 512])
            _checksum(head)
            tar[block : block + 512] = head
        try:
            index = index_tar(io.BytesIO(bytes(tar)), "0")
        except ImageError:
            continue
        accepted += 1
        assert index == oracle_index_tar(io.BytesIO(bytes(tar)), "0")
    assert accepted > 300


# --- bad input -----------------------------------------------------------------------------------


def test_truncated_tars_are_refused() -> None:
    tar = entry(b"a", b"x" * 2000) + entry(b"b", b"y") + END
    refused(tar[:700], "unexpected end of data")  # inside a's data
    refused(tar[: 512 + 2000 + 10], "unexpected end of data")  # inside a's padding
    refused(tar[: 512 + 2048 + 100], "truncated header")  # inside b's header
    refused(b"", "empty file")
    refused(extension(b"L", b"long" * 40), "ends after an extension header")


def test_bad_checksums_are_refused_anywhere() -> None:
    first = bytearray(entry(b"a", b"1") + entry(b"b", b"2") + END)
    first[0] = ord("z")
    refused(bytes(first), "bad checksum", "offset 0")
    later = bytearray(entry(b"a", b"1") + entry(b"b", b"2") + END)
    later[1024] = ord("z")  # tarfile would end the archive here and never see b
    refused(bytes(later), "bad checksum", "offset 1024")


def test_pax_headers_lying_about_size_are_refused() -> None:
    bigger = extension(b"x", pax({"size": "4096"}), b"PaxHeaders/a") + entry(b"a", b"12") + END
    refused(bigger, "unexpected end of data")
    # smaller: the rest of the data reads as a header, with a checksum that does not add up
    payload = b"q" * 1500
    smaller = extension(b"x", pax({"size": "10"}), b"PaxHeaders/a") + entry(b"a", payload) + END
    refused(smaller)


def test_malformed_numbers_and_records_are_refused() -> None:
    refused(header(fields={124: b"12x4\0"}) + END, "invalid number")
    refused(header(fields={136: b"zz\0"}) + END, "invalid number")
    refused(header(fields={329: b"9\0"}) + END, "invalid number")
    # tarfile reads 0 where Go skips the leading NULs and reads 15 (one block of data)
    refused(
        header(fields={124: b"\0\0\0" + b"00017\0"}) + data(b"x" * 15) + END, "read differently"
    )
    refused(header(size=-1) + END, "negative size")
    refused(extension(b"x", pax({"size": "-5"}), b"P") + entry(b"a") + END, "negative pax size")
    refused(extension(b"x", pax({"uid": "root"}), b"P") + entry(b"a") + END, "not a number")
    refused(extension(b"x", b"0 path=a\n", b"P") + entry(b"a") + END, "malformed pax record")
    refused(extension(b"x", b"12 path=abcd\n", b"P") + entry(b"a") + END, "malformed pax record")
    # tarfile drops a record's last byte unseen, Go wants it to be a newline
    no_newline = b"11 path=abX" + pax({"mtime": "1"})
    refused(extension(b"x", no_newline, b"P") + entry(b"a") + END, "malformed pax record")
    # a record tarfile skips (no decimal length) but Go applies
    records = pax({"mtime": "1"}) + b"+11 path=zz\n"
    refused(extension(b"x", records, b"P") + entry(b"a") + END, "malformed pax record")
    refused(extension(b"x", pax({"hdrcharset": b"\xff"}), b"P") + entry(b"a") + END, "not UTF-8")
    refused(extension(b"x", pax({"path": "b"})) + END, "no entry after an extension header")
    # tarfile wants an entry after a global header too
    refused(extension(b"g", pax({"comment": "c"})) + END, "no entry after an extension header")
    refused(extension(b"g", pax({"comment": "c"})), "ends after an extension header")


def test_unsupported_features_are_refused_with_a_hint() -> None:
    cases = {
        "sparse": header(b"s", b"S", 0) + END,
        "multi-volume": header(b"m", b"M", 0) + END,
        "Solaris": extension(b"X", pax({"path": "b"}), b"P") + entry(b"a") + END,
        "sets path": extension(b"g", pax({"path": "b"}), b"G") + entry(b"a") + END,
        "sets uid": extension(b"g", pax({"uid": "5"}), b"G") + entry(b"a") + END,
        "GNU.sparse": extension(b"x", pax({"GNU.sparse.major": "1"}), b"P") + entry(b"a") + END,
        "two pax headers": extension(b"x", pax({"path": "b"}), b"P")
        + extension(b"x", pax({"path": "c"}), b"P")
        + entry(b"a")
        + END,
        "two GNU long names": extension(b"L", b"b") + extension(b"L", b"c") + entry(b"a") + END,
        "two GNU long links": extension(b"K", b"b") + extension(b"K", b"c") + entry(b"a") + END,
        "long name and a pax path": extension(b"L", b"b")
        + extension(b"x", pax({"path": "c"}), b"P")
        + entry(b"a")
        + END,
        "long link and a pax linkpath": extension(b"K", b"b")
        + extension(b"x", pax({"linkpath": "c"}), b"P")
        + entry(b"a", kind=b"2")
        + END,
        "global pax header inside an entry": extension(b"x", pax({"path": "b"}), b"P")
        + extension(b"g", pax({"comment": "c"}), b"G")
        + entry(b"a")
        + END,
        "extension header of": extension(b"L", b"n" * (1 << 20) + b"\0") + entry(b"a") + END,
        "prefix without the ustar magic": header(b"a", prefix=b"p", magic=b"ustar  \0") + END,
        "star header": header(b"a", prefix=b"p" * 155, fields={508: b"tar\0"}) + END,
        "directory to some readers": extension(b"x", pax({"path": "d/"}), b"P")
        + header(b"d", b"\0", 0, magic=bytes(8))
        + END,
    }
    for words, tar in cases.items():
        error = refused(tar, words)
        assert error.hint and "rebuild" in error.hint, words
    padded = bytearray(extension(b"L", b"name") + entry(b"a") + END)
    padded[600] = 1
    refused(bytes(padded), "padded with data")


def test_what_go_reads_otherwise_or_refuses_is_refused() -> None:
    """Each case is also in the corpus (tests/vectors/tars), checked against Go itself."""
    secret = entry(b"secret", b"plaintext")
    cases: list[tuple[tuple[str, ...], bytes]] = [
        # Go ignores these and extracts "secret" under its own name; tarfile names it ""
        (("empty GNU long name",), extension(b"L", b"") + secret),
        (("empty GNU long name",), extension(b"L", b"\0after-the-nul") + secret),
        (("empty GNU long link target",), extension(b"K", b"") + header(b"l", b"2", linkname=b"t")),
        (("empty pax path",), extension(b"x", pax({"path": ""}), b"P") + secret),
        (("empty pax linkpath",), extension(b"x", pax({"linkpath": ""}), b"P") + secret),
        (("empty pax size",), extension(b"x", pax({"size": ""}), b"P") + secret),
        (("empty pax gid",), extension(b"x", pax({"gid": ""}), b"P") + secret),
        # Go refuses these records; tarfile keeps them
        (("NUL in the pax path",), extension(b"x", pax({"path": b"a\0b"}), b"P") + secret),
        (("NUL in the pax uname",), extension(b"x", pax({"uname": b"a\0"}), b"P") + secret),
        (("NUL in a pax keyword",), extension(b"x", pax({"k\0": "v"}), b"P") + secret),
        (("not a number",), extension(b"x", pax({"uid": " 5"}), b"P") + secret),
        (("'1_0' is not a number",), extension(b"x", pax({"gid": "1_0"}), b"P") + secret),
        (("not a number",), extension(b"x", pax({"uid": "\u0665"}), b"P") + secret),
        (("not a number",), extension(b"x", pax({"uid": str(1 << 63)}), b"P") + secret),
        (("mtime", "not a time"), extension(b"x", pax({"mtime": ".5"}), b"P") + secret),
        (("atime", "not a time"), extension(b"x", pax({"atime": "1.5e3"}), b"P") + secret),
        # numbers int() reads but Go does not, or the other way round
        (("invalid number",), header(fields={100: b"\t644\0"})),
        (("invalid number",), header(fields={100: b"+644\0"})),
        (("invalid number",), header(fields={100: b"0o644\0"})),
        (("invalid number",), header(fields={100: b"6_44\0"})),
        (("read differently",), header(fields={100: b"644 \0x\0"})),
        (("out of range",), header(fields={136: b"\x80" + b"\xff" * 11})),
        (("star header with times",), header(fields={476: b"zz\0", 508: b"tar\0"})),
        # the engines skip a global header's type, but act on its name first
        (("global pax header named",), extension(b"g", pax({"c": "1"}), b".wh.secret") + secret),
        (
            ("global pax header named",),
            extension(b"g", pax({"c": "1"}), b"tmp/GlobalHead") + secret,
        ),
        (("global pax header named",), extension(b"g", pax({"c": "1"}), b"../x") + secret),
    ]
    for words, tar in cases:
        refused(tar + END, *words)
    # a bad time in a global header is no error to Go (it ignores it), nor to us
    assert_same(extension(b"g", pax({"mtime": "soon"}), b"pax_global_header") + secret + END)
    assert_same(extension(b"x", pax({"mtime": "-1.5", "uid": "+7"}), b"P") + secret + END)
    assert_same(extension(b"x", pax({"mtime": ""}), b"P") + secret + END)


def test_the_scanner_raises_unsupported_tar() -> None:
    scan = TarScanner(io.BytesIO(header(b"s", b"S") + END))
    with pytest.raises(UnsupportedTar, match="sparse"):
        scan.next()


def test_gnu_tar_sparse_files_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with (root / "sparse").open("wb") as f:
        f.truncate(4 << 20)
        f.seek(2 << 20)
        f.write(b"data")
    for fmt in ("gnu", "posix"):
        out = tmp_path / f"{fmt}.tar"
        subprocess.run(
            ["tar", f"--format={fmt}", "-S", "-C", str(root), "-cf", str(out), "sparse"],
            check=True,
            capture_output=True,
        )
        refused(out.read_bytes(), "sparse")
