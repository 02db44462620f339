"""Images in a registry (``docker://``): read into a blob store, push by digest, then tag.

``write`` is two public steps so that a caller can do something between them (sconify stores
the session at the CAS): :func:`push` uploads everything and the manifest *by digest*, leaving
no tag; :func:`tag` then points the tag at that digest. A tag therefore never names an image
whose blobs are not all in the repository, verified by the registry against their digests.

Every function takes ``options`` (:class:`~sconify.registry.RegistryOptions`: credentials,
certificates, TLS verification, retries, chunk size) or a ready ``client`` for the ref's
registry; :func:`push` and :func:`read` count what they moved into ``stats``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import BinaryIO

from sconify.errors import ImageError
from sconify.image import mediatypes as mt
from sconify.image.blobstore import BlobStore, BlobTap
from sconify.image.descriptor import Descriptor, Platform
from sconify.image.digest import Digest
from sconify.image.image import Image, config_of, parse_manifest
from sconify.image.index import Index
from sconify.image.layer import Layer
from sconify.registry.client import RegistryClient
from sconify.registry.options import RegistryOptions
from sconify.registry.stats import TransferStats
from sconify.registry.upload import Outcome
from sconify.transports.refs import RegistryRef

log = logging.getLogger(__name__)

#: Blobs moved at once; enough to overlap round trips without flooding a small machine.
PARALLEL_BLOBS = 4

#: Given a layer's descriptor, a tap that watches its blob arrive (e.g. to index the layer while
#: it downloads), or None.
LayerTaps = Callable[[Descriptor], BlobTap | None]


@contextmanager
def _client(
    ref: RegistryRef, client: RegistryClient | None, options: RegistryOptions | None
) -> Iterator[RegistryClient]:
    if client is not None:
        yield client
        return
    with RegistryClient(ref.api_host, options=options) as own:
        yield own


def _parallel(fn: Callable[[Descriptor], object], items: Sequence[Descriptor]) -> None:
    if len(items) <= 1:
        for item in items:
            fn(item)
        return
    pool = ThreadPoolExecutor(max_workers=min(PARALLEL_BLOBS, len(items)))
    try:
        for future in [pool.submit(fn, item) for item in items]:
            future.result()
    finally:
        # After a failure, blobs not yet started are dropped; those in flight finish.
        pool.shutdown(wait=True, cancel_futures=True)


def read(
    ref: RegistryRef,
    store: BlobStore,
    *,
    platform: Platform | None = None,
    client: RegistryClient | None = None,
    options: RegistryOptions | None = None,
    stats: TransferStats | None = None,
    taps: LayerTaps | None = None,
) -> Image:
    """Pull the image ``ref`` names into ``store`` and return it.

    An index picks ``platform`` (default linux/amd64). Every blob is verified against its
    digest; blobs already in the store are re-hashed instead of fetched. ``taps`` may watch
    each layer that is fetched while it arrives.
    """
    with _client(ref, client, options) as c:
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
        config_bytes = c.read_blob(ref.repository, config_of(manifest).digest)
        layer_descs = [Descriptor.from_json(d) for d in manifest.get("layers") or ()]

        def fetch(desc: Descriptor) -> None:
            if store.has(desc.digest):
                store.verify(desc.digest)
                if stats is not None:
                    stats.cached()
                return
            tap = taps(desc) if taps is not None else None
            c.fetch_blob(ref.repository, desc.digest, store, desc.size, stats=stats, tap=tap)

        _parallel(fetch, layer_descs)
    image = Image.assemble(fetched.data, config_bytes, lambda d: store.path(d.digest))
    log.info("read %s: %s, %d layers", ref, image.digest(), len(image.layers))
    return image


def push(
    image: Image,
    ref: RegistryRef,
    *,
    client: RegistryClient | None = None,
    options: RegistryOptions | None = None,
    mount_from: RegistryRef | None = None,
    stats: TransferStats | None = None,
    early: EarlyUploads | None = None,
) -> Digest:
    """Upload ``image`` to ``ref``'s repository and store its manifest by digest (no tag).

    Blobs the repository has already are skipped (``HEAD``). With ``mount_from`` (another
    repository of the same registry that holds some of the blobs, e.g. the image converted
    from) the others are first offered as a cross-repository mount; a registry that declines
    gets them uploaded. Blobs ``early`` sent ahead are waited for, not sent again. Returns the
    manifest digest.
    """
    image.validate()
    source = _mount_source(ref, mount_from)
    if client is None and early is not None:
        client = early.client
    with _client(ref, client, options) as c:
        sent_early = early.offered() if early is not None else set()
        blobs: dict[Digest, tuple[int, Callable[[], BinaryIO]]] = {}
        for layer in image.layers:
            blobs[layer.digest] = (layer.size, _file_opener(Path(layer.path)))
        config_bytes = image.config_bytes()
        config = image.config_descriptor()
        blobs.setdefault(config.digest, (config.size, partial(io.BytesIO, config_bytes)))

        def push_blob(desc: Descriptor) -> None:
            size, opener = blobs[desc.digest]
            _push_blob(c, ref, desc.digest, size, opener, source, stats)

        descs = [layer.descriptor for layer in image.layers] + [config]
        todo = {d.digest: d for d in descs if d.digest not in sent_early}
        _parallel(push_blob, list(todo.values()))
        if early is not None:
            early.wait()
        digest = c.put_manifest(
            ref.repository, str(image.digest()), image.manifest_bytes(), image.manifest_media_type
        )
    log.info("pushed %s@%s", ref.name, digest)
    return digest


def _push_blob(
    c: RegistryClient,
    ref: RegistryRef,
    digest: Digest,
    size: int,
    opener: Callable[[], BinaryIO],
    mount_from: str | None,
    stats: TransferStats | None,
) -> None:
    """Put one blob into ``ref``'s repository, unless it is there (mounted when possible)."""
    if c.blob_exists(ref.repository, digest, push=True):
        log.debug("%s already has %s", ref.name, digest)
        if stats is not None:
            stats.skipped(size)
        return
    outcome = c.upload_blob(
        ref.repository, digest, size, opener, mount_from=mount_from, stats=stats
    )
    if outcome is Outcome.MOUNTED:
        log.debug("mounted %s into %s from %s", digest, ref.name, mount_from)


