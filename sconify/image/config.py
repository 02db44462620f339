"""The image configuration (OCI ``config`` / Docker ``container.image.v1``), immutable."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sconify.canonical import compact_json
from sconify.errors import ImageError
from sconify.image.descriptor import Platform
from sconify.image.digest import Digest

# Property name -> (top-level key, key inside "config" or None for a top-level field).
_FIELDS: dict[str, tuple[str, str | None]] = {
    "env": ("config", "Env"),
    "entrypoint": ("config", "Entrypoint"),
    "cmd": ("config", "Cmd"),
    "working_dir": ("config", "WorkingDir"),
    "user": ("config", "User"),
    "labels": ("config", "Labels"),
    "exposed_ports": ("config", "ExposedPorts"),
    "volumes": ("config", "Volumes"),
    "stop_signal": ("config", "StopSignal"),
    "history": ("history", None),
    "architecture": ("architecture", None),
    "os": ("os", None),
    "variant": ("variant", None),
    "created": ("created", None),
    "author": ("author", None),
}


def _strings(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(str(v) for v in value)


class ImageConfig:
    """An immutable view of the config JSON that keeps every field, known or not.

    Read fields through the properties; change them with :meth:`replace`, which returns a new
    config. ``replace(cmd=None)`` writes ``"Cmd": null``.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping):
            raise ImageError("an image config must be a JSON object", hint="check the config blob")
        self._data: dict[str, Any] = copy.deepcopy(dict(data))

    @classmethod
    def from_bytes(cls, data: bytes) -> ImageConfig:
        """Parse config JSON bytes."""
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ImageError(
                f"image config is not valid JSON: {e}", hint="the config blob is corrupt"
            ) from e
        return cls(obj)

    @classmethod
    def new(
        cls,
        *,
        architecture: str = "amd64",
        os: str = "linux",
        env: Sequence[str] = (),
        cmd: Sequence[str] | None = None,
        entrypoint: Sequence[str] | None = None,
        working_dir: str = "",
        user: str = "",
    ) -> ImageConfig:
        """Return a minimal config with no layers (for building images from scratch)."""
        return cls(
            {
                "architecture": architecture,
                "os": os,
                "config": {
                    "Env": list(env),
                    "Cmd": list(cmd) if cmd is not None else None,
                    "Entrypoint": list(entrypoint) if entrypoint is not None else None,
                    "WorkingDir": working_dir,
                    "User": user,
                },
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a deep copy of the whole JSON object."""
        return copy.deepcopy(self._data)

    def to_bytes(self) -> bytes:
        """Serialize as canonical JSON (stable: equal configs give equal bytes)."""
        return compact_json(self._data)

    def _get(self, name: str) -> Any:
        top, inner = _FIELDS[name]
        if inner is None:
            return self._data.get(top)
        section = self._data.get(top) or {}
        return section.get(inner)

    @property
    def env(self) -> tuple[str, ...]:
        """``KEY=VALUE`` entries of the environment."""
        return _strings(self._get("env")) or ()

    @property
    def entrypoint(self) -> tuple[str, ...] | None:
        """The entrypoint argv, or None when unset."""
        return _strings(self._get("entrypoint"))

    @property
    def cmd(self) -> tuple[str, ...] | None:
        """The default command argv, or None when unset."""
        return _strings(self._get("cmd"))

    @property
    def working_dir(self) -> str:
        """The working directory ("" when unset)."""
        return str(self._get("working_dir") or "")

    @property
    def user(self) -> str:
        """The user (``name``, ``uid`` or ``uid:gid``; "" when unset)."""
        return str(self._get("user") or "")

    @property
    def labels(self) -> dict[str, str]:
        """A copy of the labels."""
        return {str(k): str(v) for k, v in (self._get("labels") or {}).items()}

    @property
    def diff_ids(self) -> tuple[Digest, ...]:
        """The ``rootfs.diff_ids``: digests of the uncompressed layer tars, base first."""
        rootfs = self._data.get("rootfs") or {}
        return tuple(Digest.parse(d) for d in rootfs.get("diff_ids") or ())

    @property
    def history(self) -> tuple[dict[str, Any], ...]:
        """Copies of the history entries."""
        return tuple(copy.deepcopy(h) for h in self._data.get("history") or ())

    @property
    def architecture(self) -> str:
        """The CPU architecture, e.g. ``amd64``."""
        return str(self._data.get("architecture") or "")

    @property
    def os(self) -> str:
        """The operating system, e.g. ``linux``."""
        return str(self._data.get("os") or "")

    @property
    def variant(self) -> str | None:
        """The CPU variant, if any."""
        v = self._data.get("variant")
        return str(v) if v else None

    @property
    def platform(self) -> Platform:
        """The platform this config declares."""
        return Platform(self.os, self.architecture, self.variant)

    def env_dict(self) -> dict[str, str]:
        """The environment as a mapping (a later duplicate wins, as in Docker)."""
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def replace(self, **changes: Any) -> ImageConfig:
        """Return a copy with fields changed.

        Accepted names: the properties (``env``, ``entrypoint``, ``cmd``, ``working_dir``,
        ``user``, ``labels``, ``history``, ``architecture``, ``os``, ``variant``, ``created``,
        ``author``, ``exposed_ports``, ``volumes``, ``stop_signal``) and ``diff_ids``.
        """
        data = copy.deepcopy(self._data)
        for name, value in changes.items():
            if name == "diff_ids":
                rootfs = data.setdefault("rootfs", {"type": "layers"})
                rootfs.setdefault("type", "layers")
                rootfs["diff_ids"] = [str(Digest.parse(d)) for d in value]
                continue
            if name not in _FIELDS:
                raise ImageError(
                    f"unknown config field {name!r}",
                    hint=f"use one of: diff_ids, {', '.join(sorted(_FIELDS))}",
                )
            top, inner = _FIELDS[name]
            json_value = _to_json_value(value)
            if inner is None:
                data[top] = json_value
            else:
                section = data.get(top)
                if not isinstance(section, dict):
                    section = {}
                    data[top] = section
                section[inner] = json_value
        return ImageConfig(data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImageConfig) and self._data == other._data

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"ImageConfig({self.platform}, {len(self.diff_ids)} layers)"


def _to_json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json_value(v) for v in value]
    return value
