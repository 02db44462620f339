import json

import pytest

from sconify.errors import ImageError
from sconify.image import Digest, ImageConfig, Platform

RAW = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2024-01-01T00:00:00Z",
    "config": {
        "Env": ["PATH=/usr/bin", "A=1", "A=2"],
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["echo hi"],
        "WorkingDir": "/app",
        "User": "1000:1000",
        "Labels": {"x": "y"},
        "Healthcheck": {"Test": ["NONE"]},
    },
    "rootfs": {"type": "layers", "diff_ids": [str(Digest.of(b"l1"))]},
    "history": [{"created_by": "ADD x"}, {"created_by": "ENV A=1", "empty_layer": True}],
    "unknown_top": {"kept": True},
}


def test_properties():
    c = ImageConfig(RAW)
    assert c.env == ("PATH=/usr/bin", "A=1", "A=2")
    assert c.env_dict() == {"PATH": "/usr/bin", "A": "2"}
    assert c.entrypoint == ("/bin/sh", "-c")
    assert c.cmd == ("echo hi",)
    assert c.working_dir == "/app"
    assert c.user == "1000:1000"
    assert c.labels == {"x": "y"}
    assert c.diff_ids == (Digest.of(b"l1"),)
    assert c.history[1]["empty_layer"] is True
    assert (c.architecture, c.os, c.variant) == ("amd64", "linux", None)
    assert c.platform == Platform("linux", "amd64")


def test_unknown_fields_survive_replace():
    c = ImageConfig(RAW).replace(cmd=None, env=("PATH=/bin",), labels={"a": "b"})
    d = json.loads(c.to_bytes())
    assert d["unknown_top"] == {"kept": True}
    assert d["config"]["Healthcheck"] == {"Test": ["NONE"]}
    assert d["config"]["Cmd"] is None
    assert d["config"]["Env"] == ["PATH=/bin"]
    assert c.cmd is None and c.labels == {"a": "b"}


def test_is_immutable_and_replace_is_pure():
    raw = json.loads(json.dumps(RAW))
    c = ImageConfig(raw)
    raw["config"]["Env"].append("MUTATED=1")
    assert "MUTATED=1" not in c.env
    c.labels["z"] = "w"
    c.history[0]["created_by"] = "changed"
    assert "z" not in c.labels and c.history[0]["created_by"] == "ADD x"
    c2 = c.replace(working_dir="/")
    assert c.working_dir == "/app" and c2.working_dir == "/"


def test_to_bytes_is_canonical_and_stable():
    a = ImageConfig(RAW).to_bytes()
    b = ImageConfig(dict(reversed(list(RAW.items())))).to_bytes()
    assert a == b
    assert b" " not in a.replace(b"echo hi", b"").replace(b"ADD x", b"").replace(b"ENV A=1", b"")
    assert ImageConfig.from_bytes(a) == ImageConfig(RAW)


def test_replace_diff_ids_and_missing_sections():
    c = ImageConfig({"architecture": "amd64", "os": "linux"})
    assert c.env == () and c.cmd is None and c.diff_ids == () and c.history == ()
    c2 = c.replace(diff_ids=[Digest.of(b"a")], user="app")
    assert c2.diff_ids == (Digest.of(b"a"),)
    assert json.loads(c2.to_bytes())["rootfs"]["type"] == "layers"
    assert c2.user == "app"


def test_errors():
    with pytest.raises(ImageError, match="unknown config field"):
        ImageConfig(RAW).replace(nonsense=1)
    with pytest.raises(ImageError, match="not valid JSON"):
        ImageConfig.from_bytes(b"{nope")
    with pytest.raises(ImageError, match="JSON object"):
        ImageConfig.from_bytes(b"[]")
    with pytest.raises(ImageError, match="invalid digest"):
        ImageConfig(RAW).replace(diff_ids=["sha256:bad"])


def test_string_entrypoint_and_cmd_are_shell_form() -> None:
    cfg = ImageConfig({"config": {"Entrypoint": "python app.py", "Cmd": "--verbose"}})
    assert cfg.entrypoint == ("/bin/sh", "-c", "python app.py")
    assert cfg.cmd == ("/bin/sh", "-c", "--verbose")
    shell = ImageConfig({"config": {"Shell": ["/bin/bash", "-c"], "Entrypoint": "run"}})
    assert shell.entrypoint == ("/bin/bash", "-c", "run")
    assert ImageConfig({"config": {"Entrypoint": ""}}).entrypoint is None


@pytest.mark.parametrize(
    "config",
    [
        {"config": {"Env": "A=1"}},
        {"config": {"Env": ["A=1", 2]}},
        {"config": {"Cmd": {"a": 1}}},
        {"config": {"Entrypoint": 7}},
        {"config": {"WorkingDir": ["/app"]}},
        {"config": {"Labels": ["a"]}},
        {"config": ["not", "an", "object"]},
        {"rootfs": {"diff_ids": "sha256:00"}},
        {"rootfs": ["layers"]},
        {"history": {"created_by": "x"}},
        {"history": ["x"]},
    ],
)
def test_fields_of_the_wrong_type_are_one_image_error(config: dict[str, object]) -> None:
    cfg = ImageConfig(config)
    with pytest.raises(ImageError):
        _ = (
            cfg.env,
            cfg.entrypoint,
            cfg.cmd,
            cfg.working_dir,
            cfg.labels,
            cfg.diff_ids,
            cfg.history,
        )
