"""The benchmark's native images, built from Debian packages and cached as one OCI layout.

Tags in the layout (``oci:<cache>/layout:<tag>``):

- ``native``: a Debian bookworm minbase rootfs with python3 and python3-flask (mmdebstrap, about
  220 MB uncompressed) and an application layer with ``/app`` (a Flask app, its templates,
  static files and vendored Python packages) and ``/data`` (CSV, JSON, SQLite, binary blobs);
  ``/app`` and ``/data`` are the two protected directories.
- ``native-v2``: ``native`` plus a top layer that changes one file, ``/app/app.py``.
- ``big``: ``native`` plus a layer holding one file of 1 GiB of random bytes below ``/data``.

The layout is written here by hand (not with sconify's image model), so that what is measured
does not also build its own input. Layers are gzip (level 6, like Docker; level 1 for the random
layer, which does not compress anyway) with mtime 0, so for a given rootfs tar the digests are
stable. Everything is cached under ``$SCONIFY_CACHE`` (default ``~/.cache/sconify``); bump
``RECIPE`` when the generated content changes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO, cast

RECIPE = "3"
SUITE = "bookworm"
PACKAGES = "python3,python3-flask"
PROTECTED = ("/app", "/data")
BINARY = "/usr/bin/python3"
BIG_FILE = "/data/models/weights-1g.bin"
BIG_SIZE = 1 << 30
MTIME = 1700000000

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
VENDORED = ("flask", "werkzeug", "jinja2", "click", "itsdangerous", "markupsafe", "blinker")
Log = Callable[[str], None]


def cache_root() -> Path:
    """``$SCONIFY_CACHE``, else ``$XDG_CACHE_HOME/sconify``, else ``~/.cache/sconify``."""
    explicit = os.environ.get("SCONIFY_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sconify"


@dataclass(frozen=True)
class LayerInfo:
    """A layer blob in the layout: digests, size, and what it holds (for the report)."""

    digest: str
    diff_id: str
    size: int
    tar_size: int
    what: str


@dataclass(frozen=True)
class BenchImages:
    """The cached layout and what each tag holds."""

    layout: Path
    rootfs: Path
    layers: dict[str, tuple[LayerInfo, ...]]

    def ref(self, tag: str) -> str:
        """The ``oci:`` reference of a tag."""
        return f"oci:{self.layout}:{tag}"

    def protected_bytes(self) -> dict[str, int]:
        """Plaintext bytes below each protected directory in the ``native`` image."""
        out = dict.fromkeys(PROTECTED, 0)
        app = self.layers["native"][1]
        path = self.layout / "blobs" / "sha256" / app.digest.split(":", 1)[1]
        with gzip.open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
            for member in tar:
                top = "/" + member.name.lstrip("./").split("/", 1)[0]
                if member.isreg() and top in out:
                    out[top] += member.size
        return out

    def size(self, tag: str) -> tuple[int, int]:
        """Compressed and uncompressed bytes of a tag's layers."""
        layers = self.layers[tag]
        return sum(x.size for x in layers), sum(x.tar_size for x in layers)


# -- the rootfs ----------------------------------------------------------------------------


def rootfs_tar(cache: Path, log: Log) -> Path:
    """The mmdebstrap rootfs tar, built once (the same cache file as images/flask/build.sh)."""
    key = hashlib.sha256((PACKAGES + "\n").encode()).hexdigest()[:12]
    path = cache / "rootfs" / f"{SUITE}-minbase-{key}.tar"
    if path.is_file() and path.stat().st_size > 0:
        return path
    if shutil.which("mmdebstrap") is None:
        raise SystemExit("mmdebstrap is missing: apt-get install mmdebstrap")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.tar")
    log(f"building a Debian {SUITE} rootfs with {PACKAGES} (mmdebstrap, once)")
    subprocess.run(
        [
            "mmdebstrap",
            "--quiet",
            "--variant=minbase",
            f"--include={PACKAGES}",
            SUITE,
            str(partial),
        ],
        check=True,
    )
    partial.rename(path)
    return path


# -- writing layers ------------------------------------------------------------------------


