"""Read a converted image back: its measurement (as the shim will compute it) and its facts."""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from typing import Any

from sconify.errors import ImageError
from sconify.image import Image
from sconify.measurement import MeasuredFiles, measure, measurement_fields
from sconify.mutate.fsview import FsView, scan_layers
from sconify.mutate.wrap import AUTH_MANIFEST_PATH, CONFIG_PATH, SHIM_PATH
from sconify.settings import RuntimeSettings, parse_size


def read_file(image: Image, view: FsView, path: str) -> bytes:
    """The bytes of ``path`` in the merged image (small files only: read into memory)."""
    resolved = view.resolve(path)
    node = view.get(resolved) if resolved else None
    if node is None or node.kind != "file":
        raise ImageError(
            f"{path} is not a file in this image",
            hint="is this an image converted by sconify? (`sconify image inspect` tells)",
        )
    layer = image.layers[node.layer]
    with layer.open_tar() as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
        for member in tar:
            if member.name == node.member:
                handle = tar.extractfile(member)
                return handle.read() if handle else b""
    raise ImageError(f"{path} vanished from layer {node.layer}", hint="read the image again")


def settings_of(image: Image, debug: bool) -> RuntimeSettings:
    """The settings the shim will use by default: the ``SCONE_*`` values baked into the image."""
    env = image.config.env_dict()
    defaults = RuntimeSettings()
    return RuntimeSettings(
        heap=parse_size(env["SCONE_HEAP"]) if "SCONE_HEAP" in env else defaults.heap,
        stack=parse_size(env["SCONE_STACK"]) if "SCONE_STACK" in env else defaults.stack,
        dlopen=int(env.get("SCONE_ALLOW_DLOPEN", defaults.dlopen)),
        fork=int(env.get("SCONE_FORK", defaults.fork)),
        debug=debug,
    )


@dataclass(frozen=True)
class Report:
    """What ``sconify image measure`` and ``inspect`` show."""

    measurement: str
    fields: dict[str, object]
    shim_config: dict[str, Any]
    config_id: str | None


def measure_image(image: Image, view: FsView | None = None) -> Report:
    """Compute the measurement of a converted image from its files, as the shim does at start."""
    view = view or scan_layers(image.layers)
    config_bytes = read_file(image, view, CONFIG_PATH)
    shim_config = json.loads(config_bytes)

    def sha(path: str) -> str:
        resolved = view.resolve(path)
        node = view.get(resolved) if resolved else None
        if node is None or node.kind != "file":
            raise ImageError(
                f"{path} is missing from the converted image", hint="convert the image again"
            )
        return node.sha256

    files = MeasuredFiles(
        shim_sha256=sha(SHIM_PATH),
        guard_sha256=sha(shim_config["guard"]) if shim_config.get("guard") else "",
        binary=shim_config["binary"],
        binary_sha256=sha(shim_config["binary"]),
        config_sha256=sha(CONFIG_PATH),
        auth_manifest_sha256=sha(AUTH_MANIFEST_PATH),
    )
    settings = settings_of(image, bool(shim_config.get("debug")))
    return Report(
        measurement=measure(files, settings),
        fields=measurement_fields(files, settings),
        shim_config=shim_config,
        config_id=image.config.env_dict().get("SCONE_CONFIG_ID"),
    )


def describe(image: Image) -> dict[str, Any]:
    """A JSON-ready description: layers, media types, and for converted images what matters."""
    out: dict[str, Any] = {
        "digest": str(image.digest()),
        "mediaType": image.manifest_media_type,
        "platform": str(image.platform),
        "config": image.config.to_dict().get("config", {}),
        "layers": [
            {"digest": str(layer.digest), "size": layer.size, "mediaType": layer.media_type}
            for layer in image.layers
        ],
    }
    view = scan_layers(image.layers)
    if view.get(CONFIG_PATH) is None:
        out["converted"] = False
        return out
    report = measure_image(image, view)
    out.update(
        converted=True,
        measurement=report.measurement,
        config_id=report.config_id,
        binary=report.shim_config["binary"],
        regions=report.shim_config["regions"],
        debug=report.shim_config["debug"],
        cas_key_hash=report.shim_config["cas_key_hash"],
    )
    return out


__all__ = ["Report", "describe", "measure_image", "read_file", "settings_of"]
