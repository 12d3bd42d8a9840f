"""The cable under a plan: the control pilot, SLAC and SDP before the -20 session, as a run drives it.

A plan with `link:` (rig.plan.LinkSpec) does not start its session at once: its `plug_in` step
plugs the EV in (pilot state B), the EVSE answers with 5 % PWM, the EV's and the EVSE's SLAC pair
their modems, SDP finds the SECC (when the plan asks for it), and only then does the DUT's
ISO 15118-20 session start. The EV's own PowerDeliveryReq(Start/Stop) moves its pilot to C and
back to B, and `unplug` ends it all (state A). Everything goes on the run's trace as it happens,
under the names the pilot checks read (rig.checks.pilot):

- src "pilot", name "reading": the pilot as measured (state, frequency_hz, duty, high_v, low_v),
  one event per change;
- src "slac": every SLAC record (frames sent and received, states, timeouts, the match);
- src "link": the steps of each side (plug_in, ev_detected, slac_start, link_up, unplug, ...);
- src "sdp": the emulated SDP request(s) and response.

Two cables, one shape (`Cable`):

- EmulatedCable, on an emulated bench: the pilot line of rig.sim.pilot, an emulated powerline
  with two emulated modems, and both sides of the link (rig.v2g.slac.link) on the run's clock.
  The side of the DUT carries the DUT's seeded pilot defects (rig.sim.pilot.PILOT_DEFECTS); the
  rig's side is a good one.
- BenchCable, on a real bench (the DUT is an EVSE, the rig plays the car): the rig's EV side of
  SLAC on the modem interface of the bench's `link:` (a packet socket, rig.v2g.slac.raw), its pilot
  through the bench's control_pilot instrument, read every `pilot_poll`.

`open_cable` picks one for the plan and the bench; `bench_for_plan` applies the plan's `tls` and
`sdp` to the bench's DUT before the station opens.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from ipaddress import IPv6Address
from typing import TYPE_CHECKING, Any, Protocol

from rig.bench import BenchConfig, BenchLink
from rig.clock import Clock
from rig.dut import DutEvent, EmulatedSession20, MessageListener
from rig.plan import LinkSpec, Plan
from rig.sim.pilot import PILOT_DEFECTS, PilotLine, PilotReading, ev_timing, evse_settings
from rig.station import BenchError, Station
from rig.v2g.sdp import (
    SDP_MAX_REQUESTS,
    SDP_RETRY_INTERVAL,
    DiscoveryState,
    SdpDiscovery,
    SdpOffer,
    SdpRecord,
    SdpRequest,
    SdpTry,
    Security,
    answer_request,
)
from rig.v2g.slac import EvseSlac, EvSlac, SlacEndpoint, SlacRecord, SlacTiming
from rig.v2g.slac.emulated_modem import EmulatedModem
from rig.v2g.slac.ev import EvConfig
from rig.v2g.slac.link import EvLink, EvLinkTiming, EvseLink, EvseLinkSettings
from rig.v2g.slac.powerline import Powerline

if TYPE_CHECKING:
    from instruments.roles.control_pilot import ControlPilot

#: The emulated bench's station and modem addresses (locally administered; the modems' in the
#: QCA range as the stand-in modems use it).
EV_HOST_MAC = bytes.fromhex("02000000ee01")
EVSE_HOST_MAC = bytes.fromhex("02000000e5e1")
EV_MODEM_MAC = bytes.fromhex("00b052000011")
EVSE_MODEM_MAC = bytes.fromhex("00b052000022")
#: Where the emulated SECC says it listens (the addresses the emulated session's capture uses).
EMULATED_SECC = (IPv6Address("fe80::2"), 64_109)
#: A pilot reading is a new one when its duty moves by more than this (0..1) or its frequency by
#: more than this share: a measured PWM wanders by less (rig's own choice; the pilot_pwm
#: tolerances are 0.5 percentage points and 2 %).
DUTY_DEADBAND = 0.001
FREQUENCY_DEADBAND = 0.002


class Cable(Protocol):
    """What the runner asks of the cable below a plan's session."""

    @property
    def up(self) -> bool:
        """The rig's side saw 5 % PWM and SLAC matched: the data link is up."""
        ...

    def plug_in(self) -> None: ...

    def unplug(self) -> None: ...

    def describe(self) -> str:
        """Where the cable sequence stands, for a wait that timed out."""
        ...

    def poll(self) -> Sequence[DutEvent]:
        """The pilot, SLAC, link and SDP events since the last poll."""
        ...

    def close(self) -> None:
        """Stop the timers, close the sockets (after the bench's safe state)."""
        ...


