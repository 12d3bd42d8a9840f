"""The whole cable sequence on the emulated bench, in virtual time: what the runner and the Dut are
to do once the lead wires it (see the report), run here by hand.

plug in (state B) -> the EVSE applies 5 % PWM and waits for SLAC -> the EV starts SLAC over the
emulated powerline -> matched (both modems hold the NMK) -> the ISO 15118-20 session
(rig.dut.EmulatedEvse20 over its in-memory link) -> PowerDeliveryReq(Start): state C ->
charge loop -> stop: PowerDeliveryReq(Stop): state B -> SessionStop -> unplug (state A).
Every pilot change, SLAC record, link step and -20 message goes on one trace.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rig.bench import load_bench
from rig.checks import REGISTRY, Context, Verdict
from rig.clock import VirtualClock
from rig.dut import DutIdentity, EmulatedEvse20
from rig.physics import world_config
from rig.plan import load_plan
from rig.sim import World
from rig.sim.pilot import PilotLine, PilotReading, ev_timing, evse_settings
from rig.trace import Trace, TraceWriter
from rig.v2g.slac import EvseSlac, EvSlac, SlacEndpoint, SlacRecord
from rig.v2g.slac.emulated_modem import EmulatedModem
from rig.v2g.slac.link import EvLink, EvLinkTiming, EvseLink, EvseLinkSettings
from rig.v2g.slac.powerline import Powerline
from rig.v2g.vocabulary import SessionPhase

REPO = Path(__file__).resolve().parents[3]
EV_MAC, EVSE_MAC = bytes.fromhex("02000000ee01"), bytes.fromhex("02000000e5e1")
PILOT_CHECKS = (
    "pilot_state_b_before_start",
    "pilot_state_c_after_start",
    "pilot_state_b_after_stop",
    "pilot_state_held",
    "pilot_pwm",
)


@dataclass
class CableRun:
    trace: Trace
    verdicts: dict[str, Verdict]
    line: Powerline
    ev: EvSlac
    evse: EvseSlac
    phases: list[tuple[float, str]]


def run_cable(defects: Iterable[str] = (), *, loop_s: float = 5.0, seed: int = 1) -> CableRun:
    defects = tuple(defects)
    clock = VirtualClock()
    writer = TraceWriter(None, {"plan": "cable sequence (test)", "defects": list(defects)})
    pilot = PilotLine(clock.now)

    def on_reading(t: float, r: PilotReading) -> None:
        writer.event(
            t, "pilot", "reading",
            {"state": str(r.state), "frequency_hz": r.frequency_hz, "duty": r.duty,
             "high_v": round(r.high_v, 3), "low_v": r.low_v},
        )  # fmt: skip

    pilot.subscribe(on_reading)
    on_reading(clock.now(), pilot.reading())

    def on_slac(record: SlacRecord) -> None:
        writer.event(record.t, "slac", record.name, record.as_event())

    def on_link(t: float, side: str, what: str, data: dict[str, object]) -> None:
        writer.event(t, "link", what, {"side": side, **data})

    rng = random.Random(seed)
    powerline = Powerline(clock)
    ev_port = powerline.attach(EV_MAC, EmulatedModem(bytes.fromhex("00b052000011"), rng=rng))
    evse_port = powerline.attach(EVSE_MAC, EmulatedModem(bytes.fromhex("00b052000022"), rng=rng))
    ev_slac = SlacEndpoint(EvSlac(EV_MAC, rng=rng, recorder=on_slac), ev_port, clock)
    evse_slac = SlacEndpoint(EvseSlac(EVSE_MAC, rng=rng, recorder=on_slac), evse_port, clock)

    plan = load_plan(REPO / "test_plans/conformance/charge_loop_timing.yaml")
    bench = load_bench(REPO / "fixtures/benches/emulated.yaml")
    world = World(world_config(plan, bench), seed=seed)
    identity = DutIdentity(bench.dut.side, bench.dut.name, bench.dut.firmware, emulated=True)
    dut = EmulatedEvse20(world, plan.session, clock, identity, ev=plan.ev, seed=seed)

    t = ev_timing(defects)
    ev_link = EvLink(
        pilot,
        ev_slac,
        clock,
        EvLinkTiming(
            state_c_delay=t.state_c_delay_s,
            state_b_delay=t.state_b_delay_s,
            early_state_c=t.early_state_c,
            dropout=t.dropout_s,
            dropout_after=t.dropout_after_s,
        ),
        on_link_up=dut.start,  # the lead wires: data link up -> SDP, TLS, the session
        recorder=on_link,
    )
    s = evse_settings(defects)
    evse_link = EvseLink(
        pilot, evse_slac, clock, EvseLinkSettings(s.duty, s.frequency_hz), recorder=on_link
    )

    def both(time: float, r: PilotReading) -> None:
        ev_link.pilot_changed(str(r.state), r.duty)
        evse_link.pilot_changed(str(r.state), r.duty)

    pilot.subscribe(both)
    phases: list[tuple[float, str]] = []

    def poll() -> None:
        for event in dut.poll():
            writer.event(event.t, event.src, event.name, event.data)
            data = event.data
            # The EV's PowerDeliveryReq went out: its pilot follows (the lead wires this tap).
            if (
                event.name == "message"
                and data.get("message") == "PowerDeliveryReq"
                and data.get("dir") == "tx"
            ):
                body = data.get("body", {}).get("PowerDeliveryReq", {})
                ev_link.power_delivery(str(body.get("ChargeProgress", "")))
        if not phases or phases[-1][1] != dut.phase:
            phases.append((clock.now(), str(dut.phase)))

    def run_until(condition: object, limit: float) -> None:
        end = clock.now() + limit
        while clock.now() < end and not (callable(condition) and condition()):
            clock.run_until(clock.now() + 0.005)
            poll()

    clock.run_until(1.0)
    ev_link.plug_in()
    run_until(lambda: dut.phase is SessionPhase.CHARGE_LOOP, 60.0)
    assert dut.phase is SessionPhase.CHARGE_LOOP, f"no charge loop: {phases}"
    run_until(None, loop_s)
    dut.stop()
    run_until(lambda: dut.phase is SessionPhase.STOPPED, 60.0)
    run_until(None, 1.0)
    ev_link.unplug()
    run_until(None, 0.5)
    dut.close()
    writer.close(clock.now())
    ctx = Context(ev=plan.ev)
    verdicts = {}
    for name in PILOT_CHECKS:
        (verdict,) = REGISTRY[name].run(writer.trace, ctx, {})
        verdicts[name] = verdict
    ev, evse = ev_slac.machine, evse_slac.machine
    assert isinstance(ev, EvSlac) and isinstance(evse, EvseSlac)
    return CableRun(writer.trace, verdicts, powerline, ev, evse, phases)
