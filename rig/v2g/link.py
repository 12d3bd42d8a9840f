"""A byte link between two V2G peers: what every transport offers the layers above it.

TCP (asyncio), the in-memory pipe of virtual time, TLS (a memory-BIO layer that wraps another
link) and fault injection (a layer that wraps another link or sits between an engine and its link)
all look the same from above: send bytes, be told of bytes received and of the end of the link.
A layer never blocks: send() queues, delivery happens through the scheduler or the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

#: on_data(bytes) when bytes arrive; on_closed(reason) once, when the link ends for any reason.
DataCallback = Callable[[bytes], None]
ClosedCallback = Callable[[str], None]


class ByteLink(Protocol):
    """One end of an established, ordered, reliable byte stream."""

    def set_receiver(self, on_data: DataCallback, on_closed: ClosedCallback) -> None:
        """Where received bytes and the end of the link are reported (set before any arrive)."""
        ...

    def send(self, data: bytes) -> None:
        """Queue bytes for the peer; never blocks. After close() it raises LinkClosed."""
        ...

    def close(self, reason: str = "closed") -> None:
        """End the link (idempotent); the peer's on_closed follows, ours too with `reason`."""
        ...

    @property
    def closed(self) -> bool: ...

    @property
    def peer_name(self) -> str:
        """The other end as text, e.g. "[fe80::2%veth1]:57122" or "memory:evse"."""
        ...


class LinkClosed(ConnectionError):
    """send() on a link that has ended."""