# ------------------------------------------------------------------------------ plan and bench
def bench_for_plan(plan: Plan, bench: BenchConfig) -> BenchConfig:
    """The bench as this plan runs it: the plan's `tls` (when given) over the bench's, and on a
    real bench the way the rig finds the SECC: SDP on the link's interface, or direct (the
    bench's dut address and port)."""
    link = plan.link
    dut = bench.dut
    if link is None:
        if not dut.emulated and bench.link is not None and not (dut.address and dut.port):
            # Behind a cable with no address given, the SECC is found by SDP on its interface.
            dut = dataclasses.replace(dut, interface=dut.interface or bench.link.interface)
            return dataclasses.replace(bench, dut=dut)
        return bench
    if link.tls is not None:
        dut = dataclasses.replace(dut, tls=link.tls)
    if not dut.emulated and bench.link is not None:
        if link.sdp:
            dut = dataclasses.replace(dut, interface=bench.link.interface, address=None, port=None)
        elif not (dut.address and dut.port):
            raise BenchError(
                f"{plan.path}:{link.line}: link: sdp: false (direct) needs the bench's dut "
                "address and port"
            )
    return dataclasses.replace(bench, dut=dut)


def dut_pilot_defects(defects: Iterable[str], dut_side: str) -> tuple[str, ...]:
    """The seeded pilot defects, which must all belong to the DUT's side of the pilot: the rig's
    own side is never defective."""
    chosen = tuple(d for d in defects if d in PILOT_DEFECTS)
    wrong = [d for d in chosen if PILOT_DEFECTS[d].side != dut_side]
    if wrong:
        sides = ", ".join(f"{d} ({PILOT_DEFECTS[d].side})" for d in wrong)
        raise BenchError(
            f"pilot defect(s) {sides} belong to the other side of the pilot: the DUT is the "
            f"{dut_side} (the rig plays the other side, and plays it well)"
        )
    return chosen


def open_cable(
    plan: Plan,
    bench: BenchConfig,
    station: Station,
    clock: Clock,
    *,
    defects: Iterable[str] = (),
    seed: int = 1,
) -> Cable | None:
    """The cable for a plan with `link:` on this bench (None without `link:`)."""
    link = plan.link
    if link is None:
        return None
    side = "ev" if bench.dut.side == "ev" else "evse"
    pilot_defects = dut_pilot_defects(defects, side)
    if bench.dut.emulated:
        dut = station.dut
        if not isinstance(dut, EmulatedSession20):
            raise BenchError(
                f"{plan.path}:{link.line}: link: needs the ISO 15118-20 session below it "
                "(this bench's emulation protocol is none)"
            )
        return EmulatedCable(
            link, dut, clock, dut_side=side, defects=pilot_defects, seed=seed,
            latency_s=bench.link_latency_s,
        )  # fmt: skip
    if bench.link is None:
        raise BenchError(
            f"{plan.path}:{link.line}: link: on a real bench needs the bench file's link: "
            "(the modem's interface)"
        )
    if side == "ev":
        raise BenchError(
            "link: with a real EV as the DUT needs the rig's EVSE side of the cable on a real "
            "bench, which is not built yet (the emulated bench has both sides)"
        )
    from instruments.roles.control_pilot import ControlPilot, PilotSide

    pilot = station.get(ControlPilot)
    if pilot is None:
        raise BenchError("link: on a real bench needs a control_pilot instrument (the EV's side)")
    if PilotSide.EV not in pilot.sides or getattr(pilot, "side", None) == PilotSide.EVSE:
        raise BenchError(f"{pilot.label}: the rig plays the EV here: its pilot needs the EV side")
    return BenchCable(link, bench.link, pilot, station.dut, clock, seed=seed)