class EarlyUploads:
    """Blobs sent to a repository in the background while the rest of an image is made.

    Offer only blobs that are final: what is sent here stays in the registry (unreferenced,
    like the blobs of an interrupted ``docker push``) if the image is never pushed. Nothing is
    named: :func:`push` waits for these uploads, then stores the manifest. Use as a context
    manager; leaving it cancels what has not started and waits for what has.
    """

    def __init__(
        self,
        ref: RegistryRef,
        *,
        options: RegistryOptions | None = None,
        mount_from: RegistryRef | None = None,
        stats: TransferStats | None = None,
    ) -> None:
        self.ref = ref
        self.client = RegistryClient(ref.api_host, options=options)
        self._source = _mount_source(ref, mount_from)
        self._stats = stats
        self._pool = ThreadPoolExecutor(max_workers=PARALLEL_BLOBS)
        self._uploads: dict[Digest, Future[None]] = {}

    def offer(self, layers: Sequence[Layer]) -> None:
        """Start uploading ``layers``' blobs (each once)."""
        for layer in layers:
            if layer.digest not in self._uploads:
                self._uploads[layer.digest] = self._pool.submit(
                    _push_blob,
                    self.client,
                    self.ref,
                    layer.digest,
                    layer.size,
                    _file_opener(Path(layer.path)),
                    self._source,
                    self._stats,
                )

    def offered(self) -> set[Digest]:
        """The blobs being sent (or sent) here."""
        return set(self._uploads)

    def wait(self) -> None:
        """Wait for every upload started (raises the first failure)."""
        for future in self._uploads.values():
            future.result()

    def close(self, *, abort: bool = False) -> None:
        """Cancel uploads not yet started, wait for the others, close the connection; with
        ``abort``, close the connection first, which breaks off the uploads in flight."""
        if abort:
            self.client.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.client.close()

    def __enter__(self) -> EarlyUploads:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        # After a failure (or ^C) nothing will use these blobs: do not wait for a big one.
        self.close(abort=exc_type is not None)


def _file_opener(path: Path) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        return path.open("rb")

    return opener


def _mount_source(ref: RegistryRef, mount_from: RegistryRef | None) -> str | None:
    """The repository to mount from, when it is another repository of the same registry."""
    if mount_from is None or mount_from.repository == ref.repository:
        return None
    if mount_from.api_host != ref.api_host:
        log.info("not mounting from %s: another registry than %s", mount_from.name, ref.name)
        return None
    return mount_from.repository


def tag(
    ref: RegistryRef,
    digest: Digest,
    *,
    client: RegistryClient | None = None,
    options: RegistryOptions | None = None,
) -> None:
    """Point ``ref``'s tag at the manifest ``digest`` already in its repository."""
    if not ref.tag:
        raise ImageError(f"{ref} has no tag to set", hint="give the reference a :tag")
    with _client(ref, client, options) as c:
        fetched = c.get_manifest(ref.repository, str(digest))
        c.put_manifest(ref.repository, ref.tag, fetched.data, fetched.media_type)
    log.info("tagged %s:%s -> %s", ref.name, ref.tag, digest)


def write(
    image: Image,
    ref: RegistryRef,
    *,
    client: RegistryClient | None = None,
    options: RegistryOptions | None = None,
    mount_from: RegistryRef | None = None,
    stats: TransferStats | None = None,
) -> Digest:
    """Push ``image`` and then tag it: :func:`push` followed by :func:`tag`."""
    with _client(ref, client, options) as c:
        digest = push(image, ref, client=c, mount_from=mount_from, stats=stats)
        if ref.tag:
            tag(ref, digest, client=c)
    return digest


def exists(
    ref: RegistryRef,
    *,
    client: RegistryClient | None = None,
    options: RegistryOptions | None = None,
) -> bool:
    """Whether the registry has a manifest under ``ref``'s tag or digest."""
    with _client(ref, client, options) as c:
        return c.manifest_digest(ref.repository, ref.reference) is not None
