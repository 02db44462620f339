"""Images in the local Docker engine (``docker-daemon:``), through the Docker SDK.

Reading streams ``docker save`` into the blob store (layers arrive as uncompressed tars and are
kept so, media type OCI tar). Loading streams a ``docker save``-form tar generated on the fly to
the engine; tagging is a separate step.

The SDK (and requests, urllib3, ... with it) is imported by the functions that talk to the
engine, not with this module: every conversion imports this module, few of them use the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sconify.errors import ImageError, ImageNotFound
from sconify.image.blobstore import BlobStore
from sconify.image.image import Image
from sconify.transports._tarstream import reader_of
from sconify.transports.archive import docker_archive_chunks, read_docker_archive_stream
from sconify.transports.refs import DOCKER_HUB, DaemonRef, RegistryRef

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger(__name__)

#: Seconds the engine may take to answer one API call (a load of a big image is one call).
ENGINE_TIMEOUT = 900


class EngineUnavailable(ImageError):
    """The Docker engine cannot be reached."""


def connect(timeout: int = ENGINE_TIMEOUT) -> DockerClient:
    """Return a ``docker.DockerClient`` for the engine ``DOCKER_HOST`` (or the default socket)."""
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as e:
        raise EngineUnavailable(
            f"cannot reach the Docker engine: {e}",
            hint="start it (e.g. 'dockerd --iptables=false --bridge=none') or set DOCKER_HOST;"
            " 'sconify dev up' starts one when run as root",
        ) from e
    return client


@contextmanager
def _engine(client: DockerClient | None) -> Iterator[DockerClient]:
    if client is not None:
        yield client
        return
    own = connect()
    try:
        yield own
    finally:
        own.close()


def repository_and_tag(ref: RegistryRef) -> tuple[str, str]:
    """The engine's names for ``ref``: familiar repository (``busybox``, ``host:5000/a``), tag."""
    repo = ref.name
    if ref.registry == DOCKER_HUB:
        repo = ref.repository.removeprefix("library/")
    return repo, ref.tag or "latest"


def read(ref: DaemonRef, store: BlobStore, *, client: DockerClient | None = None) -> Image:
    """Read the image ``ref`` names from the engine into ``store``."""
    import docker.errors

    with _engine(client) as engine:
        try:
            # get_image fails only once its stream is read, so ask whether the image exists first.
            image_id = engine.api.inspect_image(ref.engine_name)["Id"]
            chunks = engine.api.get_image(image_id, chunk_size=1 << 20)
            image = read_docker_archive_stream(reader_of(chunks), store, source=str(ref))
        except docker.errors.NotFound as e:
            raise ImageNotFound(
                f"the Docker engine has no image {ref.engine_name}",
                hint=f"pull or build it first (docker pull {ref.engine_name}), or check the name",
            ) from e
        except docker.errors.APIError as e:
            raise ImageError(
                f"the Docker engine failed to export {ref.engine_name}: {e.explanation or e}",
                hint="check the engine's log",
            ) from e
    log.info("read %s: image id %s", ref, image.config_descriptor().digest)
    return image


def exists(ref: DaemonRef, *, client: DockerClient | None = None) -> bool:
    """Whether the engine has the image ``ref`` names."""
    import docker.errors

    with _engine(client) as engine:
        try:
            engine.api.inspect_image(ref.engine_name)
        except docker.errors.ImageNotFound:
            return False
        return True


def load(image: Image, *, client: DockerClient | None = None) -> str:
    """Load ``image`` into the engine without a tag; return its image id (``sha256:...``)."""
    import docker.errors

    image.validate()
    image_id = str(image.config_descriptor().digest)
    with _engine(client) as engine:
        try:
            progress = engine.api.load_image(docker_archive_chunks(image), quiet=True)
            loaded = None
            for item in progress:
                if "error" in item:
                    detail = item.get("errorDetail", {}).get("message") or item["error"]
                    raise ImageError(
                        f"the Docker engine refused to load the image: {detail}",
                        hint="check the engine's log; the image may be malformed",
                    )
                text = str(item.get("stream", ""))
                if "Loaded image ID:" in text:
                    loaded = text.split("Loaded image ID:", 1)[1].strip()
        except docker.errors.APIError as e:
            raise ImageError(
                f"the Docker engine refused to load the image: {e.explanation or e}",
                hint="check the engine's log",
            ) from e
    if loaded is not None and loaded != image_id:
        raise ImageError(
            f"the engine loaded image {loaded}, expected {image_id}",
            hint="the engine rewrote the image config; report this",
        )
    log.info("loaded image %s into the engine", image_id)
    return image_id


def tag(image_id: str, ref: DaemonRef | RegistryRef, *, client: DockerClient | None = None) -> None:
    """Give the engine's image ``image_id`` the name ``ref`` (moving the tag if it exists)."""
    import docker.errors

    name = ref.name if isinstance(ref, DaemonRef) else ref
    if name is None:
        raise ImageError(f"{ref} has no name to tag with", hint="give a name:tag reference")
    repository, tag_name = repository_and_tag(name)
    with _engine(client) as engine:
        try:
            engine.api.tag(image_id, repository, tag_name, force=True)
        except docker.errors.NotFound as e:
            raise ImageNotFound(
                f"the Docker engine has no image {image_id}", hint="load the image first"
            ) from e


def write(image: Image, ref: DaemonRef, *, client: DockerClient | None = None) -> str:
    """Load ``image`` and tag it as ``ref``; return the image id."""
    with _engine(client) as engine:
        image_id = load(image, client=engine)
        if ref.name is not None:
            tag(image_id, ref, client=engine)
    return image_id
