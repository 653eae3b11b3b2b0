"""Whether a webhook URL may be registered (``POST /api/v1/webhooks``).

Delivery re-checks every attempt (``webhooks.vet``: resolve, refuse internal addresses,
connect to the checked address), so registration only has to refuse what is plainly
internal: literal internal addresses, names that resolve to them, and names that only mean
something on a local network (``localhost``, ``*.local``, single labels). A syntactically
valid public hostname that does not resolve yet is accepted: an offline box, or a receiver
whose DNS is not live yet, is normal for clients written for the cloud service.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Iterable

import idna

from .webhooks import Resolver, UnsafeURL, parse_url, system_resolver, vet

# Names for local networks or that never resolve publicly (RFC 6761, 6762, 8375, 9476 and
# common private suffixes).
LOCAL_SUFFIXES = ("localhost", "local", "internal", "intranet", "lan", "home", "corp", "private", "home.arpa",
                  "invalid", "onion", "alt")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def hostname_problem(host: str) -> str | None:
    """Why ``host`` is not a public DNS name, or None when it is one."""
    try:
        ascii_host = idna.encode(host.rstrip("."), uts46=True).decode("ascii").lower()
    except idna.IDNAError as exc:
        return f"{host!r} is not a valid host name ({exc})"
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        return f"{host!r} is not a valid host name"
    for suffix in LOCAL_SUFFIXES:
        if ascii_host == suffix or ascii_host.endswith("." + suffix):
            return f"{host!r} is a local-network name (.{suffix}); internal receivers are refused"
    if len(labels) < 2:
        return f"{host!r} is a single-label name, which only resolves on a local network; use a public host name"
    if labels[-1].isdigit() or labels[-1].startswith("0x"):
        return f"{host!r} looks like a numeric address; write public IP addresses in full"
    return None


def check_registration(url: str, allow_networks: Iterable = (), resolver: Resolver = system_resolver) -> None:
    """Raise UnsafeURL when the URL must not be registered as a webhook."""
    scheme, host, port, path = parse_url(url)
    allow = tuple(allow_networks)
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        vet(url, allow, resolver)  # a literal address: the delivery check decides
        return
    try:
        addresses = resolver(host, port)
    except (socket.gaierror, UnicodeError, OSError):
        addresses = []
    if addresses:  # it resolves: every address must pass, as at delivery
        vet(url, allow, lambda h, p: addresses)
        return
    problem = hostname_problem(host)
    if problem is not None:
        raise UnsafeURL(problem)
