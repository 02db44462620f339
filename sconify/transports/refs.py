"""Image references in skopeo's ``transport:details`` form, parsed into typed values.

::

    docker://host[:port]/repo[:tag][@sha256:...]   RegistryRef
    docker-daemon:name[:tag] | docker-daemon:sha256:...   DaemonRef
    oci:DIR[:tag]                                  LayoutRef
    oci-archive:FILE[:tag]                         OciArchiveRef
    docker-archive:FILE[:name[:tag]]               DockerArchiveRef

Names follow Docker's normalisation: a first path component is a registry host only when it
contains ``.`` or ``:`` or is ``localhost``; otherwise the host is ``docker.io`` and a single
component gets ``library/``. A name with neither tag nor digest means ``:latest``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from sconify.errors import ImageError, UsageError
from sconify.image.digest import Digest

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?"
)

TRANSPORTS = ("docker", "docker-daemon", "oci", "oci-archive", "docker-archive")
DefaultTransport = Literal["docker", "docker-daemon"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (optionally with ``:port``) is this machine: localhost, 127/8 or ::1."""
    name = host
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class RegistryRef:
    """An image in a registry (``docker://``). ``registry`` is ``docker.io`` for Docker Hub."""

    registry: str
    repository: str
    tag: str | None = "latest"
    digest: Digest | None = None

    transport = "docker"

    @property
    def api_host(self) -> str:
        """The host the distribution API is served from (``registry-1.docker.io`` for Hub)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What to ask the manifests endpoint for: the digest when pinned, else the tag."""
        return str(self.digest) if self.digest else (self.tag or "latest")

    @property
    def insecure(self) -> bool:
        """Whether the registry is on loopback, where plain HTTP is used."""
        return is_loopback(self.registry)

    def with_digest(self, digest: Digest) -> RegistryRef:
        """The same repository pinned to ``digest`` (tag kept for display)."""
        return replace(self, digest=Digest.parse(digest))

    def with_tag(self, tag: str) -> RegistryRef:
        """The same repository at ``tag``, unpinned."""
        _check_tag(tag, tag)
        return replace(self, tag=tag, digest=None)

    def familiar(self) -> str:
        """The name as ``docker`` would print it (``busybox:latest``, ``host:5000/a/b@...``)."""
        name = self.name
        if self.registry == DOCKER_HUB:
            name = self.repository.removeprefix("library/")
        if self.tag:
            name += f":{self.tag}"
        if self.digest:
            name += f"@{self.digest}"
        return name

    def __str__(self) -> str:
        out = f"docker://{self.name}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


@dataclass(frozen=True)
class DaemonRef:
    """An image in the local Docker engine: by name, or by image id (``sha256:...``)."""

    name: RegistryRef | None = None
    image_id: Digest | None = None

    transport = "docker-daemon"

    @property
    def engine_name(self) -> str:
        """What to hand the engine API: ``repo:tag`` (familiar) or the image id."""
        if self.name is not None:
            return self.name.familiar()
        return str(self.image_id)

    def __str__(self) -> str:
        return f"docker-daemon:{self.engine_name}"


@dataclass(frozen=True)
class LayoutRef:
    """An image in an OCI layout directory (``oci:DIR[:tag]``)."""

    path: Path
    tag: str | None = None

    transport = "oci"

    def __str__(self) -> str:
        return f"oci:{self.path}" + (f":{self.tag}" if self.tag else "")


@dataclass(frozen=True)
class OciArchiveRef:
    """An image in a tar of an OCI layout (``oci-archive:FILE[:tag]``)."""

    path: Path
    tag: str | None = None

    transport = "oci-archive"

    def __str__(self) -> str:
        return f"oci-archive:{self.path}" + (f":{self.tag}" if self.tag else "")


@dataclass(frozen=True)
class DockerArchiveRef:
    """An image in a ``docker save`` tar (``docker-archive:FILE[:name:tag]``)."""

    path: Path
    name: RegistryRef | None = None

    transport = "docker-archive"

    def __str__(self) -> str:
        return f"docker-archive:{self.path}" + (f":{self.name.familiar()}" if self.name else "")


ImageRef = RegistryRef | DaemonRef | LayoutRef | OciArchiveRef | DockerArchiveRef


def parse(text: str, default: DefaultTransport = "docker") -> ImageRef:
    """Parse a skopeo-style reference; a bare name uses the ``default`` transport.

    Raises :class:`UsageError` (with a hint) on anything malformed.
    """
    try:
        return _parse(text, default)
    except ImageError as e:
        raise UsageError(e.message, hint=e.hint) from e


