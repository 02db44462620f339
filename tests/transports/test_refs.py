from pathlib import Path

import pytest

from sconify.errors import UsageError
from sconify.transports.refs import (
    DaemonRef,
    DockerArchiveRef,
    LayoutRef,
    OciArchiveRef,
    RegistryRef,
    is_loopback,
    parse,
    parse_name,
)

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", "latest", None),
        ("docker://busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("docker://docker.io/library/busybox", "docker.io", "library/busybox", "latest", None),
        ("index.docker.io/me/app", "docker.io", "me/app", "latest", None),
        ("registry-1.docker.io/me/app:x", "docker.io", "me/app", "x", None),
        ("me/app", "docker.io", "me/app", "latest", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/a/b/c:t_1.0-x", "localhost:5000", "a/b/c", "t_1.0-x", None),
        ("quay.io/org/app@" + D, "quay.io", "org/app", None, D),
        ("docker://127.0.0.1:5000/x:1@" + D, "127.0.0.1:5000", "x", "1", D),
        ("[::1]:5000/x", "[::1]:5000", "x", "latest", None),
        ("my-host:1234/a__b/c.d-e", "my-host:1234", "a__b/c.d-e", "latest", None),
    ],
)
def test_registry_refs(text, registry, repository, tag, digest):
    ref = parse(text)
    assert ref == RegistryRef(registry, repository, tag, digest)


def test_registry_ref_helpers():
    hub = parse("busybox")
    assert isinstance(hub, RegistryRef)
    assert hub.api_host == "registry-1.docker.io"
    assert hub.familiar() == "busybox:latest"
    assert str(hub) == "docker://docker.io/library/busybox:latest"
    local = parse("localhost:5000/a/b:1")
    assert isinstance(local, RegistryRef)
    assert local.api_host == "localhost:5000" and local.insecure
    assert local.reference == "1"
    pinned = local.with_digest(D)
    assert pinned.reference == D and pinned.tag == "1"
    assert str(pinned) == f"docker://localhost:5000/a/b:1@{D}"
    assert pinned.with_tag("2") == RegistryRef("localhost:5000", "a/b", "2", None)
    assert not parse("quay.io/a/b").insecure  # type: ignore[union-attr]


def test_other_transports(tmp_path):
    assert parse("docker-daemon:app:1") == DaemonRef(
        name=RegistryRef("docker.io", "library/app", "1")
    )
    assert parse("docker-daemon:" + D) == DaemonRef(image_id=D)  # type: ignore[arg-type]
    assert parse("app:1", default="docker-daemon") == DaemonRef(
        name=RegistryRef("docker.io", "library/app", "1")
    )
    assert parse(f"oci:{tmp_path}/l:v1") == LayoutRef(tmp_path / "l", "v1")
    assert parse("oci:rel/dir") == LayoutRef(Path("rel/dir"), None)
    assert parse("oci-archive:/x/i.tar:t") == OciArchiveRef(Path("/x/i.tar"), "t")
    assert parse("docker-archive:/x/i.tar") == DockerArchiveRef(Path("/x/i.tar"))
    assert parse("docker-archive:/x/i.tar:localhost:5000/a:1") == DockerArchiveRef(
        Path("/x/i.tar"), RegistryRef("localhost:5000", "a", "1")
    )
    assert str(parse("docker-daemon:app:1")) == "docker-daemon:app:1"
    assert str(parse("oci:/d:t")) == "oci:/d:t"
    assert str(parse("docker-archive:/f.tar:a:1")) == "docker-archive:/f.tar:a:1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid image reference"),
        (" busybox", "invalid image reference"),
        ("Busybox", "invalid repository name"),
        ("docker://", "invalid repository name"),
        ("docker:busybox", "docker transport is docker://"),
        ("busybox:bad tag", "invalid tag"),
        ("busybox@sha256:123", "invalid digest"),
        ("quay:a/b", "invalid registry host"),
        ("foo:/some/path", "unknown transport 'foo'"),
        ("oci:", "nothing after 'oci:'"),
        ("oci::tag", "has no path"),
        ("oci:/d:bad tag", "invalid tag"),
        ("docker-daemon:app@" + D, "not a digest"),
        ("host:5000/" + "a" * 260, "longer than 255"),
    ],
)
def test_bad_references_are_usage_errors(text, message):
    with pytest.raises(UsageError, match=message) as err:
        parse(text)
    assert err.value.hint
    assert err.value.exit_code == 2


def test_parse_name_is_transport_free():
    assert parse_name("a/b:c") == RegistryRef("docker.io", "a/b", "c")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.1.2.3:80", True),
        ("::1", True),
        ("[::1]:5000", True),
        ("10.0.0.1:5000", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("[::2]:5000", False),
    ],
)
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected
