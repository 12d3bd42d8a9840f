"""The device under test as the runner sees it: the Dut protocol, and its implementations.

Whatever the DUT is — the emulated EVSE over rig.sim, a real EVSE driven by the rig's EVCC, a real
EV driven by the rig's SECC — the runner asks the same things of it: start and stop a session,
command a setpoint or follow the home load, report what happened (events on the run's timeline),
and go to its safe state within a bound. The session's phase has one spelling, SessionPhase.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rig.bench import DutSide
from rig.clock import Clock
from rig.ev import EVSpec
from rig.plan import SessionSpec
from rig.trace import DeferredData
from rig.v2g.frozen import fast_init
from rig.v2g.vocabulary import ControlMode, SessionPhase
from rig.v2gfiles import SessionFiles

if TYPE_CHECKING:
    from rig.day import DaySpec
    from rig.v2g.connection import Connection, Record
    from rig.v2g.engine import Engine
    from rig.v2g.link import ByteLink
    from rig.v2g.quirks import Quirks

#: The protocol name runs carry in the trace and the record.
ISO15118_20 = "ISO 15118-20"

#: Told of every message an engine sends, as it goes out: (time, the sending engine "evcc" or
#: "secc", message name, decoded body). The cable's EV side follows its own PowerDeliveryReq
#: with the pilot at that moment (rig.linkrun), not when the runner next polls.
MessageListener = Callable[[float, str, str, Mapping[str, Any]], None]


def _listening(
    tap: Callable[[Record], None], side: str, listener: MessageListener | None
) -> Callable[[Record], None]:
    """`tap`, and `listener` for each message this side sends."""
    if listener is None:
        return tap

    def record(rec: Record) -> None:
        from rig.v2g.connection import RecordKind

        tap(rec)
        if rec.kind is RecordKind.SENT:
            body = rec.data if isinstance(rec.data, Mapping) else {}
            listener(rec.time, side, rec.name, body)

    return record


@fast_init
@dataclass(frozen=True)
class DutEvent:
    """Something the DUT (or the rig's protocol engine facing it) reported, at time t. `src` is
    the trace source: "dut" for the device's own claims, "v2g" for what the rig's engine saw."""

    t: float
    name: str
    data: Mapping[str, Any] = field(default_factory=dict)
    src: str = "dut"


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

    def standby(self, on: bool) -> None:
        """Hold the session without energy (PowerDelivery Standby), or go on; ISO 15118-20 only."""
        ...

    def set_setpoint(self, p_w: float) -> None:
        """Commanded AC power, rig sign (+ charges the EV, - discharges)."""
        ...

    def follow_home_load(self, on: bool) -> None:
        """V2H: discharge what the home draws (on), or back to the last setpoint (off)."""
        ...

    def manage_day(self, day: DaySpec) -> None:
        """A day plan (rig.day): the EV's departure and need travel over -20; the tariff reaches
        the DUT as a real one receives it (the EVSE's control interface, or the SECC's price
        schedules to an EV). Called before the session starts."""
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

    def standby(self, on: bool) -> None:
        raise NotImplementedError("standby and resume need an ISO 15118-20 session (protocol none)")

    def manage_day(self, day: DaySpec) -> None:
        raise NotImplementedError(
            "a day plan needs the ISO 15118-20 session: the EV's departure and energy requests "
            "travel over it (this bench's protocol is none)"
        )

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


class MessageData(DeferredData):
    """A message event's data: "dir" ("tx" sent by the rig's engine, "rx" received), "side",
    "message" (element name), "payload_type", "exi" (the whole V2GTP frame in hex), "body" (the
    JSON form, rig.v2g.exi.to_json) and "code" (the ResponseCode, in responses). It keeps the
    frame and the decoded message and builds "exi" and "body" each time they are read: held as
    dicts, a ChargeLoop message took ~4.5 kB, ~3 GB over a 24 h day (rig.trace.DeferredData).
    A record that carries only the JSON form (`body`, no message) is held as it is."""

    __slots__ = ("_body", "code", "direction", "frame", "message", "name", "payload_type", "side")

    def __init__(
        self,
        direction: str,
        side: str,
        name: str,
        payload_type: int | None,
        frame: bytes | None,
        message: Any,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        self.direction = direction
        self.side = side
        self.name = name
        self.payload_type = payload_type
        self.frame = frame
        self.message = message
        self._body = None if message is not None else body
        if message is not None:
            code = getattr(message, "ResponseCode", None)
            self.code = code.value if isinstance(code, Enum) else code
        else:
            inner = body.get(name) if body is not None else None
            self.code = inner.get("ResponseCode") if isinstance(inner, Mapping) else None

    def _keys(self) -> tuple[str, ...]:
        return _MESSAGE_KEYS if self.code is None else _MESSAGE_KEYS_CODE

    def as_json(self) -> dict[str, Any]:
        out = {
            "dir": self.direction,
            "side": self.side,
            "message": self.name,
            "payload_type": self.payload_type,
            "exi": self.frame.hex() if self.frame is not None else "",
            "body": self["body"],
        }
        if self.code is not None:
            out["code"] = self.code
        return out

    def __getitem__(self, key: str) -> Any:
        if key == "body":
            if self.message is not None:
                return _json_of(self.message)
            return self._body if self._body is not None else {}
        if key == "exi":
            return self.frame.hex() if self.frame is not None else ""
        if key == "dir":
            return self.direction
        if key == "side":
            return self.side
        if key == "message":
            return self.name
        if key == "payload_type":
            return self.payload_type
        if key == "code" and self.code is not None:
            return self.code
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in self._keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def __repr__(self) -> str:
        return f"MessageData({self.as_json()!r})"


_MESSAGE_KEYS = ("dir", "side", "message", "payload_type", "exi", "body")
_MESSAGE_KEYS_CODE = (*_MESSAGE_KEYS, "code")


class V2gTap:
    """Turns one engine connection's records into trace events: every message the rig's engine
    sent or received (name, direction, payload type, the frame in hex, the decoded JSON, the
    response code) and the engine's own events, on the run's timeline."""

    def __init__(
        self,
        side: str,
        src: str = "v2g",
        *,
        messages: bool = True,
        now: Callable[[], float] | None = None,
    ) -> None:
        self._now = now
        self.side = side
        self.src = src
        self.messages = messages
        self.events: list[DutEvent] = []
        self.count = 0
        from rig.v2g.connection import RecordKind  # the engines load only with a session

        self._sent, self._received, self._event = (
            RecordKind.SENT,
            RecordKind.RECEIVED,
            RecordKind.EVENT,
        )

    def __call__(self, record: Record) -> None:
        kind = record.kind
        if kind is self._sent or kind is self._received:
            self.count += 1
            if not self.messages:
                return
            message = MessageData(
                "tx" if kind is self._sent else "rx",
                self.side,
                record.name,
                record.payload_type,
                record.raw,
                record.message,
                record.data if isinstance(record.data, Mapping) else None,
            )
            self.events.append(DutEvent(record.time, "message", message, self.src))
        elif kind is self._event:
            data = dict(record.data) if isinstance(record.data, Mapping) else {}
            data["side"] = self.side
            self.events.append(DutEvent(record.time, record.name, data, self.src))
        else:
            self.events.append(
                DutEvent(
                    record.time,
                    kind.value,
                    {"side": self.side, "reason": record.name, "exi": record.hex},
                    self.src,
                )
            )

    def drain(self) -> list[DutEvent]:
        out, self.events = self.events, []
        return out

    def tls_established(self, info: Any) -> None:
        """The TLS handshake of this side's link completed (rig.v2g.transport.tls)."""
        suite = getattr(info.cipher_suite, "value", info.cipher_suite)
        self.events.append(
            DutEvent(
                self._now() if self._now else 0.0,
                "tls_established",
                {
                    "side": self.side,
                    "version": info.version,
                    "cipher_suite": str(suite),
                    "group": info.group,
                    "peer": info.peer_common_name,
                },
                self.src,
            )
        )


