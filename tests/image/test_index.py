import json

import pytest

from sconify.errors import ImageError, ImageNotFound
from sconify.image import Descriptor, Digest, Index, Platform
from sconify.image import mediatypes as mt


def _entry(tag, platform=None, annotations=None, media_type=mt.OCI_MANIFEST):
    return Descriptor(media_type, Digest.of(tag.encode()), 10, annotations, platform)


def _index(*entries):
    return Index.from_bytes(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_INDEX,
                "manifests": [e.to_json() for e in entries],
            }
        ).encode()
    )


AMD = _entry("amd", Platform("linux", "amd64"))
ARM = _entry("arm", Platform("linux", "arm64", "v8"))
ATTEST = _entry(
    "att",
    Platform("unknown", "unknown"),
    {"vnd.docker.reference.type": "attestation-manifest"},
)


def test_default_picks_linux_amd64():
    assert _index(ARM, AMD, ATTEST).pick() == AMD


def test_pick_a_given_platform():
    idx = _index(AMD, ARM)
    assert idx.pick(Platform.parse("linux/arm64")) == ARM
    assert idx.pick(Platform.parse("linux/arm64/v8")) == ARM


def test_no_match_names_what_is_offered():
    with pytest.raises(ImageNotFound) as err:
        _index(AMD, ARM, ATTEST).pick(Platform.parse("linux/s390x"))
    assert "linux/s390x" in err.value.message
    assert "linux/amd64" in err.value.message and "linux/arm64/v8" in err.value.message
    assert "unknown" not in err.value.message


def test_single_entry_without_platform_is_taken():
    plain = _entry("plain")
    assert _index(plain).pick() == plain
    with pytest.raises(ImageNotFound):
        _index(plain, _entry("other")).pick()


def test_raw_bytes_and_media_type_kept():
    idx = _index(AMD)
    assert idx.raw is not None and Index.from_bytes(idx.raw) == idx
    assert idx.media_type == mt.OCI_INDEX


def test_schema1_is_refused():
    with pytest.raises(ImageError, match="schemaVersion 2"):
        Index.from_bytes(b'{"schemaVersion": 1}')
