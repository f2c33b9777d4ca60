"""Client addresses as the sources that limits and audit counts go by."""

from __future__ import annotations

from mcp_acl.addresses import source_of


def test_an_ipv6_address_counts_as_its_64_and_ipv4_as_itself():
    assert source_of("2001:db8:1:2:aa:bb:cc:dd") == source_of("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert source_of("2001:db8:1:3::1") != source_of("2001:db8:1:2::1")
    assert source_of("::ffff:10.0.0.7") == source_of("10.0.0.7") == "10.0.0.7"
    assert source_of("fe80::1%eth0") == "fe80::/64"
    assert source_of(None) == "unknown address"
    assert source_of("not an address") == "not an address"