def _json_of(message: Any) -> Any:
    from rig.v2g.exi import to_json

    return to_json(message)


class EmulatedSession20:
    """An emulated DUT over a real ISO 15118-20 session, either side: the rig's engine against
    the emulated DUT's engine, with real EXI both ways (TLS 1.3 when the bench says so) over an
    in-memory link on the clock's scheduler (virtual time, or real time when served).

    DUT = EVSE: the rig's EVCC (over the EV's battery in the sim) against the emulated EVSE's
    SECC (over its power stage). The plan's setpoints reach the EVSE through its control
    interface (its energy manager) in Dynamic mode, and through the EV's request in Scheduled
    mode, as on a real bench. DUT = EV: the rig's SECC (its charger: the sim's power stage)
    against the emulated EV's EVCC (over its battery); the setpoints are the rig's charger's.
    Faults from the plan wrap the rig's engine (rig.v2g.faults); the DUT's seeded protocol
    defects are its engine's quirks."""

    protocol = ISO15118_20
    #: How long safe_state waits for a normal session end before opening everything (clock s).
    STOP_WAIT_S = 70.0
    STOP_POLL_S = 0.05

    def __init__(
        self,
        world: Any,
        session: SessionSpec,
        clock: Clock,
        identity: DutIdentity,
        *,
        dut_side: str = "evse",
        ev: EVSpec | None = None,
        seed: int = 1,
        latency_s: float = 0.0005,
        dut_quirks: Quirks | None = None,
        faults: Sequence[Any] = (),
        files: SessionFiles | None = None,
        tls_pki: Path | None = None,
        secc_presents: str = "SECC_LEAF",
        defects: Sequence[str] = (),
    ) -> None:
        from rig.emulators.defects import secc_behaviour
        from rig.emulators.ev import SimEv
        from rig.emulators.evse import SimEvse
        from rig.v2g.sessions import SessionStore

        if dut_side not in ("evse", "ev"):
            raise ValueError(f"dut_side {dut_side!r}: evse or ev")
        self.dut_side = dut_side
        self.rig_side = "evcc" if dut_side == "evse" else "secc"
        self.world = world
        self.clock = clock
        self.identity = identity
        self.session = session
        self.latency_s = latency_s
        self.ev = SimEv(
            world,
            max_charge_w=None if ev is None else ev.max_charge_w,
            max_discharge_w=None if ev is None else ev.max_discharge_w,
        )
        from rig.emulators.management import management_defects

        #: The DUT's seeded energy-management defects (a day plan's manager).
        self.management_defects = management_defects(defects)
        timing, keeps_power, aborts = secc_behaviour(defects if dut_side == "evse" else ())
        self.evse = SimEvse(world, (session.service,), keeps_power_after_loss=keeps_power)
        self._secc_timing = timing
        self._aborts_on_repeat = aborts
        self.store = SessionStore()
        self.dut_quirks = dut_quirks
        self.faults = tuple(faults)
        self.files = files or SessionFiles()
        self.tls = tls_pki is not None
        self._tls_contexts: tuple[Any, Any] | None = None
        if tls_pki is not None:
            from rig.v2g.transport.tls import TlsContext
            from rig.v2gfiles import tls_configs

            evcc_tls, secc_tls = tls_configs(
                tls_pki, self.files.key_line, secc_presents=secc_presents
            )
            self._tls_contexts = (TlsContext(evcc_tls), TlsContext(secc_tls))
        self._seed = seed
        self._rng = random.Random(seed)
        #: Set before start() to hear each message as either engine sends it (rig.linkrun).
        self.on_sent: MessageListener | None = None
        self._taps: list[V2gTap] = []
        self._rig_engine: Any = None
        self._connections: list[Connection] = []

    @property
    def messages(self) -> int:
        return sum(tap.count for tap in self._taps if tap.messages)

    @property
    def phase(self) -> SessionPhase:
        if self._rig_engine is None:
            return SessionPhase.IDLE
        phase: SessionPhase = self._rig_engine.phase
        return phase

    def _finished(self) -> bool:
        return self._rig_engine is None or bool(self._rig_engine.finished)

    def start(self) -> None:
        from rig.v2g.connection import Connection
        from rig.v2g.evcc import Evcc, EvccConfig
        from rig.v2g.quirks import NO_QUIRKS
        from rig.v2g.secc import Secc, SeccConfig
        from rig.v2g.timing import SeccTiming
        from rig.v2g.transport.memory import memory_pair

        if not self._finished():
            raise RuntimeError(f"session already running (phase {self.phase})")
        self.world.advance_to(self.clock.now())
        if self.dut_side == "ev":
            # DUT = EV: the DC source is the rig's charger output, off until a session
            # (rig.station._prepare); on the emulated bench nothing else switches it on.
            self.world.set_dc_output(True)
        # Header TimeStamp = origin + now: Unix time of the run's t = 0 (a fixed epoch in
        # virtual time, so that the same seed gives the same bytes on the wire).
        origin = self.clock.epoch_ns / 1e9
        self.files.sdp_exchange(self.clock.now(), self.tls)
        ev_link, evse_link = memory_pair(self.clock, self.latency_s)
        links: dict[str, ByteLink] = {"evcc": ev_link, "secc": evse_link}
        writer = self.files.writer
        if writer is not None:  # the frames as a capture at the rig's interface shows them
            from rig.v2g.capture import TappedLink
            from rig.v2gfiles import EV_ADDRESS, EVSE_ADDRESS

            tcp = writer.tcp_session(EV_ADDRESS, EVSE_ADDRESS)
            links[self.rig_side] = TappedLink(
                links[self.rig_side], tcp, self.clock.now, local_is_client=self.rig_side == "evcc"
            )
        quirks = {self.dut_side: self.dut_quirks or NO_QUIRKS}
        engines: dict[str, Engine] = {
            "secc": Secc(
                self.evse,
                SeccConfig(
                    quirks=quirks.get("evse", NO_QUIRKS),
                    timestamp_origin=origin,
                    timing=SeccTiming().overridden(self._secc_timing),
                ),
                store=self.store,
                rng=self._rng,
            ),
            "evcc": Evcc(
                self.ev,
                EvccConfig(
                    services=(self.session.service,),
                    control_mode=self.session.control_mode,
                    quirks=quirks.get("ev", NO_QUIRKS),
                    timestamp_origin=origin,
                ),
            ),
        }
        self._rig_engine = engines[self.rig_side]
        dut_engine_side = "secc" if self.rig_side == "evcc" else "evcc"
        if self._aborts_on_repeat and dut_engine_side == "secc":
            from rig.emulators.defects import AbortOnRepeat

            engines["secc"] = AbortOnRepeat(engines["secc"])
        ours = V2gTap(self.rig_side, now=self.clock.now)
        theirs = V2gTap(dut_engine_side, src="dut", messages=False, now=self.clock.now)
        self._taps = [ours, theirs]
        if self._tls_contexts is not None:
            evcc_ctx, secc_ctx = self._tls_contexts
            contexts = {"evcc": evcc_ctx, "secc": secc_ctx}
            for side in ("evcc", "secc"):
                hook = ours.tls_established if side == self.rig_side else None
                links[side] = contexts[side].wrap(links[side], on_handshake=hook)
        rig_engine: Engine = self._rig_engine
        if self.faults:
            from rig.v2g.faults import FaultInjector

            rig_engine = FaultInjector(
                rig_engine, self.faults, rng=random.Random(self._seed * 7919 + 1)
            )
        self.ev.request(_intent("charge"))
        listener = self.on_sent
        self._connections = [
            Connection(
                engines[dut_engine_side],
                links[dut_engine_side],
                self.clock,
                recorder=_listening(theirs, dut_engine_side, listener),
                # Messages are put in JSON form only for a listener: the trace keeps the rig's
                # as they are and builds their JSON when written or read (MessageData).
                to_json=_json_of if listener is not None else None,
            ),
            Connection(
                rig_engine,
                links[self.rig_side],
                self.clock,
                recorder=_listening(ours, self.rig_side, listener),
                to_json=_json_of if listener is not None else None,
            ),
        ]
        if self.rig_side == "evcc":
            self._connections.reverse()  # the SECC listens before the EV speaks
        for connection in reversed(self._connections):
            connection.start()

    def stop(self) -> None:
        if self._finished():
            return
        if self.dut_side == "evse":
            self.ev.request(_intent("stop"))
        else:  # the rig's charger asks the EV to end the session
            from rig.v2g.controllers import EvseNotice, Notification

            self.evse.notices.append(EvseNotice(Notification.TERMINATE))

    def standby(self, on: bool) -> None:
        if self._finished():
            raise RuntimeError("no session to put in standby or resume")
        if self.dut_side == "ev":
            raise RuntimeError("standby is the EV's own request: the DUT is the EV")
        self.ev.request(_intent("standby" if on else "charge"))

    def set_setpoint(self, p_w: float) -> None:
        self.world.advance_to(self.clock.now())
        if self.dut_side == "evse" and self.session.control_mode is ControlMode.SCHEDULED:
            self.ev.target_power_w = p_w  # the EV asks for it (EVTargetCurrent)
        else:
            self.world.command_setpoint(p_w)  # the EVSE's energy manager (or the rig's charger)

    def follow_home_load(self, on: bool) -> None:
        self.world.advance_to(self.clock.now())
        self.world.command_follow_home(on)

    def manage_day(self, day: DaySpec) -> None:
        """DUT = EVSE: the rig's EV announces the departure and need over -20 (Dynamic mode), the
        tariff and the outage forecast reach the emulated EVSE's manager directly (its control
        interface). DUT = EV: the rig's SECC offers the tariff as price schedules (Scheduled
        mode) and the emulated EV's manager chooses its power profile from them."""
        from rig.emulators.management import TariffPolicy, pricing_of

        self.ev.set_departure(day.departure.at_s, day.departure.energy_wh)
        efficiency = float(self.world.config.evse.efficiency)
        if self.dut_side == "evse":
            self.evse.manage(
                TariffPolicy(
                    day.tariff,
                    day.outages,
                    efficiency=efficiency,
                    defects=self.management_defects,
                )
            )
        else:
            self.evse.tariff = day.tariff
            self.evse.pricing = pricing_of(day.tariff)
            self.ev.manage_by_prices(efficiency, self.management_defects)

    def poll(self) -> Sequence[DutEvent]:
        self.world.advance_to(self.clock.now())
        out = [DutEvent(e.t, e.name, e.data) for e in self.world.drain_events()]
        for tap in self._taps:
            out.extend(tap.drain())
        out.sort(key=lambda e: e.t)
        return out

    def safe_state(self, timeout_s: float) -> None:
        """End the session normally if it can (PowerDelivery Stop, welding detection,
        SessionStop); then, whatever happened, the power stage off and the contactors open."""
        self.stop()
        wait = self.STOP_WAIT_S if self.clock.virtual else timeout_s
        deadline = self.clock.now() + wait
        try:
            while not self._finished() and self.clock.now() < deadline:
                self.clock.run_until(min(self.clock.now() + self.STOP_POLL_S, deadline))
        finally:
            for connection in self._connections:
                connection.close("the rig's safe state")
            self.world.advance_to(self.clock.now())
            self.world.enable_power_stage(False)
            self.world.command_setpoint(0.0)

    def close(self) -> None:
        for connection in self._connections:
            connection.close("closed")
        self.files.close()


