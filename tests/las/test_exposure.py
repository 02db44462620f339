"""Where a LAS listens and what it says about it (issue 9, point 4).

A simulated LAS quotes any measurement for any caller; the default keeps it on loopback, and its
startup line says who can obtain a quote and what that gives them. The real-process tests start
``sconify las serve`` without ``--host``; the host's own non-loopback addresses (``hostname
-I``) are used only as connection targets on this machine.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from sconify.las.exposure import is_loopback, startup_line, who_can_quote
from tests.support.services import run_las

KEY_ID = "9e" * 32


def _non_loopback_addresses() -> list[str]:
    found = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10)
    addresses = set(found.stdout.split())
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, proto=socket.IPPROTO_TCP)
    except OSError:
        infos = []
    addresses.update(str(info[4][0]).split("%")[0] for info in infos)
    return sorted(a for a in addresses if not is_loopback(a))


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port``, from /proc/net/tcp{,6}."""
    out: set[str] = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) == port and fields[3] == "0A" and len(address) == width:
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                family = socket.AF_INET if width == 8 else socket.AF_INET6
                out.add(socket.inet_ntop(family, words))
    return out


def test_the_las_listens_on_loopback_only_by_default(tmp_path: Path) -> None:
    with run_las(tmp_path / "las", host=None) as las:
        port = las.ready["port"]
        assert las.ready["host"] == "127.0.0.1"
        assert _listening_addresses(port) == {"127.0.0.1"}
        assert las.client().qe_pubkey().key_id == las.qe_key_id
        for address in _non_loopback_addresses():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address, port), timeout=10).close()


def test_the_startup_line_says_who_can_obtain_a_quote_and_what_it_gives(tmp_path: Path) -> None:
    with run_las(tmp_path / "las", host=None) as las:
        port, key_id = las.ready["port"], las.qe_key_id
        log = las.log()
    lines = [line for line in log.splitlines() if "LAS listening on" in line]
    assert len(lines) == 1, log
    line = lines[0]
    assert line.startswith("WARNING ")
    assert f"LAS listening on 127.0.0.1:{port} (loopback only;" in line
    assert "Who can obtain a quote: any process on this host" in line
    assert "every container run with --network host" in line
    assert (
        "the configuration and keys of every session that tolerates simulation and trusts "
        f"this LAS's quoting key {key_id}" in line
    )
    assert "whoever can quote an image's measurement from its labels gets that image's" in line
    # Said before the LAS announced itself ready: nobody can have been quoted unwarned.
    assert log.index("LAS listening on") < log.index(f"listening on 127.0.0.1:{port} (port)")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "[::1]", "localhost"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)
    assert who_can_quote(host, 18766).startswith("any process on this host")
    assert "(loopback only;" in startup_line(host, 18766, KEY_ID)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.10", "fd00::2"])
def test_any_other_address_is_not_loopback_and_is_warned_about(host: str) -> None:
    assert not is_loopback(host)
    line = startup_line(host, 18766, KEY_ID)
    assert "(NOT loopback;" in line
    assert "other hosts and their containers too" in line
    assert "Listen on 127.0.0.1 (--host)" in line


def test_a_specific_address_is_named_in_who_can_quote() -> None:
    assert who_can_quote("192.0.2.10", 18766).startswith(
        "any process that can reach 192.0.2.10:18766"
    )
    assert "port 18766 on any address of this host" in who_can_quote("0.0.0.0", 18766)
