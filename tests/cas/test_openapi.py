"""The OpenAPI documents in docs/openapi/ against the real servers.

Each document is valid OpenAPI 3; the routes the aiohttp apps register are exactly the
documented ones; and real answers of a running CAS and LAS, through their real (TLS) APIs,
validate against the documented schema of their status code.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from aiohttp import web
from openapi_spec_validator import validate

from sconify.cas.app import create_api_app, create_enclave_app
from sconify.cas.attest import NonceBook
from sconify.cas.client import CasClient
from sconify.cas.identity import Identity
from sconify.cas.pinning import pinned_context
from sconify.cas.store import open_store
from sconify.cas.tls import CasTls
from sconify.crypto.jwe import TeePrivateKey, open_sealed
from sconify.las.quote import bind_report_data
from sconify.las.server import create_app as create_las_app
from tests.cas.policies import MEASUREMENT, namespace, service_session
from tests.support.services import CasProcess, LasProcess

Connect = Callable[[Identity], CasClient]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi"
CLIENT_API = "cas-client-api.yaml"
ENCLAVE_API = "cas-enclave-api.yaml"
LAS_API = "las-api.yaml"


def _document(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((DOCS / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.mark.parametrize("name", [CLIENT_API, ENCLAVE_API, LAS_API])
def test_documents_are_valid_openapi_3(name: str) -> None:
    document = _document(name)
    assert str(document["openapi"]).startswith("3.")
    validate(document)


def _routes(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue  # aiohttp adds HEAD beside every GET
        out.add((route.method.lower(), route.resource.canonical if route.resource else ""))
    return out


def _documented(name: str) -> set[tuple[str, str]]:
    paths: dict[str, dict[str, Any]] = _document(name)["paths"]
    methods = {"get", "post", "put", "delete", "patch"}
    return {(m, path) for path, item in paths.items() for m in item if m in methods}


def test_every_route_is_documented_and_every_documented_path_is_served(tmp_path: Path) -> None:
    state = tmp_path / "cas"
    state.mkdir(mode=0o700)
    tls = CasTls.load_or_create(state)
    store = open_store(state)
    try:
        assert _routes(create_api_app(store, tls, [1])) == _documented(CLIENT_API)
        assert _routes(create_enclave_app(store, NonceBook())) == _documented(ENCLAVE_API)
    finally:
        store.close()
    assert _routes(create_las_app(tmp_path / "las")) == _documented(LAS_API)


class Checker:
    """Validates real responses against one document's response schemas."""

    def __init__(self, name: str) -> None:
        self.document = _document(name)
        self.seen: set[tuple[str, str, int]] = set()

    def check(self, method: str, path: str, response: httpx.Response) -> Any:
        """Assert the status is documented for the operation and the body fits its schema."""
        operation = self.document["paths"][path][method]
        status = str(response.status_code)
        assert status in operation["responses"], f"{method} {path}: {status} not documented"
        answer = operation["responses"][status]
        if "$ref" in answer:
            answer = self._resolve(answer["$ref"])
        schema = answer["content"]["application/json"]["schema"]
        body = response.json()
        root = {**schema, "components": self.document["components"]}
        jsonschema.Draft202012Validator(root).validate(body)
        self.seen.add((method, path, response.status_code))
        return body

    def check_request(self, method: str, path: str, body: Any) -> Any:
        """Assert a request body the real clients send fits the documented request schema."""
        content = self.document["paths"][path][method]["requestBody"]["content"]
        schema = content["application/json"]["schema"]
        root = {**schema, "components": self.document["components"]}
        jsonschema.Draft202012Validator(root).validate(body)
        return body

    def _resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict)
        return node


@pytest.fixture
def api(cas: CasProcess, alice: Identity, connect: Connect) -> Iterator[httpx.Client]:
    connect(alice).version()  # enrolls alice
    cert = alice.cached_cert(cas.cas_key_hash)
    assert cert is not None
    context = pinned_context((cas.state_dir / "cas-cert.pem").read_bytes())
    context.load_cert_chain(cert, alice.path)
    with httpx.Client(base_url=f"https://{cas.api_addr}", verify=context) as client:
        yield client


