"""Micro-measurements behind the proposed fixes, on the benchmark's own data (benchmarks only).

    python benchmarks/experiments.py LAYOUT_DIR  ->  JSON on stdout

Each experiment runs three times in this process; the median is reported with the bytes in and
out, so that BENCHMARKS.md can say what a change of gzip level, gzip library or algorithm
would save on this workload, and extrapolate to the 1 GiB case.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import time
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, cast

import zstandard

CHUNK = 1 << 20
REPEAT = 3


class _Null(io.RawIOBase):
    """Counts what is written and drops it."""

    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = len(data)
        self.count += n
        return n


def _timed(fn: Callable[[], tuple[int, int]], repeat: int) -> tuple[float, int, int]:
    times = []
    bytes_in = bytes_out = 0
    for _ in range(repeat):
        start = time.perf_counter()
        bytes_in, bytes_out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), bytes_in, bytes_out


def _gunzip_tarfile(path: Path) -> tuple[int, int]:
    """As sconify's scan reads a layer: tarfile stream mode over GzipFile, every file read."""
    total = 0
    with gzip.open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
        for member in tar:
            if member.isreg():
                handle = tar.extractfile(member)
                assert handle is not None
                while chunk := handle.read(CHUNK):
                    total += len(chunk)
    return path.stat().st_size, total


def _gunzip_zlib(path: Path) -> tuple[int, int]:
    total = 0
    inflater = zlib.decompressobj(wbits=31)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            total += len(inflater.decompress(chunk))
    return path.stat().st_size, total


def _igzip() -> Any:
    """python-isal's gzip module (untyped), imported on use: it is optional here."""
    return importlib.import_module("isal.igzip")


def _gunzip_isal(path: Path) -> tuple[int, int]:
    igzip = _igzip()
    total = 0
    with igzip.open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            total += len(chunk)
    return path.stat().st_size, total


def _hasher(size: int) -> Callable[[], tuple[int, int]]:
    data = os.urandom(size)

    def run() -> tuple[int, int]:
        h = hashlib.sha256()
        view = memoryview(data)
        for i in range(0, len(data), CHUNK):
            h.update(view[i : i + CHUNK])
        return len(data), 32

    return run


def _compress(data: bytes, how: str) -> tuple[int, int]:
    sink = _Null()
    view = memoryview(data)
    if how.startswith("gzip-"):
        with gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=int(how[5:]), mtime=0) as gz:
            for i in range(0, len(data), CHUNK):
                gz.write(view[i : i + CHUNK])
    elif how.startswith("isal-"):
        with _igzip().GzipFile(fileobj=sink, mode="wb", compresslevel=int(how[5:]), mtime=0) as gz:
            for i in range(0, len(data), CHUNK):
                gz.write(view[i : i + CHUNK])
    elif how == "zstd-3":
        compressor = zstandard.ZstdCompressor(level=3)
        with compressor.stream_writer(cast(BinaryIO, sink), closefd=False) as zw:
            for i in range(0, len(data), CHUNK):
                zw.write(view[i : i + CHUNK])
    else:
        for i in range(0, len(data), CHUNK):
            sink.write(view[i : i + CHUNK])
    return len(data), sink.count


def _scan(layout: Path, tag: str) -> Callable[[], tuple[int, int]]:
    from sconify.image import Descriptor, Digest, Layer
    from sconify.mutate import fsview

    info = json.loads((layout / "bench-layers.json").read_text())[tag]
    layers = [
        Layer(
            Descriptor(
                "application/vnd.oci.image.layer.v1.tar+gzip", Digest.parse(x["digest"]), x["size"]
            ),
            Digest.parse(x["diff_id"]),
            layout / "blobs" / "sha256" / x["digest"].split(":", 1)[1],
        )
        for x in info
    ]

    def run() -> tuple[int, int]:
        view = fsview.scan_layers(layers)
        return sum(x["tar_size"] for x in info), len(view.nodes)

    return run


#: Packages a registry-to-registry conversion imports, and the module that imports them.
IMPORTS = ("docker", "httpx", "cryptography.x509", "typer", "rich.console", "yaml")
CONVERSION_MODULES = "sconify.cli.main, sconify.cli.image, sconify.lift, sconify.cas.client"


def _import_times() -> dict[str, float]:
    """Cumulative import time (s) of each of :data:`IMPORTS` and of everything, as the CLI
    imports them (``python -X importtime``; the first import of a package counts it)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {CONVERSION_MODULES}"],
        capture_output=True,
        text=True,
        check=True,
    )
    out: dict[str, float] = {}
    total = 0.0
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        seconds = int(parts[1]) / 1e6
        name = parts[2].strip()
        if name in IMPORTS and name not in out:
            out[name] = seconds
        if not parts[2].startswith("  "):  # nested imports are indented further
            total += seconds
    out["everything"] = total
    return out


def _has_isal() -> bool:
    try:
        _igzip()
    except ImportError:
        return False
    return True


def main() -> None:
    layout = Path(sys.argv[1])
    info = json.loads((layout / "bench-layers.json").read_text())
    base = layout / "blobs" / "sha256" / info["native"][0]["digest"].split(":", 1)[1]
    shim = Path(__import__("sconify.runtime_files", fromlist=["shim_path"]).shim_path("amd64"))
    shim_bytes = shim.read_bytes()
    app_plain = info["native"][1]["tar_size"]
    ciphertext = os.urandom(app_plain)
    results: list[dict[str, Any]] = []

    def add(group: str, name: str, fn: Callable[[], tuple[int, int]], repeat: int = REPEAT) -> None:
        seconds, bytes_in, bytes_out = _timed(fn, repeat)
        results.append(
            {
                "group": group,
                "name": name,
                "seconds": seconds,
                "bytes_in": bytes_in,
                "bytes_out": bytes_out,
            }
        )
        print(f"{group}: {name}: {seconds:.3f}s", file=sys.stderr)

    isal = _has_isal()
    compressions = ["gzip-6", *(["isal-2", "isal-1"] if isal else []), "zstd-3", "none"]
    add(
        "decompress base layer",
        "zlib (gzip module) + tarfile, every file read",
        lambda: _gunzip_tarfile(base),
    )
    add("decompress base layer", "zlib.decompressobj alone", lambda: _gunzip_zlib(base))
    if isal:
        add("decompress base layer", "isal igzip alone", lambda: _gunzip_isal(base))
    tar_bytes = info["native"][0]["tar_size"]
    add("hash", f"sha256 of {tar_bytes / 1e6:.0f} MB", _hasher(tar_bytes))
    for how in compressions:
        add("compress the shim (runtime layer)", how, partial(_compress, shim_bytes, how))
    for how in compressions:
        add("compress ciphertext (protected layer)", how, partial(_compress, ciphertext, how))
    add("scan the native layers", "scan_layers as it is", _scan(layout, "native"))
    samples = [_import_times() for _ in range(REPEAT)]
    for name in samples[0]:
        seconds = statistics.median(x.get(name, 0.0) for x in samples)
        results.append(
            {"group": "imports", "name": name, "seconds": seconds, "bytes_in": 0, "bytes_out": 0}
        )
    json.dump(results, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
