"""A corpus of hostile layers and metadata, each converted by the real CLI from an OCI layout.

Every case protects ``/app``, whose files hold :data:`MARKER`. Each either is refused with one
error (exit 1, one ``error:`` line and a hint, no traceback, nothing written), or converts with
the marker absent from every blob of the output as the engines read it: each layer through Go's
``archive/tar`` (the ``tarlist`` lister, compression sniffed from the bytes, names, link targets,
pax records and data searched), configs and manifests as raw bytes.

Adding a case is one line in :data:`CASES`: a name, a builder of the native layers (above a base
layer holding ``/bin/true`` and its libc), and the expected outcome (``CONVERTED`` or a piece of
the error message); ``spoil`` may change the written layout or the index cache before the run.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

from sconify.image import BlobStore, Descriptor, Digest, Layer
from sconify.image import mediatypes as mt
from sconify.mutate.indexcache import VERSION
from sconify.mutate.layerindex import LayerIndex, Node
from sconify.transports import layout
from sconify.transports.refs import LayoutRef
from tests.support.cli import BIN, Cli
from tests.support.golister import GoLister
from tests.support.layers import Entry, image_of, make_layer, minimal_root
from tests.support.peak_rss import run_with_peak_rss
from tests.support.services import CasProcess, LasProcess, cas, las
from tests.vectors.gen_tars import END, entry, ext, header, pax, records

__all__ = ["cas", "las"]

MARKER = b"PLAINTEXT-MARKER-5d1c9e"
SECRET = MARKER + b" the protected file's content"
CONVERTED = ""
#: Peak RSS allowed for a conversion, whatever the layers hold (the gzip bomb checks it).
RSS_BOUND_MB = 300
BOMB_BYTES = 1 << 30

Build = Callable[[BlobStore, Path], list[Layer]]


@dataclass(frozen=True)
class Case:
    """One hostile image: ``expect`` is :data:`CONVERTED` or a piece of the one error line."""

    build: Build
    expect: str
    spoil: Callable[[Path, Path], None] | None = None  # (layout root, cache home)


def _layer(*entries: Entry) -> Build:
    return lambda store, tmp: [make_layer(store, tmp, list(entries))]


def _layers(*layers: list[Entry]) -> Build:
    return lambda store, tmp: [make_layer(store, tmp, list(e)) for e in layers]


def _tar_bytes(*entries: Entry) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
    return buf.getvalue()


APP = [Entry("app", "dir"), Entry("app/secret.txt", data=SECRET)]
APP_TAR = _tar_bytes(*APP)


def _raw(blob: bytes, media_type: str, diff_id: bytes | None = None) -> Build:
    """A layer of exactly these blob bytes, declared ``media_type``; its diff_id is that of
    ``diff_id`` (the tar) or the blob itself."""

    def build(store: BlobStore, tmp: Path) -> list[Layer]:
        digest, size = store.put_bytes(blob)
        tar = diff_id if diff_id is not None else blob
        diff = Digest.from_hex(hashlib.sha256(tar).hexdigest())
        return [Layer(Descriptor(media_type, digest, size), diff, store.path(digest))]

    return build


def _wrong_diff_id(store: BlobStore, tmp: Path) -> list[Layer]:
    layer = make_layer(store, tmp, APP)
    return [Layer(layer.descriptor, Digest.from_hex("0" * 64), layer.path)]


class _Tee(io.RawIOBase):
    """Hashes what is written (the tar: its diff_id) and writes it on, gzip'd."""

    def __init__(self, out: gzip.GzipFile) -> None:
        self.out = out
        self.hash = hashlib.sha256()
        self.written = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.written

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.hash.update(data)
        self.written += len(data)
        return self.out.write(data)


def _gzip_bomb(store: BlobStore, tmp: Path) -> list[Layer]:
    """:data:`BOMB_BYTES` of zeros in a tar of about a thousandth of that, gzip'd."""
    path = tmp / "bomb.tar.gz"
    zeros = bytes(1 << 20)

    class Zeros:
        def read(self, size: int) -> bytes:
            return zeros[:size]

    with gzip.open(path, "wb", compresslevel=9) as gz:
        tee = _Tee(gz)  # type: ignore[arg-type]
        with tarfile.open(fileobj=tee, mode="w", copybufsize=len(zeros)) as tar:
            info = tarfile.TarInfo("zeros")
            info.size = BOMB_BYTES
            tar.addfile(info, Zeros())  # type: ignore[arg-type]
    digest, size = store.put_file(path)
    bomb = Layer(
        Descriptor(mt.OCI_LAYER_GZIP, digest, size),
        Digest.from_hex(tee.hash.hexdigest()),
        store.path(digest),
    )
    return [bomb, make_layer(store, tmp, APP)]


