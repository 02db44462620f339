"""Hostile JSON documents (configs, manifests, indexes): one ImageError each, never a traceback."""

from __future__ import annotations

import pytest

from sconify.errors import ImageError
from sconify.image import ImageConfig
from sconify.image.image import parse_manifest
from sconify.image.index import Index
from sconify.image.jsondoc import MAX_DEPTH, load_document

DEEP = b"[" * 100_000 + b"]" * 100_000
NOT_TOO_DEEP = b'{"a":' * 900 + b"1" + b"}" * 900

HOSTILE = {
    "nested-100000-deep": (DEEP, "too deeply"),
    "nested-900-deep": (NOT_TOO_DEEP, f"more than {MAX_DEPTH} levels deep"),
    "lone-surrogate": (b'{"schemaVersion":2,"annotations":{"a":"\\ud800"}}', "surrogate"),
    "lone-surrogate-key": (b'{"schemaVersion":2,"\\udfff":1}', "surrogate"),
    "nan": (b'{"schemaVersion":2,"size":NaN}', "not valid JSON"),
    "huge-number": (b'{"schemaVersion":2,"size":' + b"9" * 5000 + b"}", "not valid JSON"),
    "not-utf8": (b'{"schemaVersion":2,"x":"\xe9"}', "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_documents_are_one_image_error(case: str) -> None:
    raw, expected = HOSTILE[case]
    for parse in (ImageConfig.from_bytes, parse_manifest, Index.from_bytes):
        with pytest.raises(ImageError) as caught:
            parse(raw)
        assert expected in caught.value.message and caught.value.hint


def test_ordinary_documents_still_parse() -> None:
    assert load_document(b'{"a":[{"b":"caf\xc3\xa9"}]}', "doc", hint="h") == {"a": [{"b": "café"}]}
