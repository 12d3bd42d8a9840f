"""The bench charger (rig.benchevse) on a day plan: its Scheduled parameter set says Pricing, its
ScheduleExchange offer carries the day's import and export prices from now to the day's end (the
builder the emulated EVSE uses too), they reach an EV over EXI and it plans from them; RealEv20
gives the charger the tariff, and refuses a day in Dynamic mode."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from instruments.roles.readings import DcReading
from rig.bench import load_bench
from rig.benchevse import BenchCharger
from rig.clock import VirtualClock
from rig.day import PriceWindow, Tariff
from rig.emulators.evse import SimEvse
from rig.emulators.management import offered_prices
from rig.plan import load_plan
from rig.sim import World, WorldConfig
from rig.v2g import controllers as c
from rig.v2g.vocabulary import ControlMode, Service

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "fixtures/plans/served_day_ev.yaml"
TARIFF = Tariff(
    "EUR",
    (
        PriceWindow(0.0, 3600.0, 0.45, 0.05),
        PriceWindow(3600.0, 7200.0, 0.15, 0.02),
        PriceWindow(7200.0, 86_400.0, 0.30, 0.05),
    ),
)


@dataclass
class _Source:
    """A DC source that holds the voltage it is set to (no load: no current)."""

    v: float = 0.0
    on: bool = False

    def set_voltage(self, v: float) -> None:
        self.v = v

    def set_current_limits(self, *, source_a: float, sink_a: float) -> None:
        pass

    def set_output(self, on: bool) -> None:
        self.on = on

    def output_enabled(self) -> bool:
        return self.on

    def measure(self) -> DcReading:
        return DcReading(self.v if self.on else 0.0, 0.0, 0.0)


def _charger(tariff: Tariff | None = TARIFF, pricing: c.Pricing = c.Pricing.ABSOLUTE) -> Any:
    charger = BenchCharger(
        _Source(),  # type: ignore[arg-type]
        (Service.DC_BPT,),
        max_charge_w=11_000.0,
        max_discharge_w=11_000.0,
    )
    charger.tariff = tariff
    charger.pricing = pricing
    return charger


def _pricing_by_mode(charger: Any) -> dict[ControlMode, c.Pricing]:
    (offer,) = charger.services()
    return {s.control_mode: s.pricing for s in offer.parameter_sets}


def _scheduled(charger: Any, now: float) -> c.ScheduleTuple:
    offer = charger.schedule(c.ScheduleRequest(control_mode=ControlMode.SCHEDULED), now)
    assert offer is not None and len(offer.tuples) == 1
    tup: c.ScheduleTuple = offer.tuples[0]
    return tup


def test_without_a_tariff_the_bench_charger_offers_no_prices() -> None:
    charger = _charger(None)
    assert set(_pricing_by_mode(charger).values()) == {c.Pricing.NO_PRICING}
    tup = _scheduled(charger, 10.0)
    assert tup.charging_prices is None and tup.discharging_prices is None


def test_the_scheduled_offer_carries_the_day_s_prices_from_now_to_the_day_s_end() -> None:
    charger = _charger()
    # Prices go out with the Scheduled offer only: the Dynamic set does not claim them.
    assert _pricing_by_mode(charger) == {
        ControlMode.DYNAMIC: c.Pricing.NO_PRICING,
        ControlMode.SCHEDULED: c.Pricing.ABSOLUTE,
    }
    tup = _scheduled(charger, 1800.0)
    assert tup.charging_prices is not None and tup.discharging_prices is not None
    assert tup.charging_prices.pricing is c.Pricing.ABSOLUTE
    assert tup.charging_prices.currency == "EUR"
    assert [(e.duration, e.price) for e in tup.charging_prices.entries] == [
        (1800.0, 0.45),
        (3600.0, 0.15),
        (79_200.0, 0.30),
    ]
    assert [e.price for e in tup.discharging_prices.entries] == [0.05, 0.02, 0.05]
    assert tup.power_range() == (-11_000.0, 11_000.0)
    # A day over: nothing left to price.
    assert _scheduled(charger, 86_400.0).charging_prices is None


def test_the_bench_charger_and_the_emulated_evse_offer_the_same_prices() -> None:
    evse = SimEvse(World(WorldConfig()), (Service.DC_BPT,))
    evse.tariff = TARIFF
    for pricing in (c.Pricing.ABSOLUTE, c.Pricing.PRICE_LEVELS):
        evse.pricing = pricing
        ours = _scheduled(_charger(pricing=pricing), 4000.0)
        emulated = evse.schedule(c.ScheduleRequest(control_mode=ControlMode.SCHEDULED), 4000.0)
        assert emulated is not None
        assert ours.charging_prices == emulated.tuples[0].charging_prices
        assert ours.discharging_prices == emulated.tuples[0].discharging_prices
        assert ours.charging_prices == offered_prices(TARIFF, 4000.0, export=False, pricing=pricing)
        # and announce them alike: on the Scheduled parameter set only
        assert _pricing_by_mode(evse) == _pricing_by_mode(_charger(pricing=pricing))


def test_price_levels_rank_the_prices_cheapest_first() -> None:
    charger = _charger(pricing=c.Pricing.PRICE_LEVELS)
    assert _pricing_by_mode(charger)[ControlMode.SCHEDULED] is c.Pricing.PRICE_LEVELS
    prices = _scheduled(charger, 0.0).charging_prices
    assert prices is not None and prices.pricing is c.Pricing.PRICE_LEVELS
    assert [e.price for e in prices.entries] == [2.0, 0.0, 1.0] and prices.levels == 3


def test_more_distinct_prices_than_levels_share_the_top_level() -> None:
    windows = tuple(PriceWindow(k * 300.0, (k + 1) * 300.0, k / 100.0, 0.0) for k in range(288))
    prices = offered_prices(
        Tariff("EUR", windows), 0.0, export=False, pricing=c.Pricing.PRICE_LEVELS
    )
    assert prices is not None and prices.levels == 255
    levels = [e.price for e in prices.entries]
    assert levels[:255] == [float(k) for k in range(255)] and set(levels[254:]) == {254.0}


def test_the_dynamic_offer_carries_no_schedule() -> None:
    offer = _charger().schedule(c.ScheduleRequest(control_mode=ControlMode.DYNAMIC), 0.0)
    assert offer is not None and not offer.tuples


@pytest.mark.parametrize("pricing", [c.Pricing.ABSOLUTE, c.Pricing.PRICE_LEVELS])
def test_a_managed_ev_plans_from_the_bench_charger_s_prices_over_exi(pricing: c.Pricing) -> None:
    """Our SECC over the bench charger against our EVCC over the emulated EV, in memory and in
    virtual time: the prices cross as EXI, and the EV idles through the dear minute of the
    served day plan and charges its need in the cheap one."""
    from rig.physics import world_config
    from rig.v2g.connection import Connection, Record
    from rig.v2g.evcc import Evcc, EvccConfig
    from rig.v2g.exi import to_json
    from rig.v2g.secc import Secc, SeccConfig
    from rig.v2g.transport.memory import memory_pair

    plan = load_plan(PLAN)
    assert plan.day is not None
    clock = VirtualClock()
    world = World(world_config(plan, load_bench(REPO / "fixtures/benches/emulated-ev.yaml")))
    from rig.emulators.ev import SimEv

    ev = SimEv(world, max_charge_w=plan.ev.max_charge_w, max_discharge_w=plan.ev.max_discharge_w)
    ev.set_departure(plan.day.departure.at_s, plan.day.departure.energy_wh)
    ev.manage_by_prices(float(world.config.evse.efficiency))
    charger = _charger(plan.day.tariff, pricing)
    sent: list[Record] = []
    ev_link, evse_link = memory_pair(clock, 0.001)
    secc = Connection(Secc(charger, SeccConfig()), evse_link, clock, recorder=sent.append,
                      to_json=to_json)  # fmt: skip
    evcc = Connection(
        Evcc(ev, EvccConfig(services=(Service.DC_BPT,), control_mode=ControlMode.SCHEDULED)),
        ev_link,
        clock,
    )
    secc.start()
    evcc.start()
    clock.run_until(15.0)
    secc.close("done")
    evcc.close("done")
    clock.run_until(16.0)

    by_name = {r.name: r for r in sent if r.data is not None}
    detail = json.dumps(by_name["ServiceDetailRes"].data)
    assert f'"Name": "Pricing", "intValue": {int(pricing)}' in detail
    res = by_name["ScheduleExchangeRes"].data["ScheduleExchangeRes"]
    schedule = res["Scheduled_SEResControlMode"]["ScheduleTuple"][0]["ChargingSchedule"]
    if pricing is c.Pricing.ABSOLUTE:
        stacks = schedule["AbsolutePriceSchedule"]["PriceRuleStacks"]["PriceRuleStack"]
        fees = [s["PriceRule"][0]["EnergyFee"] for s in stacks]
        assert [f["Value"] * 10 ** f["Exponent"] for f in fees][:2] == pytest.approx([0.45, 0.15])
    else:
        entries = schedule["PriceLevelSchedule"]["PriceLevelScheduleEntries"]
        assert [e["PriceLevel"] for e in entries["PriceLevelScheduleEntry"]][:2] == [2, 0]
    # The EV's profile from the prices it received: nothing in the dear minute, its 100 Wh need
    # at full power from the cheap minute on, nothing after. The EV counts the prices from their
    # TimeAnchor (not from when it chooses its profile, at PowerDelivery), and the SECC's
    # whole-second Durations end where the prices change, to the nearest second: the cheap
    # minute starts at 60 s of the day within half a second (it came a second early when the
    # SECC truncated the anchor and the first duration).
    profile = ev.profile
    assert len(profile) == 3, profile
    (idle, dear_p), (charge_s, charge_p), (_, after_p) = profile
    chosen_at = ev._profile_t0
    assert dear_p == 0.0 and after_p == 0.0
    assert abs(chosen_at + idle - 60.0) <= 0.5, (chosen_at, idle)
    assert charge_p == pytest.approx(11_000.0)
    need_wh = plan.day.departure.energy_wh - plan.ev.energy_wh
    assert charge_p * 0.96 * charge_s / 3600.0 == pytest.approx(need_wh, abs=4.0)


def test_real_ev20_gives_the_bench_charger_the_day_s_tariff() -> None:
    from rig.bench import DutConfig
    from rig.clock import RealClock
    from rig.dut import DutIdentity, RealEv20
    from rig.plan import SessionSpec

    plan = load_plan(PLAN)
    assert plan.day is not None
    config = DutConfig("ev", "a car", "1", False, 11_000.0, 11_000.0, address="::1", port=1)
    identity = DutIdentity("ev", "a car", "1", False)
    clock = RealClock()
    try:
        for mode in (ControlMode.SCHEDULED, ControlMode.DYNAMIC):
            dut = RealEv20(
                config,
                SessionSpec(Service.DC_BPT, mode),
                plan.ev,
                clock,
                identity,
                dc_source=_Source(),
                rated_w=11_000.0,
            )
            if mode is ControlMode.DYNAMIC:
                with pytest.raises(RuntimeError, match="Scheduled mode"):
                    dut.manage_day(plan.day)
                assert dut.charger.tariff is None
                continue
            dut.manage_day(plan.day)
            assert dut.charger.tariff is plan.day.tariff
            assert _pricing_by_mode(dut.charger)[ControlMode.SCHEDULED] is c.Pricing.ABSOLUTE
    finally:
        clock.close()
