"""Layer indexes kept on disk between conversions, named by the digest of the layer's blob.

An index is a pure function of the blob's bytes, and the digest names those bytes (the blob
store holds a blob only under the digest it hashes to), so a base image shared by many
conversions (a CI job converting the same Flask image again and again) is read once. The cache
lives under ``$XDG_CACHE_HOME/sconify/layer-index``; ``SCONIFY_NO_CACHE=1`` turns it off.

A cache directory is often shared (CI caches, a team's runners), and an index decides what gets
encrypted: a planted entry saying a layer holds no protected file would ship its plaintext. So
every entry is authenticated: an HMAC-SHA256, under a key kept outside the cache
(``$XDG_STATE_HOME/sconify/layer-index.key``, 32 random bytes, mode 0600, created once with
``O_EXCL``), over the blob's digest and the entry's bytes. An entry that does not verify (planted,
made under another key, corrupt) is ignored with a warning and the layer is read again. Whoever
can read the key can forge entries: keep it private, and share it between machines only as
a secret. Without a usable key the cache is off.
"""

from __future__ import annotations

import contextlib
import gzip
import hmac
import io
import json
import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from sconify.mutate.layerindex import LayerIndex

log = logging.getLogger(__name__)

VERSION = "v3"
KEY_BYTES = 32
_MAGIC = b"sconify layer index " + VERSION.encode() + b"\n"
_MAC_HEX = 64
#: An entry larger than this is not read (a base image's index is a few MB).
MAX_ENTRY_BYTES = 256 << 20


def default_root() -> Path:
    """``$XDG_CACHE_HOME/sconify/layer-index/v3`` (``~/.cache`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sconify" / "layer-index" / VERSION


def default_key_path() -> Path:
    """``$XDG_STATE_HOME/sconify/layer-index.key`` (``~/.local/state`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "sconify" / "layer-index.key"


class DiskIndexCache:
    """Layer indexes as authenticated, gzip'd JSON files, written atomically.

    ``key_path`` names the HMAC key (created on first use); ``key`` gives it directly instead.
    """

    def __init__(
        self, root: Path | None = None, *, key_path: Path | None = None, key: bytes | None = None
    ) -> None:
        self.root = root or default_root()
        self.key_path = key_path or default_key_path()
        self._key = key
        self._key_failed = False

    @classmethod
    def from_environment(cls) -> DiskIndexCache | None:
        """The default cache, or None when ``SCONIFY_NO_CACHE`` is set."""
        return None if os.environ.get("SCONIFY_NO_CACHE") else cls()

    def _path(self, digest: str) -> Path:
        return self.root / (digest.replace(":", "-") + ".json.gz")

    def _mac_key(self) -> bytes | None:
        if self._key is None and not self._key_failed:
            try:
                self._key = load_or_create_key(self.key_path)
            except OSError as err:
                self._key_failed = True
                log.warning("layer-index cache off: key %s unusable: %s", self.key_path, err)
        return self._key

    def get(self, digest: str) -> LayerIndex | None:
        """The kept index, or None (also when the entry is unreadable or does not verify)."""
        key = self._mac_key()
        if key is None:
            return None
        path = self._path(digest)
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_ENTRY_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as err:
            log.warning("ignoring the unreadable layer index %s: %s", path, err)
            return None
        head = len(_MAGIC) + _MAC_HEX + 1
        payload = data[head:]
        if (
            len(data) > MAX_ENTRY_BYTES
            or not data.startswith(_MAGIC)
            or data[head - 1 : head] != b"\n"
            or not hmac.compare_digest(data[len(_MAGIC) : head - 1], _mac(key, digest, payload))
        ):
            log.warning(
                "ignoring the layer index %s: not made by this user's sconify (no valid "
                "authentication); the layer is read again",
                path,
            )
            return None
        try:
            return LayerIndex.from_json(json.loads(gzip.decompress(payload)))
        except (OSError, EOFError, ValueError, KeyError, TypeError) as err:
            log.warning("ignoring the unreadable layer index %s: %s", path, err)
            return None

    def put(self, digest: str, index: LayerIndex) -> None:
        """Keep ``index`` (best effort: a full disk only costs speed)."""
        key = self._mac_key()
        if key is None:
            return
        tmp: str | None = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
            with os.fdopen(fd, "wb") as raw:
                # The MAC goes before the payload but covers all of it: written last, in place.
                raw.write(_MAGIC + b"0" * _MAC_HEX + b"\n")
                mac = _MacWriter(raw, key, digest)
                with gzip.GzipFile(fileobj=mac, mode="wb", compresslevel=1, mtime=0) as gz:
                    for chunk in index.json_chunks():
                        gz.write(chunk.encode())
                raw.seek(len(_MAGIC))
                raw.write(mac.hexdigest())
            os.replace(tmp, self._path(digest))
        except OSError as err:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            log.warning("could not keep the layer index of %s: %s", digest, err)


class _MacWriter(io.RawIOBase):
    """Writes on to ``out`` and keeps the entry's MAC (:func:`_mac`) of what went through."""

    def __init__(self, out: BinaryIO, key: bytes, digest: str) -> None:
        self._out = out
        self._mac = hmac.new(key, _MAGIC + digest.encode() + b"\0", "sha256")

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._mac.update(data)
        return self._out.write(data)

    def hexdigest(self) -> bytes:
        """The MAC of everything written so far, as hex."""
        return self._mac.hexdigest().encode()


def _mac(key: bytes, digest: str, payload: bytes) -> bytes:
    # the digest is inside the MAC: a genuine entry copied under another layer's name fails
    message = _MAGIC + digest.encode() + b"\0" + payload
    return hmac.new(key, message, "sha256").hexdigest().encode()


def load_or_create_key(path: Path) -> bytes:
    """The HMAC key at ``path``, created (32 random bytes, 0600) when absent.

    The key must be a regular file (not a symlink) owned by this user, readable by nobody
    else, of exactly :data:`KEY_BYTES` bytes; anything else raises ``OSError``. Concurrent
    first runs agree on one key: each writes a private temporary file and links it into place,
    which only one link can do.
    """
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(KEY_BYTES))
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: use that
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path} is not a regular file")
        if info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise OSError(f"{path} must belong to this user with mode 0600")
        key = handle.read(KEY_BYTES + 1)
    if len(key) != KEY_BYTES:
        raise OSError(f"{path} does not hold a {KEY_BYTES}-byte key")
    return key
