"""The configuration one attested service receives (contracts.md section 7.5)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from sconify.errors import SessionError
from sconify.session.model import Session
from sconify.session.placeholders import substitute_bytes, substitute_text
from sconify.session.secrets import SecretValue


def service_config(
    session: Session,
    service_name: str,
    secrets: Mapping[str, SecretValue],
    *,
    session_hash: str,
) -> dict[str, Any]:
    """Build the JWE plaintext for ``service_name`` with every placeholder substituted.

    Absent ``fspf_*`` fields are sent as ``""`` (the shim then has no protected volume).
    """
    service = session.service(service_name)
    if service is None:
        raise SessionError(f"session {session.name!r} has no service {service_name!r}")
    image = session.image(service.image_name) if service.image_name else None
    files = image.injection_files if image else ()
    return {
        "command": [substitute_text(arg, secrets) for arg in service.command],
        "environment": {k: substitute_text(v, secrets) for k, v in service.environment.items()},
        "fspf_key": substitute_text(service.fspf_key, secrets) if service.fspf_key else "",
        "fspf_path": service.fspf_path or "",
        "fspf_tag": substitute_text(service.fspf_tag, secrets) if service.fspf_tag else "",
        "injection_files": [
            {
                "content_b64": base64.b64encode(substitute_bytes(item.content, secrets)).decode(),
                "mode": item.permission,
                "path": item.path,
            }
            for item in files
        ],
        "pwd": service.pwd,
        "session_hash": session_hash,
    }
