"""Registry credentials: ``--creds``, ``--authfile``, the Docker client config and its helpers.

For a registry host the first source that applies wins:

1. explicit credentials (``--creds USER:PASS``), or none at all (``--no-creds``);
2. the auth file given (``--authfile FILE``, else ``$REGISTRY_AUTH_FILE``), and only it;
3. the Docker client config, ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``.

Inside a config file (Docker's format; skopeo's ``auth.json`` is the same): ``credHelpers`` for
the host, else ``credsStore``, else the ``auths`` entry. A helper is run as Docker runs it:
``docker-credential-<name> get`` with the server address on stdin, JSON on stdout.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sconify.errors import RegistryError, UsageError

log = logging.getLogger(__name__)

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io"}
HELPER_TIMEOUT = 60.0
#: What ``docker-credential-*`` helpers print when they have nothing for a server.
_NOT_FOUND = "credentials not found"
#: The user name helpers give for an identity token (docker/docker-credential-helpers).
_TOKEN_USER = "<token>"


@dataclass(frozen=True)
class Credentials:
    """A user name and password for one registry, or an identity (OAuth2 refresh) token.

    Secrets never appear in ``repr``.
    """

    username: str
    password: str = field(default="", repr=False)
    identity_token: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> Credentials:
        """Parse skopeo's ``--creds USER:PASSWORD`` (the password may hold colons)."""
        user, colon, password = text.partition(":")
        if not user or not colon:
            raise UsageError(
                "--creds must be USER:PASSWORD",
                hint="give both, separated by the first colon, e.g. --creds alice:s3cret",
            )
        return cls(user, password)

    def basic_header(self) -> str:
        """The ``Authorization`` value for HTTP Basic."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    @property
    def has_password(self) -> bool:
        """Whether a user name and password are known (Basic auth and token GETs need both)."""
        return bool(self.username and self.password)


def docker_config_path() -> Path:
    """Where the Docker client keeps its configuration."""
    base = os.environ.get("DOCKER_CONFIG")
    return (Path(base) if base else Path.home() / ".docker") / "config.json"


def resolve(
    host: str,
    *,
    creds: Credentials | None = None,
    no_creds: bool = False,
    authfile: Path | None = None,
) -> Credentials | None:
    """Return the credentials to use for ``host`` (``host[:port]``), following the order above."""
    if no_creds:
        return None
    if creds is not None:
        return creds
    if authfile is None and os.environ.get("REGISTRY_AUTH_FILE"):
        authfile = Path(os.environ["REGISTRY_AUTH_FILE"])
    if authfile is not None:
        if not Path(authfile).is_file():
            raise RegistryError(
                f"the auth file {authfile} does not exist",
                hint="give an existing file to --authfile (Docker's config.json format)",
            )
        return load_credentials(host, authfile)
    return load_credentials(host)


def load_credentials(registry: str, config_path: Path | None = None) -> Credentials | None:
    """Return the credentials a Docker-format config file holds for ``registry``.

    ``config_path`` defaults to :func:`docker_config_path`; a missing file means none.
    """
    path = config_path or docker_config_path()
    try:
        config = json.loads(path.read_text())
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise RegistryError(
            f"cannot read the registry auth file {path}: {e}",
            hint="fix or remove the file (it must be JSON with an 'auths' object)",
        ) from e
    names = _names(registry)
    helpers = config.get("credHelpers") or {}
    for key, helper in helpers.items() if isinstance(helpers, dict) else ():
        if _host_of(key) in names and isinstance(helper, str) and helper:
            found = run_helper(helper, _server_address(registry), required=True)
            if found is not None:
                return found
            return _from_auths(config, names)
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        found = run_helper(store, _server_address(registry), required=False)
        if found is not None:
            return found
    return _from_auths(config, names)


def run_helper(name: str, server: str, *, required: bool) -> Credentials | None:
    """Ask ``docker-credential-<name>`` for ``server``'s credentials; None when it has none.

    A missing helper is an error when ``required`` (a ``credHelpers`` entry names it for this
    registry) and is skipped otherwise (a ``credsStore`` left behind by Docker Desktop).
    """
    program = f"docker-credential-{name}"
    path = shutil.which(program)
    if path is None:
        if not required:
            log.warning("credential helper %s is not installed; ignoring credsStore", program)
            return None
        raise RegistryError(
            f"the credential helper {program} named in the Docker config is not on PATH",
            hint=f"install {program}, or remove the credHelpers entry for this registry",
        )
    try:
        done = subprocess.run(
            [path, "get"],
            input=server.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RegistryError(
            f"the credential helper {program} failed for {server}: {e}",
            hint=f"run 'echo {server} | {program} get' to see what it does",
        ) from e
    out = done.stdout.decode(errors="replace").strip()
    if done.returncode != 0:
        if _NOT_FOUND in out.lower() or _NOT_FOUND in done.stderr.decode(errors="replace"):
            return None
        reason = out or done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
        raise RegistryError(
            f"the credential helper {program} failed for {server}: {reason}",
            hint=f"log in again ('docker login {server}') or check {program}",
        )
    try:
        answer = json.loads(out)
        user, secret = answer["Username"], answer["Secret"]
        if not isinstance(user, str) or not isinstance(secret, str):
            raise TypeError("Username and Secret must be strings")
    except (ValueError, KeyError, TypeError) as e:
        raise RegistryError(
            f"the credential helper {program} answered something that is not credentials",
            hint=f"check {program}: it must print {{'Username': ..., 'Secret': ...}} JSON",
        ) from e
    if user == _TOKEN_USER:
        return Credentials("", identity_token=secret)
    return Credentials(user, secret)


def _from_auths(config: dict[str, object], names: set[str]) -> Credentials | None:
    auths = config.get("auths") or {}
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if (key in names or _host_of(key) in names) and isinstance(entry, dict):
            creds = _entry_credentials(entry)
            if creds is not None:
                return creds
    return None


def _entry_credentials(entry: dict[str, object]) -> Credentials | None:
    user, password = "", ""
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            user, _, password = base64.b64decode(auth, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as e:
            raise RegistryError(
                "an 'auth' entry in the registry auth file is not base64 of user:password",
                hint="log in again with 'docker login'",
            ) from e
    else:
        name, secret = entry.get("username"), entry.get("password")
        if isinstance(name, str) and isinstance(secret, str):
            user, password = name, secret
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        return Credentials(user, password, identity_token=token)
    if user or password:
        return Credentials(user, password)
    return None


def _host_of(key: str) -> str:
    """``https://host/v1/`` and ``host/path`` -> ``host``."""
    return re.sub(r"^[a-z]+://", "", key).split("/", 1)[0]


def _names(registry: str) -> set[str]:
    names = {registry}
    if registry in _HUB_HOSTS:
        names |= _HUB_HOSTS | {DOCKER_HUB_KEY}
    return names


def _server_address(registry: str) -> str:
    """The address ``docker login`` stores a registry under (and helpers are asked for)."""
    return DOCKER_HUB_KEY if registry in _HUB_HOSTS else registry
