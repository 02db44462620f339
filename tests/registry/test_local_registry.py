"""The dev registry runner (``sconify.dev.registry``) starting the real docker-registry."""

import socket

import httpx
import pytest
import yaml

from sconify.dev.registry import RegistryStartError, start_registry


def test_port_zero_picks_a_free_port_and_stop_ends_it(tmp_path):
    reg = start_registry(tmp_path / "r", 0)
    try:
        assert reg.addr.startswith("127.0.0.1:") and reg.port > 0
        assert httpx.get(f"{reg.url}/v2/").status_code == 200
        config = yaml.safe_load((tmp_path / "r" / "config.yml").read_text())
        assert config["storage"]["filesystem"]["rootdirectory"] == str(tmp_path / "r" / "data")
        assert "auth" not in config
    finally:
        reg.stop()
    assert not reg.running()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{reg.url}/v2/", timeout=2)


def test_port_in_use_is_reported(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(RegistryStartError, match="exited") as err:
            start_registry(tmp_path / "r", port)
    assert "in use" in (err.value.hint or "")


def test_missing_program(tmp_path):
    with pytest.raises(RegistryStartError, match="not installed") as err:
        start_registry(tmp_path, 0, binary="/nonexistent/docker-registry")
    assert "apt-get install docker-registry" in (err.value.hint or "")


def test_basic_auth_registry_challenges(basic_registry):
    reply = httpx.get(f"http://{basic_registry.addr}/v2/")
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith("Basic ")
