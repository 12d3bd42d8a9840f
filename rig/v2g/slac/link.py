"""The cable sequence around SLAC, per side: plug in, pilot states, 5 % PWM, SLAC, link up, unplug.

    ev = EvLink(pilot, slac_endpoint, scheduler)        # pilot: anything with set_ev_state()
    evse = EvseLink(pilot, slac_endpoint, scheduler)    # pilot: set_pwm(), signal()
    line.subscribe(lambda t, r: (ev.pilot_changed(r.state, r.duty), evse.pilot_changed(r.state, r.duty)))
    ev.plug_in()                   # state B; the EVSE sees B, applies 5 % PWM and waits for SLAC;
                                   # the EV sees 5 % and starts SLAC; matched: on_link_up()
    ev.power_delivery("Start")     # the EV's PowerDeliveryReq(Start) went out: state C [V2G20-847]
    ev.power_delivery("Stop")      # state B [V2G20-848]
    ev.unplug()                    # state A; the EVSE stops its PWM and forgets the match

Both sides take the pilot through a small protocol of their own (rig.v2g imports no simulator
or instrument): the emulated bench passes rig.sim.pilot.PilotLine, a real bench the control
pilot role's driver. Timing knobs are the emulated EV's and EVSE's behaviour (rig.sim.pilot
turns seeded defects into them). Everything runs on the scheduler: virtual or real time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rig.v2g.scheduler import Scheduler
from rig.v2g.slac.endpoint import SlacEndpoint
from rig.v2g.slac.ev import EvSlac
from rig.v2g.slac.evse import EvseSlac

#: (t, side, what, data) for the trace (src "link").
LinkRecorder = Callable[[float, str, str, dict[str, object]], None]


def _discard(t: float, side: str, what: str, data: dict[str, object]) -> None:
    pass


class EvPilot(Protocol):
    def set_ev_state(self, state: str) -> None: ...


class EvsePilot(Protocol):
    def set_pwm(self, duty: float | None, frequency_hz: float = 1000.0) -> None: ...

    def signal(self, state: str | None) -> None: ...


@dataclass(frozen=True, slots=True)
class EvLinkTiming:
    """When the EV acts (seconds after what triggers it)."""

    slac_delay: float = 0.1  # 5 % PWM seen -> first CM_SLAC_PARM.REQ (rig's own)
    state_c_delay: float = 0.05  # first PowerDeliveryReq(Start) -> C; -20 allows 0.25 [V2G20-847]
    state_b_delay: float = 0.05  # PowerDeliveryReq(Stop) -> B; -20 allows 0.25 [V2G20-848]
    early_state_c: bool = False  # a defect: C as soon as SLAC matched ([V2G20-1617] wants B)
    dropout: float | None = None  # a defect: a brief B inside the loop ([V2G20-849])
    dropout_after: float = 2.0
    #: Start SLAC on a nominal duty cycle too, not only on 5 % (-3 lets an AC EV do so (?)).
    slac_on_nominal_duty: bool = True


class EvLink:
    """The EV's side; see the module docstring."""

    def __init__(
        self,
        pilot: EvPilot,
        slac: SlacEndpoint,
        scheduler: Scheduler,
        timing: EvLinkTiming = EvLinkTiming(),
        *,
        on_link_up: Callable[[], None] | None = None,
        recorder: LinkRecorder = _discard,
    ) -> None:
        self.pilot = pilot
        self.slac = slac
        self.scheduler = scheduler
        self.timing = timing
        self.on_link_up = on_link_up
        self.recorder = recorder
        self.plugged = False
        self.link_up = False
        self.started_delivery = False
        self._slac_started = False

    def plug_in(self) -> None:
        self.plugged = True
        self._record("plug_in")
        self.pilot.set_ev_state("B")

    def unplug(self) -> None:
        self.plugged = False
        self.link_up = False
        self._slac_started = False
        self.started_delivery = False
        self.slac.close()
        self._record("unplug")
        self.pilot.set_ev_state("A")

    def pilot_changed(self, state: str, duty: float | None) -> None:
        """The pilot as the EV measures it (state letter, duty 0..1 or None)."""
        if not self.plugged or self._slac_started:
            return
        hlc = duty is not None and abs(duty - 0.05) < 0.01  # 5 %: high-level communication
        if hlc or (duty is not None and 0.0 < duty < 1.0 and self.timing.slac_on_nominal_duty):
            self._slac_started = True
            self._after(self.timing.slac_delay, self._start_slac)

    def _start_slac(self) -> None:
        if not self.plugged:
            return
        self._record("slac_start")
        self.slac.start()
        self._watch()

    def _watch(self) -> None:
        machine = self.slac.machine
        assert isinstance(machine, EvSlac)
        if machine.match is not None:
            self.link_up = True
            self._record("link_up", {"nid": machine.match.nid.hex()})
            if self.timing.early_state_c:
                self.pilot.set_ev_state("C")
            if self.on_link_up is not None:
                self.on_link_up()
        elif machine.failure is None and self.plugged:
            self._after(0.005, self._watch)
        elif machine.failure is not None:
            self._record("slac_failed", {"why": machine.failure})

    def power_delivery(self, progress: str) -> None:
        """The EV sent PowerDeliveryReq with this ChargeProgress ("Start", "Stop", ...)."""
        t = self.timing
        if progress == "Start" and not self.started_delivery:
            self.started_delivery = True
            self._after(t.state_c_delay, lambda: self._set("C"))  # [V2G20-847]
            if t.dropout is not None:
                dropout = t.dropout
                self._after(t.state_c_delay + t.dropout_after, lambda: self._set("B"))
                self._after(t.state_c_delay + t.dropout_after + dropout, lambda: self._set("C"))
        elif progress == "Stop":
            self._after(t.state_b_delay, lambda: self._set("B"))  # [V2G20-848]

    def _set(self, state: str) -> None:
        if self.plugged:
            self.pilot.set_ev_state(state)

    def _after(self, delay: float, fn: Callable[[], None]) -> None:
        self.scheduler.call_at(self.scheduler.now() + delay, fn)

    def _record(self, what: str, data: dict[str, object] | None = None) -> None:
        self.recorder(self.scheduler.now(), "ev", what, data or {})


