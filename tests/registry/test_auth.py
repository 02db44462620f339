"""Challenges, Basic and Bearer auth, scopes, and the OAuth2 flow for identity tokens."""

from __future__ import annotations

import base64

import httpx
import pytest

from sconify.errors import RegistryError
from sconify.image import Digest
from sconify.registry import Credentials, RegistryClient, RetryPolicy
from sconify.registry.auth import (
    Authenticator,
    Challenge,
    merge_scopes,
    mount_scope,
    pull_scope,
    push_scope,
)
from tests.support.registry import IDENTITY_TOKEN, PASSWORD, USER

FAST = RetryPolicy(attempts=2, base=0.01, max_delay=0.02)


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


def test_scopes():
    assert merge_scopes(["repository:a:pull,push"], ["repository:a:push,pull"]) == [
        "repository:a:pull,push"
    ]
    assert merge_scopes(["repository:a:pull"], ["repository:a:push", "registry:catalog:*"]) == [
        "repository:a:pull",
        "repository:a:push",
        "registry:catalog:*",
    ]
    assert pull_scope("a/b") == "repository:a/b:pull"
    assert push_scope("a/b") == "repository:a/b:pull,push"
    assert mount_scope("a/b", "c/d") == "repository:a/b:pull,push repository:c/d:pull"


def test_secrets_are_not_in_repr():
    c = Credentials("user", "hunter2", identity_token="refresh-me")
    assert "hunter2" not in repr(c) and "refresh-me" not in repr(c)
    assert c.basic_header() == "Basic " + base64.b64encode(b"user:hunter2").decode()


def test_basic_auth(basic_registry):
    data = b"basic auth blob"
    with RegistryClient(basic_registry.addr, credentials=Credentials(USER, PASSWORD)) as c:
        digest = c.upload_bytes("auth/basic", data)
        assert c.read_blob("auth/basic", digest) == data
    anonymous = RegistryClient(basic_registry.addr, credentials=None)
    with anonymous, pytest.raises(RegistryError, match="requires a login") as err:
        anonymous.read_blob("auth/basic", digest)
    assert "--creds" in (err.value.hint or "") and "docker login" in (err.value.hint or "")
    wrong = RegistryClient(basic_registry.addr, credentials=Credentials(USER, "wrong"))
    with wrong, pytest.raises(RegistryError, match="401"):
        wrong.read_blob("auth/basic", digest)
    token_only = Credentials("", identity_token=IDENTITY_TOKEN)
    c = RegistryClient(basic_registry.addr, credentials=token_only)
    with c, pytest.raises(RegistryError, match="requires a user name and password"):
        c.ping()


def test_bearer_tokens_per_scope(token_registry):
    with RegistryClient(token_registry.addr, credentials=Credentials(USER, PASSWORD)) as c:
        digest = c.upload_bytes("auth/bearer", b"bearer blob")
        assert c.blob_exists("auth/bearer", digest)
        assert c.read_blob("auth/bearer", digest) == b"bearer blob"
    mine = [r for r in token_registry.token_requests() if "repository:auth/bearer:" in str(r)]
    # One token per scope, then cached: push (POST, PUT, HEAD) and pull (GET).
    assert [(r["method"], r["user"], r["scopes"]) for r in mine] == [
        ("GET", USER, ["repository:auth/bearer:pull,push"]),
        ("GET", USER, ["repository:auth/bearer:pull"]),
    ]


def test_wrong_credentials_at_the_token_server(token_registry):
    c = RegistryClient(token_registry.addr, credentials=Credentials(USER, "wrong"))
    with c, pytest.raises(RegistryError, match="refused the credentials") as err:
        c.blob_exists("auth/wrong", Digest.of(b"x"))
    assert "--creds" in (err.value.hint or "")


def test_identity_token_uses_the_oauth2_refresh_grant(token_registry):
    creds = Credentials("", identity_token=IDENTITY_TOKEN)
    with RegistryClient(token_registry.addr, credentials=creds) as c:
        digest = c.upload_bytes("auth/oauth", b"pushed with an identity token")
        assert c.read_blob("auth/oauth", digest) == b"pushed with an identity token"
    mine = [r for r in token_registry.token_requests() if "auth/oauth" in str(r)]
    assert [(r["method"], r["user"]) for r in mine] == [("POST", USER), ("POST", USER)]
    with (
        RegistryClient(token_registry.addr, credentials=Credentials("", identity_token="bad")) as c,
        pytest.raises(RegistryError, match="refused the credentials"),
    ):
        c.ping()


def test_identity_token_falls_back_to_get_without_oauth2(token_registry):
    """A realm without the OAuth2 endpoint (404 to POST) is asked with GET (anonymously,
    since there is no password), as Docker does."""
    realm = f"{token_registry.token_server}/get-only/token"
    auth = Authenticator(
        "registry.test", lambda: Credentials("", identity_token=IDENTITY_TOKEN), FAST
    )
    challenge = f'Bearer realm="{realm}",service="sconify-test-registry"'
    request = httpx.Request("GET", "http://registry.test/v2/")
    response = httpx.Response(401, headers={"WWW-Authenticate": challenge}, request=request)
    with httpx.Client() as http:
        header = auth.answer(http, response, pull_scope("auth/fallback"))
    assert header.startswith("Bearer ")
    assert auth.header(pull_scope("auth/fallback")) == header  # cached for the scope
    mine = [r for r in token_registry.token_requests() if "auth/fallback" in str(r)]
    assert [(r["method"], r["status"], r["user"]) for r in mine] == [
        ("POST", 404, ""),
        ("GET", 200, ""),
    ]


def test_credentials_are_resolved_only_when_challenged(registry):
    asked: list[str] = []

    def resolve() -> Credentials | None:
        asked.append("resolve")
        return None

    auth = Authenticator(registry.addr, resolve)
    assert auth.header(pull_scope("x")) is None
    assert asked == []
    assert auth.credentials is None and auth.credentials is None
    assert asked == ["resolve"]
