"""The image configuration (OCI ``config`` / Docker ``container.image.v1``), immutable."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from sconify.canonical import compact_json
from sconify.errors import ImageError
from sconify.image.descriptor import Platform
from sconify.image.digest import Digest
from sconify.image.jsondoc import load_document

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


_HINT = "the image config is malformed; rebuild the image"
#: What Docker runs a string (shell-form) ENTRYPOINT or CMD with when the config sets no Shell.
DEFAULT_SHELL = ("/bin/sh", "-c")


def _strings(value: Any, field: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImageError(f"config {field} is not a list of strings: {value!r:.200}", hint=_HINT)
    return tuple(value)


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
        """Parse config JSON bytes (one :class:`ImageError` for anything that is not a config)."""
        return cls(load_document(data, "image config", hint="the config blob is corrupt"))

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

    def _section(self, top: str) -> dict[str, Any]:
        section = self._data.get(top) or {}
        if not isinstance(section, dict):
            raise ImageError(f"config {top!r} is not a JSON object", hint=_HINT)
        return section

    def _get(self, name: str) -> Any:
        top, inner = _FIELDS[name]
        if inner is None:
            return self._data.get(top)
        return self._section(top).get(inner)

    def _text(self, name: str) -> str:
        value = self._get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ImageError(f"config {name} is not a string: {value!r:.200}", hint=_HINT)
        return value

    def _argv(self, name: str) -> tuple[str, ...] | None:
        value = self._get(name)
        if isinstance(value, str):
            # Docker's shell form: a string runs through the config's shell (SHELL, default sh)
            if not value:
                return None
            shell = _strings(self._section("config").get("Shell"), "Shell") or DEFAULT_SHELL
            return (*shell, value)
        return _strings(value, name)

    @property
    def env(self) -> tuple[str, ...]:
        """``KEY=VALUE`` entries of the environment."""
        return _strings(self._get("env"), "Env") or ()

    @property
    def entrypoint(self) -> tuple[str, ...] | None:
        """The entrypoint argv, or None when unset; a string is shell form (``sh -c STRING``)."""
        return self._argv("entrypoint")

    @property
    def cmd(self) -> tuple[str, ...] | None:
        """The default command argv, or None when unset; a string is shell form."""
        return self._argv("cmd")

    @property
    def working_dir(self) -> str:
        """The working directory ("" when unset)."""
        return self._text("working_dir")

    @property
    def user(self) -> str:
        """The user (``name``, ``uid`` or ``uid:gid``; "" when unset)."""
        return self._text("user")

    @property
    def labels(self) -> dict[str, str]:
        """A copy of the labels."""
        labels = self._get("labels") or {}
        if not isinstance(labels, dict):
            raise ImageError(f"config Labels is not a JSON object: {labels!r:.200}", hint=_HINT)
        return {str(k): str(v) for k, v in labels.items()}

    @property
    def diff_ids(self) -> tuple[Digest, ...]:
        """The ``rootfs.diff_ids``: digests of the uncompressed layer tars, base first."""
        ids = self._section("rootfs").get("diff_ids") or []
        if not isinstance(ids, list):
            raise ImageError(f"config rootfs.diff_ids is not a list: {ids!r:.200}", hint=_HINT)
        return tuple(Digest.parse(d) for d in ids)

    @property
    def history(self) -> tuple[dict[str, Any], ...]:
        """Copies of the history entries (none when the config has no ``history``)."""
        entries = self._data.get("history") or []
        if not isinstance(entries, list) or not all(isinstance(h, dict) for h in entries):
            raise ImageError("config history is not a list of JSON objects", hint=_HINT)
        return tuple(copy.deepcopy(h) for h in entries)

    def without(self, *keys: str) -> ImageConfig:
        """Return a copy without the top-level ``keys`` (absent ones are ignored)."""
        return ImageConfig({k: v for k, v in self._data.items() if k not in keys})

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
