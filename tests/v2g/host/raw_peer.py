"""A raw socket peer for the host tests: plain asyncio streams on the host's own loop, speaking
V2GTP by hand, with a sans-IO engine it can drive step by step to reach a given point of a
session (the engine only makes valid frames; what is sent, withheld or broken is the test's)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rig.clock import RealClock
from rig.v2g.engine import Engine, Send, StartTimer
from rig.v2g.messages import decode_payload
from rig.v2g.v2gtp import PayloadType

HEADER = struct.Struct(">BBHI")


@dataclass
class RawPeer:
    """One raw TCP connection: what it read, and helpers to read frames and the end."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    frames: list[tuple[int, bytes]] = field(default_factory=list)

    @classmethod
    async def connect(cls, host: str, port: int) -> RawPeer:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def frame(self, timeout: float = 5.0) -> tuple[int, bytes] | None:
        """The next whole V2GTP frame (payload type, payload), or None at the end of stream."""
        try:
            head = await asyncio.wait_for(self.reader.readexactly(8), timeout)
        except asyncio.IncompleteReadError:
            return None
        _, _, payload_type, length = HEADER.unpack(head)
        payload = await asyncio.wait_for(self.reader.readexactly(length), timeout)
        self.frames.append((payload_type, payload))
        return payload_type, payload

    async def message(self, timeout: float = 5.0) -> Any:
        got = await self.frame(timeout)
        assert got is not None, "the peer closed instead of answering"
        return decode_payload(PayloadType(got[0]), got[1])

    async def end(self, timeout: float = 5.0) -> bytes:
        """Everything until the other side closes (EOF); TimeoutError if it does not."""
        return await asyncio.wait_for(self.reader.read(), timeout)

    def close(self) -> None:
        self.writer.close()


def now_of(clock: RealClock) -> Callable[[], float]:
    return clock.now


async def drive_engine(
    peer: RawPeer,
    engine: Engine,
    now: Callable[[], float],
    stop_before: Callable[[Send], bool],
    *,
    first: bool = True,
    timeout: float = 5.0,
) -> Send | None:
    """Run a sans-IO engine over the raw connection, pacing timers at once, until it wants to
    send a frame `stop_before` picks (returned, not sent), or the stream ends (None).
    `first`: call engine.start() (an EVCC sends its first request then)."""
    pending = list(engine.start(now())) if first else []
    while True:
        for out in pending:
            if isinstance(out, Send):
                if stop_before(out):
                    return out
                peer.send(out.frame)
        next_request = [
            o for o in pending if isinstance(o, StartTimer) and o.name.endswith("next_request")
        ]
        if next_request:  # the EVCC's pacing: no need to wait in a test
            pending = list(engine.timer_expired(next_request[-1].name, now()))
            continue
        if engine.finished:
            return None
        got = await peer.frame(timeout)
        if got is None:
            return None
        data = HEADER.pack(1, 0xFE, got[0], len(got[1])) + got[1]
        pending = list(engine.receive_data(data, now()))
