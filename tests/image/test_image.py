import json

import pytest

from sconify.errors import DigestMismatch, ImageError
from sconify.image import BlobStore, Compression, Descriptor, Digest, Image, ImageConfig, Layer
from sconify.image import mediatypes as mt
from tests.support.layers import Entry, make_layer


@pytest.fixture
def store(tmp_path):
    return BlobStore(tmp_path / "store")


@pytest.fixture
def layers(store, tmp_path):
    return [
        make_layer(store, tmp_path, [Entry("a", data=b"one")]),
        make_layer(store, tmp_path, [Entry("b", data=b"two")], Compression.ZSTD),
    ]


def _image(layers):
    return Image(ImageConfig.new(cmd=["/a"]), ()).append_layers(layers)


def test_manifest_names_config_and_layers(layers):
    img = _image(layers)
    img.validate(deep=True)
    m = img.manifest()
    assert m["schemaVersion"] == 2 and m["mediaType"] == mt.OCI_MANIFEST
    assert m["config"] == img.config_descriptor().to_json()
    assert m["config"]["mediaType"] == mt.OCI_CONFIG
    assert m["config"]["digest"] == str(Digest.of(img.config_bytes()))
    assert [entry["digest"] for entry in m["layers"]] == [str(x.digest) for x in layers]
    assert img.digest() == Digest.of(img.manifest_bytes())
    assert json.loads(img.manifest_bytes()) == m
    assert img.config.diff_ids == tuple(x.diff_id for x in layers)
    assert len(img.config.history) == 2
    assert img.size() == len(img.manifest_bytes()) + len(img.config_bytes()) + sum(
        x.size for x in layers
    )


def test_raw_bytes_are_kept_until_changed(layers):
    built = _image(layers)
    # Same content, other formatting: a registry's bytes must survive a copy untouched.
    raw_manifest = json.dumps(built.manifest(), indent=3).encode()
    raw_config = json.dumps(json.loads(built.config_bytes()), indent=2).encode()
    manifest = json.loads(raw_manifest)
    manifest["config"]["digest"] = str(Digest.of(raw_config))
    manifest["config"]["size"] = len(raw_config)
    raw_manifest = json.dumps(manifest, indent=3).encode()
    img = Image.from_raw(raw_manifest, raw_config, layers)
    img.validate(deep=True)
    assert img.manifest_bytes() == raw_manifest and img.config_bytes() == raw_config
    assert img.digest() == Digest.of(raw_manifest)
    changed = img.with_config(img.config.replace(user="app"))
    assert changed.raw_manifest is None and changed.raw_config is None
    assert changed.digest() != img.digest()
    changed.validate()
    assert img.with_layers(layers[:1]).raw_manifest is None


def test_from_raw_refuses_a_config_that_does_not_match(layers):
    img = _image(layers)
    with pytest.raises(DigestMismatch, match="config hashes to"):
        Image.from_raw(img.manifest_bytes(), img.config_bytes() + b" ", layers)


def test_with_layers_keeps_diff_ids_in_step(layers):
    img = _image(layers).with_layers(layers[:1])
    assert img.config.diff_ids == (layers[0].diff_id,)
    with pytest.raises(ImageError, match="history has 2 non-empty entries for 1 layers"):
        img.validate()
    fixed = img.with_config(img.config.replace(history=img.config.history[:1]))
    fixed.validate()


def test_validate_finds_diff_id_mismatch(layers):
    img = _image(layers)
    bad = img.with_config(img.config.replace(diff_ids=[layers[1].diff_id, layers[0].diff_id]))
    with pytest.raises(ImageError, match="config lists diff_ids"):
        bad.validate()


def test_deep_validate_finds_corrupt_blob_and_wrong_diff_id(layers, store):
    img = _image(layers)
    wrong = Layer(layers[0].descriptor, Digest.of(b"not the tar"), layers[0].path)
    with pytest.raises(DigestMismatch, match="its diff_id is"):
        img.with_layers([wrong, layers[1]]).validate(deep=True)
    data = bytearray(layers[1].path.read_bytes())
    data[-1] ^= 0xFF
    layers[1].path.write_bytes(bytes(data))
    with pytest.raises(
        DigestMismatch, match=f"layer 1 blob .* hashes to .*, expected {layers[1].digest}"
    ):
        img.validate(deep=True)


def test_docker_manifest_cannot_hold_zstd(layers):
    img = _image(layers).with_manifest_media_type(mt.DOCKER_MANIFEST)
    assert img.config_descriptor().media_type == mt.DOCKER_CONFIG
    with pytest.raises(ImageError, match="zstd-compressed inside a Docker schema2"):
        img.validate()
    img.as_oci().validate()


def test_as_oci_renames_docker_types(layers, store):
    docker_layer = layers[0].with_descriptor(
        Descriptor(mt.DOCKER_LAYER_GZIP, layers[0].digest, layers[0].size)
    )
    img = Image(ImageConfig.new(), (), mt.DOCKER_MANIFEST).append_layers([docker_layer])
    img.validate(deep=True)
    oci = img.as_oci()
    assert oci.manifest_media_type == mt.OCI_MANIFEST
    assert oci.layers[0].media_type == mt.OCI_LAYER_GZIP
    assert oci.layers[0].digest == docker_layer.digest
    assert oci.config_bytes() == img.config_bytes()
    assert oci.as_oci() is oci


def test_append_layers_needs_one_history_entry_each(layers):
    with pytest.raises(ImageError, match="1 history entries for 2 layers"):
        Image(ImageConfig.new(), ()).append_layers(layers, history=[{"created_by": "x"}])


def test_annotations_and_unsupported_types(layers):
    img = _image(layers).with_annotations({"org.example": "1"})
    assert img.manifest()["annotations"] == {"org.example": "1"}
    with pytest.raises(ImageError, match="unsupported manifest media type"):
        Image(ImageConfig.new(), (), mt.OCI_INDEX)
    odd = layers[0].with_descriptor(
        Descriptor("application/x-odd", layers[0].digest, layers[0].size)
    )
    with pytest.raises(ImageError, match="unsupported media type"):
        _image([odd]).validate()


def test_assemble_takes_diff_ids_from_the_config(layers):
    img = _image(layers)
    paths = {x.digest: x.path for x in layers}
    back = Image.assemble(img.manifest_bytes(), img.config_bytes(), lambda d: paths[d.digest])
    assert back.layers == img.layers and back.digest() == img.digest()
    short = img.with_config(img.config.replace(diff_ids=[layers[0].diff_id]))
    with pytest.raises(ImageError, match="1 diff_ids for 2 layers"):
        Image.assemble(img.manifest_bytes(), short.config_bytes(), lambda d: paths[d.digest])
