"""Malformed and hostile inputs through the CLI (``sconify image convert oci:... oci:...``, no
engine, no registry): one clear error and exit 1, never a traceback; memory stays bounded."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sconify.image import BlobStore, Compression, Layer, layer_from_tar
from sconify.transports import layout
from sconify.transports.refs import LayoutRef
from tests.mutate.test_convert import _base_entries
from tests.support.cli import BIN, Cli
from tests.support.layers import Entry, image_of, make_layer
from tests.support.peak_rss import run_with_peak_rss
from tests.support.services import CasProcess, LasProcess, cas, las

__all__ = ["cas", "las"]

#: Peak RSS of one conversion of up to 300,000 files (docs/decisions.md, "Inputs"): it does not
#: grow with the size of the files in the layers, only with their number.
RSS_BOUND_MB = 300


def _app() -> list[Entry]:
    return [Entry("app", "dir"), Entry("app/a.txt", data=b"a")]


def _write_layout(tmp: Path, layers: list[Layer], **config: Any) -> Path:
    root = tmp / "src"
    layout.write(image_of(layers, **({"cmd": ["ls"]} | config)), LayoutRef(root, "v1"))
    return root


def _layout(tmp: Path, *extra: list[Entry], **config: Any) -> Path:
    store = BlobStore(tmp / "store")
    layers = [make_layer(store, tmp, _base_entries()), make_layer(store, tmp, _app())]
    layers += [make_layer(store, tmp, entries) for entries in extra]
    return _write_layout(tmp, layers, **config)


def _convert(
    tmp: Path, cas: CasProcess, las: LasProcess, root: Path, *extra: str, measure: bool = False
) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run the conversion; with ``measure``, also its peak RSS in MiB (from a wrapper process
    that reads ``RUSAGE_CHILDREN``, so nothing else this test session ran counts)."""
    cli = Cli(tmp / "home")
    args = [
        str(BIN / "sconify"),
        "image",
        "convert",
        f"oci:{root}:v1",
        f"oci:{tmp / 'out'}:v1",
        "--binary=/bin/ls",
        "--dir=/app",
        f"--cas={cas.api_addr}",
        f"--las={las.addr}",
        "--allow-simulation",
        "--create-namespace",
        *extra,
    ]
    env = cli.env()
    env["XDG_CACHE_HOME"] = str(tmp / "cache")  # the layer-index cache is part of the cost
    if not measure:
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=900), 0
    result, peak_kib = run_with_peak_rss(args, env=env)
    peak = peak_kib // 1024
    return result, peak


def _assert_one_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("error:") == 1 and "hint:" in result.stderr, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


def _point_index_at(root: Path, manifest: bytes) -> None:
    digest = hashlib.sha256(manifest).hexdigest()
    (root / "blobs/sha256" / digest).write_bytes(manifest)
    index = json.loads((root / "index.json").read_text())
    index["manifests"][0].update(digest=f"sha256:{digest}", size=len(manifest))
    (root / "index.json").write_text(json.dumps(index))