@dataclass(frozen=True, slots=True)
class EvseLinkSettings:
    duty: float = 0.05  # high-level communication (IEC 61851-1, ISO 15118-3)
    frequency_hz: float = 1000.0
    pwm_delay: float = 0.1  # state B seen -> PWM on (rig's own)
    #: T_step_EF: how long E/F lasts when TT_EVSE_SLAC_init passes [V2G3-M06-07] (?)
    step_ef: float = 4.0


class EvseLink:
    """The EVSE's side; see the module docstring."""

    def __init__(
        self,
        pilot: EvsePilot,
        slac: SlacEndpoint,
        scheduler: Scheduler,
        settings: EvseLinkSettings = EvseLinkSettings(),
        *,
        recorder: LinkRecorder = _discard,
    ) -> None:
        self.pilot = pilot
        self.slac = slac
        self.scheduler = scheduler
        self.settings = settings
        self.recorder = recorder
        self.ev_present = False
        self.retries = 0

    def pilot_changed(self, state: str, duty: float | None) -> None:
        if state in ("B", "C", "D") and not self.ev_present:
            self.ev_present = True
            self.recorder(self.scheduler.now(), "evse", "ev_detected", {"state": state})
            self.scheduler.call_at(self.scheduler.now() + self.settings.pwm_delay, self._hlc)
        elif state == "A" and self.ev_present:
            self.ev_present = False
            self.recorder(self.scheduler.now(), "evse", "ev_left", {})
            self.pilot.set_pwm(None)
            machine = self.slac.machine
            assert isinstance(machine, EvseSlac)
            machine.reset(self.scheduler.now())

    def _hlc(self) -> None:
        if not self.ev_present:
            return
        s = self.settings
        self.pilot.set_pwm(s.duty, s.frequency_hz)
        self.slac.start()
        self._watch()

    def _watch(self) -> None:
        machine = self.slac.machine
        assert isinstance(machine, EvseSlac)
        if not self.ev_present or machine.match is not None:
            return
        if machine.slac_init_expired and self.retries < 2:  # C_sequ_retry (?)
            # [V2G3-M06-07] (?): no SLAC within TT_EVSE_SLAC_init: E/F for T_step_EF, then 5 %
            self.retries += 1
            self.pilot.signal("F")
            self.recorder(
                self.scheduler.now(), "evse", "slac_init_expired", {"retry": self.retries}
            )
            self.scheduler.call_at(self.scheduler.now() + self.settings.step_ef, self._back_from_ef)
            return
        self.scheduler.call_at(self.scheduler.now() + 0.01, self._watch)

    def _back_from_ef(self) -> None:
        self.pilot.signal(None)
        self._hlc()
