"""A SLAC side on a frame port, timed by the run's scheduler: the sans-IO machine made to run.

    port = RawPort(...) or powerline.attach(...)       # anything with the FramePort shape
    ev = SlacEndpoint(EvSlac(port.mac, ...), port, scheduler)
    ev.start()                                         # then the scheduler (clock) runs it
    ev.machine.match                                   # once matched

The endpoint feeds every frame from the port to the machine, sends what it answers, and keeps one
pending call on the scheduler at the machine's deadline. Nothing blocks; under the virtual clock a
whole matching costs no wall time, under the real clock the asyncio loop serves the socket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rig.v2g.scheduler import Scheduler, TimerHandle

FrameCallback = Callable[[bytes], None]


class FramePort(Protocol):
    """An Ethernet attachment that carries HomePlug management frames (ethertype 0x88E1)."""

    @property
    def mac(self) -> bytes: ...

    def set_receiver(self, on_frame: FrameCallback) -> None:
        """Where received frames go (whole Ethernet frames, at most messages.MAX_FRAME bytes)."""
        ...

    def send(self, frame: bytes) -> None:
        """Queue a whole Ethernet frame; never blocks."""
        ...

    def close(self) -> None: ...


class SlacSide(Protocol):
    """What EvSlac and EvseSlac share."""

    @property
    def deadline(self) -> float | None: ...

    def start(self, now: float) -> list[bytes]: ...

    def receive(self, frame: bytes, now: float) -> list[bytes]: ...

    def timeout(self, now: float) -> list[bytes]: ...


class SlacEndpoint:
    """One side of SLAC served on a port and a scheduler."""

    def __init__(self, machine: SlacSide, port: FramePort, scheduler: Scheduler) -> None:
        self.machine = machine
        self.port = port
        self.scheduler = scheduler
        self._timer: TimerHandle | None = None
        self._armed_for: float | None = None
        self.closed = False
        port.set_receiver(self.feed)

    def start(self) -> None:
        self._emit(self.machine.start(self.scheduler.now()))

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def feed(self, frame: bytes) -> None:
        """A frame for this side (the port's receiver, or a LocalModem forwarding what is not
        its own reply)."""
        if not self.closed:
            self._emit(self.machine.receive(frame, self.scheduler.now()))

    def _fire(self) -> None:
        self._timer = None
        self._armed_for = None
        if not self.closed:
            self._emit(self.machine.timeout(self.scheduler.now()))

    def _emit(self, frames: list[bytes]) -> None:
        for frame in frames:
            self.port.send(frame)
        deadline = self.machine.deadline
        if deadline == self._armed_for:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_for = deadline
        if deadline is not None and not self.closed:
            self._timer = self.scheduler.call_at(deadline, self._fire)
