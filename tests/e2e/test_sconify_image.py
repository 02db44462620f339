"""SCONE's lift-and-shift command end to end, every part real.

The native Flask sample is built from Debian packages and pushed to a real registry; the real
CAS and LAS run as processes; ``sconify_image`` converts it with the flags from SCONE's
documentation; the real Docker engine runs the pushed result, which attests and serves.
"""

from __future__ import annotations

import json
import socket
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from sconify.cas.client import CasClient
from sconify.cas.identity import Identity
from sconify.image import BlobStore, Image, layer_from_tar
from sconify.session.load import load_session
from sconify.transports import daemon, remote
from sconify.transports.refs import DaemonRef, parse, parse_name
from tests.e2e.conftest import REPO, Cli, Samples
from tests.support.registry import Registry
from tests.support.services import CasProcess, LasProcess

pytestmark = pytest.mark.e2e

APP_SOURCE = (REPO / "images/flask/app/app.py").read_bytes()
GREETING = (REPO / "images/flask/app/data/greeting.txt").read_bytes()
# Byte sequences that exist only in the protected directory of the sample.
UNIQUE = [
    b"sconify-sample-secret-3f9c2a7e51d04b68",
    b"sconify-sample-greeting-8d41e0b2",
    APP_SOURCE[200:264],
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Conversion:
    """One ``sconify_image`` run and what it printed with ``--json``."""

    target: str
    port: int
    result: dict[str, Any]


def sconify_image(
    cli: Cli,
    cas_addr: str,
    las_addr: str,
    source: str,
    target: str,
    *extra: str,
    port: int | None = None,
    check: bool = True,
    namespace: str = "my-workflow-namespace-123",
) -> tuple[Any, int]:
    port = port or _free_port()
    result = cli.run(
        "sconify_image",
        f"--from={source}",
        f"--to={target}",
        "--binary=/usr/bin/python3",
        f"--cas={cas_addr}",
        f"--las={las_addr}",
        "--service-name=my-flask-service",
        f"--name=session-{port}",
        f"--namespace={namespace}",
        "--create-namespace",
        "--heap=1G",
        "--stack=4M",
        "--dlopen=2",
        "--dir=/app",
        "--cas-debug",
        "--env",
        f"PORT={port}",
        "--json",
        *extra,
        check=check,
    )
    return result, port


@pytest.fixture(scope="module")
def converted(
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    flask_samples: Samples,
    registry: Registry,
    docker_client: Any,
) -> Conversion:
    target = f"{registry.addr}/my-encrypted-flask:latest"
    result, port = sconify_image(
        cli, cas.api_addr, las.addr, flask_samples.root, target, "--push-image"
    )
    return Conversion(target, port, json.loads(result.stdout))


def _run(docker_client: Any, image: str, **env: str) -> Any:
    return docker_client.containers.run(image, detach=True, network_mode="host", environment=env)


def _wait_http(container: Any, port: int, deadline: float = 90.0) -> str:
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text
        except httpx.HTTPError:
            container.reload()
            if container.status != "running":
                break
            time.sleep(0.3)
    raise AssertionError(f"no answer on port {port}; logs:\n{container.logs().decode()}")


def _finished(container: Any) -> tuple[int, str, float]:
    """Wait for the container to end; return exit code, logs and its run time in seconds."""
    status = container.wait(timeout=120)
    container.reload()
    state = container.attrs["State"]
    started = _docker_time(state["StartedAt"])
    finished = _docker_time(state["FinishedAt"])
    logs = container.logs().decode()
    container.remove(force=True)
    return int(status["StatusCode"]), logs, finished - started


def _docker_time(text: str) -> float:
    from datetime import datetime

    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float(f"0.{frac or 0}")


def test_pushed_image_attests_and_serves(converted: Conversion, docker_client: Any) -> None:
    docker_client.images.remove(converted.target, force=True)
    docker_client.images.pull(converted.target)  # what `docker run` of the pushed image does
    container = _run(docker_client, converted.target)
    try:
        answer = _wait_http(container, converted.port)
        assert GREETING.decode().strip() in answer
        # The session's pwd (/app) was applied after decryption: /app links into memory.
        assert "cwd /dev/shm/sconify/app" in answer
        logs = container.logs().decode()
        assert "simulation" in logs.lower()  # the shim says what sim mode does not protect
    finally:
        container.remove(force=True)


def test_result_names_session_and_namespace(converted: Conversion) -> None:
    result = converted.result
    assert result["session"] == f"my-workflow-namespace-123/session-{converted.port}"
    assert result["config_id"] == f"{result['session']}/my-flask-service"
    assert result["pushed"] and result["regions"] == ["/app"]


def test_no_pushed_blob_holds_protected_bytes(
    converted: Conversion, flask_samples: Samples, tmp_path: Path
) -> None:
    native = remote.read(parse_name(flask_samples.root), BlobStore(tmp_path / "native"))
    assert any(UNIQUE[0] in _decompressed(layer) for layer in native.layers)  # the check can fail

    image = remote.read(parse_name(converted.target), BlobStore(tmp_path / "pushed"))
    blobs = [image.manifest_bytes(), image.config_bytes()]
    blobs += [layer.path.read_bytes() for layer in image.layers]
    blobs += [_decompressed(layer) for layer in image.layers]
    for blob in blobs:
        for unique in UNIQUE:
            assert unique not in blob


def _decompressed(layer: Any) -> bytes:
    with layer.open_tar() as stream:
        data: bytes = stream.read()
        return data


def test_scone_hash_equals_measure_and_session(
    converted: Conversion, cli: Cli, cas: CasProcess, docker_client: Any
) -> None:
    printed = docker_client.containers.run(
        converted.target, remove=True, network_mode="host", environment={"SCONE_HASH": "1"}
    ).decode()
    measured = cli.run("sconify", "image", "measure", f"docker://{converted.target}").stdout
    assert printed == measured == converted.result["measurement"] + "\n"

    identity = Identity.load(cli.home / "config/sconify/identity.pem")
    client = CasClient(cas.api_addr, identity=identity, pinned_key_hash=cas.cas_key_hash)
    record = client.read_session(converted.result["session"])
    service = load_session(record.session).service("my-flask-service")
    assert service is not None
    assert service.mrenclaves == (printed.strip(),)


def _assert_refused(code: int, logs: str, what: str) -> None:
    fatal = [line for line in logs.splitlines() if line.startswith("[SCONIFY|FATAL]")]
    assert code != 0, logs
    assert len(fatal) == 1, logs
    assert what in fatal[0].lower(), fatal[0]
    assert "Running on" not in logs and "Serving Flask app" not in logs, logs


def test_unreachable_las_refuses_start_within_30s(
    converted: Conversion, docker_client: Any
) -> None:
    code, logs, took = _finished(
        _run(docker_client, converted.target, SCONE_LAS_ADDR=f"127.0.0.1:{_free_port()}")
    )
    _assert_refused(code, logs, "las")
    assert took <= 30, f"gave up only after {took:.1f}s"


def test_unknown_session_refuses_start(converted: Conversion, docker_client: Any) -> None:
    code, logs, _ = _finished(
        _run(
            docker_client,
            converted.target,
            SCONE_CONFIG_ID="my-workflow-namespace-123/no-such-session/my-flask-service",
        )
    )
    _assert_refused(code, logs, "session")


def test_changed_heap_refuses_start(converted: Conversion, docker_client: Any) -> None:
    code, logs, _ = _finished(_run(docker_client, converted.target, SCONE_HEAP="512M"))
    _assert_refused(code, logs, "mrenclave")


def test_flipped_ciphertext_byte_refuses_start(
    converted: Conversion, docker_client: Any, tmp_path: Path
) -> None:
    store = BlobStore(tmp_path / "store")
    image = daemon.read(DaemonRef(parse_name(converted.target)), store)
    tampered = _flip_one_ciphertext_byte(image, store, tmp_path)
    image_id = daemon.load(tampered)
    name = converted.target.replace("my-encrypted-flask", "tampered-flask")
    daemon.tag(image_id, parse(name, default="docker-daemon"))  # type: ignore[arg-type]
    code, logs, _ = _finished(_run(docker_client, name))
    _assert_refused(code, logs, "decrypt")


def _flip_one_ciphertext_byte(image: Image, store: BlobStore, tmp: Path) -> Image:
    top = image.layers[-1]
    out = tmp / "tampered.tar"
    flipped = False
    with (
        top.open_tar() as raw,
        tarfile.open(fileobj=raw, mode="r|") as src,
        tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst,
    ):
        for member in src:
            data = src.extractfile(member) if member.isreg() else None
            if (
                data is not None
                and "sconify/volumes/" in member.name
                and not flipped
                and member.size > 100
            ):
                raw_bytes = bytearray(data.read())
                raw_bytes[90] ^= 0x01
                flipped = True
                import io

                dst.addfile(member, io.BytesIO(bytes(raw_bytes)))
                continue
            dst.addfile(member, data)
    assert flipped
    return image.with_layers([*image.layers[:-1], layer_from_tar(out, store)])


def test_non_root_user_keeps_working(
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    flask_samples: Samples,
    registry: Registry,
    docker_client: Any,
) -> None:
    docker_client.images.remove(flask_samples.nonroot, force=True)  # --from pulls it back
    target = f"{registry.addr}/encrypted-flask-nonroot:latest"
    result, port = sconify_image(cli, cas.api_addr, las.addr, flask_samples.nonroot, target)
    container = _run(docker_client, target)
    try:
        assert "uid 1000" in _wait_http(container, port)
    finally:
        container.remove(force=True)
    assert json.loads(result.stdout)["pushed"] is None  # no --push-image: engine only


# -- bad input: one clear error, nothing half-written ------------------------------------


def _not_tagged(docker_client: Any, target: str) -> None:
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(target)
    assert not remote.exists(parse_name(target))


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (
            ["--binary=/usr/bin/python9"],
            "--binary=/usr/bin/python9 does not exist",
            "/usr/bin/python3",
        ),
        (["--dir=/ap"], "--dir=/ap does not exist", "did you mean /app"),
    ],
    ids=["binary-missing", "dir-missing"],
)
def test_bad_conversion_input(
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    flask_samples: Samples,
    registry: Registry,
    docker_client: Any,
    args: list[str],
    message: str,
    hint: str,
) -> None:
    target = f"{registry.addr}/never-{args[0].split('=')[0].strip('-')}:latest"
    result, _ = sconify_image(
        cli, cas.api_addr, las.addr, flask_samples.root, target, "--push-image", *args, check=False
    )
    assert result.returncode == 1
    assert message in result.stderr and hint in result.stderr
    assert result.stderr.count("error:") == 1
    _not_tagged(docker_client, target)