def _manifest(root: Path) -> tuple[Path, dict[str, object]]:
    index = json.loads((root / "index.json").read_text())
    path = root / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]
    return path, json.loads(path.read_text())


def _extra_diff_id(root: Path, cache: Path) -> None:
    """The config lists one diff_id more than the manifest has layers."""
    _, manifest = _manifest(root)
    config_desc = manifest["config"]
    assert isinstance(config_desc, dict)
    config_path = root / "blobs/sha256" / config_desc["digest"].split(":")[1]
    config = json.loads(config_path.read_bytes())
    config["rootfs"]["diff_ids"].append("sha256:" + "1" * 64)
    data = json.dumps(config).encode()
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs/sha256" / digest).write_bytes(data)
    config_desc.update(digest=f"sha256:{digest}", size=len(data))
    raw = json.dumps(manifest).encode()
    mdigest = hashlib.sha256(raw).hexdigest()
    (root / "blobs/sha256" / mdigest).write_bytes(raw)
    index = json.loads((root / "index.json").read_text())
    index["manifests"][0].update(digest=f"sha256:{mdigest}", size=len(raw))
    (root / "index.json").write_text(json.dumps(index))


def _planted_cache(root: Path, cache: Path) -> None:
    """A forged cache entry for the top layer (well-formed JSON, the right diff_id) saying it
    holds one public file, not a protected one: with a made-up MAC, and in the old
    unauthenticated format. Trusted, it would let the layer through with its plaintext."""
    _, manifest = _manifest(root)
    layers = manifest["layers"]
    assert isinstance(layers, list)
    config_digest = manifest["config"]["digest"][7:]  # type: ignore[index]
    config = json.loads((root / "blobs/sha256" / config_digest).read_bytes())
    for desc, diff_id in [(layers[-1], config["rootfs"]["diff_ids"][-1])]:
        lie = LayerIndex(
            (Node("/srv/public", "file", 0o644, 0, 0, 0, "srv/public", 1, "", "0" * 64),),
            (),
            frozenset({"/srv/public"}),
            diff_id,
        )
        payload = gzip.compress(json.dumps(lie.to_json()).encode())
        name = desc["digest"].replace(":", "-") + ".json.gz"
        for version, data in (
            (VERSION, b"sconify layer index " + VERSION.encode() + b"\n" + b"f" * 64 + b"\n"),
            ("v2", b""),
        ):
            folder = cache / "sconify" / "layer-index" / version
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data + payload)


# Raw tars (tests/vectors/gen_tars.py's builders) whose protected file an engine would extract
# under another name, or not at all, if sconify read them differently from Go.
APP_DIR = header(b"app", b"5")
APP_FILE = entry(b"app/secret.txt", SECRET)


def _raw_tar(*parts: bytes) -> Build:
    return _raw(b"".join((APP_DIR, *parts, END)), mt.OCI_LAYER)


def _elf_like(body: bytes) -> bytes:
    """The first 64 bytes of the host's ``/bin/true`` (a real ELF header) then ``body``."""
    return Path("/bin/true").read_bytes()[:64] + body


def _many_entries(count: int) -> Build:
    """``count`` tiny files (outside ``/app``) beside the protected one, in one layer."""

    def build(store: BlobStore, tmp: Path) -> list[Layer]:
        many = [Entry("many", "dir"), *(Entry(f"many/{i}", data=b"x") for i in range(count))]
        return [make_layer(store, tmp, [*APP, *many])]

    return build


