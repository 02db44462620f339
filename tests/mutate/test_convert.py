"""The conversion on images built in Python: whiteouts, links, no plaintext left, measurement."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from sconify.canonical import canonical_json
from sconify.convert import ConversionRequest, Converted, convert
from sconify.crypto.scfs import read_volume
from sconify.errors import ConversionError, UnsafeLayer
from sconify.image import BlobStore, Image
from sconify.measurement import MeasuredFiles, measure
from sconify.mutate.wrap import SHIM_PATH
from sconify.runtime_files import shim_path
from sconify.settings import RuntimeSettings
from tests.support.layers import Entry, image_of, make_layer, minimal_root

SECRETS = [
    b"TOPSECRET-ALPHA-0001",
    b"OLDSECRET-BETA-0002",
    b"NEWSECRET-GAMMA-0003",
    "caf\u00e9-SECRET-DELTA-0004".encode(),
]


def _base_entries() -> list[Entry]:
    return minimal_root("/bin/ls", "libselinux.so.1", "libpcre2-8.so.0")


def _native(store: BlobStore, tmp: Path) -> Image:
    base = make_layer(store, tmp, _base_entries())
    app1 = make_layer(
        store,
        tmp,
        [
            Entry("app", "dir", mode=0o750, uid=1000, gid=1000),
            Entry("app/secret.txt", data=SECRETS[0], mode=0o600, uid=1000),
            Entry("app/old.txt", data=SECRETS[1]),
            Entry("app/sub", "dir", mode=0o755),
            Entry("app/sub/empty"),
            Entry("opt", "dir", mode=0o755),
            Entry("opt/public.txt", data=b"public"),
        ],
    )
    app2 = make_layer(
        store,
        tmp,
        [
            Entry("app/.wh.old.txt"),
            Entry("app/new.txt", data=SECRETS[2]),
            Entry("app/hard", "hardlink", target="app/new.txt"),
            Entry("app/link", "symlink", target="secret.txt"),
            Entry("app/caf\u00e9 \u2603.txt", data=SECRETS[3]),
            Entry("app/sub/.wh..wh..opq"),
            Entry("app/sub/fresh", data=b"fresh"),
        ],
    )
    return image_of(
        [base, app1, app2],
        env=["PATH=/usr/bin", "API_KEY=hunter2"],
        cmd=["ls", "/app"],
        working_dir="/app",
        user="1000",
    )


def _request(**changes: object) -> ConversionRequest:
    fields: dict[str, object] = dict(
        binary="/bin/ls",
        dirs=("/app",),
        settings=RuntimeSettings(heap=1024**3, stack=4 * 1024**2, dlopen=1, fork=0, debug=True),
        config_id="ns/sess/svc",
        cas_addr="127.0.0.1:18765",
        las_addr="127.0.0.1:18766",
        cas_key_hash="ab" * 32,
    )
    fields.update(changes)
    return ConversionRequest(**fields)  # type: ignore[arg-type]


@pytest.fixture
def converted(tmp_path: Path) -> tuple[Image, Converted]:
    store = BlobStore(tmp_path / "store")
    native = _native(store, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    return native, convert(native, _request(), store, work)


def _extract(image: Image, dest: Path) -> None:
    for layer in image.layers:
        with layer.open_tar() as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
            tar.extractall(dest, filter="tar")


def test_no_blob_holds_protected_plaintext(converted: tuple[Image, Converted]) -> None:
    _, result = converted
    blobs = [result.image.config_bytes(), result.image.manifest_bytes()]
    for layer in result.image.layers:
        with layer.open_tar() as tar:
            blobs.append(tar.read())
        blobs.append(layer.path.read_bytes())
    for blob in blobs:
        for secret in SECRETS:
            assert secret not in blob
        assert b"hunter2" not in blob


def test_volume_holds_the_merged_tree(converted: tuple[Image, Converted], tmp_path: Path) -> None:
    _, result = converted
    root = tmp_path / "root"
    _extract(result.image, root)
    tree = {p: (e, d) for p, e, d in read_volume(root, result.key, result.fspf_tag)}
    assert tree["/app"][0]["mode"] == 0o750 and tree["/app"][0]["uid"] == 1000
    assert tree["/app/secret.txt"][1] == SECRETS[0]
    assert tree["/app/secret.txt"][0]["mode"] == 0o600
    assert "/app/old.txt" not in tree
    assert tree["/app/new.txt"][1] == tree["/app/hard"][1] == SECRETS[2]
    assert tree["/app/link"][0]["target"] == "secret.txt"
    assert tree["/app/caf\u00e9 \u2603.txt"][1] == SECRETS[3]
    assert "/app/sub/empty" not in tree and tree["/app/sub/fresh"][1] == b"fresh"
    assert (root / "app").readlink() == Path("/dev/shm/sconify/app")


def test_untouched_layer_keeps_its_digest(converted: tuple[Image, Converted]) -> None:
    native, result = converted
    assert result.image.layers[0].digest == native.layers[0].digest
    assert result.rewritten_layers == (1, 2)
    assert result.image.layers[1].digest != native.layers[1].digest


def test_config_moves_native_settings_into_the_session(
    converted: tuple[Image, Converted],
) -> None:
    _, result = converted
    cfg = result.image.config
    assert cfg.entrypoint == (SHIM_PATH,) and cfg.cmd is None and cfg.working_dir == "/"
    assert cfg.user == "1000"
    env = cfg.env_dict()
    assert "API_KEY" not in env and env["SCONE_CONFIG_ID"] == "ns/sess/svc"
    assert env["SCONE_HEAP"] == str(1024**3)
    assert all("SECRET" not in h.get("created_by", "") for h in cfg.history)
    assert result.native_command == ("ls", "/app")
    assert result.native_env["API_KEY"] == "hunter2" and result.native_workdir == "/app"
    assert cfg.labels["org.sconify.measurement"] == result.measurement


def test_measurement_is_recomputable_from_the_image(
    converted: tuple[Image, Converted],
    tmp_path: Path,
) -> None:
    _, result = converted
    root = tmp_path / "root"
    _extract(result.image, root)

    def sha(rel: str) -> str:
        return hashlib.sha256((root / rel.lstrip("/")).read_bytes()).hexdigest()

    config = json.loads((root / "sconify/config.json").read_bytes())
    assert (root / "sconify/config.json").read_bytes() == canonical_json(config)
    assert config["binary"] == "/usr/bin/ls"
    manifest = json.loads((root / "sconify/auth/manifest.json").read_bytes())
    files = manifest["files"]
    assert {
        "/usr/bin/ls",
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/x86_64-linux-gnu/libpcre2-8.so.0",
    } <= set(files)
    for path, digest in files.items():
        on_disk = (root / path.lstrip("/")).resolve()
        assert on_disk.is_relative_to(root.resolve())
        assert hashlib.sha256(on_disk.read_bytes()).hexdigest() == digest
    assert sha(SHIM_PATH) == hashlib.sha256(shim_path().read_bytes()).hexdigest()
    expected = measure(
        MeasuredFiles(
            shim_sha256=sha(SHIM_PATH),
            guard_sha256=sha(config["guard"]) if config["guard"] else "",
            binary="/usr/bin/ls",
            binary_sha256=sha("/usr/bin/ls"),
            config_sha256=sha("/sconify/config.json"),
            auth_manifest_sha256=sha("/sconify/auth/manifest.json"),
        ),
        _request().settings,
    )
    assert result.measurement == expected


def test_missing_binary_suggests_close_matches(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    native = _native(store, tmp_path)
    with pytest.raises(ConversionError, match=r"--binary=/usr/local/bin/ls does not exist") as err:
        convert(native, _request(binary="/usr/local/bin/ls"), store, tmp_path)
    assert err.value.hint and "/usr/bin/ls" in err.value.hint


def test_missing_dir_is_named(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    native = _native(store, tmp_path)
    with pytest.raises(ConversionError, match=r"--dir=/ap does not exist"):
        convert(native, _request(dirs=("/ap",)), store, tmp_path)


def test_binary_inside_protected_dir_is_refused(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    native = _native(store, tmp_path)
    with pytest.raises(ConversionError, match="needed before decryption"):
        convert(native, _request(dirs=("/usr/lib",)), store, tmp_path)


def test_hardlink_out_of_protected_dir_is_refused(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    layer = make_layer(
        store,
        tmp_path,
        [
            *_base_entries(),
            Entry("app", "dir"),
            Entry("app/k", data=b"KEY"),
            Entry("leak", "hardlink", target="app/k"),
        ],
    )
    with pytest.raises(ConversionError, match="/app/k and /leak are hard links") as caught:
        convert(image_of([layer]), _request(), store, tmp_path)
    assert "--dir" in (caught.value.hint or "")


@pytest.mark.parametrize("name", ["../evil", "app/../../evil", "/abs"])
def test_escaping_tar_entries_are_refused(tmp_path: Path, name: str) -> None:
    store = BlobStore(tmp_path / "store")
    layer = make_layer(store, tmp_path, [*_base_entries(), Entry(name, data=b"x")])
    with pytest.raises(UnsafeLayer):
        convert(image_of([layer]), _request(), store, tmp_path)


def test_entry_below_a_symlink_is_refused(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    lower = make_layer(
        store,
        tmp_path,
        [*_base_entries(), Entry("app", "dir"), Entry("link", "symlink", target="/app")],
    )
    upper = make_layer(store, tmp_path, [Entry("link/secret", data=b"SECRET")])
    with pytest.raises(UnsafeLayer, match="through the symlink /link -> /app"):
        convert(image_of([lower, upper]), _request(), store, tmp_path)


def test_hardlink_escaping_the_root_is_refused(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    layer = make_layer(
        store, tmp_path, [*_base_entries(), Entry("x", "hardlink", target="../../etc/shadow")]
    )
    with pytest.raises(UnsafeLayer, match="escapes the image root"):
        convert(image_of([layer]), _request(), store, tmp_path)


def test_layer_index_cache_spares_reading_layers_again(tmp_path: Path) -> None:
    from sconify.mutate.indexcache import DiskIndexCache

    store = BlobStore(tmp_path / "store")
    native = _native(store, tmp_path)
    cache = DiskIndexCache(tmp_path / "cache", key_path=tmp_path / "state" / "key")
    (tmp_path / "w1").mkdir()
    first = convert(native, _request(), store, tmp_path / "w1", cache=cache)
    # The base layer holds nothing protected: with its index kept, it is not read at all.
    base = native.layers[0].path
    base.rename(base.with_suffix(".away"))
    (tmp_path / "w2").mkdir()
    second = convert(native, _request(), store, tmp_path / "w2", cache=cache)
    assert second.measurement == first.measurement  # the volume key is not measured
    assert second.rewritten_layers == first.rewritten_layers
    assert second.image.layers[0].digest == first.image.layers[0].digest


def test_unreadable_cache_entry_is_ignored(tmp_path: Path) -> None:
    from sconify.mutate.indexcache import DiskIndexCache

    store = BlobStore(tmp_path / "store")
    native = _native(store, tmp_path)
    cache = DiskIndexCache(tmp_path / "cache", key_path=tmp_path / "state" / "key")
    (tmp_path / "w1").mkdir()
    convert(native, _request(), store, tmp_path / "w1", cache=cache)
    for entry in (tmp_path / "cache").iterdir():
        entry.write_bytes(b"not gzip")
    (tmp_path / "w2").mkdir()
    assert convert(native, _request(), store, tmp_path / "w2", cache=cache).protected_files == 5


def test_musl_binary_is_refused_under_dlopen_0_and_1(tmp_path: Path) -> None:
    from sconify.elf import parse_elf

    store = BlobStore(tmp_path / "store")
    ls = Path("/bin/ls").resolve().read_bytes()
    interp = parse_elf(ls).interpreter
    assert interp is not None
    # The same binary, with its PT_INTERP pointing at musl's loader (same length, padded).
    musl = "/lib/ld-musl-x86_64.so.1".ljust(len(interp), "\0")[: len(interp)]
    patched = ls.replace(interp.encode(), musl.encode(), 1)
    base = [e for e in _base_entries() if e.name != "usr/bin/ls"]
    layer = make_layer(
        store,
        tmp_path,
        [
            *base,
            Entry("usr/bin/ls", data=patched, mode=0o755),
            Entry("usr/lib/ld-musl-x86_64.so.1", data=b"musl loader", mode=0o755),
            Entry("app", "dir"),
            Entry("app/a", data=b"a"),
        ],
    )
    with pytest.raises(ConversionError, match="linked against musl"):
        convert(image_of([layer]), _request(), store, tmp_path)
