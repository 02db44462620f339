"""JSON from untrusted bytes: one JsonRefused with a reason for each hostile document."""

from __future__ import annotations

import pytest

from sconify.boundedjson import JsonRefused, loads

HOSTILE = {
    "nested-100000-deep": (b"[" * 100_000 + b"]" * 100_000, "too deeply to be read"),
    "nested-over-the-limit": (b'{"a":' * 9 + b"1" + b"}" * 9, "more than 8 levels deep"),
    "lone-surrogate": (b'{"a":"\\ud800"}', "lone surrogate"),
    "lone-surrogate-key": (b'{"\\udfff":1}', "lone surrogate"),
    "lone-surrogate-deep-in-a-list": (b'[1,[2,["x\\udc00"]]]', "lone surrogate"),
    "nan": (b'{"size":NaN}', "not valid JSON"),
    "infinity": (b"[-Infinity]", "not valid JSON"),
    "huge-number": (b"9" * 5000, "not valid JSON"),
    "not-utf8": (b'{"x":"\xe9"}', "not valid JSON"),
    "truncated": (b'{"a":', "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_documents_are_refused_with_a_reason(case: str) -> None:
    raw, reason = HOSTILE[case]
    with pytest.raises(JsonRefused, match=reason):
        loads(raw, max_depth=8)


def test_documents_within_the_bounds_parse() -> None:
    at_the_limit = b'{"a":' * 7 + b'["caf\xc3\xa9", "\\u00e9\\ud83d\\ude00"]' + b"}" * 7
    value = loads(at_the_limit, max_depth=8)
    for _ in range(7):
        value = value["a"]
    assert value == ["café", "é\U0001f600"]
    # many brackets side by side are not depth
    assert loads(b"[" + b",".join([b"[]"] * 100) + b"]", max_depth=2) == [[]] * 100
