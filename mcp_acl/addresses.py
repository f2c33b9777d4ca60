"""The source a client address is counted as, for per-address limits and audit counts.

One IPv6 host is usually handed a whole /64 and picks any address in it,
so counting each IPv6 address alone would give one machine 2**64 fresh
counts: an IPv6 address counts as its /64. An IPv4-mapped IPv6 address
counts as the IPv4 address it carries; anything else is counted as given.
"""

from __future__ import annotations

import ipaddress

IPV6_PREFIX = 64
UNKNOWN = "unknown address"


def source_of(address: str | None) -> str:
    """The key `address` is counted under.

    Example: "10.0.0.7" -> "10.0.0.7"; "2001:db8:1:2:aa::9" -> "2001:db8:1:2::/64";
    "::ffff:10.0.0.7" -> "10.0.0.7"; None -> "unknown address".
    """
    if not address:
        return UNKNOWN
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # a zone id (fe80::1%eth0) names no other host
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)
