"""Regenerate the SCFS, measurement and size vectors shared with the Go shim.

Run: ``.venv/bin/python tests/vectors/gen_vectors.py``. The outputs are committed; both test
suites (pytest and ``go test``) read them. JWE vectors come from ``gen_jwe.py``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

from sconify.canonical import canonical_json
from sconify.crypto.keys import VolumeKey
from sconify.crypto.scfs import VolumeWriter
from sconify.measurement import MeasuredFiles, measure, measurement_fields
from sconify.settings import RuntimeSettings

HERE = Path(__file__).parent

TREE: list[dict[str, Any]] = [
    {"path": "/app", "type": "dir", "mode": 0o755},
    {"path": "/app/app.py", "type": "file", "mode": 0o644, "content": b"print('hello')\n"},
    {"path": "/app/empty", "type": "file", "mode": 0o600, "content": b""},
    {
        "path": "/app/big.bin",
        "type": "file",
        "mode": 0o640,
        "content": bytes(range(256)) * 5 + b"tail",
    },
    {"path": "/app/exact.bin", "type": "file", "mode": 0o644, "content": b"x" * 64},
    {"path": "/app/exact2.bin", "type": "file", "mode": 0o644, "content": b"y" * 64},
    {"path": "/app/static", "type": "dir", "mode": 0o750},
    {
        "path": "/app/static/caf\u00e9 \u2603.txt",
        "type": "file",
        "mode": 0o644,
        "content": "non-ASCII name \u00e9\n".encode(),
    },
    {"path": "/app/static/link", "type": "symlink", "target": "../app.py"},
    {"path": "/app/static/abs", "type": "symlink", "target": "/etc/hostname"},
    {"path": "/data", "type": "dir", "mode": 0o700},
    {"path": "/data/secret.txt", "type": "file", "mode": 0o400, "content": b"s3cr3t\n"},
]
CHUNK = 64  # small chunks so that the vectors exercise multi-chunk files and exact boundaries


def _write_volume(root: Path, key: VolumeKey, tree: list[dict[str, Any]]) -> tuple[bytes, str]:
    writer = VolumeWriter(key, root / "sconify" / "volumes", chunk_size=CHUNK)
    regions = [e["path"] for e in tree if e["path"].count("/") == 1]
    for entry in tree:
        path = entry["path"]
        if path in regions:
            writer.add_region(path, mode=entry["mode"])
            continue
        region = next(r for r in regions if path.startswith(r + "/"))
        rel = path[len(region) + 1 :]
        if entry["type"] == "dir":
            writer.add_dir(region, rel, mode=entry["mode"])
        elif entry["type"] == "symlink":
            writer.add_symlink(region, rel, entry["target"])
        else:
            data = entry["content"]
            writer.add_file(region, rel, io.BytesIO(data), len(data), mode=entry["mode"])
    sealed = writer.finish()
    fspf = root / "sconify" / "fspf" / "fs.fspf"
    fspf.parent.mkdir(parents=True, exist_ok=True)
    fspf.write_bytes(sealed.fspf)
    return sealed.fspf, sealed.tag_hex


def _json_tree(tree: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for entry in tree:
        item = {k: v for k, v in entry.items() if k != "content"}
        if "content" in entry:
            item["content_b64"] = base64.b64encode(entry["content"]).decode()
        out.append(item)
    return out


def _blobs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "sconify" / "volumes").rglob("*") if p.is_file())


def _blob_of(root: Path, key: VolumeKey, tag: str, path: str) -> Path:
    from sconify.crypto.scfs import open_fspf

    doc = open_fspf((root / "sconify/fspf/fs.fspf").read_bytes(), key, tag)
    for region in doc["regions"]:
        for entry in region["entries"]:
            if f"{region['path']}/{entry['path']}" == path:
                return root / "sconify" / "volumes" / entry["blob"]
    raise KeyError(path)


def scfs_vectors() -> None:
    """Write ``scfs/<case>/``: one good volume and tampered copies of it."""
    base = HERE / "scfs"
    shutil.rmtree(base, ignore_errors=True)
    key = VolumeKey.generate()

    def case(name: str, expect: str, tag: str, why: str) -> Path:
        target = base / name
        shutil.copytree(base / "ok" / "image", target / "image")
        (target / "case.json").write_text(
            json.dumps(
                {
                    "why": why,
                    "expect": expect,
                    "fspf_key": key.reveal_hex(),
                    "fspf_tag": tag,
                    "tree": _json_tree(TREE),
                },
                indent=1,
                ensure_ascii=False,
            )
            + "\n"
        )
        return target / "image"

    ok_root = base / "ok" / "image"
    old_fspf, _old_tag = _write_volume(base / "old" / "image", key, TREE)
    _, tag = _write_volume(ok_root, key, TREE)
    (base / "ok" / "case.json").write_text(
        json.dumps(
            {
                "why": "a good volume",
                "expect": "ok",
                "fspf_key": key.reveal_hex(),
                "fspf_tag": tag,
                "tree": _json_tree(TREE),
            },
            indent=1,
            ensure_ascii=False,
        )
        + "\n"
    )
    shutil.rmtree(base / "old")

    root = case("old-fspf", "error", tag, "an fspf from an earlier conversion with the same key")
    (root / "sconify/fspf/fs.fspf").write_bytes(old_fspf)

    root = case("fspf-bitflip", "error", tag, "one bit of the fspf flipped")
    fspf = bytearray((root / "sconify/fspf/fs.fspf").read_bytes())
    fspf[20] ^= 1
    (root / "sconify/fspf/fs.fspf").write_bytes(bytes(fspf))

    root = case("blob-bitflip", "error", tag, "one byte of a ciphertext flipped")
    blob = _blob_of(root, key, tag, "/app/big.bin")
    data = bytearray(blob.read_bytes())
    data[100] ^= 0x80
    blob.write_bytes(bytes(data))

    root = case("blob-truncated", "error", tag, "the last chunk of a file cut off")
    blob = _blob_of(root, key, tag, "/app/big.bin")
    blob.write_bytes(blob.read_bytes()[: -(4 + 16)])

    root = case("blob-extended", "error", tag, "bytes appended after the final chunk")
    blob = _blob_of(root, key, tag, "/app/app.py")
    blob.write_bytes(blob.read_bytes() + b"\0" * 16)

    root = case("blob-swapped", "error", tag, "two ciphertexts of equal size swapped")
    a = _blob_of(root, key, tag, "/app/exact.bin")
    b = _blob_of(root, key, tag, "/app/exact2.bin")
    a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
    a.write_bytes(b_bytes)
    b.write_bytes(a_bytes)

    root = case("chunks-reordered", "error", tag, "two chunks of one file swapped")
    blob = _blob_of(root, key, tag, "/app/big.bin")
    raw = blob.read_bytes()
    size = CHUNK + 16
    head, c0, c1, rest = (
        raw[:36],
        raw[36 : 36 + size],
        raw[36 + size : 36 + 2 * size],
        raw[36 + 2 * size :],
    )
    blob.write_bytes(head + c1 + c0 + rest)

    root = case("blob-missing", "error", tag, "a ciphertext deleted")
    _blob_of(root, key, tag, "/data/secret.txt").unlink()

    wrong = VolumeKey.generate()
    target = base / "wrong-key"
    shutil.copytree(base / "ok" / "image", target / "image")
    (target / "case.json").write_text(
        json.dumps(
            {
                "why": "the right tag with another key",
                "expect": "error",
                "fspf_key": wrong.reveal_hex(),
                "fspf_tag": tag,
                "tree": _json_tree(TREE),
            },
            indent=1,
            ensure_ascii=False,
        )
        + "\n"
    )


def measurement_vectors() -> None:
    """Write ``measurement/cases.json``."""
    cases = []
    for i, settings in enumerate(
        [
            RuntimeSettings(heap=1024**3, stack=4 * 1024**2, dlopen=2, fork=0, debug=True),
            RuntimeSettings(heap=256 * 1024**2, stack=1024**2, dlopen=1, fork=1, debug=False),
        ]
    ):
        files = MeasuredFiles(
            shim_sha256=hashlib.sha256(b"shim%d" % i).hexdigest(),
            guard_sha256="" if i == 0 else hashlib.sha256(b"guard").hexdigest(),
            binary="/usr/bin/python3.11" if i == 0 else '/opt/caf\u00e9/"bin"\\x\n',
            binary_sha256=hashlib.sha256(b"bin").hexdigest(),
            config_sha256=hashlib.sha256(b"config").hexdigest(),
            auth_manifest_sha256=hashlib.sha256(b"manifest").hexdigest(),
        )
        fields = measurement_fields(files, settings)
        cases.append(
            {
                "fields": fields,
                "canonical": canonical_json(fields).decode(),
                "measurement": measure(files, settings),
            }
        )
    out = HERE / "measurement" / "cases.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n")


def size_vectors() -> None:
    """Write ``sizes/cases.json``: SCONE size strings and their byte counts (or errors)."""
    from sconify.errors import UsageError
    from sconify.settings import parse_size

    texts = [
        "65536",
        "64K",
        "64k",
        "4M",
        "4m",
        "1G",
        "1g",
        "0",
        "",
        "1T",
        "1.5G",
        "-1",
        " 4M",
        "4MB",
        "0x10",
        "16777216",
    ]
    cases: list[dict[str, Any]] = []
    for text in texts:
        try:
            cases.append({"text": text, "bytes": parse_size(text)})
        except UsageError:
            cases.append({"text": text, "error": True})
    out = HERE / "sizes" / "cases.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(cases, indent=1) + "\n")


if __name__ == "__main__":
    scfs_vectors()
    measurement_vectors()
    size_vectors()
