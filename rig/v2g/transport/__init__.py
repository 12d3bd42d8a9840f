"""Byte links the V2G stack runs over: memory (virtual time) and TCP (asyncio); TLS wraps either.

Every transport offers rig.v2g.link.ByteLink; rig.v2g.connection binds one to an engine.
"""

from rig.v2g.transport.memory import MemoryLink, memory_pair
from rig.v2g.transport.tcp import TcpConnectError, TcpLink, TcpServer, open_tcp_link

__all__ = [
    "MemoryLink",
    "TcpConnectError",
    "TcpLink",
    "TcpServer",
    "memory_pair",
    "open_tcp_link",
]
