"""Interop: every place sconify writes is read by skopeo and run by the Docker engine, and what
skopeo and ``docker save`` write is converted by sconify."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ENGINE_PREFIX, Cli, Samples
from tests.e2e.test_sconify_image import _free_port, _run, _wait_http
from tests.support.registry import Registry
from tests.support.services import CasProcess, LasProcess

pytestmark = pytest.mark.e2e


def _skopeo(*args: str) -> str:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _convert(
    cli: Cli, cas: CasProcess, las: LasProcess, src: str, dst: str, port: int, *extra: str
) -> dict[str, Any]:
    result = cli.run(
        "sconify",
        "image",
        "convert",
        src,
        dst,
        "--binary=/usr/bin/python3",
        "--dir=/app",
        f"--cas={cas.api_addr}",
        f"--las={las.addr}",
        "--namespace=interop",
        "--create-namespace",
        f"--name=s{port}",
        "--cas-debug",
        "--dlopen=2",
        "--stack=4M",
        "--env",
        f"PORT={port}",
        "--json",
        *extra,
    )
    return dict(json.loads(result.stdout))


def _serves(docker_client: Any, image: str, port: int) -> None:
    container = _run(docker_client, image)
    try:
        assert "confidential Flask app" in _wait_http(container, port)
    finally:
        container.remove(force=True)


@pytest.fixture(scope="module")
def oci_source(flask_samples: Samples, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample as skopeo writes it into an OCI layout."""
    path = tmp_path_factory.mktemp("skopeo") / "layout"
    _skopeo(
        "copy", "--src-tls-verify=false", f"docker://{flask_samples.root}", f"oci:{path}:native"
    )
    return f"oci:{path}:native"


@pytest.mark.parametrize(
    "sink", ["docker", "docker-daemon", "oci", "oci-archive", "docker-archive"]
)
def test_every_sink_is_read_by_skopeo_and_run_by_docker(
    sink: str,
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    oci_source: str,
    registry: Registry,
    docker_client: Any,
    tmp_path: Path,
) -> None:
    port = _free_port()
    name = f"interop-{sink}:latest"
    dst = {
        "docker": f"docker://{registry.addr}/{name}",
        "docker-daemon": f"docker-daemon:{ENGINE_PREFIX}/{name}",
        "oci": f"oci:{tmp_path}/layout:converted",
        "oci-archive": f"oci-archive:{tmp_path}/image.tar:converted",
        "docker-archive": f"docker-archive:{tmp_path}/image.tar:{ENGINE_PREFIX}/{name}",
    }[sink]
    result = _convert(cli, cas, las, oci_source, dst, port)
    assert result["written"] and all(w["named"] for w in result["written"])

    skopeo_ref = dst if sink != "docker-daemon" else f"docker-daemon:{ENGINE_PREFIX}/{name}"
    tls = ["--tls-verify=false"] if sink == "docker" else []
    info = json.loads(_skopeo("inspect", *tls, skopeo_ref))
    assert info["Labels"]["org.sconify.measurement"] == result["measurement"]
    _skopeo(
        "copy",
        *(["--src-tls-verify=false"] if sink == "docker" else []),
        skopeo_ref,
        f"oci:{tmp_path}/skopeo-copy:latest",
    )

    # The engine runs it: straight from the engine, or loaded by skopeo from the other places.
    runnable = f"{ENGINE_PREFIX}/run-{sink}:latest"
    if sink == "docker-daemon":
        runnable = f"{ENGINE_PREFIX}/{name}"
    else:
        _skopeo(
            "copy",
            *(["--src-tls-verify=false"] if sink == "docker" else []),
            skopeo_ref,
            f"docker-daemon:{runnable}",
        )
    _serves(docker_client, runnable, port)


def test_docker_save_archives_are_converted(
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    flask_samples: Samples,
    docker_client: Any,
    tmp_path: Path,
) -> None:
    docker_client.images.pull(flask_samples.root)
    archive = tmp_path / "saved.tar"
    subprocess.run(["docker", "save", "-o", str(archive), flask_samples.root], check=True)
    port = _free_port()
    target = f"{ENGINE_PREFIX}/from-docker-save:latest"
    _convert(cli, cas, las, f"docker-archive:{archive}", f"docker-daemon:{target}", port)
    _serves(docker_client, target, port)


def test_zstd_layers_out(
    cli: Cli, cas: CasProcess, las: LasProcess, oci_source: str, tmp_path: Path
) -> None:
    dst = f"oci:{tmp_path}/zstd:converted"
    _convert(cli, cas, las, oci_source, dst, _free_port(), "--compression=zstd")
    index = json.loads((tmp_path / "zstd/index.json").read_text())
    blobs = tmp_path / "zstd/blobs/sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_text())
    types = [layer["mediaType"] for layer in manifest["layers"]]
    assert types[-2:] == ["application/vnd.oci.image.layer.v1.tar+zstd"] * 2
    _skopeo("inspect", dst)
