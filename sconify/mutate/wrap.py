"""Wrap the binary: add the shim and the protected volume as layers, and rewrite the config."""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sconify import __version__
from sconify.canonical import canonical_json
from sconify.crypto.scfs import PackSink
from sconify.image import BlobStore, Compression, Image, ImageConfig, Layer
from sconify.mutate.tarwriter import DeterministicTar

SHIM_PATH = "/sconify/bin/shim"
GUARD_PATH = "/sconify/lib/libsconify_guard.so"
CONFIG_PATH = "/sconify/config.json"
AUTH_MANIFEST_PATH = "/sconify/auth/manifest.json"
FSPF_PATH = "/sconify/fspf/fs.fspf"
VOLUMES_PATH = "/sconify/volumes"
DEFAULT_PLAINTEXT_ROOT = "/dev/shm/sconify"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REDACTED = "sconify: redacted"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ShimConfig:
    """``/sconify/config.json`` (docs/contracts.md section 3)."""

    binary: str
    cas_key_hash: str
    debug: bool
    regions: tuple[str, ...]
    guard: str = ""
    plaintext_root: str = DEFAULT_PLAINTEXT_ROOT

    def to_bytes(self) -> bytes:
        """The canonical JSON written into the image (and measured)."""
        return canonical_json(
            {
                "auth_manifest": AUTH_MANIFEST_PATH,
                "binary": self.binary,
                "cas_key_hash": self.cas_key_hash,
                "debug": self.debug,
                "guard": self.guard,
                "plaintext_root": self.plaintext_root,
                "regions": list(self.regions),
                "version": 1,
            }
        )


def runtime_layer(
    shim: Path,
    guard: Path | None,
    store: BlobStore,
    compression: Compression = Compression.GZIP,
) -> Layer:
    """The layer with the shim (and guard): the same bytes for every conversion by one build."""
    with DeterministicTar(store, compression) as tar:
        tar.add_file(SHIM_PATH, shim, 0o755)
        if guard is not None:
            tar.add_file(GUARD_PATH, guard, 0o755)
        return tar.to_layer()


def protected_layer(
    shim_config: bytes,
    auth_manifest: bytes,
    fspf: bytes,
    ciphertexts: PackSink,
    regions: Sequence[str],
    plaintext_root: str,
    store: BlobStore,
    compression: Compression = Compression.GZIP,
) -> Layer:
    """The layer with the shim config, the manifests, the ciphertexts and the region symlinks."""
    with DeterministicTar(store, compression) as tar, ciphertexts.path.open("rb") as pack:
        tar.add_bytes(CONFIG_PATH, shim_config)
        tar.add_bytes(AUTH_MANIFEST_PATH, auth_manifest)
        tar.add_bytes(FSPF_PATH, fspf)
        tar.add_dir(VOLUMES_PATH)
        for blob in sorted(ciphertexts.blobs, key=lambda b: b.name):
            pack.seek(blob.offset)
            tar.add_stream(posixpath.join(VOLUMES_PATH, blob.name), pack, blob.size)
        for region in regions:
            tar.add_symlink(region, plaintext_root.rstrip("/") + region)
        return tar.to_layer()


def native_command(config: ImageConfig) -> list[str]:
    """What the native image runs: ENTRYPOINT followed by CMD."""
    return [*(config.entrypoint or ()), *(config.cmd or ())]


#: Top-level config fields left by the builder that made the native image: ``container`` (the
#: id of the build container) and ``container_config`` (its config, written by the classic
#: builder and ``docker commit``), whose ``Env`` is the native environment and whose ``Cmd``
#: is the last build step (``#(nop) ENV SECRET=...``), and BuildKit's
#: ``moby.buildkit.buildinfo.v1`` (build sources and the values of build args, the same values
#: the redacted ``ARG`` history lines held). Nothing reads them to run an image.
BUILDER_FIELDS = ("container", "container_config", "moby.buildkit.buildinfo.v1")
_SETS_ENVIRONMENT = ("ENV", "ARG")


def rewrite_config(
    image: Image,
    added: Sequence[Layer],
    *,
    scone_env: Mapping[str, str],
    labels: Mapping[str, str],
) -> Image:
    """The converted image: native layers (already filtered) plus ``added``, a new config.

    The shim becomes the entrypoint, the working dir ``/`` (the native one moves into the
    session: runc cannot use a symlinked WORKDIR), and the environment keeps only ``PATH`` and
    the ``SCONE_*`` settings: the native environment moves into the session, where it is
    released to attested instances only. Every other place a config keeps it is cleared for
    the same reason: the builder's ``container_config`` is dropped, history lines are redacted
    (``ENV`` and ``ARG`` steps show values; BuildKit writes ``ENV SECRET=...``, the classic
    builder ``/bin/sh -c #(nop) ENV SECRET=...``) and ``ONBUILD ENV``/``ARG`` triggers go.
    A native config without history (it is optional) gives a converted one without history.
    """
    native = image.config
    path = native.env_dict().get("PATH", DEFAULT_PATH)
    env = [f"PATH={path}", *(f"{k}={v}" for k, v in scone_env.items())]
    history = [
        {**entry, "created_by": REDACTED} if "created_by" in entry else dict(entry)
        for entry in native.history
    ]
    config = native.without(*BUILDER_FIELDS).replace(
        entrypoint=[SHIM_PATH],
        cmd=None,
        working_dir="/",
        env=env,
        labels={**native.labels, **labels},
        history=history,
    )
    config = _without_environment_triggers(config)
    entries = [
        {"created_by": f"sconify {__version__}: runtime shim"},
        {"created_by": f"sconify {__version__}: protected volume and configuration"},
    ][: len(added)]
    if not _history_fits(history, image.layers):
        # No history, or one that does not match the layers (engines show it, nothing checks
        # it): the converted image has none rather than one that lies about its layers.
        config = config.without("history")
        return image.with_config(config).with_layers([*image.layers, *added])
    return image.with_config(config).append_layers(added, history=entries)


def _history_fits(history: Sequence[Mapping[str, object]], layers: Sequence[Layer]) -> bool:
    return bool(history) and sum(1 for h in history if not h.get("empty_layer")) == len(layers)


def _without_environment_triggers(config: ImageConfig) -> ImageConfig:
    """Drop the ``ONBUILD ENV``/``ONBUILD ARG`` triggers (they hold environment values)."""
    data = config.to_dict()
    section = data.get("config")
    if not isinstance(section, dict) or not isinstance(section.get("OnBuild"), list):
        return config
    section["OnBuild"] = [t for t in section["OnBuild"] if not _sets_environment(t)] or None
    return ImageConfig(data)


def _sets_environment(trigger: object) -> bool:
    words = trigger.split(None, 1) if isinstance(trigger, str) else []
    return bool(words) and words[0].upper() in _SETS_ENVIRONMENT
