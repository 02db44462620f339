"""An image: a config and its layers, and the manifest that names them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sconify.canonical import compact_json
from sconify.errors import DigestMismatch, ImageError
from sconify.image import mediatypes as mt
from sconify.image.config import ImageConfig
from sconify.image.descriptor import Descriptor, Platform
from sconify.image.digest import Digest
from sconify.image.jsondoc import load_document
from sconify.image.layer import Compression, Layer, diff_id_of

#: Manifests, indexes and configs larger than this are refused (registries accept >= 4 MiB).
MAX_DOCUMENT_BYTES = 8 << 20


@dataclass(frozen=True)
class Image:
    """A single-platform image.

    An image read from somewhere keeps the exact manifest and config bytes it came with
    (``raw_manifest``, ``raw_config``) so that copying it keeps its digest; every ``with_*``
    change returns a new image without them, whose manifest is then built (canonical JSON).
    """

    config: ImageConfig
    layers: tuple[Layer, ...]
    manifest_media_type: str = mt.OCI_MANIFEST
    raw_manifest: bytes | None = field(default=None, repr=False)
    raw_config: bytes | None = field(default=None, repr=False)
    annotations: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not mt.is_manifest(self.manifest_media_type):
            raise ImageError(
                f"unsupported manifest media type {self.manifest_media_type!r}",
                hint="an Image is one OCI or Docker schema2 manifest; pick a platform of an index",
            )
        if self.annotations is not None:
            object.__setattr__(self, "annotations", dict(self.annotations))

    @classmethod
    def from_raw(cls, raw_manifest: bytes, raw_config: bytes, layers: Sequence[Layer]) -> Image:
        """Build an image from exact manifest and config bytes and its (already stored) layers."""
        manifest = parse_manifest(raw_manifest)
        config_desc = config_of(manifest)
        actual = Digest.of(raw_config)
        if actual != config_desc.digest:
            raise DigestMismatch(
                f"config hashes to {actual}, the manifest says {config_desc.digest}",
                hint="the config blob is corrupt; fetch the image again",
            )
        annotations = manifest.get("annotations")
        return cls(
            config=ImageConfig.from_bytes(raw_config),
            layers=tuple(layers),
            manifest_media_type=manifest.get("mediaType") or mt.OCI_MANIFEST,
            raw_manifest=raw_manifest,
            raw_config=raw_config,
            annotations=annotations or None,
        )

    @classmethod
    def assemble(
        cls, raw_manifest: bytes, raw_config: bytes, blob_path: Callable[[Descriptor], Path]
    ) -> Image:
        """Build an image from exact manifest and config bytes.

        ``blob_path`` returns where each layer blob is (putting it in a store as needed); the
        layers' diff_ids come from the config, whose count must match the manifest's layers.
        """
        manifest = parse_manifest(raw_manifest)
        media_type = manifest.get("mediaType") or mt.OCI_MANIFEST
        if not mt.is_manifest(media_type):
            raise ImageError(
                f"a {media_type} is not an image manifest",
                hint="sconify reads OCI and Docker schema2 image manifests (not schema1)",
            )
        descs = [Descriptor.from_json(d) for d in manifest.get("layers") or ()]
        diff_ids = ImageConfig.from_bytes(raw_config).diff_ids
        if len(diff_ids) != len(descs):
            raise ImageError(
                f"the config lists {len(diff_ids)} diff_ids for {len(descs)} layers",
                hint="the image is malformed; rebuild it",
            )
        layers = [Layer(d, i, blob_path(d)) for d, i in zip(descs, diff_ids, strict=True)]
        return cls.from_raw(raw_manifest, raw_config, layers)

    @property
    def platform(self) -> Platform:
        """The platform the config declares."""
        return self.config.platform

    def config_bytes(self) -> bytes:
        """The exact config blob."""
        return self.raw_config if self.raw_config is not None else self.config.to_bytes()

    def config_descriptor(self) -> Descriptor:
        """The descriptor of the config blob as the manifest has it."""
        if self.raw_manifest is not None:
            return config_of(parse_manifest(self.raw_manifest))
        data = self.config_bytes()
        return Descriptor(mt.config_type_for(self.manifest_media_type), Digest.of(data), len(data))

    def manifest(self) -> dict[str, Any]:
        """The manifest as a JSON object."""
        if self.raw_manifest is not None:
            return parse_manifest(self.raw_manifest)
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.manifest_media_type,
            "config": self.config_descriptor().to_json(),
            "layers": [layer.descriptor.to_json() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    def manifest_bytes(self) -> bytes:
        """The exact manifest bytes (the kept ones, or canonical JSON of :meth:`manifest`)."""
        if self.raw_manifest is not None:
            return self.raw_manifest
        return compact_json(self.manifest())

    def digest(self) -> Digest:
        """The digest of the manifest bytes: the image's name by content."""
        return Digest.of(self.manifest_bytes())

    def size(self) -> int:
        """Manifest, config and layer bytes together."""
        return (
            len(self.manifest_bytes())
            + len(self.config_bytes())
            + sum(layer.size for layer in self.layers)
        )

    def with_config(self, config: ImageConfig) -> Image:
        """Return the image with another config (the manifest will be rebuilt)."""
        return Image(config, self.layers, self.manifest_media_type, None, None, self.annotations)

    def with_layers(self, layers: Iterable[Layer]) -> Image:
        """Return the image with other layers; the config's ``diff_ids`` follow the layers.

        History is left as it is: keep it consistent (one non-empty entry per layer) yourself,
        or use :meth:`append_layers`.
        """
        layers = tuple(layers)
        config = self.config.replace(diff_ids=[layer.diff_id for layer in layers])
        return Image(config, layers, self.manifest_media_type, None, None, self.annotations)

    def append_layers(
        self, layers: Iterable[Layer], history: Iterable[Mapping[str, Any]] | None = None
    ) -> Image:
        """Return the image with ``layers`` on top, each with a history entry.

        ``history`` gives one entry per layer (default ``{"created_by": "sconify"}``).
        """
        layers = tuple(layers)
        entries = [dict(h) for h in history] if history is not None else None
        if entries is None:
            entries = [{"created_by": "sconify"} for _ in layers]
        if len(entries) != len(layers):
            raise ImageError(
                f"{len(entries)} history entries for {len(layers)} layers",
                hint="give one history entry per appended layer",
            )
        new = self.with_layers(self.layers + layers)
        return new.with_config(new.config.replace(history=[*self.config.history, *entries]))

    def with_manifest_media_type(self, media_type: str) -> Image:
        """Return the image under another manifest type (the manifest will be rebuilt)."""
        return Image(self.config, self.layers, media_type, None, None, self.annotations)

    def with_annotations(self, annotations: Mapping[str, str] | None) -> Image:
        """Return the image with other manifest annotations (the manifest will be rebuilt)."""
        return Image(self.config, self.layers, self.manifest_media_type, None, None, annotations)

    def as_oci(self) -> Image:
        """Return the image as an OCI manifest; Docker layer types become their OCI twins.

        Layer bytes do not change, only their names. An OCI image is returned unchanged.
        """
        if self.manifest_media_type == mt.OCI_MANIFEST and not any(
            mt.is_docker(layer.media_type) for layer in self.layers
        ):
            return self
        layers = tuple(
            layer.with_descriptor(
                Descriptor(
                    mt.to_oci(layer.media_type),
                    layer.digest,
                    layer.size,
                    layer.descriptor.annotations,
                    layer.descriptor.platform,
                    layer.descriptor.urls,
                )
            )
            for layer in self.layers
        )
        return Image(self.config, layers, mt.OCI_MANIFEST, None, None, self.annotations)

    def validate(self, *, deep: bool = False) -> None:
        """Check the image's invariants; raise :class:`ImageError` naming the first broken one.

        Checks that the config descriptor matches the config bytes, the config's diff_ids match
        the layers, the history has one non-empty entry per layer (when it has any), the layer
        media types fit the manifest type, and a kept manifest lists exactly these layers.
        With ``deep``, each layer blob is re-hashed and decompressed to check digest, size and
        diff_id.
        """
        data = self.config_bytes()
        desc = self.config_descriptor()
        if desc.digest != Digest.of(data) or desc.size != len(data):
            raise DigestMismatch(
                f"config descriptor says {desc.digest} ({desc.size} bytes), the config is"
                f" {Digest.of(data)} ({len(data)} bytes)",
                hint="rebuild the manifest after changing the config (use with_config)",
            )
        diff_ids = self.config.diff_ids
        layer_ids = tuple(layer.diff_id for layer in self.layers)
        if diff_ids != layer_ids:
            raise ImageError(
                f"config lists diff_ids {[d.short for d in diff_ids]}, the layers have"
                f" {[d.short for d in layer_ids]}",
                hint="change layers with Image.with_layers, which keeps diff_ids in step",
            )
        history = self.config.history
        if history:
            non_empty = sum(1 for h in history if not h.get("empty_layer"))
            if non_empty != len(self.layers):
                raise ImageError(
                    f"history has {non_empty} non-empty entries for {len(self.layers)} layers",
                    hint="add one history entry per layer (Image.append_layers does)",
                )
        for i, layer in enumerate(self.layers):
            if not mt.is_layer(layer.media_type):
                raise ImageError(
                    f"layer {i} has unsupported media type {layer.media_type!r}",
                    hint="layers must be tar, tar+gzip or tar+zstd",
                )
            if (
                self.manifest_media_type == mt.DOCKER_MANIFEST
                and layer.compression is Compression.ZSTD
            ):
                raise ImageError(
                    f"layer {i} is zstd-compressed inside a Docker schema2 manifest",
                    hint="schema2 cannot express zstd; convert with Image.as_oci()",
                )
        if self.raw_manifest is not None:
            listed = [Descriptor.from_json(d) for d in self.manifest().get("layers") or ()]
            kept = [(d.digest, d.size) for d in listed]
            if kept != [(layer.digest, layer.size) for layer in self.layers]:
                raise ImageError(
                    "the kept manifest lists other layers than the image holds",
                    hint="use with_layers to change layers (it drops the kept manifest)",
                )
        if deep:
            for i, layer in enumerate(self.layers):
                _check_layer_blob(i, layer)