CASES: dict[str, Case] = {
    # traversal
    "dotdot-name": Case(_layer(*APP, Entry("app/../../evil", data=SECRET)), "escapes"),
    "absolute-name": Case(_layer(*APP, Entry("/app/abs", data=SECRET)), "absolute entry name"),
    "traversal-via-symlink": Case(
        _layer(Entry("app", "symlink", target="/etc"), Entry("app/passwd", data=SECRET)),
        "through the symlink",
    ),
    # write-through symlinks
    "write-through-lower-symlink": Case(
        _layers(APP, [Entry("data", "symlink", target="app")], [Entry("data/x", data=SECRET)]),
        "through the symlink",
    ),
    "write-through-symlink-into-app": Case(
        _layers(
            [Entry("app", "dir"), Entry("app/sub", "symlink", target="../srv")],
            [Entry("app/sub/x", data=SECRET)],
        ),
        "through the symlink",
    ),
    # hard links in every position
    "hardlink-inside-to-visible-outside": Case(
        _layer(
            Entry("tmp", "dir"),
            Entry("tmp/src", data=SECRET),
            Entry("app", "dir"),
            Entry("app/x", "hardlink", target="tmp/src"),
        ),
        "are hard links to the same file",
    ),
    "hardlink-outside-to-inside": Case(
        _layer(*APP, Entry("tmp", "dir"), Entry("tmp/h", "hardlink", target="app/secret.txt")),
        "are hard links to the same file",
    ),
    "hardlink-chain-outside": Case(
        _layer(
            *APP,
            Entry("tmp/b", "hardlink", target="app/secret.txt"),
            Entry("tmp/c", "hardlink", target="tmp/b"),
        ),
        "are hard links to the same file",
    ),
    "hardlink-before-target": Case(
        _layer(
            Entry("app", "dir"),
            Entry("app/x", "hardlink", target="app/y"),
            Entry("app/y", data=SECRET),
        ),
        "not a file earlier in the same layer",
    ),
    "hardlink-to-lower-layer": Case(
        _layers(APP, [Entry("tmp/h", "hardlink", target="app/secret.txt")]),
        "not a file earlier in the same layer",
    ),
    "hardlink-source-in-aufs-plnk": Case(
        _layer(
            Entry(".wh..wh.plnk", "dir"),
            Entry(".wh..wh.plnk/123.456", data=SECRET),
            Entry("app", "dir"),
            Entry("app/x", "hardlink", target=".wh..wh.plnk/123.456"),
        ),
        CONVERTED,
    ),
    "hardlink-into-aufs-plnk": Case(
        _layer(
            *APP,
            Entry(".wh..wh.plnk", "dir"),
            Entry(".wh..wh.plnk/1.2", "hardlink", target="app/secret.txt"),
        ),
        CONVERTED,
    ),
    "hardlink-source-deleted-later": Case(
        _layers(
            [
                Entry("gone", "dir"),
                Entry("gone/src", data=SECRET),
                Entry("app", "dir"),
                Entry("app/x", "hardlink", target="gone/src"),
            ],
            [Entry(".wh.gone")],
        ),
        CONVERTED,
    ),
    "hardlink-source-opaque-later": Case(
        _layers(
            [
                Entry("hid", "dir"),
                Entry("hid/src", data=SECRET),
                Entry("app", "dir"),
                Entry("app/x", "hardlink", target="hid/src"),
            ],
            [Entry("hid", "dir"), Entry("hid/.wh..wh..opq")],
        ),
        CONVERTED,
    ),
    "hardlink-source-replaced-later": Case(
        _layers(
            [
                Entry("tmp", "dir"),
                Entry("tmp/src", data=SECRET),
                Entry("app", "dir"),
                Entry("app/x", "hardlink", target="tmp/src"),
            ],
            [Entry("tmp/src", data=b"public now")],
        ),
        CONVERTED,
    ),
    "hardlink-chain-hidden": Case(
        _layers(
            [
                Entry("tmp", "dir"),
                Entry("tmp/a", data=SECRET),
                Entry("app", "dir"),
                Entry("tmp/b", "hardlink", target="tmp/a"),
                Entry("app/x", "hardlink", target="tmp/b"),
                Entry("app/y", "hardlink", target="app/x"),
            ],
            [Entry(".wh.tmp")],
        ),
        CONVERTED,
    ),
    "hardlink-inside-inside": Case(
        _layer(*APP, Entry("app/h", "hardlink", target="app/secret.txt")), CONVERTED
    ),
    # compression: the bytes decide, and must agree with the media type
    "gzip-bytes-declared-tar": Case(
        _raw(gzip.compress(APP_TAR), mt.OCI_LAYER, APP_TAR), "declared a plain tar"
    ),
    "tar-bytes-declared-gzip": Case(_raw(APP_TAR, mt.OCI_LAYER_GZIP), "declared gzip"),
    "zstd-bytes-declared-gzip": Case(
        _raw(zstandard.ZstdCompressor().compress(APP_TAR), mt.OCI_LAYER_GZIP, APP_TAR),
        "bytes are zstd",
    ),
    "gzip-bytes-declared-zstd": Case(
        _raw(gzip.compress(APP_TAR), mt.OCI_LAYER_ZSTD, APP_TAR), "bytes are gzip"
    ),
    "bzip2-bytes-declared-tar": Case(
        _raw(bz2.compress(APP_TAR), mt.OCI_LAYER, APP_TAR), "bytes are bzip2"
    ),
    "bzip2-bytes-declared-gzip": Case(
        _raw(bz2.compress(APP_TAR), mt.DOCKER_LAYER_GZIP, APP_TAR), "bytes are bzip2"
    ),
    "xz-bytes-declared-tar": Case(_raw(lzma.compress(APP_TAR), mt.OCI_LAYER, APP_TAR), "xz"),
    # diff_ids
    "wrong-diff-id": Case(_wrong_diff_id, "diff_id"),
    "extra-diff-id": Case(_layer(*APP), "diff_ids for", spoil=_extra_diff_id),
    # whiteouts aimed at protected and reserved paths
    "whiteout-protected-file": Case(_layers(APP, [Entry("app/.wh.secret.txt")]), CONVERTED),
    "whiteout-protected-dir": Case(_layers(APP, [Entry(".wh.app")]), "--dir=/app does not exist"),
    "whiteout-protected-file-kept-dir": Case(
        _layers([*APP, Entry("app/keep", data=SECRET)], [Entry("app/.wh.secret.txt")]),
        CONVERTED,
    ),
    "whiteout-protected-dir-recreated": Case(
        _layers(APP, [Entry(".wh.app"), Entry("app", "dir"), Entry("app/new", data=SECRET)]),
        CONVERTED,
    ),
    "opaque-whiteout-protected-dir": Case(
        _layers(
            APP, [Entry("app", "dir"), Entry("app/.wh..wh..opq"), Entry("app/new", data=SECRET)]
        ),
        CONVERTED,
    ),
    "whiteout-reserved-sconify": Case(
        _layers(
            APP,
            [
                Entry(".wh.sconify"),
                Entry("sconify", "dir"),
                Entry("sconify/.wh.fspf"),
                Entry("sconify/.wh..wh..opq"),
            ],
        ),
        CONVERTED,
    ),
    # bombs and planted caches
    "gzip-bomb": Case(_gzip_bomb, CONVERTED),
    "planted-index-cache": Case(
        _layers(APP, [Entry("app/more", data=SECRET)]), CONVERTED, spoil=_planted_cache
    ),
    # empty and bogus long names and pax records (the layer reader agrees with Go or refuses)
    "gnu-longname-empty": Case(_raw_tar(ext(b"L", b""), APP_FILE), "empty GNU long name"),
    "gnu-longname-nul-first": Case(_raw_tar(ext(b"L", b"\0x"), APP_FILE), "empty GNU long name"),
    "gnu-longlink-empty": Case(
        _raw_tar(APP_FILE, ext(b"K", b""), header(b"app/l", b"2", linkname=b"secret.txt")),
        "empty GNU long link",
    ),
    "gnu-longname-two": Case(
        _raw_tar(ext(b"L", b"app/a\0"), ext(b"L", b"app/b\0"), APP_FILE), "two GNU long names"
    ),
    "pax-path-empty": Case(_raw_tar(pax(("path", "")), APP_FILE), "empty pax path"),
    "pax-path-nul": Case(_raw_tar(pax(("path", b"tmp/x\0app")), APP_FILE), "NUL"),
    "pax-size-empty": Case(_raw_tar(pax(("size", "")), APP_FILE), "empty pax size"),
    "pax-path-and-gnu-longname": Case(
        _raw_tar(ext(b"L", b"tmp/x\0"), pax(("path", "tmp/y")), APP_FILE),
        "GNU long name and a pax path",
    ),
    "pax-record-bogus-length": Case(
        _raw_tar(ext(b"x", b"99 path=tmp/x\n", b"PaxHeaders.0/f"), APP_FILE), "pax record"
    ),
    "pax-global-path": Case(
        _raw_tar(ext(b"g", records(("path", "tmp/x")), b"pax_global_header"), APP_FILE),
        "global pax header",
    ),
    "pax-longname-into-app": Case(
        _raw_tar(ext(b"L", b"app/long-" + b"n" * 150 + b"\0"), entry(b"tmp/x", SECRET)),
        CONVERTED,
    ),
    # names that are not UTF-8 (the shim could not read them back)
    "non-utf8-name-in-app": Case(
        _raw_tar(pax(("hdrcharset", "BINARY"), ("path", b"app/caf\xe9")), entry(b"f", SECRET)),
        "not valid UTF-8",
    ),
    "non-utf8-raw-name-in-app": Case(_raw_tar(entry(b"app/caf\xe9", SECRET)), "not valid UTF-8"),
    # malformed ELF in the protected tree and in the measured set
    "malformed-elf-in-app": Case(
        _layer(
            *APP,
            Entry("app/truncated.so", data=_elf_like(b"")),
            Entry("app/bogus-offsets.so", data=_elf_like(b"\xff" * 4096) + SECRET),
        ),
        CONVERTED,
    ),
    # an entry the engines do not extract, whose data a rewrite would drop (Go then reads the
    # next file's bytes as headers: here a whiteout-named one, then a planted entry)
    "unknown-type-smuggles-entries": Case(
        _raw_tar(
            APP_FILE,
            entry(b"tmp/.wh.odd", bytes(512), b"Z"),
            entry(b"tmp/carrier", entry(b"app/planted", SECRET)),
        ),
        "unknown type",
    ),
    # the application moved or replaced after its bytes landed in a lower layer
    "moved-app-dir": Case(
        _layers(
            [Entry("build", "dir"), Entry("build/secret.txt", data=SECRET)],
            [Entry(".wh.build"), *APP],
        ),
        CONVERTED,
    ),
    "moved-app-then-symlinked": Case(
        _layers(
            APP,
            [
                Entry(".wh.app"),
                Entry("srv", "dir"),
                Entry("srv/app", "dir"),
                Entry("srv/app/secret.txt", data=SECRET),
                Entry("app", "symlink", target="/srv/app"),
            ],
        ),
        CONVERTED,
    ),
    "dir-replaced-by-symlink": Case(
        _layers(
            APP,
            [
                Entry(".wh.app"),
                Entry("srv", "dir"),
                Entry("srv/app", "dir"),
                Entry("srv/app/other.txt", data=b"public"),
                Entry("app", "symlink", target="/srv/app"),
            ],
        ),
        CONVERTED,
    ),
    "path-twice-in-a-layer-hiding-protected-bytes": Case(
        _layer(
            *APP,
            Entry("tmp", "dir"),
            Entry("tmp/x", data=SECRET),
            Entry("tmp/x", data=b"public"),
        ),
        "twice",
    ),
    # huge entry counts: bounded memory
    "many-entries": Case(_many_entries(100_000), CONVERTED),
}


