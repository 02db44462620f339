"""Read or write an image wherever a parsed reference points (the per-place modules do the work)."""

from __future__ import annotations

from sconify.image.blobstore import BlobStore
from sconify.image.descriptor import Platform
from sconify.image.image import Image
from sconify.registry.options import RegistryOptions
from sconify.transports import archive, daemon, layout, remote
from sconify.transports.refs import (
    DaemonRef,
    DockerArchiveRef,
    ImageRef,
    LayoutRef,
    OciArchiveRef,
    RegistryRef,
)


def read(
    ref: ImageRef,
    store: BlobStore,
    *,
    platform: Platform | None = None,
    options: RegistryOptions | None = None,
    taps: remote.LayerTaps | None = None,
) -> Image:
    """Read the image ``ref`` names into ``store``; ``platform`` picks from an index;
    ``options`` say how to reach a registry; ``taps`` watch layers that are downloaded."""
    if isinstance(ref, RegistryRef):
        return remote.read(ref, store, platform=platform, options=options, taps=taps)
    if isinstance(ref, DaemonRef):
        return daemon.read(ref, store)
    if isinstance(ref, LayoutRef):
        return layout.read(ref, store, platform=platform)
    return archive.read(ref, store, platform=platform)


def write(image: Image, ref: ImageRef, *, options: RegistryOptions | None = None) -> str:
    """Write ``image`` to ``ref`` in one step, tag included.

    Returns the manifest digest (registry, ``oci:``, ``oci-archive:``) or the image id (engine,
    ``docker-archive:``). For a registry, use :func:`remote.push` and :func:`remote.tag` when
    something must happen between upload and tag.
    """
    if isinstance(ref, RegistryRef):
        return str(remote.write(image, ref, options=options))
    if isinstance(ref, DaemonRef):
        return daemon.write(image, ref)
    if isinstance(ref, LayoutRef):
        return str(layout.write(image, ref))
    if isinstance(ref, DockerArchiveRef | OciArchiveRef):
        return str(archive.write(image, ref))
    raise TypeError(f"not an image reference: {ref!r}")
