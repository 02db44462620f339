"""Staged writes: put an image where a reference points without naming it, then name it.

``sconify_image`` must never leave a named image whose key was lost, so it writes in two steps:
:func:`stage` writes every byte but gives the image no name a user could pull or run (a registry
manifest pushed by digest only; an engine image without a tag; a layout or archive under a
temporary name beside the target), and :meth:`Staged.commit` names it once the session is stored.
:meth:`Staged.discard` removes what can be removed after a failure.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sconify.canonical import compact_json
from sconify.errors import UsageError
from sconify.image import Descriptor, Digest, Image, Index, Platform
from sconify.image import mediatypes as mt
from sconify.registry import RegistryClient, TransferStats
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

log = logging.getLogger(__name__)


@dataclass
class Staged:
    """An image (or index) written but not yet named at ``ref``.

    ``written`` is what the place calls it: a manifest or index digest, or an engine image id.
    """

    ref: ImageRef
    image: Image | None
    written: str
    _temp: Path | None = None
    options: RegistryOptions | None = None

    def commit(self) -> None:
        """Give the image its name at ``ref`` (the last, quick step)."""
        ref = self.ref
        if isinstance(ref, RegistryRef):
            remote.tag(ref, Digest.parse(self.written), options=self.options)
        elif isinstance(ref, DaemonRef):
            daemon.tag(self.written, ref)
        elif isinstance(ref, LayoutRef):
            assert self._temp is not None
            target = Path(ref.path)
            if not target.exists():
                os.rename(self._temp, target)
            else:
                assert self.image is not None
                layout.write(self.image, ref)
                shutil.rmtree(self._temp, ignore_errors=True)
        else:
            assert self._temp is not None
            os.replace(self._temp, ref.path)
        self._temp = None

    def discard(self) -> None:
        """Remove what was staged, where that is possible (best effort, never raises)."""
        try:
            if isinstance(self.ref, DaemonRef):
                daemon.connect().images.remove(self.written, force=True)
            elif self._temp is not None and self._temp.is_dir():
                shutil.rmtree(self._temp, ignore_errors=True)
            elif self._temp is not None:
                self._temp.unlink(missing_ok=True)
        except Exception as err:  # the failure that led here matters more than this one
            log.warning("could not remove the staged image %s: %s", self.written, err)


def _temp_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.staged-")
    os.close(fd)
    os.unlink(name)
    return Path(name)


def stage(
    image: Image,
    ref: ImageRef,
    *,
    stats: TransferStats | None = None,
    options: RegistryOptions | None = None,
    mount_from: RegistryRef | None = None,
    early: remote.EarlyUploads | None = None,
) -> Staged:
    """Write ``image`` at ``ref`` without naming it there.

    For a registry, ``mount_from`` names a repository of the same registry that already holds
    the source's blobs: the untouched layers are mounted instead of uploaded; ``early`` has
    sent some blobs already.
    """
    if isinstance(ref, RegistryRef):
        digest = remote.push(
            image, ref, stats=stats, options=options, mount_from=mount_from, early=early
        )
        return Staged(ref, image, str(digest), options=options)
    if isinstance(ref, DaemonRef):
        return Staged(ref, image, daemon.load(image))
    temp = _temp_beside(Path(ref.path))
    if isinstance(ref, LayoutRef):
        written = layout.write(image, replace(ref, path=temp))
    else:
        assert isinstance(ref, DockerArchiveRef | OciArchiveRef)
        written = archive.write(image, replace(ref, path=temp))
    return Staged(ref, image, str(written), temp)


def stage_index(
    images: Sequence[Image],
    ref: ImageRef,
    *,
    stats: TransferStats | None = None,
    options: RegistryOptions | None = None,
    mount_from: RegistryRef | None = None,
    early: remote.EarlyUploads | None = None,
) -> Staged:
    """Write several platform images and an OCI index naming them, without naming the index.

    Only a registry holds a multi-platform image here: an engine runs one platform, and the
    archive formats are written for one image.
    """
    if not isinstance(ref, RegistryRef):
        raise UsageError(
            f"{ref}: --all-platforms writes an index, which only a registry holds here",
            hint="write to docker://HOST/REPO:TAG, or pick one platform with --platform",
        )
    entries = []
    for image in images:
        digest = remote.push(
            image, ref, stats=stats, options=options, mount_from=mount_from, early=early
        )
        entries.append(
            Descriptor(
                image.manifest_media_type,
                digest,
                len(image.manifest_bytes()),
                platform=image.platform,
            ).to_json()
        )
    index = compact_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})
    with RegistryClient(ref.api_host, options=options) as client:
        digest = client.put_manifest(ref.repository, str(Digest.of(index)), index, mt.OCI_INDEX)
    return Staged(ref, None, str(digest), options=options)


def platforms_of(ref: ImageRef, options: RegistryOptions | None = None) -> list[Platform]:
    """The platforms of the index a registry reference names ([] for a single image)."""
    if not isinstance(ref, RegistryRef):
        raise UsageError(
            f"{ref}: --all-platforms reads an index from a registry",
            hint="convert from docker://HOST/REPO:TAG, or pick one platform with --platform",
        )
    with RegistryClient(ref.api_host, options=options) as client:
        fetched = client.get_manifest(ref.repository, ref.reference)
    if not mt.is_index(fetched.media_type):
        return []
    return [d.platform for d in Index.from_bytes(fetched.data).images() if d.platform]
