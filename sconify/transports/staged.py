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
from dataclasses import dataclass, replace
from pathlib import Path

from sconify.image import Image
from sconify.registry import TransferStats
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
    """An image written but not yet named at ``ref``; ``written`` says where (digest or id)."""

    ref: ImageRef
    image: Image
    written: str
    _temp: Path | None = None

    def commit(self) -> None:
        """Give the image its name at ``ref`` (the last, quick step)."""
        ref = self.ref
        if isinstance(ref, RegistryRef):
            remote.tag(ref, self.image.digest())
        elif isinstance(ref, DaemonRef):
            daemon.tag(self.written, ref)
        elif isinstance(ref, LayoutRef):
            assert self._temp is not None
            target = Path(ref.path)
            if not target.exists():
                os.rename(self._temp, target)
            else:
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


def stage(image: Image, ref: ImageRef, *, stats: TransferStats | None = None) -> Staged:
    """Write ``image`` at ``ref`` without naming it there."""
    if isinstance(ref, RegistryRef):
        return Staged(ref, image, str(remote.push(image, ref, stats=stats)))
    if isinstance(ref, DaemonRef):
        return Staged(ref, image, daemon.load(image))
    temp = _temp_beside(Path(ref.path))
    if isinstance(ref, LayoutRef):
        written = layout.write(image, replace(ref, path=temp))
    else:
        assert isinstance(ref, DockerArchiveRef | OciArchiveRef)
        written = archive.write(image, replace(ref, path=temp))
    return Staged(ref, image, str(written), temp)
