"""The image model: nouns only (digests, descriptors, layers, configs, images, indexes).

Nothing here talks to a registry or an engine; that is :mod:`sconify.transports`. The only I/O
is the content-addressed :class:`BlobStore` that layers live in.
"""

from sconify.image.blobstore import BlobStore, BlobTap, BlobWriter
from sconify.image.config import ImageConfig
from sconify.image.descriptor import Descriptor, Platform
from sconify.image.digest import Digest
from sconify.image.image import Image, parse_manifest
from sconify.image.index import DEFAULT_PLATFORM, Index
from sconify.image.layer import (
    Compression,
    Layer,
    LayerSink,
    diff_id_of,
    layer_from_blob,
    layer_from_tar,
)

__all__ = [
    "DEFAULT_PLATFORM",
    "BlobStore",
    "BlobTap",
    "BlobWriter",
    "Compression",
    "Descriptor",
    "Digest",
    "Image",
    "ImageConfig",
    "Index",
    "Layer",
    "LayerSink",
    "Platform",
    "diff_id_of",
    "layer_from_blob",
    "layer_from_tar",
    "parse_manifest",
]
