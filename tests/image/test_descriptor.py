import pytest

from sconify.errors import ImageError
from sconify.image import Descriptor, Digest, Platform
from sconify.image import mediatypes as mt

D = Digest.of(b"x")


def test_round_trip_with_all_fields():
    d = Descriptor(
        mt.OCI_MANIFEST,
        D,
        12,
        annotations={"a": "b"},
        platform=Platform("linux", "arm64", "v8"),
        urls=("https://example.com/x",),
    )
    j = d.to_json()
    assert j == {
        "mediaType": mt.OCI_MANIFEST,
        "digest": str(D),
        "size": 12,
        "annotations": {"a": "b"},
        "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
        "urls": ["https://example.com/x"],
    }
    assert Descriptor.from_json(j) == d


def test_minimal_json_has_only_required_fields():
    assert Descriptor(mt.OCI_LAYER, D, 0).to_json() == {
        "mediaType": mt.OCI_LAYER,
        "digest": str(D),
        "size": 0,
    }


def test_digest_string_is_validated():
    d = Descriptor(mt.OCI_LAYER, str(D), 1)  # type: ignore[arg-type]
    assert isinstance(d.digest, Digest)
    with pytest.raises(ImageError):
        Descriptor(mt.OCI_LAYER, "sha256:nothex", 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [-1, 1.5, True, "3"])
def test_bad_sizes_are_refused(size):
    with pytest.raises(ImageError, match="invalid size"):
        Descriptor(mt.OCI_LAYER, D, size)


@pytest.mark.parametrize(
    "obj", [{"digest": str(D), "size": 1}, {"mediaType": "x", "size": 1}, "nope"]
)
def test_from_json_names_the_problem(obj):
    with pytest.raises(ImageError):
        Descriptor.from_json(obj)


def test_platform_parse_and_match():
    want = Platform.parse("linux/arm64")
    assert want.matches(Platform("linux", "arm64", "v8"))
    assert not Platform.parse("linux/arm64/v7").matches(Platform("linux", "arm64", "v8"))
    assert not want.matches(Platform("linux", "amd64"))
    assert str(Platform.parse("linux/arm/v7")) == "linux/arm/v7"
    for bad in ("linux", "linux//x", "a/b/c/d"):
        with pytest.raises(ImageError, match="invalid platform"):
            Platform.parse(bad)


def test_descriptors_are_hashable():
    assert len({Descriptor(mt.OCI_LAYER, D, 1, annotations={"a": "b"})}) == 1


def test_media_type_helpers():
    assert mt.is_index(mt.OCI_INDEX) and mt.is_index(mt.DOCKER_MANIFEST_LIST)
    assert mt.is_manifest(mt.DOCKER_MANIFEST + "; charset=utf-8")
    assert not mt.is_manifest(mt.OCI_INDEX)
    assert mt.is_layer(mt.DOCKER_LAYER_GZIP) and not mt.is_layer(mt.OCI_CONFIG)
    assert mt.to_oci(mt.DOCKER_LAYER_GZIP) == mt.OCI_LAYER_GZIP
    assert mt.to_oci(mt.OCI_LAYER_ZSTD) == mt.OCI_LAYER_ZSTD
    assert mt.config_type_for(mt.DOCKER_MANIFEST) == mt.DOCKER_CONFIG
    assert mt.config_type_for(mt.OCI_MANIFEST) == mt.OCI_CONFIG
