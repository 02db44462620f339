"""Registry fixtures: real ``docker-registry`` processes on loopback, with and without auth.

``registry`` is anonymous (or the one named by ``SCONIFY_TEST_REGISTRY=host:port``, which is then
left alone); ``basic_registry`` needs a login (htpasswd); ``token_registry`` hands out Bearer
tokens from a token server run as its own process (``python -m tests.support.registry``, the
``main`` at the end of this file), by ``GET`` and by the OAuth2 ``POST`` (identity tokens).
``tls_registry`` serves HTTPS with a certificate from a test CA, ``mtls_registry`` also requires
a client certificate, and ``redirect_registry`` (Basic auth) answers blob reads with a redirect
to a plain file server on another port that records the headers it receives.

Helpers: :func:`docker_config` and :func:`credential_helper` write client-side credentials;
:func:`check_image` pulls an image straight from a registry and verifies every byte.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sconify.dev.registry import (
    REGISTRY_BINARY,
    RegistryProcess,
    TokenAuth,
    free_port,
    registry_config,
    start_registry,
)
from sconify.image import BlobStore, Digest, Image
from sconify.registry import RegistryClient
from sconify.transports import remote
from sconify.transports.refs import RegistryRef

USER = "sconify"
PASSWORD = "s3cret-pw"
#: The refresh token the token server accepts for ``USER`` (an ``identitytoken``).
IDENTITY_TOKEN = "refresh-4f2c9e"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Registry:
    """Where a test registry answers; ``process`` is None for one this session did not start."""

    addr: str
    process: RegistryProcess | None
    storage: Path | None

    def blob_data_path(self, digest: str) -> Path:
        """Where distribution's filesystem driver keeps a blob (to corrupt it on purpose)."""
        assert self.storage is not None, "an external registry's storage is not reachable"
        hex_ = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"


def bcrypt_htpasswd(path: Path, user: str, password: str) -> Path:
    """Write an htpasswd file with a bcrypt entry (the only kind the registry accepts)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # libxcrypt makes $2b$ bcrypt hashes; the module is gone in 3.13

        # The lowest bcrypt cost: the registry checks it on every request, so it sets the pace.
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    path.write_text(f"{user}:{hashed}\n")
    return path


def docker_config(
    directory: Path, registry: str, user: str, password: str, **extra: object
) -> Path:
    """Write a Docker client ``config.json`` holding credentials for ``registry``.

    ``extra`` adds top-level keys (``credHelpers``, ``credsStore``). Returns the directory.
    """
    directory.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config: dict[str, object] = {"auths": {registry: {"auth": auth}} if user else {}, **extra}
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def credential_helper(
    directory: Path, name: str, secrets: dict[str, tuple[str, str]], fail: str = ""
) -> Path:
    """Write ``docker-credential-<name>`` into ``directory`` (put it on PATH).

    It answers ``get`` for the servers in ``secrets`` (server -> user, secret) as Docker's
    helpers do, says "credentials not found" for others, and with ``fail`` prints that and
    exits 1. Each server asked for is appended to ``<directory>/<name>.log``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / f"{name}.json"
    data.write_text(json.dumps({k: list(v) for k, v in secrets.items()}))
    script = directory / f"docker-credential-{name}"
    script.write_text(
        f"""#!{sys.executable}
import json, sys
server = sys.stdin.read().strip()
with open({str(directory / (name + ".log"))!r}, "a") as log:
    log.write(sys.argv[1] + " " + server + "\\n")
if {fail!r}:
    print({fail!r})
    sys.exit(1)
found = json.load(open({str(data)!r})).get(server)
if found is None:
    print("credentials not found in native keychain")
    sys.exit(1)
print(json.dumps({{"ServerURL": server, "Username": found[0], "Secret": found[1]}}))
"""
    )
    script.chmod(0o755)
    return script


def check_image(addr: str, name: str, reference: str, tmp: Path) -> Image:
    """Pull ``name:reference`` straight from the registry at ``addr`` and verify every byte.

    Every blob is fetched afresh into a new store (checked against its digest and size), and
    every layer is decompressed to check its diff_id.
    """
    store = BlobStore(tmp / f"check-{time.monotonic_ns()}")
    if reference.startswith("sha256:"):
        ref = RegistryRef(addr, name, None, Digest.parse(reference))
    else:
        ref = RegistryRef(addr, name, reference)
    with RegistryClient(addr, credentials=None) as client:
        image = remote.read(ref, store, client=client)
    image.validate(deep=True)
    return image


def _started(state: Path, **kwargs: object) -> Iterator[Registry]:
    process = start_registry(state, 0, **kwargs)  # type: ignore[arg-type]
    try:
        yield Registry(process.addr, process, state / "data")
    finally:
        process.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry for the session."""
    external = os.environ.get("SCONIFY_TEST_REGISTRY")
    if external:
        yield Registry(external, None, None)
        return
    yield from _started(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry requiring HTTP Basic login as ``USER``/``PASSWORD``."""
    state = tmp_path_factory.mktemp("basic-registry")
    htpasswd = bcrypt_htpasswd(state / "htpasswd", USER, PASSWORD)
    yield from _started(state, htpasswd=htpasswd)


