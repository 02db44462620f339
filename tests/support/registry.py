"""Registry fixtures: real ``docker-registry`` processes on loopback, with and without auth.

``registry`` is anonymous (or the one named by ``SCONIFY_TEST_REGISTRY=host:port``, which is then
left alone); ``basic_registry`` needs a login (htpasswd); ``token_registry`` hands out Bearer
tokens from a token server run as its own process (``python -m tests.support.registry``, the
``main`` at the end of this file).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sconify.dev.registry import RegistryProcess, TokenAuth, free_port, start_registry

USER = "sconify"
PASSWORD = "s3cret-pw"
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

        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
    path.write_text(f"{user}:{hashed}\n")
    return path


def docker_config(directory: Path, registry: str, user: str, password: str) -> Path:
    """Write a Docker client ``config.json`` holding credentials for ``registry``."""
    directory.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth}}}))
    return directory


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

    def token_requests(self) -> list[dict[str, str]]:
        """The token requests seen so far (``user`` and ``scope``)."""
        if not self.token_log.exists():
            return []
        return [json.loads(line) for line in self.token_log.read_text().splitlines()]


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
            yield TokenRegistry(reg.addr, reg.process, reg.storage, token_log)
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


# -- the token server (a separate process, started by ``token_registry``) ---------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    """Serve ``GET /token`` the way Docker's token auth expects, signing ES256 JWTs with x5c."""
    import argparse
    import datetime
    import secrets
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlparse

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from cryptography.x509.oid import NameOID

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
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

    def sign(claims: dict[str, object]) -> str:
        header = {"typ": "JWT", "alg": "ES256", "x5c": [x5c]}
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/health":
                self._reply(200, {})
                return
            query = parse_qs(url.query)
            authorization = self.headers.get("Authorization")
            if authorization is not None and authorization != expected:
                self._reply(401, {"details": "bad credentials"})
                return
            user = args.user if authorization else ""
            access = []
            for scope in query.get("scope", []):
                kind, _, rest = scope.partition(":")
                repo, _, actions = rest.rpartition(":")
                wanted = actions.split(",")
                granted = wanted if user else [a for a in wanted if a == "pull"]
                access.append({"type": kind, "name": repo, "actions": granted})
                with log_path.open("a") as log:
                    log.write(json.dumps({"user": user, "scope": scope}) + "\n")
            issued = int(time.time())
            token = sign(
                {
                    "iss": "sconify-test-issuer",
                    "sub": user,
                    "aud": query.get("service", [""])[0],
                    "exp": issued + 300,
                    "nbf": issued - 10,
                    "iat": issued,
                    "jti": secrets.token_hex(8),
                    "access": access,
                }
            )
            self._reply(200, {"token": token, "expires_in": 300})

        def log_message(self, format: str, *items: object) -> None:
            sys.stderr.write(format % items + "\n")

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
