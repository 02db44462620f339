"""The conversion: native image in, protected image out, with its measurement and volume key.

It composes the pure steps of :mod:`sconify.mutate`: scan the layers, find the authenticated set,
encrypt the protected directories out of every layer, add the shim and the volume, rewrite the
config, and measure the result exactly as the shim will.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sconify import __version__
from sconify.canonical import canonical_json
from sconify.crypto.keys import VolumeKey
from sconify.errors import ConversionError
from sconify.image import BlobStore, Compression, Image, Layer
from sconify.measurement import MeasuredFiles, measure
from sconify.mutate.authset import build_auth_set
from sconify.mutate.fsview import IndexCache, Node, scan_layers
from sconify.mutate.protect import plan_protection, protect_regions, resolve_regions
from sconify.mutate.wrap import (
    DEFAULT_PLAINTEXT_ROOT,
    FSPF_PATH,
    GUARD_PATH,
    ShimConfig,
    native_command,
    protected_layer,
    rewrite_config,
    runtime_layer,
    sha256_file,
)
from sconify.runtime_files import guard_path, shim_path
from sconify.settings import RuntimeSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConversionRequest:
    """What to convert and how; the public facts that end up in the image."""

    binary: str
    dirs: tuple[str, ...]
    settings: RuntimeSettings
    config_id: str
    cas_addr: str
    las_addr: str
    cas_key_hash: str
    authenticate: tuple[str, ...] = ()
    plaintext_root: str = DEFAULT_PLAINTEXT_ROOT
    extra_env: tuple[tuple[str, str], ...] = field(default=())
    compression: Compression = Compression.GZIP


@dataclass(frozen=True)
class Converted:
    """The converted image and what its session must hold. ``key`` is the only copy."""

    image: Image
    measurement: str
    key: VolumeKey
    fspf_tag: str
    fspf_path: str
    binary: str
    regions: tuple[str, ...]
    native_command: tuple[str, ...]
    native_env: dict[str, str]
    native_workdir: str
    rewritten_layers: tuple[int, ...]
    protected_files: int
    protected_bytes: int


def convert(
    image: Image,
    request: ConversionRequest,
    store: BlobStore,
    workdir: Path,
    *,
    cache: IndexCache | None = None,
    on_final: Callable[[Sequence[Layer]], None] = lambda layers: None,
) -> Converted:
    """Convert ``image``; new blobs go into ``store``, scratch files into ``workdir``;
    ``cache`` keeps layer indexes between conversions.

    ``on_final`` hears each layer of the result as soon as it is final, so that a caller may
    upload it while the rest is made: first, once the input is known to be convertible, the
    native layers that pass through unchanged (they hold no protected path), then the runtime
    layer, the rewritten native layers and the protected layer (ciphertexts only).
    """
    shim = shim_path(image.config.architecture or "amd64")
    guard = guard_path(image.config.architecture or "amd64")
    log.info("scanning %d layers", len(image.layers))
    view = scan_layers(image.layers, cache)
    regions = resolve_regions(view, request.dirs, plaintext_root=request.plaintext_root)
    auth = build_auth_set(
        view, request.binary, authenticate=request.authenticate, protected=regions
    )
    _refuse_musl_with_guard(view.get(auth.binary), request.settings)
    plan = plan_protection(view, regions, request.dirs)
    on_final(plan.untouched(image.layers))
    runtime = runtime_layer(shim, guard, store, request.compression)
    on_final([runtime])
    key = VolumeKey.generate()
    log.info("encrypting %s", ", ".join(regions) or "nothing")
    volume = protect_regions(
        image.layers, view, plan, key, store, workdir, compression=request.compression
    )
    on_final([volume.layers[i] for i in volume.rewritten])

    shim_config = ShimConfig(
        binary=auth.binary,
        cas_key_hash=request.cas_key_hash,
        debug=request.settings.debug,
        regions=regions,
        guard=GUARD_PATH if guard else "",
        plaintext_root=request.plaintext_root,
    ).to_bytes()
    manifest = canonical_json(auth.manifest())
    protected = protected_layer(
        shim_config,
        manifest,
        volume.sealed.fspf,
        volume.ciphertexts,
        regions,
        request.plaintext_root,
        store,
        request.compression,
    )
    on_final([protected])
    added = [runtime, protected]
    measurement = measure(
        MeasuredFiles(
            shim_sha256=sha256_file(shim),
            guard_sha256=sha256_file(guard) if guard else "",
            binary=auth.binary,
            binary_sha256=auth.files[auth.binary],
            config_sha256=_sha256(shim_config),
            auth_manifest_sha256=_sha256(manifest),
        ),
        request.settings,
    )
    scone_env = {
        "SCONE_CAS_ADDR": request.cas_addr,
        "SCONE_LAS_ADDR": request.las_addr,
        "SCONE_CONFIG_ID": request.config_id,
        **request.settings.environment(),
    }
    labels = {
        "org.sconify.version": __version__,
        "org.sconify.config-id": request.config_id,
        "org.sconify.measurement": measurement,
        "org.sconify.regions": ",".join(regions),
    }
    native = image.config
    converted = rewrite_config(
        image.with_layers(volume.layers), added, scone_env=scone_env, labels=labels
    )
    converted.validate()
    return Converted(
        image=converted,
        measurement=measurement,
        key=key,
        fspf_tag=volume.sealed.tag_hex,
        fspf_path=FSPF_PATH,
        binary=auth.binary,
        regions=regions,
        native_command=tuple(native_command(native)),
        native_env={**native.env_dict(), **dict(request.extra_env)},
        native_workdir=native.working_dir or "/",
        rewritten_layers=volume.rewritten,
        protected_files=volume.sealed.file_count,
        protected_bytes=volume.sealed.plaintext_bytes,
    )


def _refuse_musl_with_guard(binary: Node | None, settings: RuntimeSettings) -> None:
    """The dlopen guard is built for glibc; a musl (Alpine) binary could not be held to
    ``--dlopen=0/1``, so such a conversion is refused rather than run unguarded."""
    interpreter = binary.elf.interpreter if binary is not None and binary.elf else None
    if interpreter and "ld-musl" in interpreter and settings.dlopen != 2:
        raise ConversionError(
            f"{binary.path if binary else ''} is linked against musl ({interpreter}), and "
            "sconify's dlopen guard is built for glibc only",
            hint="convert a glibc-based (e.g. Debian) image, or use --dlopen=2 with --cas-debug "
            "for a debug image",
        )


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
