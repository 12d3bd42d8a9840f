"""An in-memory byte link pair for virtual time: delivery through the run's Scheduler.

    ev_link, evse_link = memory_pair(scheduler, latency=0.002)

Bytes sent on one end arrive at the other `latency` seconds later on the scheduler's timeline
(plus len/bandwidth when a bandwidth is given: each direction then sends one chunk after another,
as a serial line does). Order is kept per direction whatever the scheduler does with equal
deadlines, because each direction keeps its own queue and at most one pending timer. close()
travels like data: the peer hears of it after what was already in flight, and our own
on_closed follows through the scheduler too, so no callback ever runs inside send() or close().
"""

from __future__ import annotations

from collections import deque

from rig.v2g.link import ClosedCallback, DataCallback, LinkClosed
from rig.v2g.scheduler import Scheduler

# A queued item is (arrival time, bytes) or (arrival time, close reason as str).
_Item = tuple[float, bytes | str]


class MemoryLink:
    """One end of a memory_pair(); a rig.v2g.link.ByteLink."""

    __slots__ = (
        "_armed",
        "_bandwidth",
        "_closed",
        "_early",
        "_latency",
        "_name",
        "_on_closed",
        "_on_data",
        "_peer",
        "_queue",
        "_scheduler",
        "_tx_free_at",
        "bytes_sent",
    )

    def __init__(
        self, scheduler: Scheduler, name: str, latency: float, bandwidth: float | None
    ) -> None:
        if latency < 0:
            raise ValueError(f"latency must not be negative, not {latency}")
        if bandwidth is not None and not bandwidth > 0:
            raise ValueError(f"bandwidth must be positive (bytes/s), not {bandwidth}")
        self._scheduler = scheduler
        self._name = name
        self._latency = latency
        self._bandwidth = bandwidth
        self._peer: MemoryLink = self
        self._queue: deque[_Item] = deque()  # what this end sent, on its way to the peer
        self._armed = False
        self._tx_free_at = 0.0
        self._closed = False
        self._on_data: DataCallback | None = None
        self._on_closed: ClosedCallback | None = None
        self._early: list[bytes | str] = []  # arrived before set_receiver()
        self.bytes_sent = 0

    # --- ByteLink ---

    def set_receiver(self, on_data: DataCallback, on_closed: ClosedCallback) -> None:
        self._on_data = on_data
        self._on_closed = on_closed
        early, self._early = self._early, []
        for item in early:
            self._arrive(item)

    def send(self, data: bytes) -> None:
        if self._closed:
            raise LinkClosed(f"{self.peer_name}: send after the link ended")
        if not data:
            return
        self.bytes_sent += len(data)
        self._enqueue(self._arrival(len(data)), bytes(data))

    def close(self, reason: str = "closed") -> None:
        if self._closed:
            return
        self._closed = True
        queue = self._queue
        arrival = self._scheduler.now() + self._latency
        if queue and queue[-1][0] > arrival:
            arrival = queue[-1][0]
        self._enqueue(arrival, reason)
        on_closed = self._on_closed
        if on_closed is not None:
            self._scheduler.call_at(self._scheduler.now(), lambda: on_closed(reason))

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def peer_name(self) -> str:
        return f"memory:{self._peer._name}"

    @property
    def name(self) -> str:
        return self._name

    # --- delivery ---

    def _arrival(self, size: int) -> float:
        now = self._scheduler.now()
        if self._bandwidth is None:
            return now + self._latency
        start = self._tx_free_at if self._tx_free_at > now else now
        self._tx_free_at = start + size / self._bandwidth
        return self._tx_free_at + self._latency

    def _enqueue(self, arrival: float, item: bytes | str) -> None:
        self._queue.append((arrival, item))
        if not self._armed:
            self._armed = True
            self._scheduler.call_at(arrival, self._deliver)

    def _deliver(self) -> None:
        queue = self._queue
        now = self._scheduler.now()
        peer = self._peer
        while queue and queue[0][0] <= now:
            peer._arrive(queue.popleft()[1])
        if queue:
            self._scheduler.call_at(queue[0][0], self._deliver)
        else:
            self._armed = False

    def _arrive(self, item: bytes | str) -> None:
        if self._on_data is None or self._on_closed is None:
            self._early.append(item)
            return
        if isinstance(item, bytes):
            if not self._closed:  # bytes for an end that closed meanwhile are lost, as in TCP
                self._on_data(item)
        elif not self._closed:
            self._closed = True
            self._on_closed(f"peer closed: {item}")


def memory_pair(
    scheduler: Scheduler,
    latency: float = 0.0,
    bandwidth: float | None = None,
    names: tuple[str, str] = ("evcc", "secc"),
) -> tuple[MemoryLink, MemoryLink]:
    """Two connected links (first end, second end); `latency` seconds one way, `bandwidth` in
    bytes per second (None: unlimited)."""
    a = MemoryLink(scheduler, names[0], latency, bandwidth)
    b = MemoryLink(scheduler, names[1], latency, bandwidth)
    a._peer, b._peer = b, a
    return a, b