def _anonymous(cas: CasProcess, enclave: bool = False) -> httpx.Client:
    context = pinned_context((cas.state_dir / "cas-cert.pem").read_bytes())
    address = cas.enclave_addr if enclave else cas.api_addr
    return httpx.Client(base_url=f"https://{address}", verify=context)


PKI = """\
  - {name: ca, kind: x509-ca, export_public: true}
  - {name: tls_key, kind: private-key, key_type: RSA-2048, export_public: true}
  - {name: tls, kind: x509, issuer: ca, private_key: tls_key, export_public: true}
  - {name: bin, kind: binary, size: 8, export_public: true}
"""


def test_client_api_answers_match_the_document(
    cas: CasProcess,
    api: httpx.Client,
    bob: Identity,
    connect: Connect,
    ns: str,
    las: LasProcess,
    tmp_path: Path,
) -> None:
    doc = Checker(CLIENT_API)
    sessions = "/v1/sessions"
    one = "/v1/sessions/{name}"
    values = "/v1/values/session={name}"
    yaml_type = {"content-type": "application/yaml"}

    doc.check("get", "/v1/version", api.get("/v1/version"))
    fresh = Identity.create(tmp_path / "carol" / "identity.pem")
    with _anonymous(cas) as anonymous:
        enrolled = anonymous.post(
            "/v1/identities",
            content=fresh.csr_pem(),
            headers={"content-type": "application/pkcs10"},
        )
        doc.check("post", "/v1/identities", enrolled)
        bad = anonymous.post("/v1/identities", content=b"not a csr")
        assert bad.status_code == 400
        doc.check("post", "/v1/identities", bad)
        no_cert = anonymous.post(sessions, content=namespace(ns), headers=yaml_type)
        assert no_cert.status_code == 401
        doc.check("post", sessions, no_cert)

    created = doc.check("post", sessions, api.post(sessions, content=namespace(ns)))
    assert created["created"] is True
    again = api.post(sessions, content=namespace(ns))
    assert again.status_code == 409
    doc.check("post", sessions, again)
    invalid = api.post(sessions, content="name: [\n")
    assert invalid.status_code == 400
    doc.check("post", sessions, invalid)
    orphan = api.post(sessions, content=namespace(f"{ns}/x/y"))
    assert orphan.status_code == 404
    doc.check("post", sessions, orphan)

    name = f"{ns}/app"
    text = service_session(name, qe_key_id=las.qe_key_id).replace("secrets:\n", "secrets:\n" + PKI)
    first = doc.check("post", sessions, api.post(sessions, content=text))
    updated = api.post(
        sessions,
        content=service_session(
            name, qe_key_id=las.qe_key_id, env_value="two", predecessor=first["hash"]
        ).replace("secrets:\n", "secrets:\n" + PKI),
    )
    assert updated.status_code == 200
    doc.check("post", sessions, updated)

    doc.check("get", one, api.get(f"/v1/sessions/{name}"))
    old = doc.check("get", one, api.get(f"/v1/sessions/{name}", params={"hash": first["hash"]}))
    assert old["predecessor"] is None
    missing = api.get(f"/v1/sessions/{ns}/nothing")
    assert missing.status_code == 404
    doc.check("get", one, missing)
    connect(bob).version()
    bob_cert = bob.cached_cert(cas.cas_key_hash)
    assert bob_cert is not None
    context = pinned_context((cas.state_dir / "cas-cert.pem").read_bytes())
    context.load_cert_chain(bob_cert, bob.path)
    with httpx.Client(base_url=f"https://{cas.api_addr}", verify=context) as as_bob:
        hidden = as_bob.get(f"/v1/sessions/{name}")
        assert hidden.status_code == 404
        doc.check("get", one, hidden)
        oversized = as_bob.post(sessions, content=b"x" * (2 * 1024 * 1024))
        assert oversized.status_code == 413
        doc.check("post", sessions, oversized)

    with _anonymous(cas) as anonymous:
        shown = doc.check("get", values, anonymous.get(f"/v1/values/session={name}"))
        assert set(shown["values"]) == {"ca", "tls_key", "tls", "bin", "shared"}
        filtered = anonymous.get(f"/v1/values/session={name},secret=tls")
        assert set(doc.check("get", values, filtered)["values"]) == {"tls"}
        unknown = anonymous.get(f"/v1/values/session={ns}/nothing")
        assert unknown.status_code == 404
        doc.check("get", values, unknown)
    assert {(m, p) for m, p, _ in doc.seen} == _documented(CLIENT_API)


