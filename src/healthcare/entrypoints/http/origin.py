"""Who the client is: its address (through trusted proxies only) and the request's id."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from litestar import Request

from healthcare.domain.audit import Origin
from healthcare.entrypoints.http.headers import request_id

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"
_TRUSTED_PROXIES = "trusted_proxies"  # key in the app's state


def trust_proxies(app_state: Any, networks: Iterable[str]) -> None:
    """Record which proxies may say, in X-Forwarded-For, whom they forward for."""
    app_state[_TRUSTED_PROXIES] = tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def client_address(request: Request[Any, Any, Any]) -> str:
    """The socket's peer; or, when that peer is a trusted proxy, the address it forwards for.

    X-Forwarded-For is read from the right: each trusted proxy appends the address it saw, so
    the first entry from the right that is not a trusted proxy is the client. Entries left
    of it were written by the client and could say anything. Cached for the request.
    """
    state = request.scope.setdefault("state", {})
    if (known := state.get("client_address")) is not None:
        return str(known)
    client = request.scope.get("client")
    peer = client[0] if client else UNKNOWN
    trusted: tuple[Network, ...] = request.app.state.get(_TRUSTED_PROXIES, ())
    address = peer
    if trusted and _within(peer, trusted):
        hops = [
            hop.strip()
            for header in request.headers.getall("x-forwarded-for", [])
            for hop in header.split(",")
        ]
        for hop in reversed(hops):
            if _parse(hop) is None:
                break  # garbage: stop at the last address we can vouch for
            address = hop
            if not _within(hop, trusted):
                break
    state["client_address"] = address
    return address


def request_origin(request: Request[Any, Any, Any]) -> Origin:
    return Origin(client=client_address(request), request_id=request_id(request.scope))


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _within(text: str, networks: tuple[Network, ...]) -> bool:
    address = _parse(text)
    return address is not None and any(address in network for network in networks)