def _manifest(root: Path) -> dict[str, Any]:
    index = json.loads((root / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest: dict[str, Any] = json.loads((root / "blobs/sha256" / digest).read_text())
    return manifest


def _replace_config(root: Path, change: Callable[[dict[str, Any]], bytes]) -> None:
    manifest = _manifest(root)
    config_path = root / "blobs/sha256" / manifest["config"]["digest"].split(":")[1]
    data = change(json.loads(config_path.read_bytes()))
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs/sha256" / digest).write_bytes(data)
    manifest["config"].update(digest=f"sha256:{digest}", size=len(data))
    _point_index_at(root, json.dumps(manifest).encode())


# -- one clear error ------------------------------------------------------------------------


def test_deeply_nested_manifest_is_one_error(
    tmp_path: Path, cas: CasProcess, las: LasProcess
) -> None:
    root = _layout(tmp_path)
    _point_index_at(root, b'{"schemaVersion":2,"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    result, _ = _convert(tmp_path, cas, las, root)
    _assert_one_error(result, "manifest nests arrays or objects too deeply")
    assert not (tmp_path / "out").exists()


def test_deeply_nested_config_is_one_error(
    tmp_path: Path, cas: CasProcess, las: LasProcess
) -> None:
    root = _layout(tmp_path)
    _replace_config(
        root,
        lambda c: json.dumps(c).encode()[:-1] + b',"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    )
    result, _ = _convert(tmp_path, cas, las, root)
    _assert_one_error(result, "image config nests arrays or objects too deeply")


def test_deeply_nested_index_is_one_error(tmp_path: Path, cas: CasProcess, las: LasProcess) -> None:
    root = _layout(tmp_path)
    index = json.loads((root / "index.json").read_text())
    (root / "index.json").write_bytes(
        json.dumps(index).encode()[:-1] + b',"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    )
    result, _ = _convert(tmp_path, cas, las, root)
    _assert_one_error(result, "nests arrays or objects too deeply")


def test_missing_layer_blob_names_its_digest(
    tmp_path: Path, cas: CasProcess, las: LasProcess
) -> None:
    root = _layout(tmp_path)
    digest = _manifest(root)["layers"][1]["digest"]
    (root / "blobs/sha256" / digest.split(":")[1]).unlink()
    result, _ = _convert(tmp_path, cas, las, root)
    _assert_one_error(result, f"blob {digest} is missing from the layout")


def test_missing_config_blob_names_its_digest(
    tmp_path: Path, cas: CasProcess, las: LasProcess
) -> None:
    root = _layout(tmp_path)
    digest = _manifest(root)["config"]["digest"]
    (root / "blobs/sha256" / digest.split(":")[1]).unlink()
    result, _ = _convert(tmp_path, cas, las, root)
    _assert_one_error(result, f"blob {digest} is missing from the layout")


def test_non_utf8_name_in_protected_dir_is_one_error(
    tmp_path: Path, cas: CasProcess, las: LasProcess
) -> None:
    store = BlobStore(tmp_path / "store")
    raw = tmp_path / "raw.tar"
    with tarfile.open(raw, "w", format=tarfile.GNU_FORMAT, errors="surrogateescape") as tar:
        info = tarfile.TarInfo("app/caf\udce9.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"secret"))
    layers = [
        make_layer(store, tmp_path, _base_entries()),
        make_layer(store, tmp_path, _app()),
        layer_from_tar(raw, store, Compression.GZIP),
    ]
    result, _ = _convert(tmp_path, cas, las, _write_layout(tmp_path, layers))
    _assert_one_error(result, "/app/caf\\xe9.txt is not valid UTF-8")


def test_dir_through_a_symlink_into_sconify_is_one_error(
    tmp_path: Path, cas: CasProcess, las: LasProcess
) -> None:
    root = _layout(tmp_path, [Entry("sconify", "dir"), Entry("data", "symlink", target="/sconify")])
    result, _ = _convert(tmp_path, cas, las, root, "--dir=/data")
    _assert_one_error(result, "--dir=/data (which resolves to /sconify) cannot be protected")


def test_session_file_that_is_a_symlink_is_one_error_before_any_work(
    tmp_path: Path, cas: CasProcess, las: LasProcess
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "session.yaml"
    link.symlink_to(victim)
    result, _ = _convert(tmp_path, cas, las, _layout(tmp_path), f"--session={link}")
    _assert_one_error(result, "is a symbolic link")
    assert victim.read_text() == "precious"


def test_session_file_is_written_0600_over_a_0644_one(
    tmp_path: Path, cas: CasProcess, las: LasProcess
) -> None:
    session = tmp_path / "session.yaml"
    session.write_text("old")
    session.chmod(0o644)
    result, _ = _convert(tmp_path, cas, las, _layout(tmp_path), f"--session={session}")
    assert result.returncode == 0, result.stderr
    assert session.stat().st_mode & 0o777 == 0o600 and "fspf_key" in session.read_text()


def test_string_entrypoint_and_no_history_convert(
    tmp_path: Path, cas: CasProcess, las: LasProcess
) -> None:
    root = _layout(tmp_path)

    def change(config: dict[str, Any]) -> bytes:
        config.pop("history")
        config["config"]["Entrypoint"] = "ls /app"
        config["config"].pop("Cmd")
        return json.dumps(config).encode()

    _replace_config(root, change)
    session = tmp_path / "session.yaml"
    result, _ = _convert(tmp_path, cas, las, root, f"--session={session}")
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load(session.read_text())
    assert doc["services"][0]["command"] == ["/bin/sh", "-c", "ls /app"]
    out = layout.read(LayoutRef(tmp_path / "out", "v1"), BlobStore(tmp_path / "check"))
    assert "history" not in json.loads(out.config_bytes())
    out.validate(deep=True)


def _malformed_elves() -> list[Entry]:
    from tests.test_elf import MALFORMED, _ls

    return [Entry("opt", "dir")] + [
        Entry(f"opt/{case}", data=make(_ls()), mode=0o755) for case, make in MALFORMED.items()
    ]


def test_malformed_elf_files_convert_and_as_binary_are_one_error(
    tmp_path: Path, cas: CasProcess, las: LasProcess
) -> None:
    root = _layout(tmp_path, _malformed_elves())
    result, _ = _convert(tmp_path, cas, las, root)
    assert result.returncode == 0, result.stderr
    result, _ = _convert(tmp_path, cas, las, root, "--binary=/opt/phnum-huge")
    _assert_one_error(result, "--binary=/opt/phnum-huge is not an ELF executable")


# -- bounded memory -------------------------------------------------------------------------


class _Zeros(io.RawIOBase):
    """``size`` bytes: ``head``, then zeros, produced as they are read (never all in memory)."""

    def __init__(self, head: bytes, size: int) -> None:
        self._head, self._left, self._pos = head, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._left)
        view = memoryview(buffer)
        head = self._head[self._pos : self._pos + n]
        view[: len(head)] = head
        view[len(head) : n] = bytes(n - len(head))
        self._pos += n
        self._left -= n
        return n


def _streamed_layer(store: BlobStore, tmp: Path, fill: Callable[[tarfile.TarFile], None]) -> Layer:
    path = tmp / "streamed.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        fill(tar)
    layer = layer_from_tar(path, store, Compression.GZIP)
    path.unlink()
    return layer


def _huge_elf(tar: tarfile.TarFile) -> None:
    head = Path("/bin/ls").resolve().read_bytes()  # real ELF headers: it is parsed, not skipped
    info = tarfile.TarInfo("opt/huge.so")
    info.size, info.mode = 1 << 30, 0o755
    tar.addfile(info, io.BufferedReader(_Zeros(head, info.size), 1 << 20))


def _many_entries(count: int) -> Callable[[tarfile.TarFile], None]:
    def fill(tar: tarfile.TarFile) -> None:
        for k in range(count):
            if k % 1000 == 0:
                d = tarfile.TarInfo(f"srv/d{k // 1000}")
                d.type = tarfile.DIRTYPE
                tar.addfile(d)
            info = tarfile.TarInfo(f"srv/d{k // 1000}/f{k}")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))

    return fill


@pytest.mark.parametrize("case", ["huge-elf-1gib", "many-entries-300000"])
def test_peak_rss_stays_under_the_bound(
    tmp_path: Path, cas: CasProcess, las: LasProcess, case: str
) -> None:
    store = BlobStore(tmp_path / "store")
    entries = 0 if case == "huge-elf-1gib" else int(case.rsplit("-", 1)[1])
    fill = _huge_elf if case == "huge-elf-1gib" else _many_entries(entries)
    layers = [
        make_layer(store, tmp_path, _base_entries()),
        make_layer(store, tmp_path, _app()),
        _streamed_layer(store, tmp_path, fill),
    ]
    root = _write_layout(tmp_path, layers)
    result, peak = _convert(tmp_path, cas, las, root, measure=True)
    assert result.returncode == 0, result.stderr
    print(f"{case}: peak RSS {peak} MiB")
    assert peak < RSS_BOUND_MB, f"{case}: peak RSS {peak} MiB, over {RSS_BOUND_MB} MiB"


# -- command-line values nobody checked (found by an adversarial review) ---------------------


def _argv_cases(tmp: Path, las: LasProcess) -> dict[str, tuple[list[str], str]]:
    a_file = tmp / "a-file"
    a_file.write_text("not a directory")
    out = f"oci:{tmp / 'out'}:v1"
    return {
        # a name that is not UTF-8 (argv bytes, as a shell passes $'a\xffb')
        "namespace-not-utf8": ([out, "--namespace=a\udcffb"], "error:"),
        "las-not-an-address": ([out, "--las=\udcff:1"], "error:"),
        "target-is-a-file": ([f"oci:{a_file}:v1"], "error:"),
        "target-below-proc": (["oci:/proc/sconify-no/out:v1"], "error:"),
    }


@pytest.mark.parametrize(
    "case", ["namespace-not-utf8", "las-not-an-address", "target-is-a-file", "target-below-proc"]
)
def test_odd_command_line_values_are_one_error(
    tmp_path: Path, cas: CasProcess, las: LasProcess, case: str
) -> None:
    root = _layout(tmp_path)
    args, expected = _argv_cases(tmp_path, las)[case]
    target, *extra = args
    argv = [
        str(BIN / "sconify"),
        "image",
        "convert",
        f"oci:{root}:v1",
        target,
        "--binary=/bin/ls",
        "--dir=/app",
        f"--cas={cas.api_addr}",
        f"--las={las.addr}",
        "--allow-simulation",
        "--create-namespace",
        *extra,
    ]
    env = Cli(tmp_path / "home").env()
    result = subprocess.run(
        [os.fsencode(a) for a in argv], capture_output=True, text=True, env=env, timeout=300
    )
    _assert_one_error(result, expected)
