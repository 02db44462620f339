"""Images in a registry (``docker://``): read into a blob store, push by digest, then tag.

``write`` is two public steps so that a caller can do something between them (sconify stores
the session at the CAS): :func:`push` uploads everything and the manifest *by digest*, leaving
no tag; :func:`tag` then points the tag at that digest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from sconify.errors import ImageError
from sconify.image import mediatypes as mt
from sconify.image.blobstore import BlobStore
from sconify.image.descriptor import Descriptor, Platform
from sconify.image.digest import Digest
from sconify.image.image import Image, parse_manifest
from sconify.image.index import Index
from sconify.registry.client import RegistryClient
from sconify.registry.stats import TransferStats
from sconify.transports.refs import RegistryRef

log = logging.getLogger(__name__)

#: Blobs moved at once; enough to overlap round trips without flooding a small machine.
PARALLEL_BLOBS = 4


@contextmanager
def _client(ref: RegistryRef, client: RegistryClient | None) -> Iterator[RegistryClient]:
    if client is not None:
        yield client
        return
    with RegistryClient(ref.api_host) as own:
        yield own


def _parallel(fn: Callable[[Descriptor], object], items: Sequence[Descriptor]) -> None:
    if len(items) <= 1:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(max_workers=min(PARALLEL_BLOBS, len(items))) as pool:
        for future in [pool.submit(fn, item) for item in items]:
            future.result()


def read(
    ref: RegistryRef,
    store: BlobStore,
    *,
    platform: Platform | None = None,
    client: RegistryClient | None = None,
) -> Image:
    """Pull the image ``ref`` names into ``store`` and return it.

    An index picks ``platform`` (default linux/amd64). Every blob is verified against its
    digest; blobs already in the store are re-hashed instead of fetched.
    """
    with _client(ref, client) as c:
        fetched = c.get_manifest(ref.repository, ref.reference)
        if mt.is_index(fetched.media_type):
            entry = Index.from_bytes(fetched.data).pick(platform)
            log.info("%s is an index; picked %s (%s)", ref, entry.platform, entry.digest)
            fetched = c.get_manifest(ref.repository, entry.digest)
        if not mt.is_manifest(fetched.media_type):
            raise ImageError(
                f"{ref} is a {fetched.media_type or 'document of unknown type'}, not an image",
                hint="sconify reads OCI and Docker schema2 images (schema1 is not supported)",
            )
        manifest = parse_manifest(fetched.data)
        config_bytes = c.read_blob(ref.repository, Digest.parse(manifest["config"]["digest"]))
        layer_descs = [Descriptor.from_json(d) for d in manifest.get("layers") or ()]

        def fetch(desc: Descriptor) -> None:
            if store.has(desc.digest):
                store.verify(desc.digest)
                return
            c.fetch_blob(ref.repository, desc.digest, store, desc.size)

        _parallel(fetch, layer_descs)
    image = Image.assemble(fetched.data, config_bytes, lambda d: store.path(d.digest))
    log.info("read %s: %s, %d layers", ref, image.digest(), len(image.layers))
    return image


def push(
    image: Image,
    ref: RegistryRef,
    *,
    client: RegistryClient | None = None,
    stats: TransferStats | None = None,
) -> Digest:
    """Upload ``image`` to ``ref``'s repository and store its manifest by digest (no tag).

    Blobs the repository has already are skipped. Returns the manifest digest; ``stats``
    counts what was sent.
    """
    stats = stats if stats is not None else TransferStats()
    image.validate()
    with _client(ref, client) as c:

        def upload_layer(desc: Descriptor) -> None:
            if c.blob_exists(ref.repository, desc.digest, push=True):
                log.debug("%s already has %s", ref.name, desc.digest)
                stats.skipped()
                return
            layer = by_digest[desc.digest]
            c.upload_file(ref.repository, desc.digest, desc.size, layer.path)
            stats.uploaded(desc.size)

        by_digest = {layer.digest: layer for layer in image.layers}
        _parallel(upload_layer, [layer.descriptor for layer in by_digest.values()])
        config = image.config_descriptor()
        if not c.blob_exists(ref.repository, config.digest, push=True):
            c.upload_bytes(ref.repository, image.config_bytes())
            stats.uploaded(config.size)
        else:
            stats.skipped()
        digest = c.put_manifest(
            ref.repository, str(image.digest()), image.manifest_bytes(), image.manifest_media_type
        )
    log.info("pushed %s@%s", ref.name, digest)
    return digest


def tag(ref: RegistryRef, digest: Digest, *, client: RegistryClient | None = None) -> None:
    """Point ``ref``'s tag at the manifest ``digest`` already in its repository."""
    if not ref.tag:
        raise ImageError(f"{ref} has no tag to set", hint="give the reference a :tag")
    with _client(ref, client) as c:
        fetched = c.get_manifest(ref.repository, str(digest))
        c.put_manifest(ref.repository, ref.tag, fetched.data, fetched.media_type)
    log.info("tagged %s:%s -> %s", ref.name, ref.tag, digest)


def write(image: Image, ref: RegistryRef, *, client: RegistryClient | None = None) -> Digest:
    """Push ``image`` and then tag it: :func:`push` followed by :func:`tag`."""
    with _client(ref, client) as c:
        digest = push(image, ref, client=c)
        if ref.tag:
            tag(ref, digest, client=c)
    return digest


def exists(ref: RegistryRef, *, client: RegistryClient | None = None) -> bool:
    """Whether the registry has a manifest under ``ref``'s tag or digest."""
    with _client(ref, client) as c:
        return c.manifest_digest(ref.repository, ref.reference) is not None