# -------------------------------------------------------------------------------- the trace
class _Events:
    """The cable's events, kept until the runner polls (DutEvent with the trace's src)."""

    def __init__(self) -> None:
        self.events: list[DutEvent] = []

    def add(self, t: float, src: str, name: str, data: Mapping[str, Any]) -> None:
        self.events.append(DutEvent(t, name, dict(data), src))

    def pilot(self, t: float, reading: Mapping[str, Any]) -> None:
        self.add(t, "pilot", "reading", reading)

    def slac(self, record: SlacRecord) -> None:
        self.add(record.t, "slac", record.name, record.as_event())

    def link(self, t: float, side: str, what: str, data: dict[str, object]) -> None:
        self.add(t, "link", what, {"side": side, **data})

    def drain(self) -> list[DutEvent]:
        out, self.events = self.events, []
        return out


def _reading_event(r: PilotReading) -> dict[str, Any]:
    return {
        "state": str(r.state),
        "frequency_hz": r.frequency_hz,
        "duty": r.duty,
        "high_v": round(r.high_v, 3),
        "low_v": round(r.low_v, 3),
    }


def _progress(body: Mapping[str, Any]) -> str:
    inner = body.get("PowerDeliveryReq")
    value = inner.get("ChargeProgress") if isinstance(inner, Mapping) else None
    return "" if value is None else str(value)


def _ev_listener(ev: EvLink) -> MessageListener:
    """The EV's pilot follows its own PowerDeliveryReq as it goes out ([V2G20-847/848])."""

    def sent(t: float, side: str, name: str, body: Mapping[str, Any]) -> None:
        if side == "evcc" and name == "PowerDeliveryReq":
            ev.power_delivery(_progress(body))

    return sent


# ------------------------------------------------------------------------------ emulated SDP
class EmulatedSdp:
    """SDP over the emulated link: the EV's discovery (rig.v2g.sdp.SdpDiscovery) and the
    emulated SECC's answer, each datagram `latency` seconds on its way, on the run's clock."""

    def __init__(
        self,
        clock: Clock,
        tls: bool,
        latency_s: float,
        events: _Events,
        on_found: Callable[[], None],
    ) -> None:
        self.clock = clock
        self.latency_s = latency_s
        self.events = events
        self.on_found = on_found
        security = Security.TLS if tls else Security.NO_TLS
        self.offer = SdpOffer(EMULATED_SECC[0], {security: EMULATED_SECC[1]})
        self.discovery = SdpDiscovery(
            SdpRequest(security), SDP_MAX_REQUESTS, SDP_RETRY_INTERVAL, recorder=self._record
        )
        self._timer: Any = None

    def begin(self) -> None:
        self._send(self.discovery.begin(self.clock.now()))

    def _send(self, frame: bytes) -> None:
        now = self.clock.now()
        self.clock.call_at(now + self.latency_s, lambda: self._at_secc(frame))
        self._timer = self.clock.call_at(self.discovery.deadline, self._timeout)

    def _at_secc(self, frame: bytes) -> None:
        answer = answer_request(frame, self.offer)
        if answer.response is None:
            return
        reply = answer.response.encode()
        self.clock.call_at(self.clock.now() + self.latency_s, lambda: self._at_ev(reply))

    def _at_ev(self, data: bytes) -> None:
        if self.discovery.datagram(data, str(EMULATED_SECC[0]), self.clock.now()) is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self.on_found()

    def _timeout(self) -> None:
        if self.discovery.state is not DiscoveryState.WAITING:
            return
        frame = self.discovery.timeout(self.clock.now())
        if frame is not None:
            self._send(frame)
        else:
            self.events.add(
                self.clock.now(), "sdp", "failed", {"requests": len(self.discovery.tries)}
            )

    def _record(self, record: SdpRecord) -> None:
        if isinstance(record, SdpTry):
            data = {"try": record.number, "security": self.discovery.request.security.name}
            self.events.add(record.sent_at, "sdp", "request", data)
            return
        response = record.response
        found = (
            {"address": str(response.address), "port": response.port,
             "security": response.security.name}
            if response is not None
            else {"error": record.error}
        )  # fmt: skip
        self.events.add(record.received_at, "sdp", "response", found)


