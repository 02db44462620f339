"""Reading session descriptions from YAML text."""

from __future__ import annotations

from sconify.errors import SessionError
from sconify.session._tree import MAX_NESTING, checked_tree
from sconify.session._yaml import load_yaml
from sconify.session.model import Session

#: Larger descriptions are refused (they are configuration, not data).
MAX_SESSION_BYTES = 1024 * 1024


def load_session(yaml_text: str) -> Session:
    """Parse and validate a session description; errors name the offending field path."""
    if len(yaml_text.encode("utf-8", "surrogatepass")) > MAX_SESSION_BYTES:
        raise SessionError(
            f"the session description is larger than {MAX_SESSION_BYTES} bytes",
            hint="keep large files out of injection_files",
        )
    try:
        raw = checked_tree(load_yaml(yaml_text))
        if raw is None:
            raise SessionError(
                "the session description is empty", hint="give at least name and version"
            )
        return Session.parse(raw)
    except RecursionError:
        # The YAML composer recurses once per level: a document nested deeper than Python's
        # stack allows fails there, before checked_tree can name the place.
        raise SessionError(
            "the session description is nested too deeply to be read",
            hint=f"no field of a session is nested more than {MAX_NESTING} levels: check the "
            "brackets and indentation",
        ) from None