def _parse(text: str, default: DefaultTransport) -> ImageRef:
    if not text or text != text.strip():
        raise UsageError(
            f"invalid image reference {text!r}",
            hint="give a reference such as docker://localhost:5000/app:1 or oci:./dir:tag",
        )
    if text.startswith("docker://"):
        return parse_name(text[len("docker://") :], original=text)
    transport, sep, rest = text.partition(":")
    if sep and transport in TRANSPORTS:
        if not rest:
            raise UsageError(
                f"image reference {text!r} has nothing after '{transport}:'",
                hint=_EXAMPLES[transport],
            )
        if transport == "docker":
            raise UsageError(
                f"invalid image reference {text!r}: the docker transport is docker://NAME",
                hint=f"write docker://{rest}",
            )
        if transport == "docker-daemon":
            return _parse_daemon(rest, text)
        path, _, detail = rest.partition(":")
        if not path:
            raise UsageError(f"image reference {text!r} has no path", hint=_EXAMPLES[transport])
        if transport == "docker-archive":
            name = parse_name(detail, original=text) if detail else None
            return DockerArchiveRef(Path(path), name)
        tag = detail or None
        if tag is not None:
            _check_tag(tag, text)
        return LayoutRef(Path(path), tag) if transport == "oci" else OciArchiveRef(Path(path), tag)
    try:
        if default == "docker-daemon":
            return _parse_daemon(text, text)
        return parse_name(text, original=text)
    except UsageError as e:
        # "name:tag" looks like "transport:rest" too; a path after the colon means a transport.
        looks_like_transport = sep and re.fullmatch(r"[a-z][a-z0-9-]*", transport)
        if looks_like_transport and rest[:1] in ("/", "."):
            raise UsageError(
                f"unknown transport {transport!r} in {text!r}",
                hint=f"use one of: {', '.join(t + ':' for t in TRANSPORTS)} (docker:// for"
                " registries), or a bare image name",
            ) from None
        if looks_like_transport:
            raise UsageError(
                e.message,
                hint=f"{e.hint}; if {transport + ':'!r} was meant as a transport, use one of:"
                f" {', '.join(t + ':' for t in TRANSPORTS)}",
            ) from None
        raise


def _parse_daemon(rest: str, original: str) -> DaemonRef:
    if rest.startswith("sha256:"):
        return DaemonRef(image_id=Digest.parse(rest))
    name = parse_name(rest, original=original)
    if name.digest is not None:
        raise UsageError(
            f"{original!r}: docker-daemon takes name:tag or an image id, not a digest",
            hint="use docker-daemon:NAME:TAG or docker-daemon:sha256:<image id>",
        )
    return DaemonRef(name=name)


def parse_name(text: str, *, original: str | None = None) -> RegistryRef:
    """Parse a Docker image name (no transport prefix) into a normalised :class:`RegistryRef`."""
    shown = original or text
    rest, at, digest_text = text.partition("@")
    digest = None
    if at:
        try:
            digest = Digest.parse(digest_text)
        except ImageError as e:
            raise UsageError(
                f"invalid digest in image reference {shown!r}",
                hint="pin a digest as NAME@sha256:<64 hex>",
            ) from e
    tag: str | None = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        _check_tag(tag, shown)
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, repository = first, remainder
    else:
        registry, repository = DOCKER_HUB, rest
    if registry.lower() in _HUB_ALIASES:
        registry = DOCKER_HUB
    if not _HOST.fullmatch(registry):
        raise UsageError(
            f"invalid registry host {registry!r} in {shown!r}",
            hint="a registry is host[:port], e.g. localhost:5000",
        )
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not _REPOSITORY.fullmatch(repository):
        raise UsageError(
            f"invalid repository name {repository!r} in {shown!r}",
            hint="repository names are lowercase letters, digits and separators (. _ __ -)"
            " between '/'-separated components",
        )
    if len(f"{registry}/{repository}") > 255:
        raise UsageError(
            f"image name in {shown!r} is longer than 255 characters",
            hint="use a shorter repository name",
        )
    if tag is None and digest is None:
        tag = "latest"
    return RegistryRef(registry, repository, tag, digest)


def _check_tag(tag: str, shown: str) -> None:
    if not _TAG.fullmatch(tag):
        raise UsageError(
            f"invalid tag {tag!r} in {shown!r}",
            hint="tags are up to 128 characters of letters, digits, '_', '.' and '-'",
        )


_EXAMPLES = {
    "docker": "e.g. docker://localhost:5000/app:1",
    "docker-daemon": "e.g. docker-daemon:app:1 or docker-daemon:sha256:<image id>",
    "oci": "e.g. oci:./layout or oci:./layout:tag",
    "oci-archive": "e.g. oci-archive:./image.tar or oci-archive:./image.tar:tag",
    "docker-archive": "e.g. docker-archive:./image.tar or docker-archive:./image.tar:app:1",
}