# ------------------------------------------------------------------------ the emulated cable
class EmulatedCable:
    """Both sides of the cable on the emulated bench (the module docstring says what it does)."""

    def __init__(
        self,
        link: LinkSpec,
        dut: EmulatedSession20,
        clock: Clock,
        *,
        dut_side: str,
        defects: Sequence[str] = (),
        seed: int = 1,
        latency_s: float = 0.0005,
    ) -> None:
        self.link = link
        self.dut = dut
        self.clock = clock
        self.events = _Events()
        # Its own random stream: the session's (and so its bytes on the wire) stays as without.
        rng = random.Random(seed * 7919 + 14)
        timing = SlacTiming().overridden(link.slac)
        self.pilot = PilotLine(clock.now)
        self.pilot.subscribe(lambda t, r: self.events.pilot(t, _reading_event(r)))
        self.events.pilot(clock.now(), _reading_event(self.pilot.reading()))
        self.powerline = Powerline(clock)
        self.powerline.connected = False  # unplugged until plug_in
        ev_port = self.powerline.attach(EV_HOST_MAC, EmulatedModem(EV_MODEM_MAC, rng=rng))
        evse_port = self.powerline.attach(EVSE_HOST_MAC, EmulatedModem(EVSE_MODEM_MAC, rng=rng))
        self.ev_slac = SlacEndpoint(
            EvSlac(EV_HOST_MAC, timing, rng=rng, recorder=self.events.slac), ev_port, clock
        )
        self.evse_slac = SlacEndpoint(
            EvseSlac(EVSE_HOST_MAC, timing, rng=rng, recorder=self.events.slac), evse_port, clock
        )
        # The DUT's side carries its seeded pilot defects; the rig's side is a good one.
        ev = ev_timing(defects if dut_side == "ev" else ())
        self.ev = EvLink(
            self.pilot,
            self.ev_slac,
            clock,
            EvLinkTiming(
                state_c_delay=ev.state_c_delay_s,
                state_b_delay=ev.state_b_delay_s,
                early_state_c=ev.early_state_c,
                dropout=ev.dropout_s,
                dropout_after=ev.dropout_after_s,
            ),
            on_link_up=self._link_up,
            recorder=self.events.link,
        )
        evse = evse_settings(defects if dut_side == "evse" else ())
        self.evse = EvseLink(
            self.pilot,
            self.evse_slac,
            clock,
            EvseLinkSettings(evse.duty, evse.frequency_hz, step_ef=timing.step_ef),
            recorder=self.events.link,
        )
        self.pilot.subscribe(self._pilot_changed)
        self.sdp: EmulatedSdp | None = None
        if link.sdp:
            self.sdp = EmulatedSdp(clock, dut.tls, latency_s, self.events, self._session)
        dut.on_sent = _ev_listener(self.ev)

    @property
    def up(self) -> bool:
        return self.ev.link_up

    def _pilot_changed(self, t: float, r: PilotReading) -> None:
        self.ev.pilot_changed(str(r.state), r.duty)
        self.evse.pilot_changed(str(r.state), r.duty)

    def plug_in(self) -> None:
        self.powerline.connected = True
        self.ev.plug_in()

    def unplug(self) -> None:
        self.ev.unplug()
        self.powerline.connected = False

    def _link_up(self) -> None:
        if self.sdp is not None:
            self.sdp.begin()
        else:
            self._session()

    def _session(self) -> None:
        self.events.add(self.clock.now(), "link", "session_start", {"side": "ev"})
        self.dut.start()

    def describe(self) -> str:
        ev, evse = self.ev_slac.machine, self.evse_slac.machine
        assert isinstance(ev, EvSlac) and isinstance(evse, EvseSlac)
        r = self.pilot.reading()
        failure = f" ({ev.failure})" if ev.failure else ""
        duty = "no PWM" if r.duty is None else f"{r.duty * 100:.3g} % PWM"
        return f"pilot {r.state}, {duty}; EV SLAC {ev.state}{failure}, EVSE SLAC {evse.state}"

    def poll(self) -> Sequence[DutEvent]:
        return self.events.drain()

    def close(self) -> None:
        self.ev_slac.close()
        self.evse_slac.close()


# --------------------------------------------------------------------------- the bench cable
class _EvPilotDriver:
    """The EV side of the bench's control pilot instrument, as EvLink drives a pilot."""

    def __init__(self, driver: ControlPilot) -> None:
        self.driver = driver

    def set_ev_state(self, state: str) -> None:
        self.driver.set_state(state)


