"""The device under test as the runner sees it: the Dut protocol, and its implementations.

Whatever the DUT is — the emulated EVSE over rig.sim, a real EVSE driven by the rig's EVCC, a real
EV driven by the rig's SECC — the runner asks the same things of it: start and stop a session,
command a setpoint or follow the home load, report what happened (events on the run's timeline),
and go to its safe state within a bound. The session's phase has one spelling, SessionPhase.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rig.bench import DutSide
from rig.clock import Clock
from rig.plan import SessionSpec
from rig.v2g.vocabulary import SessionPhase


@dataclass(frozen=True)
class DutEvent:
    """Something the DUT (or the rig's protocol engine facing it) reported, at time t."""

    t: float
    name: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DutIdentity:
    side: DutSide
    name: str
    firmware: str
    emulated: bool
    serial: str = ""

    def as_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "side": self.side,
            "name": self.name,
            "firmware": self.firmware,
            "emulated": self.emulated,
        }
        if self.serial:
            out["serial"] = self.serial
        return out


class Dut(Protocol):
    """What the runner may ask of any device under test."""

    identity: DutIdentity
    #: "none" (the emulated session without a stack) or "ISO 15118-20".
    protocol: str

    @property
    def phase(self) -> SessionPhase: ...

    def start(self) -> None:
        """Plug in and start a session (it proceeds on the clock's scheduler)."""
        ...

    def stop(self) -> None:
        """End the session normally (ramp down, stop, unplug)."""
        ...

    def set_setpoint(self, p_w: float) -> None:
        """Commanded AC power, rig sign (+ charges the EV, - discharges)."""
        ...

    def follow_home_load(self, on: bool) -> None:
        """V2H: discharge what the home draws (on), or back to the last setpoint (off)."""
        ...

    def poll(self) -> Sequence[DutEvent]:
        """Bring the DUT's view up to the clock's now; the events since the last poll."""
        ...

    def safe_state(self, timeout_s: float) -> None:
        """No energy flows and the session is stopped; returns within timeout_s of clock time."""
        ...

    def close(self) -> None:
        """Release connections and sockets (after safe_state)."""
        ...


class EmulatedEvse:
    """The emulated bidirectional EVSE (rig.sim) as the DUT, with the protocol-less session."""

    protocol = "none"

    #: Longest simulated wait for the emulated EVSE to ramp down and open (its own stop timeout).
    STOP_WAIT_S = 70.0
    #: How often safe_state looks whether the session has stopped (clock seconds).
    STOP_POLL_S = 0.05

    def __init__(self, world: Any, session: SessionSpec, clock: Clock, identity: DutIdentity):
        from rig.emulators.direct import DirectSession

        self.world = world
        self.clock = clock
        self.identity = identity
        self.session = DirectSession(
            world, service=session.service, control_mode=session.control_mode
        )

    @property
    def phase(self) -> SessionPhase:
        return self.session.phase

    def poll(self) -> Sequence[DutEvent]:
        self.world.advance_to(self.clock.now())
        return [DutEvent(e.t, e.name, e.data) for e in self.world.drain_events()]

    def start(self) -> None:
        self.world.advance_to(self.clock.now())
        self.session.start()

    def stop(self) -> None:
        self.world.advance_to(self.clock.now())
        self.session.stop()

    def set_setpoint(self, p_w: float) -> None:
        self.world.advance_to(self.clock.now())
        self.session.set_setpoint(p_w)

    def follow_home_load(self, on: bool) -> None:
        self.world.advance_to(self.clock.now())
        self.session.follow_home_load(on)

    def safe_state(self, timeout_s: float) -> None:
        """Stop the session and let the EVSE ramp to zero and open its contactors: time has to
        pass for that (virtual time at no cost; real time within the teardown bound)."""
        self.stop()
        wait = self.STOP_WAIT_S if self.clock.virtual else timeout_s
        deadline = self.clock.now() + wait
        while self.session.phase is not SessionPhase.STOPPED and self.clock.now() < deadline:
            self.clock.run_until(min(self.clock.now() + self.STOP_POLL_S, deadline))
            self.world.advance_to(self.clock.now())
        if self.session.phase is not SessionPhase.STOPPED:
            raise TimeoutError(f"the emulated EVSE did not stop within {wait:g} s")

    def close(self) -> None:
        """Nothing to release: the emulated EVSE lives in this process."""