class _Hashing:
    """A write-only file that hashes and counts what passes to ``sink``."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()


class LayerWriter:
    """Writes a gzip layer blob into ``blobs/sha256`` while the tar is being produced."""

    def __init__(self, blobs: Path, what: str, level: int = 6) -> None:
        self.blobs = blobs
        self.what = what
        fd, name = tempfile.mkstemp(dir=blobs, prefix=".layer-")
        self._tmp = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._compressed = _Hashing(self._file)
        self._gzip = gzip.GzipFile(
            filename="",
            mode="wb",
            compresslevel=level,
            fileobj=cast(BinaryIO, self._compressed),
            mtime=0,
        )
        self._plain = _Hashing(cast(BinaryIO, self._gzip))
        # Stream mode: the sink cannot seek.
        self.tar = tarfile.open(  # noqa: SIM115 - closed by finish()
            fileobj=cast(BinaryIO, self._plain), mode="w|", format=tarfile.PAX_FORMAT
        )

    def dir(self, path: str, mode: int = 0o755) -> None:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type = tarfile.DIRTYPE
        info.mode = mode
        info.mtime = MTIME
        self.tar.addfile(info)

    def file(self, path: str, data: bytes | BinaryIO, size: int | None = None) -> None:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.mode = 0o644
        info.mtime = MTIME
        if isinstance(data, bytes):
            info.size = len(data)
            self.tar.addfile(info, io.BytesIO(data))
        else:
            assert size is not None
            info.size = size
            self.tar.addfile(info, data)

    def finish(self) -> LayerInfo:
        self.tar.close()
        self._gzip.close()
        self._file.close()
        digest = self._compressed.hash.hexdigest()
        os.replace(self._tmp, self.blobs / digest)
        return LayerInfo(
            digest=f"sha256:{digest}",
            diff_id=f"sha256:{self._plain.hash.hexdigest()}",
            size=self._compressed.size,
            tar_size=self._plain.size,
            what=self.what,
        )


def _base_layer(blobs: Path, rootfs: Path) -> LayerInfo:
    """The rootfs as one layer, without the device nodes mmdebstrap puts into /dev."""
    out = LayerWriter(blobs, f"Debian {SUITE} minbase + {PACKAGES.replace(',', ', ')}")
    with tarfile.open(rootfs, mode="r|") as src:
        for member in src:
            if member.ischr() or member.isblk() or member.isfifo():
                continue
            data = src.extractfile(member) if member.isreg() else None
            out.tar.addfile(member, data)
    return out.finish()


# -- the application -----------------------------------------------------------------------

_WORDS = [
    "order",
    "customer",
    "invoice",
    "product",
    "stock",
    "price",
    "total",
    "shipping",
    "address",
    "region",
    "account",
    "payment",
    "status",
    "pending",
    "active",
    "archived",
    "report",
    "metric",
    "session",
    "token",
    "cache",
    "queue",
    "worker",
    "request",
    "response",
    "template",
    "static",
    "image",
    "style",
    "script",
    "vendor",
    "module",
    "config",
    "release",
    "catalog",
    "warehouse",
    "supplier",
    "discount",
    "currency",
    "tax",
    "note",
    "comment",
    "review",
    "rating",
    "label",
]

APP_PY = '''"""A small Flask shop: the app that the benchmark image protects."""
import csv
import json
import os
import sqlite3

from flask import Flask, jsonify, render_template

DATA = os.environ.get("APP_DATA", "/data")
app = Flask(__name__, template_folder="/app/templates", static_folder="/app/static")


def catalog():
    with open(os.path.join(DATA, "catalog.csv"), newline="") as handle:
        return list(csv.DictReader(handle))


@app.route("/")
def index():
    return render_template("index.html", items=catalog()[:50])


@app.route("/api/users")
def users():
    with open(os.path.join(DATA, "users.json")) as handle:
        return jsonify(json.load(handle)[:100])


@app.route("/api/orders/<int:customer>")
def orders(customer):
    with sqlite3.connect(os.path.join(DATA, "app.sqlite")) as db:
        rows = db.execute("SELECT id, total FROM orders WHERE customer = ?", (customer,))
        return jsonify([{"id": r[0], "total": r[1]} for r in rows])


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))  # version {version}
'''


def _text(rng: random.Random, size: int, line: Callable[[random.Random], str]) -> bytes:
    out: list[str] = []
    total = 0
    while total < size:
        text = line(rng)
        out.append(text)
        total += len(text) + 1
    return ("\n".join(out) + "\n").encode()


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 14)))


def _sqlite(rng: random.Random) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app.sqlite"
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INT, total REAL, note)")
        db.executemany(
            "INSERT INTO orders (customer, total, note) VALUES (?, ?, ?)",
            (
                (rng.randint(1, 5000), round(rng.uniform(1, 900), 2), _sentence(rng))
                for _ in range(12000)
            ),
        )
        db.commit()
        db.close()
        return path.read_bytes()


def _vendored(rootfs: Path) -> Iterator[tuple[str, bytes]]:
    """Real Python sources from the rootfs, as an app that vendors its dependencies has them."""
    prefix = "./usr/lib/python3/dist-packages/"
    with tarfile.open(rootfs, mode="r|") as src:
        for member in src:
            if not (member.isreg() and member.name.startswith(prefix)):
                continue
            rel = member.name[len(prefix) :]
            if rel.split("/", 1)[0] in VENDORED and rel.endswith((".py", ".typed", ".txt")):
                handle = src.extractfile(member)
                assert handle is not None
                yield f"/app/vendor/{rel}", handle.read()


def _config_line(r: random.Random) -> str:
    return f"{r.choice(_WORDS)}: {_sentence(r)}"


def _html_line(r: random.Random) -> str:
    return f"<p class='{r.choice(_WORDS)}'>{_sentence(r)}</p>"


def _css_line(r: random.Random) -> str:
    return f".{r.choice(_WORDS)} {{ margin: {r.randint(0, 40)}px; }}"


def _js_line(r: random.Random) -> str:
    return f"function {r.choice(_WORDS)}{r.randint(0, 999)}() {{ return '{_sentence(r)}'; }}"


def _csv_line(r: random.Random) -> str:
    name = f"{r.choice(_WORDS)}-{r.randint(0, 999)}"
    return (
        f"{r.randint(1, 10**6)},{name},{r.uniform(1, 500):.2f},{r.randint(0, 900)},{_sentence(r)}"
    )


def _log_line(r: random.Random) -> str:
    return f"127.0.0.1 GET /{r.choice(_WORDS)} 200 {_sentence(r)}"


def _app_files(rootfs: Path) -> Iterator[tuple[str, bytes]]:
    """Every file of ``/app`` and ``/data``, generated from a fixed seed."""
    rng = random.Random(20240601)
    yield "/app/app.py", APP_PY.replace("{version}", "1").encode()
    yield "/app/requirements.txt", b"flask==2.2.2\nwerkzeug==2.2.2\njinja2==3.1.2\n"
    yield "/app/config.yaml", _text(rng, 3000, _config_line)
    for i in range(24):
        yield f"/app/templates/page_{i:02}.html", _text(rng, rng.randint(2000, 9000), _html_line)
    yield (
        "/app/templates/index.html",
        b"<ul>{% for i in items %}<li>{{ i.name }}</li>{% endfor %}</ul>\n",
    )
    for i in range(20):
        yield f"/app/static/css/style_{i:02}.css", _text(rng, rng.randint(3000, 30000), _css_line)
    for i in range(16):
        yield f"/app/static/js/bundle_{i:02}.js", _text(rng, rng.randint(10000, 80000), _js_line)
    for i in range(18):
        yield f"/app/static/img/photo_{i:02}.jpg", rng.randbytes(rng.randint(20000, 160000))
    yield from _vendored(rootfs)
    header = b"id,name,price,stock,description\n"
    yield "/data/catalog.csv", header + _text(rng, 1_500_000, _csv_line)
    users = [
        {
            "id": i,
            "name": f"{rng.choice(_WORDS)}{i}",
            "email": f"user{i}@example.org",
            "bio": _sentence(rng),
        }
        for i in range(9000)
    ]
    yield "/data/users.json", json.dumps(users, indent=1).encode()
    yield "/data/app.sqlite", _sqlite(rng)
    for i in range(3):
        yield f"/data/models/embedding_{i}.bin", rng.randbytes(300_000)
    for i in range(8):
        yield f"/data/logs/access-{i}.log", _text(rng, 60_000, _log_line)


def _parents(path: str, seen: set[str]) -> list[str]:
    out = []
    parts = path.strip("/").split("/")[:-1]
    for i in range(1, len(parts) + 1):
        d = "/" + "/".join(parts[:i])
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def _app_layer(blobs: Path, rootfs: Path) -> tuple[LayerInfo, int]:
    out = LayerWriter(blobs, "application: /app and /data")
    seen: set[str] = set()
    count = 0
    for path, data in _app_files(rootfs):
        for d in _parents(path, seen):
            out.dir(d)
        out.file(path, data)
        count += 1
    return out.finish(), count


def _change_layer(blobs: Path) -> LayerInfo:
    out = LayerWriter(blobs, "change: /app/app.py edited")
    out.dir("/app")
    out.file("/app/app.py", APP_PY.replace("{version}", "2").encode())
    return out.finish()


class _RandomReader:
    """``size`` random bytes, read like a file (os.urandom: incompressible, fast enough)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return os.urandom(n)


