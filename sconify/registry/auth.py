"""Registry authentication: ``WWW-Authenticate`` challenges, Basic, and Bearer tokens per scope.

A scope is what a request needs, in the token spec's grammar; several are separated by spaces
(a cross-repository mount needs ``repository:<to>:pull,push repository:<from>:pull``, asked for
in one token request). Bearer tokens come from the challenge's realm: ``GET`` with Basic
credentials (or anonymously), or, for an identity token, the OAuth2 ``POST`` with
``grant_type=refresh_token`` (falling back to ``GET`` when the realm does not offer it).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from sconify.errors import RegistryError
from sconify.registry.credentials import DOCKER_HUB_KEY, Credentials, load_credentials
from sconify.registry.errors import raise_for_response
from sconify.registry.retry import RETRY_STATUSES, RetryableStatus, RetryPolicy

__all__ = [
    "DOCKER_HUB_KEY",
    "Authenticator",
    "Challenge",
    "Credentials",
    "load_credentials",
    "merge_scopes",
    "mount_scope",
    "pull_scope",
    "push_scope",
]

log = logging.getLogger(__name__)

#: ``client_id`` sent with OAuth2 token requests (the spec requires one).
CLIENT_ID = "sconify"

_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)", re.S)
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def pull_scope(repository: str) -> str:
    """The scope to read ``repository``."""
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    """The scope to write ``repository``."""
    return f"repository:{repository}:pull,push"


def mount_scope(repository: str, source: str) -> str:
    """The scopes to mount a blob of ``source`` into ``repository`` (one token for both)."""
    return f"{push_scope(repository)} {pull_scope(source)}"


def merge_scopes(ours: list[str], theirs: list[str]) -> list[str]:
    """``ours`` plus the scopes of ``theirs`` that ask for actions ours do not cover."""
    covered: dict[str, set[str]] = {}
    for s in ours:
        resource, _, actions = s.rpartition(":")
        covered.setdefault(resource, set()).update(actions.split(","))
    out = list(ours)
    for s in theirs:
        resource, _, actions = s.rpartition(":")
        if not set(actions.split(",")) <= covered.get(resource, set()):
            out.append(s)
    return out


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


_LOGIN_HINT = (
    "give credentials: --creds USER:PASS, --authfile FILE, or 'docker login {host}'"
    " (~/.docker/config.json, credential helpers included)"
)


class Authenticator:
    """Answers challenges for one registry and caches bearer tokens per scope (thread-safe).

    ``credentials`` is called at most once, on the first challenge, so an anonymous registry
    never runs a credential helper.
    """

    def __init__(
        self,
        host: str,
        credentials: Callable[[], Credentials | None],
        retry: RetryPolicy | None = None,
    ) -> None:
        self.host = host
        self._resolve = credentials
        self._resolved = False
        self._credentials: Credentials | None = None
        self._retry = retry or RetryPolicy()
        self._lock = threading.Lock()
        self._scope_locks: dict[str, threading.Lock] = {}
        self._basic = False
        self._tokens: dict[str, tuple[str, float]] = {}

    @property
    def credentials(self) -> Credentials | None:
        """The credentials for this registry (resolved on first use)."""
        with self._lock:
            if not self._resolved:
                self._credentials = self._resolve()
                self._resolved = True
            return self._credentials

    def header(self, scope: str) -> str | None:
        """The ``Authorization`` value to send for ``scope``, if one is known already."""
        with self._lock:
            if self._basic and self._credentials is not None:
                return self._credentials.basic_header()
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
            creds = self.credentials
            if creds is None or not creds.has_password:
                what = "requires a login" if creds is None else "requires a user name and password"
                raise RegistryError(
                    f"registry {self.host} {what} (HTTP Basic)",
                    hint=_LOGIN_HINT.format(host=self.host),
                )
            with self._lock:
                self._basic = True
            return creds.basic_header()
        if challenge.scheme == "bearer":
            sent = response.request.headers.get("Authorization")
            with self._fetching(scope):
                # Parallel requests meet the same challenge: one fetches, the others reuse.
                fresh = self.header(scope)
                if fresh is not None and fresh != sent:
                    return fresh
                return f"Bearer {self._fetch_token(client, challenge, scope)}"
        raise RegistryError(
            f"registry {self.host} asks for unsupported authentication {challenge.scheme!r}",
            hint="sconify speaks Basic and Bearer token authentication",
        )

    def _fetching(self, scope: str) -> threading.Lock:
        with self._lock:
            return self._scope_locks.setdefault(scope, threading.Lock())

    def _fetch_token(self, client: httpx.Client, challenge: Challenge, scope: str) -> str:
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryError(
                f"registry {self.host} sent a Bearer challenge without a realm",
                hint="check the registry's token auth configuration",
            )
        # The registry may name a scope we did not think of: ask for it too.
        scopes = merge_scopes(scope.split(), challenge.params.get("scope", "").split())
        service = challenge.params.get("service")
        creds = self.credentials
        what = f"token request to {realm}"
        log.debug("fetching a token for %s from %s", " ".join(scopes), realm)

        def attempt() -> httpx.Response:
            reply: httpx.Response | None = None
            if creds is not None and creds.identity_token:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.identity_token,
                    "client_id": CLIENT_ID,
                    "scope": " ".join(scopes),
                }
                if service:
                    form["service"] = service
                reply = client.post(realm, data=form, follow_redirects=True)
                if reply.status_code in (404, 405):
                    log.debug("%s has no OAuth2 endpoint; falling back to GET", realm)
                    reply = None
            if reply is None:
                params: list[tuple[str, str | int | float | bool | None]] = []
                if service:
                    params.append(("service", service))
                params += [("scope", s) for s in scopes]
                headers = {}
                if creds is not None and creds.has_password:
                    headers["Authorization"] = creds.basic_header()
                reply = client.get(realm, params=params, headers=headers, follow_redirects=True)
            if reply.status_code in RETRY_STATUSES:
                raise RetryableStatus(reply)
            return reply

        try:
            reply = self._retry.run(what, attempt)
        except RetryableStatus as e:
            reply = e.response
        except httpx.TransportError as e:
            raise RegistryError(
                f"cannot reach the token service {realm} of {self.host}: {e}",
                hint="check the network path to the registry's auth server",
            ) from e
        if reply.status_code == 401:
            raise RegistryError(
                f"the token service {realm} of {self.host} refused the credentials",
                hint=_LOGIN_HINT.format(host=self.host),
            )
        raise_for_response(reply, what)
        try:
            body = reply.json()
            token = body.get("token") or body.get("access_token")
            expires_in = max(60, int(body.get("expires_in") or 60))
        except (ValueError, AttributeError, TypeError) as e:
            raise RegistryError(
                f"the token service {realm} answered something that is not a token",
                hint="check the registry's auth server",
            ) from e
        if not isinstance(token, str) or not token:
            raise RegistryError(
                f"the token service {realm} answered without a token",
                hint="check the registry's auth server",
            )
        with self._lock:
            # Renew a little early so a token does not expire between check and use.
            self._tokens[scope] = (token, time.monotonic() + expires_in - 10)
        return token
