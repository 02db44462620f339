"""Key material as its own type, so it cannot be logged or printed by accident."""

from __future__ import annotations

from sconify.crypto._primitives import random_bytes
from sconify.errors import CryptoError


class VolumeKey:
    """A 32-byte SCFS volume key. Its ``repr``/``str`` never show the bytes."""

    __slots__ = ("_key",)
    SIZE = 32

    def __init__(self, key: bytes) -> None:
        if len(key) != self.SIZE:
            raise CryptoError(f"a volume key has {self.SIZE} bytes, not {len(key)}")
        self._key = bytes(key)

    @classmethod
    def generate(cls) -> VolumeKey:
        """Make a fresh random key."""
        return cls(random_bytes(cls.SIZE))

    @classmethod
    def from_hex(cls, text: str) -> VolumeKey:
        """Parse the session's ``fspf_key`` form (64 hex digits)."""
        try:
            return cls(bytes.fromhex(text))
        except ValueError:
            raise CryptoError("a volume key is 64 hex digits") from None

    def reveal_hex(self) -> str:
        """Return the key as hex, for the one place it may go: the session."""
        return self._key.hex()

    def reveal(self) -> bytes:
        """Return the raw key bytes (for the recipes in this package)."""
        return self._key

    def __repr__(self) -> str:
        return "VolumeKey(<redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VolumeKey) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)