class BenchCable:
    """The rig's EV side of a real cable (the module docstring says what it does)."""

    def __init__(
        self,
        link: LinkSpec,
        bench_link: BenchLink,
        pilot: ControlPilot,
        dut: Any,
        clock: Clock,
        *,
        seed: int = 1,
    ) -> None:
        from rig.v2g.slac.raw import RawPort, homeplug_socket

        loop = getattr(clock, "loop", None)
        if loop is None or clock.virtual:
            raise BenchError("a real cable runs on the real clock")
        self.clock = clock
        self.dut = dut
        self.driver = pilot
        self.poll_s = bench_link.pilot_poll_s
        self.events = _Events()
        try:
            sock = homeplug_socket(bench_link.interface)
        except OSError as exc:
            raise BenchError(
                f"cannot open a packet socket on {bench_link.interface} for SLAC (root or "
                f"CAP_NET_RAW, and the interface must exist): {exc.strerror or exc}"
            ) from None
        self.port = RawPort(sock, loop)
        self.closed = False
        self._timer: Any = None
        try:
            self._open(link, bench_link, pilot, dut, clock, seed)
        except BaseException:
            self.close()  # the socket and its reader do not outlive a cable that failed to open
            raise

    def _open(
        self,
        link: LinkSpec,
        bench_link: BenchLink,
        pilot: ControlPilot,
        dut: Any,
        clock: Clock,
        seed: int,
    ) -> None:
        host = bench_link.ev_mac or self.port.mac
        timing = SlacTiming().overridden(link.slac)
        self.slac = SlacEndpoint(
            EvSlac(
                host,
                timing,
                EvConfig(modem_mac=bench_link.modem_mac),
                rng=random.Random(seed * 7919 + 14),
                recorder=self.events.slac,
            ),
            self.port,
            clock,
        )
        self.ev = EvLink(
            _EvPilotDriver(pilot),
            self.slac,
            clock,
            on_link_up=self._session,
            recorder=self.events.link,
        )
        if hasattr(dut, "on_sent"):
            dut.on_sent = _ev_listener(self.ev)
        self._last: dict[str, Any] | None = None
        self._read()  # the pilot before anything happens, and the polling from here on

    @property
    def up(self) -> bool:
        return self.ev.link_up

    def plug_in(self) -> None:
        self.ev.plug_in()

    def unplug(self) -> None:
        self.ev.unplug()

    def _session(self) -> None:
        self.events.add(self.clock.now(), "link", "session_start", {"side": "ev"})
        self.dut.start()

    def _read(self) -> None:
        """One reading of the pilot instrument: on the trace when it changed, and to the EV's
        side. The time is taken after the reply: the change happened no later than that."""
        self._timer = None
        if self.closed:
            return
        measured = self.driver.measure().as_event()
        now = self.clock.now()
        if self._changed(measured):
            self._last = measured
            self.events.pilot(now, measured)
            duty = measured["duty"]
            self.ev.pilot_changed(
                str(measured["state"]), float(duty) if isinstance(duty, int | float) else None
            )
        self._timer = self.clock.call_at(now + self.poll_s, self._read)

    def _changed(self, reading: Mapping[str, Any]) -> bool:
        last = self._last
        if last is None or last["state"] != reading["state"]:
            return True
        for key, band in (("duty", DUTY_DEADBAND), ("frequency_hz", None)):
            a, b = last[key], reading[key]
            if (a is None) != (b is None):
                return True
            if a is None or b is None:
                continue
            limit = band if band is not None else FREQUENCY_DEADBAND * max(abs(a), 1.0)
            if abs(float(a) - float(b)) > limit:
                return True
        return False

    def describe(self) -> str:
        ev = self.slac.machine
        assert isinstance(ev, EvSlac)
        last = self._last or {}
        duty = last.get("duty")
        shown = "no PWM" if duty is None else f"{float(duty) * 100:.3g} % PWM"
        failure = f" ({ev.failure})" if ev.failure else ""
        return (
            f"pilot {last.get('state')}, {shown} (measured); EV SLAC {ev.state}{failure} on "
            f"{self.port.interface}"
        )

    def poll(self) -> Sequence[DutEvent]:
        return self.events.drain()

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if hasattr(self, "slac"):
            self.slac.close()
        self.port.close()