def test_enclave_and_las_answers_match_the_documents(
    cas: CasProcess, api: httpx.Client, ns: str, las: LasProcess
) -> None:
    enclave_doc = Checker(ENCLAVE_API)
    las_doc = Checker(LAS_API)
    api.post("/v1/sessions", content=namespace(ns)).raise_for_status()
    name = f"{ns}/app"
    api.post("/v1/sessions", content=service_session(name, qe_key_id=las.qe_key_id))
    config_id = f"{name}/app"
    challenge_path, attest_path = "/v1/enclave/challenge", "/v1/enclave/attest"

    with httpx.Client(base_url=f"http://{las.addr}") as las_http:
        key = las_doc.check("get", "/v1/qe-pubkey", las_http.get("/v1/qe-pubkey"))
        assert key["key_id"] == las.qe_key_id
        bad_quote = las_http.post("/v1/quote", json={"measurement": "zz"})
        assert bad_quote.status_code == 400
        las_doc.check("post", "/v1/quote", bad_quote)

        with _anonymous(cas, enclave=True) as enclave:
            unknown = enclave.post(challenge_path, json={"config_id": f"{ns}/none/app"})
            assert unknown.status_code == 404
            enclave_doc.check("post", challenge_path, unknown)
            malformed = enclave.post(challenge_path, json={"config": 1})
            assert malformed.status_code == 400
            enclave_doc.check("post", challenge_path, malformed)

            answer = enclave.post(challenge_path, json={"config_id": config_id})
            nonce = enclave_doc.check("post", challenge_path, answer)["nonce"]
            tee = TeePrivateKey.generate()
            report = bind_report_data(nonce, tee.public_key.thumbprint()).hex()
            quote = las_http.post(
                "/v1/quote",
                json={"measurement": MEASUREMENT, "report_data": report, "debug": False},
            )
            signed = las_doc.check("post", "/v1/quote", quote)
            request = {
                "config_id": config_id,
                "nonce": nonce,
                "quote": signed["quote"],
                "signature": signed["signature"],
                "qe_pubkey": signed["qe_pubkey"],
                "tee_pubkey": tee.public_key.to_jwk(),
            }
            enclave_doc.check_request("post", attest_path, request)
            with pytest.raises(jsonschema.ValidationError):
                enclave_doc.check_request("post", attest_path, {**request, "extra": 1})
            released = enclave_doc.check(
                "post", attest_path, enclave.post(attest_path, json=request)
            )
            assert open_sealed(released["config"], tee)
            replay = enclave.post(attest_path, json=request)
            assert replay.status_code == 403
            assert enclave_doc.check("post", attest_path, replay)["error"]["check"] == "nonce"
            incomplete = enclave.post(attest_path, json={"config_id": config_id})
            assert incomplete.status_code == 400
            enclave_doc.check("post", attest_path, incomplete)
            assert base64.b64decode(signed["quote"])
    assert {(m, p) for m, p, _ in enclave_doc.seen} == _documented(ENCLAVE_API)
    assert {(m, p) for m, p, _ in las_doc.seen} == _documented(LAS_API)