@dataclass(frozen=True)
class TokenRegistry(Registry):
    """A registry with Bearer auth, and the log of token requests its token server answered."""

    token_log: Path = Path()
    realm: str = ""

    def token_requests(self) -> list[dict[str, Any]]:
        """The token requests so far: ``method``, ``path``, ``status``, ``user``, ``scopes``."""
        if not self.token_log.exists():
            return []
        return [json.loads(line) for line in self.token_log.read_text().splitlines()]

    @property
    def token_server(self) -> str:
        """``http://127.0.0.1:<port>`` of the token server."""
        return self.realm.rsplit("/", 1)[0]


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    """A registry whose token server grants pull/push to ``USER`` and pull to anonymous."""
    state = tmp_path_factory.mktemp("token-registry")
    port = free_port()
    token_log = state / "tokens.jsonl"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.registry",
            "--port",
            str(port),
            "--dir",
            str(state),
            "--user",
            USER,
            "--password",
            PASSWORD,
            "--identity-token",
            IDENTITY_TOKEN,
        ],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=(state / "token_server.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", server)
        auth = TokenAuth(
            realm=f"http://127.0.0.1:{port}/token",
            service="sconify-test-registry",
            issuer="sconify-test-issuer",
            root_cert_bundle=state / "token-cert.pem",
        )
        for reg in _started(state / "registry", token=auth):
            yield TokenRegistry(reg.addr, reg.process, reg.storage, token_log, auth.realm)
    finally:
        server.terminate()
        server.wait(10)


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


# -- TLS and redirecting registries --------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A test CA (``ca.crt``), a server certificate for 127.0.0.1/localhost, and a client
    certificate from a second CA (``client-ca.crt``), all PEM files in ``directory``."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def client_ca(self) -> Path:
        return self.directory / "client-ca.crt"

    def cert_dir(self, target: Path, *, ca: bool = True, client: bool = False) -> Path:
        """A skopeo-style certificate directory: ``ca.crt`` and/or ``client.cert``/``.key``."""
        target.mkdir(parents=True, exist_ok=True)
        if ca:
            (target / "ca.crt").write_bytes(self.ca.read_bytes())
        if client:
            (target / "client.cert").write_bytes((self.directory / "client.cert").read_bytes())
            (target / "client.key").write_bytes((self.directory / "client.key").read_bytes())
        return target


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    elif server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    """Create the certificates of :class:`Pki` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    files: dict[str, bytes] = {}
    for prefix, leaf, server in (("", "server", True), ("client-", "client", False)):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _issue(f"sconify test {prefix}ca", ca_key, None, ca=True)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(f"sconify test {leaf}", key, (ca_cert.subject, ca_key), server=server)
        files[f"{prefix}ca.crt"] = ca_cert.public_bytes(pem)
        files[f"{leaf}.{'crt' if server else 'cert'}"] = cert.public_bytes(pem)
        files[f"{leaf}.key"] = _pem_key(key)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return Pki(directory)


def start_configured(
    state: Path, *, htpasswd: Path | None = None, extra: dict[str, Any] | None = None
) -> RegistryProcess:
    """Start ``docker-registry`` with the dev configuration plus ``extra`` (merged per key).

    Readiness is a TCP connect, since a TLS registry may want a client certificate.
    """
    state.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = registry_config(state, port, htpasswd=htpasswd)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    config_path = state / "config.yml"
    config_path.write_text(yaml.safe_dump(config))
    log_path = state / "registry.log"
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        [REGISTRY_BINARY, "serve", str(config_path)],
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    handle = RegistryProcess(f"127.0.0.1:{port}", state, process, log_path, log_file)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not handle.running():
            handle.stop()
            raise RuntimeError(f"the registry exited on start:\n{handle.log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return handle
        except OSError:
            time.sleep(0.1)
    handle.stop()
    raise RuntimeError(f"the registry on port {port} did not listen within 30s")


@dataclass(frozen=True)
class TlsRegistry(Registry):
    """A registry serving HTTPS; ``pki`` holds its CA (and the client certificate)."""

    pki: Pki = Pki(Path())


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Test certificates (see :class:`Pki`)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


def _tls_registry(state: Path, pki: Pki, *, client_ca: bool) -> Iterator[TlsRegistry]:
    tls: dict[str, Any] = {
        "certificate": str(pki.directory / "server.crt"),
        "key": str(pki.directory / "server.key"),
    }
    if client_ca:
        tls["clientcas"] = [str(pki.client_ca)]
    process = start_configured(state, extra={"http": {"tls": tls}})
    try:
        yield TlsRegistry(process.addr, process, state / "data", pki)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[TlsRegistry]:
    """An anonymous registry on HTTPS with a certificate from ``pki.ca``."""
    yield from _tls_registry(tmp_path_factory.mktemp("tls-registry"), pki, client_ca=False)


@pytest.fixture(scope="session")
def mtls_registry(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[TlsRegistry]:
    """An HTTPS registry that also requires a client certificate from ``pki.client_ca``."""
    yield from _tls_registry(tmp_path_factory.mktemp("mtls-registry"), pki, client_ca=True)


@dataclass(frozen=True)
class RedirectRegistry(Registry):
    """A Basic-auth registry whose blob reads redirect to ``files_addr``, a file server over
    its storage that notes in ``seen`` each request's method, path and ``Authorization``."""

    files_addr: str = ""
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)


