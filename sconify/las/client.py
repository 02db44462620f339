"""A small client of the LAS (the Python side of what the shim does)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx

from sconify.errors import ServiceError


@dataclass(frozen=True)
class QePublicKey:
    """The LAS quoting key: its id (hex SHA-256 of the SPKI DER) and PEM."""

    key_id: str
    pem: str


@dataclass(frozen=True)
class SignedQuote:
    """A quote as the LAS returns it; ``quote``/``signature`` are raw bytes."""

    quote: bytes
    signature: bytes
    qe_key_id: str
    qe_pubkey: str

    def to_attest_fields(self) -> dict[str, str]:
        """The ``quote``, ``signature`` and ``qe_pubkey`` members of an attest request."""
        return {
            "qe_pubkey": self.qe_pubkey,
            "quote": base64.b64encode(self.quote).decode("ascii"),
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }


class LasClient:
    """Talks plain HTTP to a LAS at ``host:port``."""

    def __init__(self, address: str, *, timeout: float = 10.0) -> None:
        self.address = address
        self._base = address if "://" in address else f"http://{address}"
        self._timeout = timeout
        # Over plain HTTP (redirects are not followed) no certificate is ever checked; httpx
        # would still load certifi's CAs for each request (~20 ms).
        self._verify = self._base.startswith("https://")

    def qe_pubkey(self) -> QePublicKey:
        """``GET /v1/qe-pubkey``."""
        body = self._request("GET", "/v1/qe-pubkey")
        return QePublicKey(key_id=body["key_id"], pem=body["pem"])

    def quote(self, measurement: str, report_data: bytes, *, debug: bool = False) -> SignedQuote:
        """``POST /v1/quote`` for a 64-byte ``report_data``."""
        body = self._request(
            "POST",
            "/v1/quote",
            json={"debug": debug, "measurement": measurement, "report_data": report_data.hex()},
        )
        return SignedQuote(
            quote=base64.b64decode(body["quote"]),
            signature=base64.b64decode(body["signature"]),
            qe_key_id=body["qe_key_id"],
            qe_pubkey=body["qe_pubkey"],
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = httpx.request(
                method, self._base + path, timeout=self._timeout, verify=self._verify, **kwargs
            )
        except httpx.HTTPError as err:
            raise ServiceError(
                f"cannot reach the LAS at {self.address}: {err}",
                hint="start one with `sconify dev up` (or `sconify las serve`), or check --las",
            ) from None
        if response.status_code >= 400:
            raise ServiceError(
                f"the LAS at {self.address} refused {method} {path}: {_error_text(response)}",
                hint="check the request; the LAS log says more",
            )
        try:
            return response.json()
        except ValueError:
            raise ServiceError(f"the LAS at {self.address} answered something not JSON") from None


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"
