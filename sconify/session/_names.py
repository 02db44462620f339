"""Name grammars of the session language."""

from __future__ import annotations

import re

#: One segment of a session name (SCONE: ``[A-Za-z0-9_\-.~]{1,128}``).
NAME_SEGMENT = re.compile(r"[A-Za-z0-9_\-.~]{1,128}")
#: Service, image and secret names.
SERVICE_NAME = re.compile(r"[A-Za-z0-9_\-.~]{1,128}")
SECRET_NAME = re.compile(r"[A-Za-z0-9_\-.]{1,128}")


def valid_session_name(name: str) -> bool:
    """``a``, ``a/b``, ``a/b/c``...: segments of the SCONE grammar, none of them ``.``/``..``."""
    segments = name.split("/")
    return all(NAME_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments)


def parent_namespace(name: str) -> str | None:
    """``a/b`` for ``a/b/c``; ``None`` for a top-level name."""
    head, sep, _ = name.rpartition("/")
    return head if sep else None