def _intent(name: str) -> Any:
    from rig.v2g.controllers import EvIntent

    return EvIntent(name)


class RealEvse20:
    """A real EVSE as the DUT: the rig plays the car. Its EVCC finds the charger (SDP on an
    interface, or the address and port of the bench file), connects over TCP (TLS 1.3 with the
    bench's PKI when `tls`), and runs -20 sessions on the run's real clock; the car's battery is
    the bench's battery emulator, the EV's state a battery model fed by what the emulator
    measures (rig.benchev). In Dynamic mode the charger decides the power: setpoints go through
    its control interface (`control:` in the bench file); in Scheduled mode the EV asks for them."""

    protocol = ISO15118_20
    STOP_POLL_S = 0.05

    def __init__(
        self,
        config: Any,  # rig.bench.DutConfig
        session: SessionSpec,
        ev: EVSpec,
        clock: Clock,
        identity: DutIdentity,
        *,
        dc_source: Any = None,
        control: Any = None,
        files: SessionFiles | None = None,
        tls_pki: Path | None = None,
    ) -> None:
        from rig.benchev import MeasuredBattery
        from rig.emulators.ev import SimEv

        if not hasattr(clock, "loop"):
            raise ValueError("a real DUT runs on the real clock")
        self.config = config
        self.session = session
        self.clock = clock
        self.identity = identity
        self.control = control
        self.files = files or SessionFiles()
        self.physics = MeasuredBattery(ev, dc_source)
        self.ev = SimEv(
            self.physics, max_charge_w=ev.max_charge_w, max_discharge_w=ev.max_discharge_w
        )
        self.tap = V2gTap("evcc", now=clock.now)
        #: Set before start() to hear each message the rig's EVCC sends (rig.linkrun).
        self.on_sent: MessageListener | None = None
        self._tls = None
        if tls_pki is not None:
            from rig.v2g.host import evcc_tls_config
            from rig.v2g.pki import PkiFolder

            self._tls = evcc_tls_config(PkiFolder(tls_pki), key_log=self.files.key_line)
        self._host: Any = None
        self._evcc: Any = None

    @property
    def messages(self) -> int:
        return self.tap.count

    @property
    def phase(self) -> SessionPhase:
        if self._evcc is None:
            return SessionPhase.IDLE
        phase: SessionPhase = self._evcc.phase
        if phase is not SessionPhase.STOPPED and self._host is not None and self._host.finished:
            return SessionPhase.STOPPED  # no SECC found, the connection or TLS failed
        return phase

    def _target(self) -> Any:
        from ipaddress import ip_address

        from rig.v2g.host import SdpTarget
        from rig.v2g.sdp import SeccEndpoint, Security

        cfg = self.config
        if cfg.address and cfg.port:
            security = Security.TLS if self._tls is not None else Security.NO_TLS
            return SeccEndpoint(ip_address(cfg.address), cfg.port, security, cfg.interface)
        return SdpTarget(cfg.interface)

    def _make_engine(self, resume: Any) -> Any:
        from rig.v2g.evcc import Evcc, EvccConfig
        from rig.v2g.messages import DischargeSign

        self._evcc = Evcc(
            self.ev,
            EvccConfig(
                services=(self.session.service,),
                control_mode=self.session.control_mode,
                sign=DischargeSign(self.config.sign),
                timestamp_origin=self.clock.epoch_ns / 1e9,
            ),
            resume=resume,
        )
        return self._evcc

    def _capture(self, link: ByteLink, ends: Any) -> ByteLink:
        writer = self.files.writer
        if writer is None:
            return link
        from rig.v2g.capture import TappedLink

        session = writer.tcp_session(
            ends.local if ends.local_is_client else ends.peer,
            ends.peer if ends.local_is_client else ends.local,
        )
        return TappedLink(link, session, self.clock.now, local_is_client=ends.local_is_client)

    def start(self) -> None:
        from rig.v2g.host import EvccHost

        if self._host is not None and not self._host.finished:
            raise RuntimeError(f"session already running (phase {self.phase})")
        self.ev.request(_intent("charge"))
        self._evcc = None
        recorder = _listening(self.tap, "evcc", self.on_sent)
        self._host = EvccHost(
            self.clock.loop,  # type: ignore[attr-defined]
            self.clock,
            self._make_engine,
            target=self._target(),
            tls=self._tls,
            recorder=lambda hr: recorder(hr.record),
            to_json=_json_of,
            tap=self._capture,
        )
        self._host.start()

    def stop(self) -> None:
        if self._evcc is not None and not self._evcc.finished:
            self.ev.request(_intent("stop"))

    def standby(self, on: bool) -> None:
        if self._evcc is None or self._evcc.finished:
            raise RuntimeError("no session to put in standby or resume")
        self.ev.request(_intent("standby" if on else "charge"))

    def set_setpoint(self, p_w: float) -> None:
        if self.session.control_mode is ControlMode.SCHEDULED:
            self.ev.target_power_w = p_w
        elif self.control is not None:
            self.control.set_setpoint(p_w)
        else:
            raise RuntimeError(
                "in Dynamic mode the EVSE decides the power: the bench file must name its "
                "control interface (dut: {control: VISA address}) for a setpoint"
            )

    def follow_home_load(self, on: bool) -> None:
        if self.control is None:
            raise RuntimeError("following the home load needs the EVSE's control interface")
        self.control.follow_home_load(on)

    def manage_day(self, day: DaySpec) -> None:
        """The rig's EV announces the departure and need; the tariff and outage forecast go
        through the EVSE's control interface (instruments.rig.evse_control)."""
        if self.control is None:
            raise RuntimeError("a day plan gives the EVSE its tariff through its control interface")
        self.ev.set_departure(day.departure.at_s, day.departure.energy_wh)
        self.control.set_day(day)

    def poll(self) -> Sequence[DutEvent]:
        self.physics.advance_to(self.clock.now())
        return self.tap.drain()

    def safe_state(self, timeout_s: float) -> None:
        """End the session normally within the bound (PowerDelivery Stop, welding detection,
        SessionStop), then close the connection and command 0 W through the control interface."""
        self.stop()
        deadline = self.clock.now() + timeout_s
        try:
            while (
                self._host is not None
                and not self._host.finished
                and self._evcc is not None
                and not self._evcc.finished
                and self.clock.now() < deadline
            ):
                self.clock.run_until(min(self.clock.now() + self.STOP_POLL_S, deadline))
        finally:
            if self._host is not None:
                self._host.close("the rig's safe state")
                self.clock.run_until(self.clock.now() + 0.01)  # let the close go out
            if self.control is not None:
                self.control.safe_state()

    def close(self) -> None:
        if self._host is not None:
            self._host.close("closed")
        if self.control is not None:
            self.control.close()
        self.files.close()


