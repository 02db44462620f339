"""A converted image whose files were changed after conversion refuses to start: one
``[SCONIFY|FATAL]`` line, and the app never runs (issue 5's acceptance). Also a plaintext root
too small for the protected files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sconify.cas.client import CasClient
from sconify.cas.identity import Identity
from sconify.crypto.keys import VolumeKey
from sconify.crypto.scfs import VolumeWriter, open_fspf
from sconify.image import BlobStore, Image
from sconify.inspect import read_file
from sconify.mutate.fsview import scan_layers
from sconify.session.load import load_session
from sconify.transports import daemon, remote
from sconify.transports.refs import DaemonRef, parse, parse_name
from tests.e2e.conftest import ENGINE_PREFIX, Samples
from tests.e2e.test_sconify_image import _assert_refused, _finished, _free_port, _run
from tests.support.cli import Cli
from tests.support.layers import Entry, make_layer
from tests.support.registry import Registry
from tests.support.services import CasProcess, LasProcess

pytestmark = pytest.mark.e2e

LIBEXPAT = "/usr/lib/x86_64-linux-gnu/libexpat.so.1"  # in python3's ELF closure
FSPF = "/sconify/fspf/fs.fspf"


def _convert(
    cli: Cli, cas: CasProcess, las: LasProcess, source: str, target: str
) -> dict[str, Any]:
    return dict(
        json.loads(
            cli.run(
                "sconify",
                "image",
                "convert",
                f"docker://{source}",
                f"docker://{target}",
                "--binary=/usr/bin/python3",
                "--dir=/app",
                f"--cas={cas.api_addr}",
                f"--las={las.addr}",
                "--namespace=tamper",
                "--create-namespace",
                f"--name=s{_free_port()}",
                "--allow-simulation",
                "--env",
                f"PORT={_free_port()}",
                "--json",
            ).stdout
        )
    )


@pytest.fixture(scope="module")
def converted(
    cli: Cli, cas: CasProcess, las: LasProcess, flask_samples: Samples, registry: Registry
) -> tuple[str, dict[str, Any]]:
    target = f"{registry.addr}/tamper-base:latest"
    return target, _convert(cli, cas, las, flask_samples.root, target)


def _with_files(image: Image, store: BlobStore, tmp: Path, files: dict[str, bytes]) -> Image:
    """The image plus a top layer that replaces ``files`` (what a tampering host could do)."""
    tmp.mkdir(parents=True, exist_ok=True)
    entries = [Entry(path.lstrip("/"), data=data, mode=0o755) for path, data in files.items()]
    return image.append_layers(
        [make_layer(store, tmp, entries)], history=[{"created_by": "tampered"}]
    )


def _run_tampered(docker_client: Any, image: Image, name: str) -> tuple[int, str, float]:
    image_id = daemon.load(image)
    ref = parse(f"{ENGINE_PREFIX}/{name}:latest", default="docker-daemon")
    assert isinstance(ref, DaemonRef)
    daemon.tag(image_id, ref)
    return _finished(_run(docker_client, f"{ENGINE_PREFIX}/{name}:latest"))


def _pulled(target: str, tmp: Path) -> tuple[Image, BlobStore]:
    store = BlobStore(tmp / "store")
    return remote.read(parse_name(target), store), store


def test_tampered_library_in_the_authenticated_set(
    converted: tuple[str, dict[str, Any]], docker_client: Any, tmp_path: Path
) -> None:
    image, store = _pulled(converted[0], tmp_path)
    original = read_file(image, scan_layers(image.layers), LIBEXPAT)
    changed = bytearray(original)
    changed[-1] ^= 0x01  # one bit, where the loader would not even notice
    tampered = _with_files(image, store, tmp_path / "l", {LIBEXPAT: bytes(changed)})
    code, logs, _ = _run_tampered(docker_client, tampered, "tampered-lib")
    _assert_refused(code, logs, "libexpat")


def test_tampered_fspf(
    converted: tuple[str, dict[str, Any]], docker_client: Any, tmp_path: Path
) -> None:
    image, store = _pulled(converted[0], tmp_path)
    fspf = bytearray(read_file(image, scan_layers(image.layers), FSPF))
    fspf[20] ^= 0x01
    tampered = _with_files(image, store, tmp_path / "l", {FSPF: bytes(fspf)})
    code, logs, _ = _run_tampered(docker_client, tampered, "tampered-fspf")
    _assert_refused(code, logs, "fspf")


def test_older_fspf_with_the_same_key(
    converted: tuple[str, dict[str, Any]],
    cli: Cli,
    cas: CasProcess,
    docker_client: Any,
    tmp_path: Path,
) -> None:
    """Someone holding the volume key made another fspf (an older state of the volume): its
    tag is not the session's, so the shim refuses it even though it decrypts."""
    target, result = converted
    identity = Identity.load(cli.home / "config/sconify/identity.pem")
    record = CasClient(
        cas.api_addr, identity=identity, pinned_key_hash=cas.cas_key_hash
    ).read_session(result["session"])
    service = load_session(record.session).services[0]
    key = VolumeKey.from_hex(str(service.fspf_key))
    image, store = _pulled(target, tmp_path)
    current = open_fspf(
        read_file(image, scan_layers(image.layers), FSPF), key, str(service.fspf_tag)
    )
    writer = VolumeWriter(key, tmp_path / "volumes")
    for region in current["regions"]:  # the same tree, minus its files: a different state
        writer.add_region(region["path"], mode=region["mode"])
    older = writer.finish()
    assert older.tag_hex != service.fspf_tag
    tampered = _with_files(image, store, tmp_path / "l", {FSPF: older.fspf})
    code, logs, _ = _run_tampered(docker_client, tampered, "older-fspf")
    _assert_refused(code, logs, "fspf")


def test_plaintext_root_too_small_names_shm_size(
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    flask_samples: Samples,
    registry: Registry,
    docker_client: Any,
    tmp_path: Path,
) -> None:
    image, store = _pulled(flask_samples.root, tmp_path)
    bigger = _with_files(image, store, tmp_path / "l", {"/app/model.bin": os.urandom(3 << 20)})
    native = parse_name(f"{registry.addr}/tamper-big-native:latest")
    remote.write(bigger, native)
    target = f"{registry.addr}/tamper-big:latest"
    _convert(cli, cas, las, native.familiar(), target)
    container = docker_client.containers.run(
        target, detach=True, network_mode="host", shm_size="1m"
    )
    code, logs, _ = _finished(container)
    _assert_refused(code, logs, "mib")
    assert "--shm-size" in logs