def _check_layer_blob(index: int, layer: Layer) -> None:
    size = layer.path.stat().st_size if layer.path.is_file() else -1
    if size != layer.size:
        raise DigestMismatch(
            f"layer {index} blob {layer.path} has {size} bytes, its descriptor says {layer.size}",
            hint="the blob is missing or truncated; fetch the image again",
        )
    actual = Digest.of_file(layer.path)
    if actual != layer.digest:
        raise DigestMismatch(
            f"layer {index} blob {layer.path} hashes to {actual}, expected {layer.digest}",
            hint="the blob is corrupt; fetch the image again",
        )
    diff_id = diff_id_of(layer.path, layer.compression)
    if diff_id != layer.diff_id:
        raise DigestMismatch(
            f"layer {index} tar hashes to {diff_id}, its diff_id is {layer.diff_id}",
            hint="the layer's diff_id is wrong; rebuild it with layer_from_tar",
        )


def parse_manifest(raw: bytes) -> dict[str, Any]:
    """Parse manifest or index bytes into a JSON object, raising :class:`ImageError` if broken."""
    obj = load_document(raw, "manifest", hint="the manifest is corrupt")
    if not isinstance(obj, dict) or obj.get("schemaVersion") != 2:
        raise ImageError(
            "manifest is not a schemaVersion 2 JSON object",
            hint="only OCI and Docker schema2 manifests are supported (not schema1)",
        )
    if not isinstance(obj.get("mediaType", ""), str):
        raise ImageError(
            f"manifest mediaType {obj['mediaType']!r:.200} is not a string",
            hint="the manifest is corrupt",
        )
    return obj


def config_of(manifest: dict[str, Any]) -> Descriptor:
    """The config descriptor of a parsed image manifest."""
    if "config" not in manifest:
        raise ImageError("the image manifest names no config", hint="the manifest is corrupt")
    return Descriptor.from_json(manifest["config"])
