"""Conversions through a faulty network: each either succeeds through retries or fails with one
clear error, and never leaves a tag whose blobs are incomplete or corrupt."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from sconify.image import BlobStore
from sconify.transports import remote
from sconify.transports.refs import parse_name
from tests.e2e.conftest import Samples
from tests.support.cli import Cli
from tests.support.faultproxy import (
    Corrupt,
    FaultProxy,
    ResetRequest,
    Respond,
    Rule,
    Truncate,
)
from tests.support.registry import Registry
from tests.support.services import CasProcess, LasProcess

pytestmark = pytest.mark.e2e

BLOB_GET = r"/blobs/sha256:"
UPLOAD = r"/blobs/uploads/"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _convert(
    cli: Cli, cas: CasProcess, las: LasProcess, proxy: FaultProxy, samples: Samples, target: str
) -> tuple[int, str, dict[str, object] | None]:
    source = samples.root.split("/", 1)[1]
    result = cli.run(
        "sconify",
        "image",
        "convert",
        f"docker://{proxy.addr}/{source}",
        f"docker://{proxy.addr}/{target}",
        "--binary=/usr/bin/python3",
        "--dir=/app",
        f"--cas={cas.api_addr}",
        f"--las={las.addr}",
        "--namespace=faults",
        "--create-namespace",
        f"--name=s{_free_port()}",
        "--allow-simulation",
        "--json",
        check=False,
    )
    payload = json.loads(result.stdout) if result.returncode == 0 else None
    return result.returncode, result.stderr, payload


def _intact(registry: Registry, target: str, tmp: Path) -> None:
    """Read the tag back from the registry itself: every blob hashes to its digest."""
    image = remote.read(parse_name(f"{registry.addr}/{target}"), BlobStore(tmp / "check"))
    image.validate(deep=True)


def _untagged(registry: Registry, target: str) -> None:
    assert not remote.exists(parse_name(f"{registry.addr}/{target}"))


@pytest.mark.parametrize(
    ("case", "rules"),
    [
        (
            "503-on-uploads",
            [
                Rule(Respond(503), method="PATCH", path=UPLOAD, times=2),
                Rule(Respond(503), method="PUT", path=UPLOAD, times=1),
            ],
        ),
        ("429-on-manifest", [Rule(Respond(429), method="PUT", path=r"/manifests/", times=2)]),
        (
            "reset-mid-upload",
            [Rule(ResetRequest(after=300_000, forward=True), method="PUT", path=UPLOAD, times=1)],
        ),
        (
            "truncated-download",
            [Rule(Truncate(after=1_000_000), method="GET", path=BLOB_GET, times=1)],
        ),
    ],
)
def test_transient_faults_are_retried(
    case: str,
    rules: list[Rule],
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    flask_samples: Samples,
    registry: Registry,
    tmp_path: Path,
) -> None:
    target = f"faults-{case}:latest"
    with FaultProxy(registry.addr, rules=rules) as proxy:
        code, stderr, result = _convert(cli, cas, las, proxy, flask_samples, target)
        assert proxy.faults(), "the fault was never injected"
    assert code == 0, stderr
    assert result is not None and result["pushed"]
    _intact(registry, target, tmp_path)


def test_wrong_digest_from_the_registry_is_named(
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    flask_samples: Samples,
    registry: Registry,
) -> None:
    target = "faults-corrupt:latest"
    rules = [Rule(Corrupt(), method="GET", path=BLOB_GET, times=None)]
    with FaultProxy(registry.addr, rules=rules) as proxy:
        code, stderr, _ = _convert(cli, cas, las, proxy, flask_samples, target)
    assert code == 1 and stderr.count("error:") == 1
    assert "sha256:" in stderr and ("hashes to" in stderr or "digest" in stderr)
    _untagged(registry, target)


def test_registry_that_keeps_failing_gives_one_clear_error(
    cli: Cli,
    cas: CasProcess,
    las: LasProcess,
    flask_samples: Samples,
    registry: Registry,
) -> None:
    target = "faults-down:latest"
    rules = [Rule(Respond(503), method="PUT", path=r"/manifests/", times=None)]
    with FaultProxy(registry.addr, rules=rules) as proxy:
        code, stderr, _ = _convert(cli, cas, las, proxy, flask_samples, target)
    assert code == 1 and stderr.count("error:") == 1 and "503" in stderr
    _untagged(registry, target)
