"""The enclave side of attestation, in Python: what the shim does, for tests and debugging.

::

    config = fetch_config(cas_enclave_addr, cas_key_hash, las_addr, "ns/session/service",
                          measurement)
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from sconify.cas import pinning
from sconify.cas.client import split_address
from sconify.crypto.jwe import TeePrivateKey, TeePublicKey, open_sealed
from sconify.errors import CasRefused, ServiceError
from sconify.las.client import LasClient, SignedQuote
from sconify.las.quote import bind_report_data

DEFAULT_ENCLAVE_PORT = 18765


class EnclaveClient:
    """Talks to the enclave API of a CAS whose key hash is known (as the shim's config pins)."""

    def __init__(self, address: str, *, cas_key_hash: str, timeout: float = 20.0) -> None:
        self.host, self.port = split_address(address, DEFAULT_ENCLAVE_PORT)
        self.address = address
        cert_pem = pinning.fetch_certificate(self.host, self.port, timeout)
        actual = pinning.certificate_key_hash(cert_pem)
        if actual != cas_key_hash.lower():
            raise ServiceError(
                f"the CAS at {address} presents key hash {actual}, not {cas_key_hash}",
                hint="the image was converted for another CAS",
            )
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._http = httpx.Client(
            base_url=f"https://{host}:{self.port}",
            verify=pinning.pinned_context(cert_pem),
            timeout=timeout,
        )

    def challenge(self, config_id: str) -> str:
        """A fresh nonce for ``config_id``."""
        body = self._post("/v1/enclave/challenge", {"config_id": config_id})
        return str(body["nonce"])

    def attest(
        self, config_id: str, nonce: str, quote: SignedQuote, tee_public: TeePublicKey
    ) -> str:
        """Present the quote; returns the compact JWE sealed to ``tee_public``."""
        body = self._post(
            "/v1/enclave/attest",
            {
                "config_id": config_id,
                "nonce": nonce,
                **quote.to_attest_fields(),
                "tee_pubkey": tee_public.to_jwk(),
            },
        )
        return str(body["config"])

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        try:
            response = self._http.post(path, json=payload)
        except httpx.HTTPError as err:
            raise ServiceError(
                f"cannot reach the CAS enclave API at {self.address}: {err}",
                hint="check SCONE_CAS_ADDR; is the CAS running (`sconify dev status`)?",
            ) from None
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise CasRefused(
                    f"attestation refused ({error['check']}): {error['message']}",
                    status=response.status_code,
                    check=error["check"],
                    hint=error.get("hint"),
                )
            except (ValueError, KeyError, TypeError):
                raise CasRefused(
                    f"attestation refused: HTTP {response.status_code}",
                    status=response.status_code,
                ) from None
        return response.json()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()


def fetch_config(
    cas_address: str,
    cas_key_hash: str,
    las_address: str,
    config_id: str,
    measurement: str,
    *,
    debug: bool = False,
) -> dict[str, Any]:
    """Attest as ``measurement`` and return the decrypted service configuration."""
    enclave = EnclaveClient(cas_address, cas_key_hash=cas_key_hash)
    try:
        tee = TeePrivateKey.generate()
        nonce = enclave.challenge(config_id)
        report_data = bind_report_data(nonce, tee.public_key.thumbprint())
        quote = LasClient(las_address).quote(measurement, report_data, debug=debug)
        token = enclave.attest(config_id, nonce, quote, tee.public_key)
    finally:
        enclave.close()
    config: dict[str, Any] = json.loads(open_sealed(token, tee))
    return config
