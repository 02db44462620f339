"""Where credentials come from: --creds, --authfile, the Docker config and credential helpers.

The helpers are real programs on PATH (a small script, see ``credential_helper``) run the way
the docker CLI runs them.
"""

from __future__ import annotations

import base64
import json
import os

import pytest

from sconify.errors import RegistryError, UsageError
from sconify.registry import Credentials, RegistryClient, RegistryOptions
from sconify.registry.credentials import DOCKER_HUB_KEY, load_credentials, resolve
from sconify.transports import remote
from sconify.transports.refs import RegistryRef
from tests.support.registry import PASSWORD, USER, credential_helper, docker_config


def _config(tmp_path, **content):
    p = tmp_path / "config.json"
    p.write_text(json.dumps(content))
    return p


def _b64(text):
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def helpers(tmp_path, monkeypatch):
    """A directory on PATH for credential helpers."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


def test_auths_entries(tmp_path):
    p = _config(
        tmp_path,
        auths={
            "localhost:5000": {"auth": _b64("alice:pw:with:colons")},
            "https://registry.example.com/v2/": {"username": "bob", "password": "pw2"},
            DOCKER_HUB_KEY: {"auth": _b64("hubuser:hubpw")},
            "tokens.example.com": {"auth": _b64("carol:"), "identitytoken": "refresh-1"},
        },
    )
    assert load_credentials("localhost:5000", p) == Credentials("alice", "pw:with:colons")
    assert load_credentials("registry.example.com", p) == Credentials("bob", "pw2")
    assert load_credentials("registry-1.docker.io", p) == Credentials("hubuser", "hubpw")
    assert load_credentials("docker.io", p) == Credentials("hubuser", "hubpw")
    assert load_credentials("tokens.example.com", p) == Credentials(
        "carol", "", identity_token="refresh-1"
    )
    assert load_credentials("other:1", p) is None
    assert load_credentials("x", tmp_path / "missing.json") is None


def test_docker_config_env_is_used(tmp_path, monkeypatch):
    _config(tmp_path, auths={"h:1": {"auth": _b64("u:p")}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert load_credentials("h:1") == Credentials("u", "p")


def test_broken_config_is_an_error(tmp_path):
    p = tmp_path / "config.json"
    p.write_text("{not json")
    with pytest.raises(RegistryError, match="cannot read the registry auth file") as err:
        load_credentials("x", p)
    assert err.value.hint
    with pytest.raises(RegistryError, match="not base64"):
        load_credentials("x", _config(tmp_path, auths={"x": {"auth": "!!!notbase64"}}))


def test_cred_helpers_come_first(tmp_path, helpers):
    credential_helper(helpers, "first", {"reg.example.com:5000": ("helper-user", "helper-pw")})
    p = _config(
        tmp_path,
        credHelpers={"reg.example.com:5000": "first"},
        credsStore="never-run",
        auths={"reg.example.com:5000": {"auth": _b64("file-user:file-pw")}},
    )
    assert load_credentials("reg.example.com:5000", p) == Credentials("helper-user", "helper-pw")
    assert (helpers / "first.log").read_text() == "get reg.example.com:5000\n"
    # Another registry: credsStore, whose helper is not installed, is skipped.
    assert load_credentials("other.example.com", p) is None


def test_creds_store_then_auths(tmp_path, helpers):
    credential_helper(
        helpers, "store", {DOCKER_HUB_KEY: ("<token>", "hub-refresh"), "a.example": ("a", "pa")}
    )
    p = _config(tmp_path, credsStore="store", auths={"b.example": {"auth": _b64("b:pb")}})
    assert load_credentials("a.example", p) == Credentials("a", "pa")
    # Docker Hub is asked for under its legacy key; "<token>" means an identity token.
    assert load_credentials("registry-1.docker.io", p) == Credentials(
        "", identity_token="hub-refresh"
    )
    # Not in the store: the auths entry (Docker leaves them empty, other tools fill them).
    assert load_credentials("b.example", p) == Credentials("b", "pb")
    assert (helpers / "store.log").read_text().splitlines() == [
        "get a.example",
        f"get {DOCKER_HUB_KEY}",
        "get b.example",
    ]


def test_helper_failures_are_named(tmp_path, helpers):
    credential_helper(helpers, "broken", {}, fail="error: keychain locked")
    p = _config(tmp_path, credHelpers={"r.example": "broken", "s.example": "absent"})
    with pytest.raises(RegistryError, match=r"docker-credential-broken failed .*keychain locked"):
        load_credentials("r.example", p)
    with pytest.raises(RegistryError, match=r"docker-credential-absent .* not on PATH") as err:
        load_credentials("s.example", p)
    assert "credHelpers" in (err.value.hint or "")
    (helpers / "docker-credential-junk").write_text("#!/bin/sh\necho not json\n")
    (helpers / "docker-credential-junk").chmod(0o755)
    with pytest.raises(RegistryError, match="not credentials"):
        load_credentials("t.example", _config(tmp_path, credHelpers={"t.example": "junk"}))


def test_resolution_order(tmp_path, monkeypatch):
    home = docker_config(tmp_path / "docker", "r.example", "home", "home-pw")
    monkeypatch.setenv("DOCKER_CONFIG", str(home))
    authfile = _config(tmp_path, auths={"r.example": {"auth": _b64("file:file-pw")}})
    explicit = Credentials.parse("cli:cli:pw")
    assert explicit == Credentials("cli", "cli:pw")

    assert resolve("r.example") == Credentials("home", "home-pw")
    assert resolve("r.example", authfile=authfile) == Credentials("file", "file-pw")
    assert resolve("r.example", creds=explicit, authfile=authfile) == explicit
    assert resolve("r.example", no_creds=True) is None
    # skopeo's environment variable stands for --authfile; the auth file is then the only source.
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(authfile))
    assert resolve("r.example") == Credentials("file", "file-pw")
    assert resolve("elsewhere.example") is None
    with pytest.raises(RegistryError, match="does not exist"):
        resolve("r.example", authfile=tmp_path / "missing.json")


@pytest.mark.parametrize("text", ["nocolon", ":pw", ""])
def test_bad_creds_flag(text):
    with pytest.raises(UsageError, match="USER:PASSWORD") as err:
        Credentials.parse(text)
    assert err.value.hint


def test_options_refuse_contradictions():
    with pytest.raises(UsageError, match="exclude each other"):
        RegistryOptions(creds=Credentials("u", "p"), no_creds=True)
    with pytest.raises(UsageError, match="chunk size"):
        RegistryOptions(chunk_size=0)


def test_push_and_pull_with_a_credential_helper(
    basic_registry, sample, tmp_path, helpers, monkeypatch
):
    credential_helper(helpers, "sconifytest", {basic_registry.addr: (USER, PASSWORD)})
    config = docker_config(
        tmp_path / "dc",
        basic_registry.addr,
        "",
        "",
        credHelpers={basic_registry.addr: "sconifytest"},
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    ref = RegistryRef(basic_registry.addr, "creds/helper", "1")
    assert remote.write(sample, ref) == sample.digest()
    with RegistryClient(basic_registry.addr) as c:
        assert c.manifest_digest("creds/helper", "1") == sample.digest()
    assert (helpers / "sconifytest.log").read_text().splitlines()[0] == f"get {basic_registry.addr}"


def test_push_with_options_creds_and_authfile(basic_registry, sample, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty"))
    ref = RegistryRef(basic_registry.addr, "creds/options", "1")
    with pytest.raises(RegistryError, match="requires a login"):
        remote.push(sample, ref)
    options = RegistryOptions(creds=Credentials.parse(f"{USER}:{PASSWORD}"))
    assert remote.write(sample, ref, options=options) == sample.digest()
    authfile = docker_config(tmp_path / "auth", basic_registry.addr, USER, PASSWORD)
    options = RegistryOptions(authfile=authfile / "config.json")
    assert remote.exists(ref, options=options)
    with pytest.raises(RegistryError, match="requires a login"):
        remote.exists(
            ref, options=RegistryOptions(authfile=authfile / "config.json", no_creds=True)
        )
