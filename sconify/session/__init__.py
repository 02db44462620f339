"""Sessions: the policy a CAS enforces (SCONE session language v0.3, sconify's subset).

``load_session(yaml_text)`` validates a description into a :class:`Session`;
``session_hash(session)`` names one version of it; ``service_config`` renders what an attested
service receives, with ``$$SCONE::name[:format]$$`` placeholders substituted.
"""

from __future__ import annotations

from sconify.session.config import service_config
from sconify.session.hashing import session_hash
from sconify.session.lifecycle import secret_values
from sconify.session.load import load_session
from sconify.session.model import (
    ANY,
    CREATOR,
    NONE,
    AccessPolicy,
    Image,
    InjectionFile,
    SecurityPolicy,
    Service,
    Session,
)
from sconify.session.placeholders import substitute_bytes, substitute_text
from sconify.session.secrets import SECRET_KINDS, SecretSpec, SecretValue

__all__ = [
    "ANY",
    "CREATOR",
    "NONE",
    "SECRET_KINDS",
    "AccessPolicy",
    "Image",
    "InjectionFile",
    "SecretSpec",
    "SecretValue",
    "SecurityPolicy",
    "Service",
    "Session",
    "load_session",
    "secret_values",
    "service_config",
    "session_hash",
    "substitute_bytes",
    "substitute_text",
]
