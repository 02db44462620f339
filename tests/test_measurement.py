"""The measurement: canonical bytes and hash, checked against the vectors the shim also reads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from sconify.canonical import canonical_json

CASES = json.loads((Path(__file__).parent / "vectors" / "measurement" / "cases.json").read_text())


@pytest.mark.parametrize("case", CASES)
def test_vectors(case: dict[str, object]) -> None:
    canonical = canonical_json(case["fields"])
    assert canonical.decode() == case["canonical"]
    assert hashlib.sha256(canonical).hexdigest() == case["measurement"]


def test_canonical_json_escapes_only_what_it_must() -> None:
    assert canonical_json({"b": "<&>\u2028\u00e9", "a": '"\\\n\x01'}) == (
        '{"a":"\\"\\\\\\n\\u0001","b":"<&>\u2028\u00e9"}'.encode()
    )


def test_canonical_json_refuses_floats() -> None:
    with pytest.raises(TypeError):
        canonical_json({"a": 1.5})
