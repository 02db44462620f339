"""Layer indexes kept on disk between conversions, named by the digest of the layer's blob.

An index is a pure function of the blob's bytes, and the digest names those bytes (the blob
store holds a blob only under the digest it hashes to), so a base image shared by many
conversions (a CI job converting the same Flask image again and again) is read once, and no
image can have its index recorded under another's layer. The cache lives under
``$XDG_CACHE_HOME/sconify/layer-index``; ``SCONIFY_NO_CACHE=1`` turns it off. An unreadable entry
is ignored and rewritten.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import tempfile
from pathlib import Path

from sconify.mutate.layerindex import LayerIndex

log = logging.getLogger(__name__)

VERSION = "v2"


def default_root() -> Path:
    """``$XDG_CACHE_HOME/sconify/layer-index/v2`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sconify" / "layer-index" / VERSION


class DiskIndexCache:
    """Layer indexes as gzip'd JSON files, written atomically."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_root()

    @classmethod
    def from_environment(cls) -> DiskIndexCache | None:
        """The default cache, or None when ``SCONIFY_NO_CACHE`` is set."""
        return None if os.environ.get("SCONIFY_NO_CACHE") else cls()

    def _path(self, digest: str) -> Path:
        return self.root / (digest.replace(":", "-") + ".json.gz")

    def get(self, digest: str) -> LayerIndex | None:
        """The kept index, or None (also when the file is unreadable)."""
        path = self._path(digest)
        try:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                return LayerIndex.from_json(json.load(handle))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("ignoring the unreadable layer index %s: %s", path, err)
            return None

    def put(self, digest: str, index: LayerIndex) -> None:
        """Keep ``index`` (best effort: a full disk only costs speed)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
            with (
                os.fdopen(fd, "wb") as raw,
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz,
            ):
                gz.write(json.dumps(index.to_json(), separators=(",", ":")).encode())
            os.replace(tmp, self._path(digest))
        except OSError as err:
            log.warning("could not keep the layer index of %s: %s", digest, err)
