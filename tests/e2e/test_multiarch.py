"""Multi-platform images: ``--platform`` picks one, ``--all-platforms`` converts an index into an
index (one service per platform), the amd64 image runs, and the arm64 shim (under qemu) prints
the measurement the session holds for it."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from sconify.image import BlobStore, Image, ImageConfig, Platform
from sconify.image import mediatypes as mt
from sconify.runtime_files import shim_path
from sconify.transports import remote
from sconify.transports.refs import parse_name
from sconify.transports.staged import stage_index
from tests.e2e.conftest import Samples
from tests.e2e.test_sconify_image import _free_port, _run, _wait_http
from tests.support.cli import Cli
from tests.support.layers import Entry, host_file, make_layer
from tests.support.registry import Registry
from tests.support.services import CasProcess, LasProcess

pytestmark = pytest.mark.e2e

QEMU = "/usr/bin/qemu-aarch64-static"


def _arm64_image(store: BlobStore, tmp: Path) -> Image:
    """A small linux/arm64 image: a static aarch64 ELF as its binary, and an /app to protect."""
    layer = make_layer(
        store,
        tmp,
        [
            Entry("usr", "dir", mode=0o755),
            Entry("usr/bin", "dir", mode=0o755),
            host_file(str(shim_path("arm64")), "usr/bin/python3"),
            Entry("app", "dir", mode=0o755),
            Entry("app/arm-secret.txt", data=b"ARM64-SECRET-77"),
        ],
    )
    config = ImageConfig.new(architecture="arm64", cmd=["/usr/bin/python3"], env=["PATH=/usr/bin"])
    return Image(config, ()).append_layers([layer])


@pytest.fixture(scope="module")
def multi(
    flask_samples: Samples, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """An index in the registry: the Flask sample for amd64, a tiny image for arm64."""
    tmp = tmp_path_factory.mktemp("multi")
    store = BlobStore(tmp / "store")
    amd64 = remote.read(parse_name(flask_samples.root), store)
    ref = parse_name(f"{registry.addr}/multi-native:latest")
    stage_index([amd64, _arm64_image(store, tmp)], ref).commit()
    return f"docker://{ref.familiar()}"


def test_all_platforms_gives_an_index_of_converted_images(
    multi: str,
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    registry: Registry,
    docker_client: Any,
    tmp_path: Path,
) -> None:
    port = _free_port()
    dst = f"docker://{registry.addr}/multi-encrypted:latest"
    result = json.loads(
        cli.run(
            "sconify",
            "image",
            "convert",
            multi,
            dst,
            "--all-platforms",
            "--binary=/usr/bin/python3",
            "--dir=/app",
            f"--cas={cas.api_addr}",
            f"--las={las.addr}",
            "--namespace=multi",
            "--create-namespace",
            "--name=flask",
            "--service-name=web",
            "--cas-debug",
            "--dlopen=2",
            "--stack=4M",
            "--env",
            f"PORT={port}",
            "--json",
        ).stdout
    )
    by_platform = {p["platform"]: p for p in result["platforms"]}
    assert set(by_platform) == {"linux/amd64", "linux/arm64"}
    assert by_platform["linux/arm64"]["service"] == "multi/flask/web-arm64"

    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", dst],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    index = json.loads(raw)
    assert index["mediaType"] == mt.OCI_INDEX
    assert {
        f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]
    } == set(by_platform)

    # The engine pulls the index, picks amd64, which attests as its own service and serves.
    image = dst.removeprefix("docker://")
    docker_client.images.pull(image)
    container = _run(docker_client, image)
    try:
        assert "confidential Flask app" in _wait_http(container, port)
    finally:
        container.remove(force=True)

    # arm64: `image measure --platform` and the arm64 shim itself agree with the session.
    measured = cli.run("sconify", "image", "measure", "--platform", "linux/arm64", dst).stdout
    assert measured.strip() == by_platform["linux/arm64"]["measurement"]
    root = tmp_path / "arm64-root"
    arm = remote.read(
        parse_name(image), BlobStore(tmp_path / "s"), platform=Platform.parse("linux/arm64")
    )
    for layer in arm.layers:
        with layer.open_tar() as raw_tar, tarfile.open(fileobj=raw_tar, mode="r|") as tar:
            tar.extractall(root, filter="tar")
    env = {k: v for k, v in (e.split("=", 1) for e in arm.config.env)}
    printed = subprocess.run(
        [QEMU, str(root / "sconify/bin/shim")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env, "SCONE_HASH": "1", "SCONIFY_ROOT": str(root)},
    )
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == by_platform["linux/arm64"]["measurement"]
    assert b"ARM64-SECRET-77" not in b"".join(
        p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()
    )


def test_platform_picks_one_image(
    multi: str, cli: Cli, cas: CasProcess, las: LasProcess, tmp_path: Path
) -> None:
    out = tmp_path / "arm64"
    result = json.loads(
        cli.run(
            "sconify",
            "image",
            "convert",
            multi,
            f"oci:{out}:arm64",
            "--platform=linux/arm64",
            "--binary=/usr/bin/python3",
            "--dir=/app",
            f"--cas={cas.api_addr}",
            f"--las={las.addr}",
            "--namespace=multi",
            "--create-namespace",
            "--name=one",
            "--cas-debug",
            "--json",
        ).stdout
    )
    assert [p["platform"] for p in result["platforms"]] == ["linux/arm64"]
    assert result["config_id"] == "multi/one/service"


def test_missing_platform_is_one_clear_error(
    multi: str, cli: Cli, cas: CasProcess, las: LasProcess, tmp_path: Path
) -> None:
    result = cli.run(
        "sconify",
        "image",
        "convert",
        multi,
        f"oci:{tmp_path}/x",
        "--platform=linux/s390x",
        "--binary=/usr/bin/python3",
        "--dir=/app",
        f"--cas={cas.api_addr}",
        f"--las={las.addr}",
        "--cas-debug",
        check=False,
    )
    assert result.returncode == 1
    assert "linux/s390x" in result.stderr and "linux/arm64" in result.stderr
    assert not (tmp_path / "x").exists()
