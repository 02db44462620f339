"""The Docker engine transport against the real engine (and the docker CLI as a peer)."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from collections.abc import Iterator

import pytest

from sconify.dev.engine import ensure_engine
from sconify.errors import ImageNotFound
from sconify.image import BlobStore, Compression, Image, layer_from_tar
from sconify.image import mediatypes as mt
from sconify.transports import archive, daemon, layout, remote
from sconify.transports.refs import DaemonRef, DockerArchiveRef, RegistryRef, parse
from tests.transports.conftest import NON_ASCII


@pytest.fixture
def engine_names(docker_client) -> Iterator[list[str]]:
    """Names and ids a test gives the engine; removed afterwards."""
    names: list[str] = []
    yield names
    for name in reversed(names):
        subprocess.run(["docker", "rmi", "-f", name], capture_output=True, check=False)


def _daemon_ref(text: str) -> DaemonRef:
    ref = parse(text, default="docker-daemon")
    assert isinstance(ref, DaemonRef)
    return ref


def _members(img: Image, index: int) -> dict[str, tarfile.TarInfo]:
    with img.layers[index].open_tar() as f, tarfile.open(fileobj=f, mode="r|") as tar:
        return {m.name: m for m in tar}


def test_ensure_engine_uses_the_running_engine(docker_engine):
    handle = ensure_engine()
    assert handle.started is False and handle.process is None
    handle.stop()  # must not touch an engine it did not start
    assert daemon.connect().ping()


def test_load_tag_save_round_trip(docker_client, sample, tmp_path, engine_names):
    image_id = daemon.load(sample, client=docker_client)
    engine_names.append(image_id)
    assert image_id == sample.config_descriptor().digest
    ref = _daemon_ref("sconify-test/roundtrip:1")
    daemon.tag(image_id, ref, client=docker_client)
    engine_names.append("sconify-test/roundtrip:1")
    assert daemon.exists(ref, client=docker_client)
    inspected = docker_client.api.inspect_image("sconify-test/roundtrip:1")
    assert inspected["Id"] == image_id
    assert inspected["RootFS"]["Layers"] == [str(x.diff_id) for x in sample.layers]

    back = daemon.read(ref, BlobStore(tmp_path / "back"), client=docker_client)
    back.validate(deep=True)
    assert back.config_bytes() == sample.config_bytes()
    assert back.config_descriptor().digest == image_id
    for mine, theirs in zip(sample.layers, back.layers, strict=True):
        assert theirs.media_type == mt.OCI_LAYER
        assert theirs.compression is Compression.NONE
        assert theirs.diff_id == mine.diff_id == theirs.digest
        with mine.open_tar() as a, theirs.open_tar() as b:
            assert a.read() == b.read()
    base = _members(back, 0)
    assert base["bin/tool-link"].issym() and base["bin/tool-link"].linkname == "tool"
    assert base["bin/tool-hard"].islnk() and base["bin/tool-hard"].linkname == "bin/tool"
    assert NON_ASCII in base
    assert base["home/user"].uid == 1000
    assert ".wh.removed.txt" in _members(back, 1) and "etc/.wh..wh..opq" in _members(back, 1)


def test_image_from_the_engine_goes_to_a_registry(
    docker_client, registry, sample, tmp_path, engine_names
):
    image_id = daemon.write(sample, _daemon_ref("sconify-test/topush:2"), client=docker_client)
    engine_names.extend([image_id, "sconify-test/topush:2"])
    from_engine = daemon.read(_daemon_ref("sconify-test/topush:2"), BlobStore(tmp_path / "e"))
    ref = parse(f"docker://{registry.addr}/from-engine/app:2")
    assert isinstance(ref, RegistryRef)
    digest = remote.write(from_engine, ref)
    pulled = remote.read(ref, BlobStore(tmp_path / "p"))
    assert pulled.digest() == digest
    assert pulled.config_descriptor().digest == image_id
    # and the engine can pull it back from the registry by itself
    subprocess.run(["docker", "pull", f"{registry.addr}/from-engine/app:2"], check=True)
    engine_names.append(f"{registry.addr}/from-engine/app:2")
    assert docker_client.api.inspect_image(f"{registry.addr}/from-engine/app:2")["Id"] == image_id


def test_reading_by_image_id(docker_client, sample, tmp_path, engine_names):
    image_id = daemon.load(sample, client=docker_client)
    engine_names.append(image_id)
    ref = _daemon_ref(f"docker-daemon:{image_id}")
    assert ref.image_id == image_id
    back = daemon.read(ref, BlobStore(tmp_path / "b"), client=docker_client)
    assert back.config_descriptor().digest == image_id


def test_missing_image(docker_client, tmp_path):
    ref = _daemon_ref("sconify-test/does-not-exist:never")
    assert not daemon.exists(ref, client=docker_client)
    with pytest.raises(ImageNotFound, match="no image sconify-test/does-not-exist:never") as err:
        daemon.read(ref, BlobStore(tmp_path / "s"), client=docker_client)
    assert "docker pull" in (err.value.hint or "")


def test_docker_cli_loads_our_docker_archive(docker_client, sample, tmp_path, engine_names):
    ref = parse(f"docker-archive:{tmp_path / 'img.tar'}:sconify-test/archive:3")
    assert isinstance(ref, DockerArchiveRef)
    archive.write(sample, ref)
    out = subprocess.run(
        ["docker", "load", "-i", str(ref.path)], check=True, capture_output=True, text=True
    )
    engine_names.append("sconify-test/archive:3")
    assert "sconify-test/archive:3" in out.stdout
    inspected = docker_client.api.inspect_image("sconify-test/archive:3")
    assert inspected["Id"] == sample.config_descriptor().digest


def test_we_read_a_docker_cli_save(docker_client, sample, tmp_path, engine_names):
    image_id = daemon.write(sample, _daemon_ref("sconify-test/saved:4"), client=docker_client)
    engine_names.extend([image_id, "sconify-test/saved:4"])
    path = tmp_path / "saved.tar"
    subprocess.run(["docker", "save", "-o", str(path), "sconify-test/saved:4"], check=True)
    ref = parse(f"docker-archive:{path}")
    assert isinstance(ref, DockerArchiveRef)
    back = archive.read(ref, BlobStore(tmp_path / "s"))
    assert back.config_bytes() == sample.config_bytes()
    named = parse(f"docker-archive:{path}:sconify-test/saved:4")
    assert isinstance(named, DockerArchiveRef)
    assert archive.read(named, BlobStore(tmp_path / "s")).config_bytes() == sample.config_bytes()
    with pytest.raises(ImageNotFound, match="no image named"):
        other = parse(f"docker-archive:{path}:sconify-test/other:1")
        assert isinstance(other, DockerArchiveRef)
        archive.read(other, BlobStore(tmp_path / "s"))


def test_oci_layout_form_of_docker_save_is_read(sample, tmp_path):
    """Docker 25+ writes an OCI layout inside ``docker save``; build one the same way."""
    plain = sample.with_layers(
        [_uncompressed(layer, BlobStore(tmp_path / "u"), tmp_path) for layer in sample.layers]
    )
    root = tmp_path / "oci"
    layout.write(plain, parse(f"oci:{root}:4"))  # type: ignore[arg-type]
    config_hex = plain.config_descriptor().digest.hex
    manifest = [
        {
            "Config": f"blobs/sha256/{config_hex}",
            "RepoTags": ["sconify-test/modern:4"],
            "Layers": [f"blobs/sha256/{x.digest.hex}" for x in plain.layers],
        }
    ]
    path = tmp_path / "modern.tar"
    with tarfile.open(path, "w") as tar:
        for f in sorted(root.rglob("*")):
            tar.add(f, arcname=str(f.relative_to(root)), recursive=False)
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    ref = parse(f"docker-archive:{path}:sconify-test/modern:4")
    assert isinstance(ref, DockerArchiveRef)
    back = archive.read(ref, BlobStore(tmp_path / "s"))
    assert back.config_bytes() == plain.config_bytes()
    assert [x.diff_id for x in back.layers] == [x.diff_id for x in sample.layers]


def _uncompressed(layer, store, tmp_path):
    tar_path = tmp_path / f"{layer.diff_id.hex}.tar"
    with layer.open_tar() as src:
        tar_path.write_bytes(src.read())
    return layer_from_tar(tar_path, store, Compression.NONE)
