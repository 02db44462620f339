"""Where the shim and the dlopen guard come from, and that a conversion ships the guard."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

import sconify.runtime_files as runtime_files
from sconify.convert import convert
from sconify.errors import ConversionError
from sconify.image import BlobStore
from sconify.inspect import measure_image
from sconify.mutate.wrap import GUARD_PATH
from sconify.runtime_files import guard_path
from tests.mutate.test_convert import _extract, _native, _request


def test_the_amd64_guard_is_built_and_exports_only_the_interposed_functions() -> None:
    path = guard_path("amd64")
    assert path is not None and path.name == "libsconify_guard-linux-amd64.so"
    symbols = subprocess.run(
        ["nm", "-D", "--defined-only", str(path)], check=True, capture_output=True, text=True
    ).stdout.split()
    assert {s for s in symbols if s.startswith("dl")} == {"dlopen", "dlmopen", "dlerror"}
    needed = subprocess.run(
        ["objdump", "-p", str(path)], check=True, capture_output=True, text=True
    ).stdout
    # glibc only: libc, and the loader for the thread-local refusal text.
    assert {line.split()[1] for line in needed.splitlines() if "NEEDED" in line} == {
        "libc.so.6",
        "ld-linux-x86-64.so.2",
    }


def test_a_missing_amd64_guard_is_a_conversion_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_files, "_RUNTIME_DIR", tmp_path)
    with pytest.raises(ConversionError, match="dlopen guard for linux/amd64 is not built") as err:
        guard_path("amd64")
    assert err.value.hint and "make install" in err.value.hint
    # No cross compiler builds the arm64 guard: those images ship without one.
    assert guard_path("arm64") is None


def test_conversion_ships_the_guard_and_measures_it(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    work = tmp_path / "work"
    work.mkdir()
    result = convert(_native(store, tmp_path), _request(), store, work)
    root = tmp_path / "root"
    _extract(result.image, root)
    built = guard_path("amd64")
    assert built is not None
    shipped = root / GUARD_PATH.lstrip("/")
    assert shipped.read_bytes() == built.read_bytes()
    assert shipped.stat().st_mode & 0o777 == 0o755
    config = json.loads((root / "sconify/config.json").read_bytes())
    assert config["guard"] == GUARD_PATH
    report = measure_image(result.image)
    assert report.fields["guard_sha256"] == hashlib.sha256(built.read_bytes()).hexdigest()
    assert report.measurement == result.measurement
