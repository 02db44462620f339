"""OCI layouts and archives: round trips, tags, atomic writes, skopeo as an independent reader."""

from __future__ import annotations

import json
import subprocess

import pytest

from sconify.errors import ImageError, ImageNotFound
from sconify.image import BlobStore, Layer
from sconify.transports import archive, layout
from sconify.transports.refs import DockerArchiveRef, LayoutRef, OciArchiveRef, parse
from tests.transports.conftest import build_sample


def _skopeo_inspect(ref: str) -> dict:
    out = subprocess.run(
        ["skopeo", "inspect", ref], check=True, capture_output=True, text=True, timeout=120
    )
    return json.loads(out.stdout)


def _layout(text: str) -> LayoutRef:
    ref = parse(text)
    assert isinstance(ref, LayoutRef)
    return ref


def test_layout_round_trip_keeps_digest(sample, tmp_path):
    ref = _layout(f"oci:{tmp_path / 'lay'}:v1")
    digest = layout.write(sample, ref)
    assert digest == sample.digest()
    assert json.loads((tmp_path / "lay" / "oci-layout").read_text()) == {
        "imageLayoutVersion": "1.0.0"
    }
    back = layout.read(ref, BlobStore(tmp_path / "s"))
    back.validate(deep=True)
    assert back.manifest_bytes() == sample.manifest_bytes()
    assert _skopeo_inspect(f"oci:{tmp_path / 'lay'}:v1")["Digest"] == digest
    assert layout.describe(tmp_path / "lay") == [
        {"digest": str(digest), "mediaType": sample.manifest_media_type, "tag": "v1"}
    ]


def test_layout_with_two_tags(sample, store, tmp_path):
    other = build_sample(store, tmp_path / "o", marker="other")
    root = tmp_path / "lay"
    layout.write(sample, _layout(f"oci:{root}:a"))
    layout.write(other, _layout(f"oci:{root}:b"))
    assert layout.read(_layout(f"oci:{root}:a"), store).digest() == sample.digest()
    assert layout.read(_layout(f"oci:{root}:b"), store).digest() == other.digest()
    with pytest.raises(ImageError, match="holds 2 images") as err:
        layout.read(_layout(f"oci:{root}"), store)
    assert "a, b" in (err.value.hint or "")
    with pytest.raises(ImageNotFound, match="no image tagged 'c'"):
        layout.read(_layout(f"oci:{root}:c"), store)
    # re-tagging moves the tag instead of adding a second entry
    layout.write(other, _layout(f"oci:{root}:a"))
    assert [e["tag"] for e in layout.describe(root)] == ["b", "a"]
    assert layout.read(_layout(f"oci:{root}:a"), store).digest() == other.digest()


