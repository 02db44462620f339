"""The converted config: no native environment anywhere in it, whatever field held it; images
without history convert; a string ENTRYPOINT/CMD is shell form, as Docker runs it."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from sconify.convert import Converted, convert
from sconify.image import BlobStore, Image, ImageConfig
from sconify.mutate.wrap import SHIM_PATH
from tests.mutate.test_convert import _base_entries, _request
from tests.support.layers import Entry, make_layer

MARKER = "LEAKED-ENV-MARKER-7d1f"


def _image(tmp: Path, config: dict[str, Any]) -> tuple[BlobStore, Image]:
    store = BlobStore(tmp / "store")
    base = make_layer(store, tmp, _base_entries())
    app = make_layer(store, tmp, [Entry("app", "dir"), Entry("app/a.txt", data=b"a")])
    full = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [base.diff_id, app.diff_id]},
        **config,
    }
    return store, Image(ImageConfig(full), (base, app))


def _convert(tmp: Path, config: dict[str, Any]) -> tuple[Image, Converted]:
    store, native = _image(tmp, config)
    work = tmp / "work"
    work.mkdir()
    return native, convert(native, _request(), store, work)


def _classic_builder_config() -> dict[str, Any]:
    """What the classic builder and ``docker commit`` write, a secret in every place it goes."""
    env = ["PATH=/usr/bin:/bin", f"SECRET={MARKER}"]
    return {
        "config": {
            "Env": env,
            "Cmd": ["ls", "/app"],
            "OnBuild": [f"ENV CHILD_SECRET={MARKER}-onbuild", "RUN echo built"],
        },
        "container": "3c1b6e5c7a0d",
        "container_config": {
            "Env": env,
            "Cmd": ["/bin/sh", "-c", "#(nop) ", f"ENV SECRET={MARKER}"],
            "Labels": {},
        },
        "history": [
            {"created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
            {"created_by": f"/bin/sh -c #(nop)  ENV SECRET={MARKER}", "empty_layer": True},
            {"created_by": f"ENV SECRET={MARKER}", "comment": "buildkit.dockerfile.v0"},
        ],
        # BuildKit's build info: the build args' values (base64 JSON in real images)
        "moby.buildkit.buildinfo.v1": base64.b64encode(
            json.dumps({"attrs": {"build-arg:SECRET": MARKER}}).encode()
        ).decode(),
    }


def test_no_native_environment_in_any_config_field(tmp_path: Path) -> None:
    native, result = _convert(tmp_path, _classic_builder_config())
    assert MARKER.encode() in native.config_bytes()
    out = result.image.config_bytes()
    assert MARKER.encode() not in out, json.loads(out)
    assert MARKER.encode() not in result.image.manifest_bytes()
    doc = json.loads(out)
    assert "container_config" not in doc and "container" not in doc
    assert "moby.buildkit.buildinfo.v1" not in doc
    assert doc["config"]["OnBuild"] == ["RUN echo built"]
    assert result.native_env["SECRET"] == MARKER  # moved into the session, not lost
    result.image.validate()


def test_a_config_without_history_converts(tmp_path: Path) -> None:
    _, result = _convert(tmp_path, {"config": {"Cmd": ["ls", "/app"]}})
    assert "history" not in json.loads(result.image.config_bytes())
    assert len(result.image.layers) == 4
    result.image.validate()


def test_a_history_that_does_not_fit_the_layers_is_dropped(tmp_path: Path) -> None:
    history = [{"created_by": "only one entry for two layers"}]
    _, result = _convert(tmp_path, {"config": {"Cmd": ["ls"]}, "history": history})
    assert "history" not in json.loads(result.image.config_bytes())
    result.image.validate()


def test_string_entrypoint_is_shell_form(tmp_path: Path) -> None:
    config = {"config": {"Entrypoint": "python app.py", "Cmd": ["--port", "80"]}}
    _, result = _convert(tmp_path, config)
    assert result.native_command == ("/bin/sh", "-c", "python app.py", "--port", "80")
    assert result.image.config.entrypoint == (SHIM_PATH,)


def test_string_cmd_runs_through_the_configured_shell(tmp_path: Path) -> None:
    config = {"config": {"Shell": ["/bin/bash", "-lc"], "Cmd": "ls /app"}}
    _, result = _convert(tmp_path, config)
    assert result.native_command == ("/bin/bash", "-lc", "ls /app")
