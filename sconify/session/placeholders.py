"""``$$SCONE::name[:format]$$`` placeholders: finding them and substituting secret values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sconify.errors import SessionError
from sconify.session.secrets import SecretValue

#: ``$$SCONE::name$$``, ``$$SCONE::name:hex$$``, ``$$SCONE::name:crt:der$$``,
#: ``$$SCONE::name:pkcs12-with-private-key$$``.
PLACEHOLDER = re.compile(
    r"\$\$SCONE::([A-Za-z0-9_\-.]{1,128})(?::([A-Za-z0-9][A-Za-z0-9-]*(?::[A-Za-z0-9]+)?))?\$\$"
)


@dataclass(frozen=True)
class Placeholder:
    """One reference to a secret, with the format it asks for (``None``: the kind's default)."""

    name: str
    fmt: str | None


def find_placeholders(text: str) -> list[Placeholder]:
    """All placeholders in ``text``, in order."""
    return [Placeholder(m.group(1), m.group(2)) for m in PLACEHOLDER.finditer(text)]


def is_whole_placeholder(text: str) -> bool:
    """Whether ``text`` is exactly one placeholder (as ``fspf_key`` may be)."""
    return PLACEHOLDER.fullmatch(text) is not None


def substitute_bytes(text: str, secrets: Mapping[str, SecretValue]) -> bytes:
    """Replace every placeholder with its secret rendered as bytes (for injection files)."""
    out = bytearray()
    position = 0
    for match in PLACEHOLDER.finditer(text):
        out += text[position : match.start()].encode("utf-8")
        out += _render(match, secrets)
        position = match.end()
    out += text[position:].encode("utf-8")
    return bytes(out)


def substitute_text(text: str, secrets: Mapping[str, SecretValue]) -> str:
    """Replace every placeholder with its secret rendered as text (command, env, keys)."""
    try:
        return substitute_bytes(text, secrets).decode("utf-8")
    except UnicodeDecodeError:
        raise SessionError(
            "a placeholder in a text field renders to bytes that are not UTF-8",
            hint="use :hex or :base64 for binary secrets outside injection files",
        ) from None


def _render(match: re.Match[str], secrets: Mapping[str, SecretValue]) -> bytes:
    name, fmt = match.group(1), match.group(2)
    secret = secrets.get(name)
    if secret is None:
        raise SessionError(
            f"placeholder refers to the unknown secret {name!r}",
            hint="declare it under secrets:",
        )
    if not secret.spec.knows_format(fmt):
        raise SessionError(f"placeholder for {name!r} asks for the unknown format {fmt!r}")
    return secret.spec.render(secret.value, fmt)