def _base(store: BlobStore, tmp: Path) -> Layer:
    return make_layer(store, tmp, minimal_root("/bin/true"))


def _run_measured(cli: Cli, *args: str) -> tuple[int, str, int]:
    """Run ``sconify`` and return its exit code, stderr and peak RSS (KiB)."""
    result, peak = run_with_peak_rss([str(BIN / "sconify"), *args], env=cli.env())
    return result.returncode, result.stderr, peak


def _output_blobs(out: Path) -> tuple[set[str], list[Path]]:
    index = json.loads((out / "index.json").read_text())
    layers: set[str] = set()
    for listed in index["manifests"]:
        manifest = json.loads((out / "blobs/sha256" / listed["digest"][7:]).read_bytes())
        layers |= {d["digest"][7:] for d in manifest["layers"]}
    return layers, sorted((out / "blobs/sha256").iterdir())


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_hostile_image_is_refused_or_leaks_nothing(
    case: str,
    cas: CasProcess,
    las: LasProcess,
    go_lister: GoLister,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = CASES[case]
    cache_home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    store = BlobStore(tmp_path / "store")
    native = image_of([_base(store, tmp_path), *spec.build(store, tmp_path)], cmd=["/bin/true"])
    root = tmp_path / "src"
    layout.write(native, LayoutRef(root, "v1"))
    if spec.spoil is not None:
        spec.spoil(root, cache_home)
    out = tmp_path / "out"
    code, stderr, rss_kib = _run_measured(
        Cli(tmp_path / "home"),
        "image",
        "convert",
        f"oci:{root}:v1",
        f"oci:{out}:v1",
        "--binary=/bin/true",
        "--dir=/app",
        f"--cas={cas.api_addr}",
        f"--las={las.addr}",
        "--allow-simulation",
        "--create-namespace",
    )
    assert "Traceback" not in stderr, stderr
    assert rss_kib < RSS_BOUND_MB * 1024, f"peak RSS {rss_kib // 1024} MiB"
    if spec.expect != CONVERTED:
        assert code == 1, stderr
        assert stderr.count("error:") == 1 and "hint:" in stderr, stderr
        assert spec.expect in stderr, stderr
        assert not out.exists()
        assert not list(tmp_path.glob(".out*"))
        return
    assert code == 0, stderr
    layers, blobs = _output_blobs(out)
    for blob in blobs:
        if blob.name in layers:
            listing = go_lister.list(blob, MARKER)
            assert listing.ok, (blob.name, listing.error)
            assert not listing.marker_found, [e.clean for e in listing.entries if e.marker]
        else:
            assert MARKER not in blob.read_bytes(), blob.name
    for small in (root / "index.json", out / "index.json"):
        assert MARKER not in small.read_bytes()
