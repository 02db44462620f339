"""Who counts as one client for the CAS's connection caps and challenge limits."""

from __future__ import annotations

from sconify.cas.gate import ConnectionCounter, ConnectionLimits, source_of


def test_a_source_is_an_ipv4_address_or_an_ipv6_64() -> None:
    assert source_of(("127.0.0.2", 4242)) == "127.0.0.2"
    assert source_of(("2001:db8:1:2:3:4:5:6", 443, 0, 0)) == "2001:db8:1:2::/64"
    assert source_of(("2001:db8:1:2:ffff::1", 443, 0, 0)) == "2001:db8:1:2::/64"
    assert source_of(("::ffff:10.1.2.3", 443, 0, 0)) == "10.1.2.3"
    assert source_of("fe80::1%eth0") == "fe80::/64"


def test_caps_per_source_and_in_all() -> None:
    counter = ConnectionCounter(ConnectionLimits(total=3, per_source=2))
    assert counter.admit("a") and counter.admit("a")
    assert not counter.admit("a")
    assert counter.admit("b")
    assert not counter.admit("c")
    counter.release("a")
    assert counter.admit("c")
    assert counter.by_source == {"a": 1, "b": 1, "c": 1}
