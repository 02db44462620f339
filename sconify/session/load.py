"""Reading session descriptions from YAML text."""

from __future__ import annotations

from sconify.errors import SessionError
from sconify.session._tree import checked_tree
from sconify.session.model import Session
from sconify.session.yamlsafe import DEFAULT_LIMITS, load_untrusted_yaml

#: Larger descriptions are refused (they are configuration, not data).
MAX_SESSION_BYTES = DEFAULT_LIMITS.max_bytes


def load_session(yaml_text: str) -> Session:
    """Parse and validate a session description; errors name the offending field path.

    The text may come from anyone who reaches the CAS: it is read within the bounds of
    :mod:`sconify.session.yamlsafe` (size, nesting, alias expansion), then checked for what
    no session holds (lone surrogates, nesting deeper than any field) with the place named.
    """
    raw = checked_tree(load_untrusted_yaml(yaml_text))
    if raw is None:
        raise SessionError(
            "the session description is empty", hint="give at least name and version"
        )
    return Session.parse(raw)
