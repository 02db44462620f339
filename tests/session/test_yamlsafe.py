"""The bounded YAML loader: what an untrusted session text cannot make the CAS do."""

from __future__ import annotations

import resource
import time

import pytest

from sconify.errors import SessionError
from sconify.session import load_session
from sconify.session.yamlsafe import DEFAULT_LIMITS, YamlLimits, load_untrusted_yaml


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs": each level repeats the one before ``width`` times (9**9 strings)."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def _refused(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> SessionError:
    with pytest.raises(SessionError) as caught:
        load_untrusted_yaml(text, limits)
    return caught.value


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    refusal = _refused(alias_bomb())
    assert "more than 50000 nodes" in refusal.message
    assert time.monotonic() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024  # KiB
    with pytest.raises(SessionError):
        load_session(alias_bomb())


def test_aliases_within_the_bound_are_read() -> None:
    loaded = load_untrusted_yaml("a: &shared [x, y]\nb: *shared\nc: {<<: {k: v}, z: 1}\n")
    assert loaded == {"a": ["x", "y"], "b": ["x", "y"], "c": {"k": "v", "z": 1}}


def test_aliases_count_as_what_they_repeat() -> None:
    text = "a: &a [1, 2, 3, 4]\nb: [*a, *a, *a]\n"  # 1 + 5 + (1 + 3 x 5) + 2 keys = 24
    assert load_untrusted_yaml(text, YamlLimits(max_nodes=24))
    assert "more than 23 nodes" in _refused(text, YamlLimits(max_nodes=23)).message


def test_a_recursive_alias_is_refused() -> None:
    assert "contains it" in _refused("a: &a [1, *a]\n").message


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,
        "{a: " * 5000 + "1" + "}" * 5000,
        "".join(f"{'  ' * depth}k{depth}:\n" for depth in range(200)) + "  " * 200 + "v\n",
    ],
    ids=["flow-sequences", "flow-mappings", "block-mappings"],
)
def test_deep_nesting_is_refused(text: str) -> None:
    refusal = _refused(text)
    assert "nest" in refusal.message


def test_a_lone_surrogate_is_refused() -> None:
    for escaped in ('"\\ud800"', '"\\uDC00x"', '"\\U0000D800"'):
        refusal = _refused(f"name: {escaped}\n")
        assert "line 1" in refusal.message or "Unicode" in refusal.message


def test_size_is_bounded() -> None:
    text = "a: " + "x" * (DEFAULT_LIMITS.max_bytes) + "\n"
    assert "more than" in _refused(text).message


def test_too_many_plain_nodes_are_refused() -> None:
    text = "a: [" + ", ".join(["x"] * 60_000) + "]\n"
    assert "more than 50000 nodes" in _refused(text).message


def test_unconvertible_numbers_are_session_errors() -> None:
    assert "quote the value" in (_refused("a: " + "1" * 5000 + "\n").hint or "")


def test_strict_rules_still_hold() -> None:
    assert "appears twice" in _refused("a: 1\na: 2\n").message
    loaded = load_untrusted_yaml("n: 0400\nf: 0.30\n")
    assert loaded["n"].source == "0400" and loaded["f"].source == "0.30"
    assert "not valid YAML" in _refused("a: [\n").message
    assert "not valid YAML" in _refused("a: !!python/object:os.system x\n").message
