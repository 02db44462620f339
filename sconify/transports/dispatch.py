"""Read or write an image wherever a reference points (one call for every transport)."""

from __future__ import annotations

from sconify.image import BlobStore, Image
from sconify.transports import archive, daemon, layout, remote
from sconify.transports.refs import (
    DaemonRef,
    DockerArchiveRef,
    ImageRef,
    LayoutRef,
    OciArchiveRef,
    RegistryRef,
)


def read(ref: ImageRef, store: BlobStore) -> Image:
    """Read the image at ``ref`` into ``store``."""
    if isinstance(ref, RegistryRef):
        return remote.read(ref, store)
    if isinstance(ref, DaemonRef):
        return daemon.read(ref, store)
    if isinstance(ref, LayoutRef):
        return layout.read(ref, store)
    return archive.read(ref, store)


def write(image: Image, ref: ImageRef) -> str:
    """Write ``image`` to ``ref`` (tagged); return its digest or, for the engine, its id."""
    if isinstance(ref, RegistryRef):
        return str(remote.write(image, ref))
    if isinstance(ref, DaemonRef):
        return daemon.write(image, ref)
    if isinstance(ref, LayoutRef):
        return str(layout.write(image, ref))
    assert isinstance(ref, DockerArchiveRef | OciArchiveRef)
    return str(archive.write(image, ref))
