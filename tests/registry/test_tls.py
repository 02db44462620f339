"""TLS: a custom CA from --cert-dir or certs.d, client certificates, --tls-verify=false.

The registries are real ``docker-registry`` processes serving HTTPS on loopback with
certificates from a test CA (see ``tests/support/registry.py``).
"""

from __future__ import annotations

import socket
import ssl

import certifi
import pytest

from sconify.errors import RegistryError
from sconify.image import BlobStore
from sconify.registry import RegistryClient, RegistryOptions, RetryPolicy
from sconify.registry.connection import Connection
from sconify.registry.tls import ssl_context
from sconify.transports import remote
from sconify.transports.refs import RegistryRef

FAST = RetryPolicy(attempts=2, base=0.01, max_delay=0.02)


def _ref(reg, name: str) -> RegistryRef:
    repo, _, tag = name.partition(":")
    return RegistryRef(reg.addr, repo, tag or "latest")


def test_custom_ca_from_cert_dir(tls_registry, sample, tmp_path):
    options = RegistryOptions(cert_dir=tls_registry.pki.cert_dir(tmp_path / "certs"), retry=FAST)
    with RegistryClient(tls_registry.addr, options=options, credentials=None) as c:
        assert c.base_url == f"https://{tls_registry.addr}"
    ref = _ref(tls_registry, "tls/app:1")
    assert remote.write(sample, ref, options=options) == sample.digest()
    pulled = remote.read(ref, BlobStore(tmp_path / "p"), options=options)
    pulled.validate(deep=True)


def test_custom_ca_from_certs_d(tls_registry, sample, tmp_path):
    """The first of the per-host directories that exists is used (as skopeo and Docker do)."""
    containers, docker = tmp_path / "containers-certs.d", tmp_path / "docker-certs.d"
    tls_registry.pki.cert_dir(docker / tls_registry.addr)
    options = RegistryOptions(certs_d=(containers, docker), retry=FAST)
    assert remote.write(sample, _ref(tls_registry, "tls/certsd:1"), options=options)

    # An existing but unrelated directory earlier in the list hides the later one.
    (containers / tls_registry.addr).mkdir(parents=True)
    with pytest.raises(RegistryError, match="not trusted"):
        remote.exists(_ref(tls_registry, "tls/certsd:1"), options=options)


def test_an_untrusted_certificate_is_a_clear_error(tls_registry, tmp_path):
    options = RegistryOptions(certs_d=(), retry=FAST)
    with pytest.raises(RegistryError, match=f"TLS certificate of {tls_registry.addr} not trusted"):
        remote.exists(_ref(tls_registry, "tls/untrusted:1"), options=options)
    with pytest.raises(RegistryError) as err:
        remote.exists(_ref(tls_registry, "tls/untrusted:1"), options=options)
    assert "--cert-dir" in (err.value.hint or "") and "--tls-verify=false" in (err.value.hint or "")


def test_tls_verify_false_accepts_any_certificate(tls_registry, registry, sample):
    options = RegistryOptions(tls_verify=False, certs_d=(), retry=FAST)
    assert remote.write(sample, _ref(tls_registry, "tls/noverify:1"), options=options)
    with RegistryClient(tls_registry.addr, options=options) as c:
        assert c.base_url.startswith("https://")
    # ... and falls back to plain HTTP for a registry that does not speak TLS.
    with RegistryClient(registry.addr, options=options) as c:
        assert c.base_url == f"http://{registry.addr}"
        c.ping()


def test_client_certificate(mtls_registry, sample, tmp_path):
    pki = mtls_registry.pki
    with_client = RegistryOptions(cert_dir=pki.cert_dir(tmp_path / "full", client=True))
    assert remote.write(sample, _ref(mtls_registry, "mtls/app:1"), options=with_client)

    without = RegistryOptions(cert_dir=pki.cert_dir(tmp_path / "ca-only"), retry=FAST)
    with pytest.raises(RegistryError, match=r"TLS handshake with .* failed") as err:
        remote.exists(_ref(mtls_registry, "mtls/app:1"), options=without)
    assert "client certificate" in (err.value.hint or "")


