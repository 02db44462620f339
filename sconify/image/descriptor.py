"""Descriptors (media type, digest, size) and the platforms of index entries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sconify.errors import ImageError
from sconify.image.digest import Digest


@dataclass(frozen=True)
class Platform:
    """An OS and CPU architecture (with an optional variant), as in index entries and configs."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]``, e.g. ``linux/amd64`` or ``linux/arm64/v8``."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ImageError(
                f"invalid platform {text!r}", hint="write a platform as os/arch[/variant]"
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, other: Platform) -> bool:
        """Whether ``other`` satisfies this wanted platform (a missing variant matches any)."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        return self.variant is None or self.variant == other.variant

    def to_json(self) -> dict[str, str]:
        """Return the JSON object of an index entry's ``platform``."""
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Platform:
        """Read a ``platform`` JSON object."""
        try:
            variant = obj.get("variant")
            return cls(str(obj["os"]), str(obj["architecture"]), str(variant) if variant else None)
        except (KeyError, TypeError, AttributeError) as e:
            raise ImageError(
                f"invalid platform object {obj!r:.300}",
                hint="a platform needs 'os' and 'architecture'",
            ) from e

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


@dataclass(frozen=True)
class Descriptor:
    """What names a blob: its media type, digest and size (plus annotations, platform, urls)."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] | None = None
    platform: Platform | None = None
    urls: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.digest, Digest):
            object.__setattr__(self, "digest", Digest.parse(self.digest))
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 0:
            raise ImageError(
                f"invalid size {self.size!r} in descriptor of {self.digest}",
                hint="a descriptor's size is a non-negative integer",
            )
        if self.annotations is not None:
            object.__setattr__(self, "annotations", dict(self.annotations))

    def __hash__(self) -> int:
        return hash((self.media_type, self.digest, self.size))

    def to_json(self) -> dict[str, Any]:
        """Return the descriptor as an OCI JSON object."""
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Descriptor:
        """Read a descriptor JSON object, raising :class:`ImageError` when it is malformed."""
        if not isinstance(obj, Mapping):
            raise ImageError(
                f"invalid descriptor {obj!r:.300}", hint="a descriptor is a JSON object"
            )
        try:
            media_type = obj["mediaType"]
            digest = Digest.parse(obj["digest"])
            size = obj["size"]
        except KeyError as e:
            raise ImageError(
                f"descriptor {dict(obj)!r:.300} lacks {e.args[0]!r}",
                hint="a descriptor needs mediaType, digest and size",
            ) from e
        if not isinstance(media_type, str):
            raise ImageError(f"invalid mediaType {media_type!r} in descriptor of {digest}")
        annotations = obj.get("annotations")
        if annotations is not None and not isinstance(annotations, Mapping):
            raise ImageError(
                f"invalid annotations {annotations!r:.200} in descriptor of {digest}",
                hint="annotations are a JSON object of strings",
            )
        platform = obj.get("platform")
        urls = obj.get("urls")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations={str(k): str(v) for k, v in annotations.items()} if annotations else None,
            platform=Platform.from_json(platform) if platform else None,
            urls=tuple(str(u) for u in urls) if urls else None,
        )
