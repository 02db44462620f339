import hashlib

import pytest

from sconify.errors import ImageError
from sconify.image import Digest

HEX = hashlib.sha256(b"abc").hexdigest()


def test_of_hashes_bytes():
    d = Digest.of(b"abc")
    assert d == f"sha256:{HEX}"
    assert d.hex == HEX
    assert d.algorithm == "sha256"
    assert d.short == HEX[:12]
    assert isinstance(d, str)


def test_parse_accepts_and_returns_same_value():
    assert Digest.parse(f"sha256:{HEX}") == Digest.of(b"abc")
    assert Digest.parse(Digest.of(b"abc")) is not None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        HEX,
        f"sha256:{HEX.upper()}",
        f"sha256:{HEX[:-1]}",
        f"sha512:{HEX}",
        f"sha256:{HEX} ",
        f"sha256:{HEX}\n",
    ],
)
def test_parse_rejects_malformed(bad):
    with pytest.raises(ImageError, match="invalid digest") as err:
        Digest.parse(bad)
    assert "64 lowercase hex" in (err.value.hint or "")


def test_of_file_matches_of(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"x" * 3_000_000)
    assert Digest.of_file(p) == Digest.of(b"x" * 3_000_000)
