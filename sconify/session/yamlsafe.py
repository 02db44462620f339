"""A YAML loader for text from untrusted callers: size, nesting and alias expansion are bounded.

The CAS parses session descriptions that anyone with a client certificate can send. Plain
``yaml.safe_load`` builds plain data only, but it lets a 215 KB document of nested aliases
("billion laughs") stand for billions of nodes, nests as deep as the text allows (ending in a
``RecursionError``), and turns ``"\\ud800"`` into a string that no UTF-8 encoder accepts.

:func:`load_untrusted_yaml` refuses all of that with one :class:`SessionError` while the
document is being composed, before any object is built:

- the text is at most :attr:`YamlLimits.max_bytes` of UTF-8;
- a node is at most :attr:`YamlLimits.max_depth` collections deep;
- the document, with every alias counted as the whole subtree it stands for, holds at most
  :attr:`YamlLimits.max_nodes` nodes (aliases stay allowed: a session may share a list of
  measurements between services, but only as far as its expansion fits the bound);
- an alias to a node that is still being composed (a recursive structure) is refused;
- a scalar must be encodable as UTF-8 (no lone surrogates from ``\\u`` escapes);
- numbers too long for Python to convert are refused instead of raising ``ValueError``.

It reads exactly what the strict session reader (:mod:`sconify.session._yaml`) reads otherwise:
repeated keys refused, numbers keeping their spelling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import yaml
from yaml._yaml import CParser

from sconify.errors import SessionError
from sconify.session._yaml import _StrictLoader


@dataclass(frozen=True)
class YamlLimits:
    """Bounds of one document. The defaults fit every real session with a wide margin (a
    session with 1,500 secrets has about 10,000 nodes and a depth of 5)."""

    max_bytes: int = 1024 * 1024
    max_depth: int = 64
    max_nodes: int = 50_000


DEFAULT_LIMITS = YamlLimits()

_HINT_SIZE = "a session is configuration: keep large data out of it"


class _BoundedLoader(CParser, _StrictLoader):
    """The strict loader, counting nodes (aliases by their expansion) and depth as it composes.

    libyaml (``CParser``) scans and parses, ten times faster than PyYAML's Python scanner; the
    nodes are composed here, in Python, where they can be counted (libyaml's own composer
    recurses in C without a bound).
    """

    def __init__(self, text: str, limits: YamlLimits) -> None:
        CParser.__init__(self, text)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._limits = limits
        self._depth = 0
        self._total = 0
        # Expanded size of every finished anchored node; an anchor without an entry is open.
        self._anchored_sizes: dict[int, int] = {}
        # One running count per node being composed: what its children expanded to so far.
        self._open_counts: list[int] = []

    def get_single_node(self) -> yaml.Node | None:
        """Compose the document with :meth:`compose_node` below, not libyaml's composer."""
        return yaml.composer.Composer.get_single_node(self)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event: Any = self.peek_event()
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            node: yaml.Node = cast(yaml.Node, super().compose_node(parent, index))
            size = self._anchored_sizes.get(id(node))
            if size is None:
                raise _refusal(mark, "an alias refers to the node that contains it", "")
            self._charge(size, mark)
            if self._open_counts:
                self._open_counts[-1] += size
            return node
        anchor = event.anchor
        self._depth += 1
        if self._depth > self._limits.max_depth:
            raise _refusal(
                mark,
                f"the document is nested more than {self._limits.max_depth} levels deep",
                "flatten the structure",
            )
        self._open_counts.append(0)
        try:
            node = cast(yaml.Node, super().compose_node(parent, index))
        finally:
            self._depth -= 1
            children = self._open_counts.pop()
        size = 1 + children
        if isinstance(node, yaml.ScalarNode) and not node.value.isascii():
            _check_encodable(node)
        if self._open_counts:
            self._open_counts[-1] += size
        if anchor is not None:
            self._anchored_sizes[id(node)] = size
        self._charge(1, mark)
        return node

    def _charge(self, nodes: int, mark: Any) -> None:
        self._total += nodes
        if self._total > self._limits.max_nodes:
            raise _refusal(
                mark,
                f"the document stands for more than {self._limits.max_nodes} nodes "
                "(aliases count as the whole subtree they repeat)",
                "write the values out, or share less through anchors and aliases",
            )


def _check_encodable(node: yaml.ScalarNode) -> None:
    try:
        node.value.encode("utf-8")
    except UnicodeEncodeError:
        raise _refusal(
            node.start_mark,
            "a string holds a lone surrogate (a \\u escape of half a character)",
            "escape characters outside the BMP as \\U0001XXXX, or write them as UTF-8",
        ) from None


def _refusal(mark: Any, message: str, hint: str) -> SessionError:
    return SessionError(f"line {mark.line + 1}: {message}", hint=hint or None)


def load_untrusted_yaml(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> Any:
    """Parse one YAML document within ``limits``; every refusal is a :class:`SessionError`."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise SessionError(
            f"the session description is {size} bytes, more than {limits.max_bytes}",
            hint=_HINT_SIZE,
        )
    loader = _BoundedLoader(text, limits)
    try:
        return loader.get_single_data()
    except SessionError:
        raise
    except yaml.YAMLError as err:
        raise SessionError(
            f"the session is not valid YAML: {err}", hint="check indentation and quoting"
        ) from None
    except (ValueError, OverflowError) as err:
        # e.g. an integer of more digits than int() converts, or a date out of range.
        raise SessionError(
            f"the session holds a value YAML cannot convert: {err}",
            hint="quote the value to keep it as text",
        ) from None
    except RecursionError:  # pragma: no cover - max_depth stops nesting long before
        raise SessionError("the session is nested too deeply", hint="flatten it") from None
    finally:
        loader.dispose()