class RealEv20:
    """A real EV as the DUT: the rig plays the charger. Its SECC listens (SDP on the bench's
    interface, or the address and port of the bench file) and serves the car's sessions on the
    run's real clock, TLS 1.3 with the bench's PKI when `tls`; the charger's output is the
    bench's DC source (rig.benchevse). The plan's setpoints are the rig's own charger commands:
    in Dynamic mode the charger steers within the car's limits; in Scheduled mode the car does."""

    protocol = ISO15118_20
    STOP_POLL_S = 0.05

    def __init__(
        self,
        config: Any,  # rig.bench.DutConfig
        session: SessionSpec,
        ev: EVSpec,
        clock: Clock,
        identity: DutIdentity,
        *,
        dc_source: Any,
        rated_w: float,
        files: SessionFiles | None = None,
        tls_pki: Path | None = None,
    ) -> None:
        from rig.benchevse import BenchCharger

        if not hasattr(clock, "loop"):
            raise ValueError("a real DUT runs on the real clock")
        if dc_source is None:
            raise ValueError("a real EV needs the bench's DC source as the charger's output")
        self.config = config
        self.session = session
        self.clock = clock
        self.identity = identity
        self.files = files or SessionFiles()
        self.charger = BenchCharger(
            dc_source, (session.service,), max_charge_w=rated_w, max_discharge_w=rated_w
        )
        self.tap = V2gTap("secc", now=clock.now)
        self._tls = None
        if tls_pki is not None:
            from rig.v2g.host import secc_tls_config
            from rig.v2g.pki import PkiFolder

            self._tls = secc_tls_config(PkiFolder(tls_pki), key_log=self.files.key_line)
        self._host: Any = None
        self._secc: Any = None
        from rig.v2g.sessions import SessionStore

        self._store = SessionStore()

    @property
    def messages(self) -> int:
        return self.tap.count

    @property
    def phase(self) -> SessionPhase:
        if self._secc is None:
            return SessionPhase.IDLE
        phase: SessionPhase = self._secc.phase
        return phase

    def _make_engine(self) -> Any:
        from rig.v2g.messages import DischargeSign
        from rig.v2g.secc import Secc, SeccConfig

        self._secc = Secc(
            self.charger,
            SeccConfig(
                sign=DischargeSign(self.config.sign), timestamp_origin=self.clock.epoch_ns / 1e9
            ),
            store=self._store,
        )
        return self._secc

    def _capture(self, link: ByteLink, ends: Any) -> ByteLink:
        writer = self.files.writer
        if writer is None:
            return link
        from rig.v2g.capture import TappedLink

        client, server = (
            (ends.local, ends.peer) if ends.local_is_client else (ends.peer, ends.local)
        )
        return TappedLink(
            link, writer.tcp_session(client, server), self.clock.now,
            local_is_client=ends.local_is_client,
        )  # fmt: skip

    def start(self) -> None:
        """Listen for the car (it starts the session: plug-in is its side of the cable)."""
        from rig.v2g.host import SeccHost

        if self._host is not None and not self._host.finished:
            return
        cfg = self.config
        self._host = SeccHost(
            self.clock.loop,  # type: ignore[attr-defined]
            self.clock,
            self._make_engine,
            interface=cfg.interface,
            host=None if cfg.interface else cfg.address,
            port=cfg.port or 0,
            sdp=cfg.interface is not None,
            tls=self._tls,
            recorder=lambda hr: self.tap(hr.record),
            to_json=_json_of,
            tap=self._capture,
            max_sessions=None,
        )
        self._host.start()

    def stop(self) -> None:
        """Ask the car to end the session (EVSENotification Terminate)."""
        from rig.v2g.controllers import EvseNotice, Notification

        if self._secc is not None and not self._secc.finished:
            self.charger.notices.append(EvseNotice(Notification.TERMINATE))

    def standby(self, on: bool) -> None:
        raise RuntimeError("standby is the EV's request; with a real EV the rig cannot make it")

    def set_setpoint(self, p_w: float) -> None:
        self.charger.setpoint_w = p_w  # the rig's charger steers (Dynamic mode)

    def follow_home_load(self, on: bool) -> None:
        raise RuntimeError("following the home load is an EVSE's V2H mode: the DUT is an EV")

    def manage_day(self, day: DaySpec) -> None:
        """The bench charger offers the day's tariff as price schedules (Scheduled mode), as the
        emulated path's SECC does; the car chooses its power profile from them. Its departure
        and need are the car's own (its owner sets them): the rig only judges them."""
        if self.session.control_mode is not ControlMode.SCHEDULED:
            raise RuntimeError(
                "a day plan with an EV as the DUT runs in Scheduled mode: there the charger "
                "offers the prices and the EV chooses its power (in Dynamic mode the charger, "
                "the rig's own, would decide it)"
            )
        from rig.emulators.management import pricing_of

        self.charger.tariff = day.tariff
        self.charger.pricing = pricing_of(day.tariff)

    def poll(self) -> Sequence[DutEvent]:
        return self.tap.drain()

    def safe_state(self, timeout_s: float) -> None:
        """Ask the car to stop, wait within the bound for its SessionStop, then stop listening;
        the charger's output goes to zero and off whatever happened."""
        self.stop()
        deadline = self.clock.now() + timeout_s
        try:
            while (
                self._secc is not None and not self._secc.finished and self.clock.now() < deadline
            ):
                self.clock.run_until(min(self.clock.now() + self.STOP_POLL_S, deadline))
        finally:
            if self._host is not None:
                self._host.close("the rig's safe state")
                self.clock.run_until(self.clock.now() + 0.01)
            self.charger.session_ended(_closure_aborted(), "the rig's safe state", self.clock.now())

    def close(self) -> None:
        if self._host is not None:
            self._host.close("closed")
        self.files.close()


def _closure_aborted() -> Any:
    from rig.v2g.controllers import Closure

    return Closure.ABORTED
