"""Media types of OCI and Docker schema2 manifests, configs and layers."""

from __future__ import annotations

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDISTRIBUTABLE_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDISTRIBUTABLE_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYOUT_HEADER = "application/vnd.oci.layout.header.v1+json"

DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

LAYER_TAR_TYPES = frozenset({OCI_LAYER, OCI_LAYER_NONDISTRIBUTABLE, DOCKER_LAYER})
LAYER_GZIP_TYPES = frozenset(
    {OCI_LAYER_GZIP, OCI_LAYER_NONDISTRIBUTABLE_GZIP, DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER_GZIP}
)
LAYER_ZSTD_TYPES = frozenset({OCI_LAYER_ZSTD, OCI_LAYER_NONDISTRIBUTABLE_ZSTD})
LAYER_TYPES = LAYER_TAR_TYPES | LAYER_GZIP_TYPES | LAYER_ZSTD_TYPES

#: Everything a pull accepts, in the ``Accept`` header of a manifest request.
MANIFEST_ACCEPT = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)

#: Docker schema2 type -> the OCI type with the same bytes.
DOCKER_TO_OCI = {
    DOCKER_MANIFEST_LIST: OCI_INDEX,
    DOCKER_MANIFEST: OCI_MANIFEST,
    DOCKER_CONFIG: OCI_CONFIG,
    DOCKER_LAYER: OCI_LAYER,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_FOREIGN_LAYER_GZIP: OCI_LAYER_NONDISTRIBUTABLE_GZIP,
}


def _bare(media_type: str) -> str:
    # Registries SHOULD NOT add parameters to Content-Type, but clients must ignore any.
    return media_type.split(";", 1)[0].strip()


def is_index(media_type: str) -> bool:
    """Whether ``media_type`` names an OCI index or a Docker manifest list."""
    return _bare(media_type) in INDEX_TYPES


def is_manifest(media_type: str) -> bool:
    """Whether ``media_type`` names a single-image manifest (OCI or Docker schema2)."""
    return _bare(media_type) in MANIFEST_TYPES


def is_layer(media_type: str) -> bool:
    """Whether ``media_type`` names a (possibly compressed) layer tar that sconify can read."""
    return _bare(media_type) in LAYER_TYPES


def is_docker(media_type: str) -> bool:
    """Whether ``media_type`` is one of the Docker schema2 types."""
    return _bare(media_type) in DOCKER_TO_OCI


def to_oci(media_type: str) -> str:
    """Return the OCI type equivalent to a Docker schema2 type; other types unchanged."""
    bare = _bare(media_type)
    return DOCKER_TO_OCI.get(bare, bare)


def config_type_for(manifest_media_type: str) -> str:
    """Return the config media type that goes with a manifest media type."""
    return DOCKER_CONFIG if _bare(manifest_media_type) == DOCKER_MANIFEST else OCI_CONFIG