def test_missing_source_image(
    cli: Cli, cas: CasProcess, las: LasProcess, registry: Registry, docker_client: Any
) -> None:
    target = f"{registry.addr}/never-from:latest"
    result, _ = sconify_image(
        cli, cas.api_addr, las.addr, f"{registry.addr}/no-such-image:latest", target, check=False
    )
    assert result.returncode == 1 and "no-such-image" in result.stderr
    _not_tagged(docker_client, target)


def test_unreachable_cas_writes_nothing(
    cli: Cli, las: LasProcess, flask_samples: Samples, registry: Registry, docker_client: Any
) -> None:
    target = f"{registry.addr}/never-cas:latest"
    result, _ = sconify_image(
        cli,
        f"127.0.0.1:{_free_port()}",
        las.addr,
        flask_samples.root,
        target,
        "--push-image",
        check=False,
    )
    assert result.returncode == 1 and "CAS" in result.stderr
    _not_tagged(docker_client, target)


def test_session_refused_leaves_image_untagged(
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    flask_samples: Samples,
    registry: Registry,
    docker_client: Any,
) -> None:
    target = f"{registry.addr}/never-session:latest"
    result = cli.run(
        "sconify_image",
        f"--from={flask_samples.root}",
        f"--to={target}",
        "--binary=/usr/bin/python3",
        f"--cas={cas.api_addr}",
        f"--las={las.addr}",
        "--namespace=namespace-that-does-not-exist",
        "--name=refused",
        "--dir=/app",
        "--cas-debug",
        "--push-image",
        check=False,
    )
    assert result.returncode == 1 and "--create-namespace" in result.stderr
    _not_tagged(docker_client, target)
    # The CAS refused before the image was written: the engine holds no image of it at all.
    label = "org.sconify.config-id=namespace-that-does-not-exist/refused/service"
    assert docker_client.images.list(all=True, filters={"label": label}) == []
