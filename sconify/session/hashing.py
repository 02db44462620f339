"""The session hash: the name of one version of a session.

``session_hash = hex(SHA-256(canonical JSON of Session.to_dict()))`` (contracts.md section 1).
The CLI and the CAS share this function, so ``sconify session hash FILE`` predicts the hash the
CAS answers. The hash covers the description only: values the CAS generates for secrets are not
part of it, and ``CREATOR`` is hashed as the word, not as a key.
"""

from __future__ import annotations

import hashlib

from sconify.canonical import canonical_json
from sconify.session.model import Session


def session_hash(session: Session) -> str:
    """Hex SHA-256 of the canonical JSON of the normalized description."""
    return hashlib.sha256(canonical_json(session.to_dict())).hexdigest()
