"""Image indexes (OCI index, Docker manifest list) and picking a platform from one."""

from __future__ import annotations

from dataclasses import dataclass, field

from sconify.errors import ImageNotFound
from sconify.image import mediatypes as mt
from sconify.image.descriptor import Descriptor, Platform
from sconify.image.image import parse_manifest

DEFAULT_PLATFORM = Platform("linux", "amd64")


@dataclass(frozen=True)
class Index:
    """An index's child manifests, with the exact bytes it was read from (if any)."""

    manifests: tuple[Descriptor, ...]
    media_type: str = mt.OCI_INDEX
    raw: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Index:
        """Parse index or manifest-list bytes."""
        obj = parse_manifest(raw)
        return cls(
            manifests=tuple(Descriptor.from_json(d) for d in obj.get("manifests") or ()),
            media_type=obj.get("mediaType") or mt.OCI_INDEX,
            raw=raw,
        )

    def images(self) -> tuple[Descriptor, ...]:
        """The entries that are runnable images (BuildKit attestations left out)."""
        return tuple(
            d
            for d in self.manifests
            if mt.is_manifest(d.media_type)
            and (d.annotations or {}).get("vnd.docker.reference.type") != "attestation-manifest"
        )

    def pick(self, platform: Platform | None = None) -> Descriptor:
        """Return the entry for ``platform`` (default linux/amd64).

        An entry without a platform is taken only when it is the index's single image.
        """
        wanted = platform or DEFAULT_PLATFORM
        images = self.images()
        for d in images:
            if d.platform is not None and wanted.matches(d.platform):
                return d
        if len(images) == 1 and images[0].platform is None:
            return images[0]
        offered = ", ".join(str(d.platform) for d in images if d.platform) or "none"
        raise ImageNotFound(
            f"no image for platform {wanted} in the index (offered: {offered})",
            hint="choose one of the offered platforms",
        )