def test_failed_layout_write_leaves_nothing(sample, tmp_path):
    broken = sample.layers[0]
    missing = Layer(broken.descriptor, broken.diff_id, tmp_path / "gone")
    bad = sample.with_layers([missing, *sample.layers[1:]])
    with pytest.raises(FileNotFoundError):
        layout.write(bad, _layout(f"oci:{tmp_path / 'lay'}:v1"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["store", "layers"])


def test_layout_refuses_a_directory_that_is_something_else(sample, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(ImageError, match="not an OCI layout"):
        layout.write(sample, _layout(f"oci:{tmp_path / 'busy'}"))
    with pytest.raises(ImageNotFound, match=r"no index\.json"):
        layout.read(_layout(f"oci:{tmp_path / 'busy'}"), BlobStore(tmp_path / "s"))


def test_layout_written_by_skopeo_is_read(sample, tmp_path):
    layout.write(sample, _layout(f"oci:{tmp_path / 'mine'}:x"))
    subprocess.run(
        ["skopeo", "copy", f"oci:{tmp_path / 'mine'}:x", f"oci:{tmp_path / 'theirs'}:y"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    back = layout.read(_layout(f"oci:{tmp_path / 'theirs'}:y"), BlobStore(tmp_path / "s"))
    back.validate(deep=True)
    assert [x.diff_id for x in back.layers] == [x.diff_id for x in sample.layers]


def test_corrupt_layout_blob_is_refused(sample, tmp_path):
    root = tmp_path / "lay"
    layout.write(sample, _layout(f"oci:{root}:v1"))
    victim = root / "blobs" / "sha256" / sample.layers[1].digest.hex
    victim.write_bytes(victim.read_bytes()[:-1])
    with pytest.raises(ImageError) as err:
        layout.read(_layout(f"oci:{root}:v1"), BlobStore(tmp_path / "s"))
    assert str(victim) in err.value.message


def test_oci_archive_round_trip(sample, tmp_path):
    ref = parse(f"oci-archive:{tmp_path / 'img.tar'}:v2")
    assert isinstance(ref, OciArchiveRef)
    assert archive.write(sample, ref) == sample.digest()
    assert _skopeo_inspect(f"oci-archive:{tmp_path / 'img.tar'}:v2")["Digest"] == sample.digest()
    back = archive.read(ref, BlobStore(tmp_path / "s"))
    back.validate(deep=True)
    assert back.digest() == sample.digest()


def test_docker_archive_round_trip(sample, tmp_path):
    ref = parse(f"docker-archive:{tmp_path / 'img.tar'}:sconify-test/arch:1")
    assert isinstance(ref, DockerArchiveRef)
    image_id = archive.write(sample, ref)
    assert image_id == sample.config_descriptor().digest
    info = _skopeo_inspect(f"docker-archive:{tmp_path / 'img.tar'}")
    assert info["Env"] == ["PATH=/bin", "LANG=C.UTF-8"]
    assert info["Layers"] == [str(x.diff_id) for x in sample.layers]
    back = archive.read(ref, BlobStore(tmp_path / "s"))
    back.validate(deep=True)
    assert back.config_bytes() == sample.config_bytes()
    assert [x.diff_id for x in back.layers] == [x.diff_id for x in sample.layers]


def test_archive_write_is_atomic(sample, tmp_path):
    dest = tmp_path / "out" / "img.tar"
    ref = parse(f"oci-archive:{dest}")
    assert isinstance(ref, OciArchiveRef)
    broken = sample.layers[0]
    bad = sample.with_layers(
        [Layer(broken.descriptor, broken.diff_id, tmp_path / "gone"), *sample.layers[1:]]
    )
    with pytest.raises(FileNotFoundError):
        archive.write(bad, ref)
    assert list((tmp_path / "out").iterdir()) == []


def test_truncated_archive_is_refused(sample, tmp_path):
    ref = parse(f"oci-archive:{tmp_path / 'img.tar'}")
    assert isinstance(ref, OciArchiveRef)
    archive.write(sample, ref)
    data = ref.path.read_bytes()
    ref.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError):
        archive.read(ref, BlobStore(tmp_path / "s"))


def test_missing_archive(tmp_path):
    ref = parse(f"docker-archive:{tmp_path / 'nope.tar'}")
    assert isinstance(ref, DockerArchiveRef)
    with pytest.raises(ImageNotFound, match="does not exist"):
        archive.read(ref, BlobStore(tmp_path / "s"))


def _without_member(path, unwanted):
    import tarfile

    kept = path.with_suffix(".kept.tar")
    with tarfile.open(path) as src, tarfile.open(kept, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            if not unwanted(member.name):
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    kept.replace(path)


def test_missing_blob_in_oci_archive_names_its_digest(sample, tmp_path):
    ref = parse(f"oci-archive:{tmp_path / 'img.tar'}")
    archive.write(sample, ref)
    digest = sample.layers[1].digest
    _without_member(ref.path, lambda name: name.endswith(digest.hex))
    with pytest.raises(ImageNotFound) as err:
        archive.read(ref, BlobStore(tmp_path / "s"))
    assert str(digest) in err.value.message and err.value.hint


def test_missing_layer_in_docker_archive_names_it(sample, tmp_path):
    ref = parse(f"docker-archive:{tmp_path / 'img.tar'}")
    archive.write(sample, ref)
    diff_id = sample.layers[0].diff_id
    _without_member(ref.path, lambda name: name.startswith(diff_id.hex))
    with pytest.raises(ImageNotFound) as err:
        archive.read(ref, BlobStore(tmp_path / "s"))
    assert str(diff_id) in err.value.message and "layer 0" in err.value.message


def test_missing_blob_in_layout_names_its_digest(sample, tmp_path):
    root = tmp_path / "lay"
    layout.write(sample, _layout(f"oci:{root}:v1"))
    digest = sample.layers[0].digest
    (root / "blobs" / "sha256" / digest.hex).unlink()
    with pytest.raises(ImageNotFound) as err:
        layout.read(_layout(f"oci:{root}:v1"), BlobStore(tmp_path / "s"))
    assert f"blob {digest} is missing" in err.value.message and err.value.hint


def test_docker_archive_manifest_of_the_wrong_shape_is_one_error(sample, tmp_path):
    import io
    import tarfile

    path = tmp_path / "img.tar"
    with tarfile.open(path, "w") as tar:
        for body in [b'{"Config": 1}']:
            info = tarfile.TarInfo("manifest.json")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    with pytest.raises(ImageError, match=r"manifest\.json"):
        archive.read(parse(f"docker-archive:{path}"), BlobStore(tmp_path / "s"))
