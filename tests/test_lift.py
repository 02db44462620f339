"""Bad images get one clear error and leave nothing written (``sconify image convert``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sconify.image import BlobStore
from sconify.transports import layout
from sconify.transports.refs import LayoutRef
from tests.support.cli import Cli
from tests.support.layers import Entry, image_of, make_layer
from tests.support.services import CasProcess, LasProcess, cas, las

__all__ = ["cas", "las"]


def _layout(tmp: Path, entries: list[Entry] | None = None) -> Path:
    store = BlobStore(tmp / "store")
    layer = make_layer(store, tmp, entries or [Entry("app", "dir"), Entry("app/a", data=b"a")])
    root = tmp / "src"
    layout.write(image_of([layer], cmd=["/bin/true"]), LayoutRef(root, "v1"))
    return root


def _manifest(root: Path) -> tuple[Path, dict[str, object]]:
    index = json.loads((root / "index.json").read_text())
    path = root / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]
    return path, json.loads(path.read_text())


def _rewrite_manifest(root: Path, change: Callable[[dict[str, object]], None]) -> None:
    """Change the manifest and point index.json at the new one (a well-formed layout)."""
    _, manifest = _manifest(root)
    change(manifest)
    _point_index_at(root, json.dumps(manifest).encode())


def _point_index_at(root: Path, data: bytes) -> None:
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs/sha256" / digest).write_bytes(data)
    index = json.loads((root / "index.json").read_text())
    index["manifests"][0].update(digest=f"sha256:{digest}", size=len(data))
    (root / "index.json").write_text(json.dumps(index))


def _malformed(root: Path) -> None:
    _point_index_at(root, b'{"schemaVersion": 2, "layers": [{"mediaType": ')


def _unknown_layer_type(root: Path) -> None:
    def change(m: dict[str, object]) -> None:
        m["layers"][0]["mediaType"] = "application/vnd.example.secret+tar"  # type: ignore[index]

    _rewrite_manifest(root, change)


def _no_matching_platform(root: Path) -> None:
    index = json.loads((root / "index.json").read_text())
    index["manifests"][0]["platform"] = {"os": "linux", "architecture": "s390x"}
    index["manifests"].append(
        dict(index["manifests"][0], platform={"os": "windows", "architecture": "amd64"})
    )
    (root / "index.json").write_text(json.dumps(index))
    (root / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": index["manifests"],
            }
        )
    )


CASES: dict[str, tuple[Callable[[Path], None] | list[Entry], str]] = {
    "malformed-manifest": (_malformed, "manifest"),
    "unknown-media-type": (_unknown_layer_type, "application/vnd.example.secret+tar"),
    "no-matching-platform": (_no_matching_platform, "linux/amd64"),
    "dotdot-entry": ([Entry("app", "dir"), Entry("app/../../evil", data=b"x")], "escapes"),
    "symlink-escape": (
        [Entry("app", "symlink", target="/etc"), Entry("app/passwd", data=b"x")],
        "through the symlink",
    ),
    "hardlink-escape": (
        [Entry("app", "dir"), Entry("app/h", "hardlink", target="../../etc/x")],
        "escapes",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_source_one_error_nothing_written(
    case: str, cas: CasProcess, las: LasProcess, tmp_path: Path
) -> None:
    spoil, expected = CASES[case]
    if callable(spoil):
        root = _layout(tmp_path)
        spoil(root)
    else:
        root = _layout(tmp_path, spoil)
    out = tmp_path / "out"
    result = Cli(tmp_path / "home").run(
        "sconify",
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
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("error:") == 1 and "hint:" in result.stderr
    assert expected in result.stderr, result.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".out*"))
