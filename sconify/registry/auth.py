"""Registry authentication: ``WWW-Authenticate`` challenges, Basic and Bearer tokens, credentials.

Credentials come from the Docker client configuration (``$DOCKER_CONFIG/config.json`` or
``~/.docker/config.json``, the ``auths`` section). Credential helpers are not consulted yet.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sconify.errors import RegistryError
from sconify.registry.errors import raise_for_response

log = logging.getLogger(__name__)

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io"}

_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)", re.S)
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Credentials:
    """A user name and password (or token) for one registry."""

    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        """The ``Authorization`` value for HTTP Basic."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Challenge:
    """One parsed ``WWW-Authenticate`` challenge: scheme (lowercase) and parameters."""

    scheme: str
    params: dict[str, str]

    @classmethod
    def parse(cls, header: str) -> Challenge:
        """Parse ``Bearer realm="...",service="...",scope="..."`` or ``Basic realm="..."``.

        Values are quoted and may hold commas, so parameters are matched, not split.
        """
        m = _SCHEME.fullmatch(header)
        if not m:
            raise RegistryError(
                f"cannot parse the registry's WWW-Authenticate header {header!r}",
                hint="the registry's authentication is not supported",
            )
        params: dict[str, str] = {}
        for p in _PARAM.finditer(m.group(2)):
            value = p.group(2) if p.group(2) is not None else p.group(3)
            params[p.group(1).lower()] = re.sub(r"\\(.)", r"\1", value or "")
        return cls(m.group(1).lower(), params)


def docker_config_path() -> Path:
    """Where the Docker client keeps its configuration."""
    base = os.environ.get("DOCKER_CONFIG")
    return (Path(base) if base else Path.home() / ".docker") / "config.json"


def load_credentials(registry: str, config_path: Path | None = None) -> Credentials | None:
    """Return the credentials stored for ``registry`` (``host[:port]``) in the Docker config."""
    path = config_path or docker_config_path()
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise RegistryError(
            f"cannot read the Docker client config {path}: {e}",
            hint="fix or remove the file (it must be JSON with an 'auths' object)",
        ) from e
    auths = config.get("auths") or {}
    wanted = {registry}
    if registry in _HUB_HOSTS:
        wanted |= _HUB_HOSTS | {DOCKER_HUB_KEY}
    for key, entry in auths.items():
        host = re.sub(r"^https?://", "", key).split("/", 1)[0]
        if (key in wanted or host in wanted) and isinstance(entry, dict):
            creds = _entry_credentials(entry)
            if creds is not None:
                return creds
    return None


def _entry_credentials(entry: dict[str, object]) -> Credentials | None:
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            user, _, password = base64.b64decode(auth).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as e:
            raise RegistryError(
                "an 'auth' entry in the Docker client config is not base64 of user:password",
                hint="log in again with 'docker login'",
            ) from e
        return Credentials(user, password)
    name, secret = entry.get("username"), entry.get("password")
    if isinstance(name, str) and isinstance(secret, str):
        return Credentials(name, secret)
    return None


class Authenticator:
    """Answers challenges for one registry and caches bearer tokens per scope (thread-safe)."""

    def __init__(self, host: str, credentials: Credentials | None) -> None:
        self.host = host
        self.credentials = credentials
        self._lock = threading.Lock()
        self._basic = False
        self._tokens: dict[str, tuple[str, float]] = {}

    def header(self, scope: str) -> str | None:
        """The ``Authorization`` value to send for ``scope``, if one is known already."""
        with self._lock:
            if self._basic and self.credentials is not None:
                return self.credentials.basic_header()
            token = self._tokens.get(scope)
            if token is not None and token[1] > time.monotonic():
                return f"Bearer {token[0]}"
        return None

    def answer(self, client: httpx.Client, response: httpx.Response, scope: str) -> str:
        """Handle a 401 for ``scope``; return the ``Authorization`` value to retry with."""
        header = response.headers.get("WWW-Authenticate")
        if not header:
            raise RegistryError(
                f"registry {self.host} refused access without saying how to authenticate",
                hint="check the registry's auth configuration",
            )
        challenge = Challenge.parse(header)
        if challenge.scheme == "basic":
            if self.credentials is None:
                raise RegistryError(
                    f"registry {self.host} requires a login",
                    hint=f"add credentials for {self.host} to {docker_config_path()}"
                    " ('docker login')",
                )
            with self._lock:
                self._basic = True
            return self.credentials.basic_header()
        if challenge.scheme == "bearer":
            return f"Bearer {self._fetch_token(client, challenge, scope)}"
        raise RegistryError(
            f"registry {self.host} asks for unsupported authentication {challenge.scheme!r}",
            hint="sconify speaks Basic and Bearer token authentication",
        )

    def _fetch_token(self, client: httpx.Client, challenge: Challenge, scope: str) -> str:
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryError(
                f"registry {self.host} sent a Bearer challenge without a realm",
                hint="check the registry's token auth configuration",
            )
        params: list[tuple[str, str | int | float | bool | None]] = []
        if "service" in challenge.params:
            params.append(("service", challenge.params["service"]))
        params.append(("scope", scope))
        headers = {}
        if self.credentials is not None:
            headers["Authorization"] = self.credentials.basic_header()
        log.debug("fetching a token for %s from %s", scope, realm)
        try:
            reply = client.get(realm, params=params, headers=headers)
        except httpx.HTTPError as e:
            raise RegistryError(
                f"cannot reach the token service {realm} of {self.host}: {e}",
                hint="check the network path to the registry's auth server",
            ) from e
        raise_for_response(reply, f"token request to {realm}")
        try:
            body = reply.json()
            token = str(body.get("token") or body.get("access_token"))
            expires_in = max(60, int(body.get("expires_in") or 60))
        except (ValueError, AttributeError, TypeError) as e:
            raise RegistryError(
                f"the token service {realm} answered something that is not a token",
                hint="check the registry's auth server",
            ) from e
        if not token or token == "None":
            raise RegistryError(
                f"the token service {realm} answered without a token",
                hint="check the registry's auth server",
            )
        with self._lock:
            # Renew a little early so a token does not expire between check and use.
            self._tokens[scope] = (token, time.monotonic() + expires_in - 10)
        return token
