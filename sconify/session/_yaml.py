"""A strict YAML reader for session descriptions.

Two things plain ``yaml.safe_load`` gets wrong for a security policy: a repeated key silently
wins (two ``update:`` lines), and scalars that look like numbers lose their spelling (a hex
measurement made only of digits, ``0400`` read as octal, ``version: 0.3`` as a float). Here a
repeated key is an error, and numbers keep the text they were written as (``.source``).
Documents are read through :mod:`sconify.session.yamlsafe`, which adds the bounds that text
from untrusted callers needs.
"""

from __future__ import annotations

from typing import Any

import yaml

from sconify.errors import SessionError


class YamlInt(int):
    """An integer that remembers how it was written."""

    source: str


class YamlFloat(float):
    """A float that remembers how it was written."""

    source: str


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and keeps the source text of numbers."""


def _construct_int(loader: _StrictLoader, node: yaml.ScalarNode) -> YamlInt:
    value = YamlInt(yaml.SafeLoader.construct_yaml_int(loader, node))
    value.source = str(node.value)
    return value


def _construct_float(loader: _StrictLoader, node: yaml.ScalarNode) -> YamlFloat:
    value = YamlFloat(yaml.SafeLoader.construct_yaml_float(loader, node))
    value.source = str(node.value)
    return value


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise SessionError(
                f"line {key_node.start_mark.line + 1}: keys must be strings, not {key!r}",
                hint="quote the key",
            )
        if key in result:
            raise SessionError(
                f"line {key_node.start_mark.line + 1}: the key {key!r} appears twice in one map",
                hint="keep exactly one; a repeated key would silently override the first",
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_StrictLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