@pytest.fixture(scope="session")
def redirect_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedirectRegistry]:
    """See :class:`RedirectRegistry`; log in as ``USER``/``PASSWORD``."""
    state = tmp_path_factory.mktemp("redirect-registry")
    (state / "data").mkdir()
    seen: list[tuple[str, str, str | None]] = []

    class Files(SimpleHTTPRequestHandler):
        def _note(self) -> None:
            seen.append((self.command, self.path, self.headers.get("Authorization")))

        def do_GET(self) -> None:
            self._note()
            super().do_GET()

        def do_HEAD(self) -> None:
            self._note()
            super().do_HEAD()

        def log_message(self, format: str, *args: object) -> None:
            pass

    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(Files, directory=str(state / "data")))
    thread = threading.Thread(target=files.serve_forever, daemon=True)
    thread.start()
    files_addr = f"127.0.0.1:{files.server_address[1]}"
    redirect = {"name": "redirect", "options": {"baseurl": f"http://{files_addr}/"}}
    htpasswd = bcrypt_htpasswd(state / "htpasswd", USER, PASSWORD)
    try:
        process = start_configured(
            state, htpasswd=htpasswd, extra={"middleware": {"storage": [redirect]}}
        )
        try:
            yield RedirectRegistry(process.addr, process, state / "data", files_addr, seen)
        finally:
            process.stop()
    finally:
        files.shutdown()
        files.server_close()


# -- the token server (a separate process, started by ``token_registry``) ---------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    """Serve Docker's token auth: ``GET /token`` (Basic or anonymous) and the OAuth2 ``POST``.

    ``POST /token`` takes ``grant_type=password`` or ``grant_type=refresh_token`` (the identity
    token). Under ``/get-only/`` a POST is 404, as on token servers without OAuth2. Every answered
    request is logged as one JSON line: method, path, user, scopes.
    """
    import argparse
    import secrets
    from http.server import BaseHTTPRequestHandler
    from urllib.parse import parse_qs, urlparse

    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--identity-token", required=True)
    args = parser.parse_args()

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sconify test token issuer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (args.dir / "token-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    expected = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
    log_path = args.dir / "tokens.jsonl"
    log_lock = threading.Lock()

    def sign(claims: dict[str, object]) -> str:
        header = {"typ": "JWT", "alg": "ES256", "x5c": [x5c]}
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def grant(user: str, scopes: list[str], service: str) -> dict[str, object]:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            repo, _, actions = rest.rpartition(":")
            wanted = actions.split(",")
            granted = wanted if user else [a for a in wanted if a == "pull"]
            access.append({"type": kind, "name": repo, "actions": granted})
        issued = int(time.time())
        claims = {
            "iss": "sconify-test-issuer",
            "sub": user,
            "aud": service,
            "exp": issued + 300,
            "nbf": issued - 10,
            "iat": issued,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        return {"token": sign(claims), "access_token": sign(claims), "expires_in": 300}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _log(self, user: str, scopes: list[str], status: int = 200) -> None:
            entry = {"method": self.command, "path": urlparse(self.path).path, "status": status}
            entry |= {"user": user, "scopes": scopes}
            with log_lock, log_path.open("a") as log:
                log.write(json.dumps(entry) + "\n")

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/health":
                self._reply(200, {})
                return
            query = parse_qs(url.query)
            scopes = query.get("scope", [])
            authorization = self.headers.get("Authorization")
            if authorization is not None and authorization != expected:
                self._log("", scopes, 401)
                self._reply(401, {"details": "bad credentials"})
                return
            user = args.user if authorization else ""
            self._log(user, scopes)
            self._reply(200, grant(user, scopes, query.get("service", [""])[0]))

        def do_POST(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if url.path.startswith("/get-only/"):
                self._log("", form.get("scope", "").split(), 404)
                self._reply(404, {"details": "no OAuth2 here"})
                return
            kind = form.get("grant_type")
            ok = (kind == "refresh_token" and form.get("refresh_token") == args.identity_token) or (
                kind == "password"
                and (form.get("username"), form.get("password")) == (args.user, args.password)
            )
            if not form.get("client_id") or not ok:
                self._log("", form.get("scope", "").split(), 401)
                self._reply(401, {"error": "invalid_grant"})
                return
            scopes = form.get("scope", "").split()
            self._log(args.user, scopes)
            self._reply(200, grant(args.user, scopes, form.get("service", "")))

        def log_message(self, format: str, *items: object) -> None:
            sys.stderr.write(format % items + "\n")

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
