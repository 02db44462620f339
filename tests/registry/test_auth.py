import base64
import json

import pytest

from sconify.errors import RegistryError
from sconify.registry.auth import Challenge, Credentials, load_credentials


def test_bearer_challenge_with_commas_in_values():
    c = Challenge.parse(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:a/b:pull,push repository:c:pull"'
    )
    assert c.scheme == "bearer"
    assert c.params == {
        "realm": "https://auth.example.com/token",
        "service": "registry.example.com",
        "scope": "repository:a/b:pull,push repository:c:pull",
    }


def test_basic_challenge_and_escapes_and_unquoted_values():
    assert Challenge.parse('Basic realm="my \\"realm\\""') == Challenge(
        "basic", {"realm": 'my "realm"'}
    )
    assert Challenge.parse("Bearer realm=https://x/token, service=svc").params == {
        "realm": "https://x/token",
        "service": "svc",
    }
    with pytest.raises(RegistryError, match="cannot parse"):
        Challenge.parse("")


def _config(tmp_path, auths):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"auths": auths}))
    return p


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def test_credentials_from_docker_config(tmp_path):
    p = _config(
        tmp_path,
        {
            "localhost:5000": {"auth": _b64("alice:pw:with:colons")},
            "https://registry.example.com/v2/": {"username": "bob", "password": "pw2"},
            "https://index.docker.io/v1/": {"auth": _b64("hubuser:hubpw")},
        },
    )
    assert load_credentials("localhost:5000", p) == Credentials("alice", "pw:with:colons")
    assert load_credentials("registry.example.com", p) == Credentials("bob", "pw2")
    assert load_credentials("registry-1.docker.io", p) == Credentials("hubuser", "hubpw")
    assert load_credentials("docker.io", p) == Credentials("hubuser", "hubpw")
    assert load_credentials("other:1", p) is None
    assert load_credentials("x", tmp_path / "missing.json") is None


def test_docker_config_env_is_used(tmp_path, monkeypatch):
    _config(tmp_path, {"h:1": {"auth": _b64("u:p")}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert load_credentials("h:1") == Credentials("u", "p")


def test_broken_docker_config_is_an_error(tmp_path):
    p = tmp_path / "config.json"
    p.write_text("{not json")
    with pytest.raises(RegistryError, match="cannot read the Docker client config") as err:
        load_credentials("x", p)
    assert err.value.hint
    p2 = _config(tmp_path, {"x": {"auth": "!!!notbase64"}})
    with pytest.raises(RegistryError, match="not base64"):
        load_credentials("x", p2)


def test_password_is_not_in_repr():
    c = Credentials("user", "hunter2")
    assert "hunter2" not in repr(c)
    assert c.basic_header() == "Basic " + _b64("user:hunter2")