def _big_layer(blobs: Path) -> LayerInfo:
    out = LayerWriter(blobs, "1 GiB of random bytes in " + BIG_FILE, level=1)
    seen: set[str] = set()
    for d in _parents(BIG_FILE, seen):
        out.dir(d)
    out.file(BIG_FILE, cast(BinaryIO, _RandomReader(BIG_SIZE)), BIG_SIZE)
    return out.finish()


# -- the layout ----------------------------------------------------------------------------


def _json(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _put_blob(blobs: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def _image(blobs: Path, layers: tuple[LayerInfo, ...], tag: str) -> dict[str, object]:
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-06-01T00:00:00Z",
        "config": {
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "APP_DATA=/data",
                "PYTHONPATH=/app/vendor",
                "PYTHONUNBUFFERED=1",
            ],
            "Cmd": ["python3", "/app/app.py"],
            "WorkingDir": "/app",
            "ExposedPorts": {"8080/tcp": {}},
        },
        "rootfs": {"type": "layers", "diff_ids": [x.diff_id for x in layers]},
        "history": [
            {"created": "2024-06-01T00:00:00Z", "created_by": f"sconify benchmark: {x.what}"}
            for x in layers
        ],
    }
    config_digest, config_size = _put_blob(blobs, _json(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [
            {"mediaType": OCI_LAYER_GZIP, "digest": x.digest, "size": x.size} for x in layers
        ],
    }
    digest, size = _put_blob(blobs, _json(manifest))
    return {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": size,
        "annotations": {REF_NAME: tag},
    }


def build(log: Log, *, cache: Path | None = None) -> BenchImages:
    """Return the cached layout, building what is missing."""
    cache = cache or cache_root()
    rootfs = rootfs_tar(cache, log)
    stat = rootfs.stat()
    stamp = hashlib.sha256(f"{RECIPE}\n{stat.st_size}\n{stat.st_mtime_ns}\n".encode()).hexdigest()[
        :12
    ]
    root = cache / "bench" / f"layout-{stamp}"
    info_path = root / "bench-layers.json"
    if info_path.is_file():
        raw = json.loads(info_path.read_text())
        return BenchImages(
            root, rootfs, {tag: tuple(LayerInfo(**x) for x in v) for tag, v in raw.items()}
        )
    log("building the benchmark images (once; the 1 GiB random layer takes a minute)")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=".building-"))
    try:
        blobs = tmp / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        base = _base_layer(blobs, rootfs)
        app, files = _app_layer(blobs, rootfs)
        log(f"application layer: {files} files, {app.tar_size / 1e6:.1f} MB")
        change = _change_layer(blobs)
        big = _big_layer(blobs)
        layers = {
            "native": (base, app),
            "native-v2": (base, app, change),
            "big": (base, app, big),
        }
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [_image(blobs, v, tag) for tag, v in layers.items()],
        }
        (tmp / "oci-layout").write_bytes(b'{"imageLayoutVersion":"1.0.0"}')
        (tmp / "index.json").write_bytes(_json(index))
        (tmp / "bench-layers.json").write_text(
            json.dumps({t: [asdict(x) for x in v] for t, v in layers.items()}, indent=1)
        )
        shutil.rmtree(root, ignore_errors=True)
        os.rename(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for stale in root.parent.glob("layout-*"):
        if stale != root:  # an older recipe or rootfs: 1.2 GB each
            shutil.rmtree(stale, ignore_errors=True)
    return build(log, cache=cache)
