"""What the CAS client API answers, shared by the server and the client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sconify.errors import ServiceError


def _field(body: Any, key: str, kind: type) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get(key), kind):
        raise ServiceError(
            f"the CAS answered without a valid {key!r}",
            hint="is the address a sconify CAS of a compatible version?",
        )
    return body[key]


@dataclass(frozen=True)
class CasVersion:
    """``GET /v1/version``."""

    version: str
    cas_key_hash: str
    enclave_port: int

    def to_json(self) -> dict[str, Any]:
        """The response body."""
        return {
            "cas_key_hash": self.cas_key_hash,
            "enclave_port": self.enclave_port,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, body: Any) -> CasVersion:
        """Parse a response body."""
        return cls(
            version=_field(body, "version", str),
            cas_key_hash=_field(body, "cas_key_hash", str),
            enclave_port=_field(body, "enclave_port", int),
        )


@dataclass(frozen=True)
class SessionRecord:
    """``GET /v1/sessions/<name>``: the stored YAML text of one version."""

    name: str
    hash: str
    session: str
    predecessor: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The response body."""
        return {
            "hash": self.hash,
            "name": self.name,
            "predecessor": self.predecessor,
            "session": self.session,
        }

    @classmethod
    def from_json(cls, body: Any) -> SessionRecord:
        """Parse a response body."""
        predecessor = body.get("predecessor") if isinstance(body, dict) else None
        return cls(
            name=_field(body, "name", str),
            hash=_field(body, "hash", str),
            session=_field(body, "session", str),
            predecessor=predecessor if isinstance(predecessor, str) else None,
        )