def test_a_client_certificate_needs_its_key(pki, tmp_path):
    directory = pki.cert_dir(tmp_path / "half", client=True)
    (directory / "client.key").unlink()
    with pytest.raises(RegistryError, match=r"client\.cert has no matching client\.key"):
        RegistryClient("127.0.0.1:1", options=RegistryOptions(cert_dir=directory))
    with pytest.raises(RegistryError, match="does not exist"):
        RegistryClient("127.0.0.1:1", options=RegistryOptions(cert_dir=tmp_path / "nope"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "ca.crt").write_text("not a certificate")
    with pytest.raises(RegistryError, match=r"cannot load .*ca\.crt"):
        RegistryClient("127.0.0.1:1", options=RegistryOptions(cert_dir=tmp_path / "bad"))


def test_scheme_choice(registry):
    """Loopback and --tls-verify=false probe for TLS; other hosts always use HTTPS."""
    assert RegistryClient(registry.addr).base_url == f"http://{registry.addr}"
    assert RegistryClient("registry.example.com").base_url == "https://registry.example.com"
    assert RegistryClient("10.1.2.3:5000").base_url == "https://10.1.2.3:5000"
    assert RegistryClient("10.1.2.3:5000", insecure=True).base_url == "http://10.1.2.3:5000"
    with (
        RegistryClient(registry.addr, insecure=False, retry=FAST) as c,
        pytest.raises(RegistryError, match="does not speak TLS") as err,
    ):
        c.ping()
    assert "--tls-verify=false" in (err.value.hint or "")


def test_tls_verify_false_allows_plain_http_off_loopback(registry):
    # 0.0.0.0 reaches this machine but is not a loopback name: HTTPS unless told otherwise.
    host = f"0.0.0.0:{registry.addr.rsplit(':', 1)[1]}"
    with (
        RegistryClient(host, retry=FAST) as c,
        pytest.raises(RegistryError, match=f"registry {host} does not speak TLS"),
    ):
        c.ping()
    with RegistryClient(host, options=RegistryOptions(tls_verify=False, retry=FAST)) as c:
        assert c.base_url == f"http://{host}"
        c.ping()


def _cas(context: ssl.SSLContext) -> int:
    return context.cert_store_stats()["x509_ca"]


def _connection(addr: str, context: ssl.SSLContext) -> Connection:
    return Connection(addr, credentials=lambda: None, retry=FAST, timeout=5.0, tls=context)


def _ping(connection: Connection) -> None:
    connection.request("GET", "/v2/", scope="", what="ping", consume=lambda response: None)


def test_the_system_cas_are_loaded_by_the_first_handshake(tls_registry, tmp_path):
    """--cert-dir's CAs at once, the system's and certifi's when a handshake needs them."""
    cert_dir = tls_registry.pki.cert_dir(tmp_path / "certs")
    context = ssl_context(cert_dir)
    assert _cas(context) == 1

    host, port = tls_registry.addr.rsplit(":", 1)
    with (
        socket.create_connection((host, int(port))) as raw,
        context.wrap_socket(raw, server_hostname=host),
    ):
        pass
    # The same CAs as the system's, certifi's and the directory's loaded up front.
    eager = ssl.create_default_context()
    eager.load_verify_locations(cafile=certifi.where())
    eager.load_verify_locations(cafile=str(cert_dir / "ca.crt"))
    assert _cas(context) == _cas(eager) > 1


def test_plain_http_on_loopback_loads_no_cas(registry):
    context = ssl_context(None)
    connection = _connection(registry.addr, context)
    try:
        assert connection.base_url == f"http://{registry.addr}"
        _ping(connection)
    finally:
        connection.close()
    assert _cas(context) == 0


def test_the_tls_probe_loads_no_cas(tls_registry):
    """The probe finds TLS spoken without the system's CAs; the first real request loads them."""
    context = ssl_context(None)
    connection = _connection(tls_registry.addr, context)
    try:
        assert connection.base_url == f"https://{tls_registry.addr}"
        assert _cas(context) == 0
        with pytest.raises(RegistryError, match="not trusted"):
            _ping(connection)
    finally:
        connection.close()
    assert _cas(context) > 0
