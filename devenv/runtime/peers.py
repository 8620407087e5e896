"""Who may connect to a server that listens beyond loopback.

On a Linux engine (runtime: docker) devenv's servers also listen on the stack network's
gateway address, so that the stack's containers reach them as ``host.docker.internal``. That
address belongs to the host, and any container on the host (of any network) can connect to
it; only connections from the stack network's subnet are the stack's own. A ``PeerScreen``
says which peers are, and ``screened`` applies it to an asyncio server: a connection from
anyone else is closed before its first byte is read; ``ScreenedDatagrams`` does the same
for a UDP endpoint (the X-Ray daemon's), dropping datagrams from anyone else.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class PeerScreen:
    """The networks whose addresses may connect (the stack network's subnets)."""

    networks: tuple[Network, ...]

    @classmethod
    def of(cls, subnets: Iterable[str]) -> "PeerScreen":
        return cls(tuple(ipaddress.ip_network(subnet, strict=False) for subnet in subnets))

    def allows(self, peer: str | None) -> bool:
        """Whether a connection from address ``peer`` (an IPv4-mapped IPv6 address counts as
        its IPv4 one) is the stack's own."""
        try:
            address = ipaddress.ip_address((peer or "").split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address.version == network.version and address in network for network in self.networks)


def screened(factory: Callable[[], asyncio.BaseProtocol],
             screen: PeerScreen | None) -> Callable[[], asyncio.BaseProtocol]:
    """``factory`` for ``loop.create_server``, refusing the connections ``screen`` does not
    allow (None: ``factory`` itself, for a server on loopback)."""
    if screen is None:
        return factory
    return lambda: _Gate(factory, screen)


class _Gate(asyncio.Protocol):
    """Checks the peer, then hands the connection to the server's own protocol."""

    def __init__(self, factory: Callable[[], asyncio.BaseProtocol], screen: PeerScreen):
        self._factory = factory
        self._screen = screen

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        if not self._screen.allows(peer[0] if peer else None):
            transport.abort()
            return
        protocol = self._factory()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        return None  # refused: nothing was handed over


class ScreenedDatagrams(asyncio.DatagramProtocol):
    """A UDP endpoint's protocol that hands ``inner`` only the datagrams ``screen`` allows."""

    def __init__(self, inner: asyncio.DatagramProtocol, screen: PeerScreen):
        self._inner = inner
        self._screen = screen
        self.dropped = 0

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if not self._screen.allows(addr[0] if addr else None):
            self.dropped += 1
            return
        self._inner.datagram_received(data, addr)
