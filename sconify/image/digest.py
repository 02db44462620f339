"""Content digests: the ``sha256:<64 hex>`` names of blobs, manifests and uncompressed layers."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from sconify.errors import ImageError

_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


class Digest(str):
    """A validated ``sha256:<64 lowercase hex>`` digest; behaves as the plain string otherwise."""

    __slots__ = ()

    def __new__(cls, value: str) -> Digest:
        """Validate ``value``; raise :class:`ImageError` when it is not a sha256 digest."""
        if isinstance(value, Digest):
            return value
        if not isinstance(value, str) or not _SHA256.fullmatch(value):
            raise ImageError(
                f"invalid digest {value!r}",
                hint="a digest is 'sha256:' followed by 64 lowercase hex digits",
            )
        return super().__new__(cls, value)

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Return ``text`` as a digest, raising :class:`ImageError` when it is not one."""
        return cls(text)

    @classmethod
    def of(cls, data: bytes) -> Digest:
        """Return the sha256 digest of ``data``."""
        return cls.from_hex(hashlib.sha256(data).hexdigest())

    @classmethod
    def from_hex(cls, hex_digest: str) -> Digest:
        """Return the digest whose hex part is ``hex_digest``."""
        return cls(f"sha256:{hex_digest}")

    @property
    def algorithm(self) -> str:
        """The algorithm name; always ``sha256``."""
        return "sha256"

    @property
    def hex(self) -> str:
        """The 64 hex digits after ``sha256:``."""
        return self[len("sha256:") :]

    @property
    def short(self) -> str:
        """The first 12 hex digits, for messages."""
        return self.hex[:12]

    @classmethod
    def of_file(cls, path: Path) -> Digest:
        """Return the sha256 digest of the file at ``path``, read in chunks."""
        h = hashlib.sha256()
        with Path(path).open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return cls.from_hex(h.hexdigest())
