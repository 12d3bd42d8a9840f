"""Price schedules on the wire (rig.v2g.prices): what the rig's SECC offers in a
ScheduleExchangeRes survives EXI both ways, absolute prices and levels alike; a schedule the EV
cannot use is refused with a reason."""

from __future__ import annotations

import dataclasses

import pytest

from rig.day import PriceWindow, Tariff
from rig.emulators.ev import SimEv
from rig.emulators.evse import SimEvse
from rig.sim import World, WorldConfig
from rig.v2g import controllers as c
from rig.v2g.exi import common, decode, encode
from rig.v2g.messages import ResponseCode, header, to_rational, whole_second_durations
from rig.v2g.prices import PriceScheduleError, price_schedule, received_prices
from rig.v2g.vocabulary import ControlMode, Service

TARIFF = Tariff(
    "EUR",
    (
        PriceWindow(0.0, 3600.0, 0.45, 0.05),
        PriceWindow(3600.0, 7200.0, 0.15, 0.02),
        PriceWindow(7200.0, 86_400.0, 0.30, 0.05),
    ),
)


def _offer(pricing: c.Pricing, now: float = 1800.0) -> c.ScheduleTuple:
    evse = SimEvse(World(WorldConfig()), (Service.DC_BPT,))
    evse.tariff = TARIFF
    evse.pricing = pricing
    offer = evse.schedule(c.ScheduleRequest(control_mode=ControlMode.SCHEDULED), now)
    assert offer is not None and len(offer.tuples) == 1
    return offer.tuples[0]


ANCHOR = 1_767_225_600


def _over_the_wire(schedule: c.PriceSchedule, origin: float = 0.0) -> c.PriceSchedule | None:
    absolute, levels = price_schedule(schedule, ANCHOR)
    power = common.PowerScheduleType(
        TimeAnchor=1_767_225_600,
        PowerScheduleEntries=common.PowerScheduleEntryListType(
            PowerScheduleEntry=[
                common.PowerScheduleEntryType(Duration=86_400, Power=to_rational(11_000))
            ]
        ),
    )
    res = common.ScheduleExchangeRes(
        Header=header(bytes(8), 1_767_225_600),
        ResponseCode=ResponseCode.OK,
        EVSEProcessing=common.processingType.Finished,
        Scheduled_SEResControlMode=common.Scheduled_SEResControlModeType(
            ScheduleTuple=[
                common.ScheduleTupleType(
                    ScheduleTupleID=1,
                    ChargingSchedule=common.ChargingScheduleType(
                        PowerSchedule=power,
                        AbsolutePriceSchedule=absolute,
                        PriceLevelSchedule=levels,
                    ),
                )
            ]
        ),
    )
    back = decode("common", encode(res))
    assert isinstance(back, common.ScheduleExchangeRes)
    tup = back.Scheduled_SEResControlMode.ScheduleTuple[0]
    return received_prices(tup.ChargingSchedule, origin)


def test_absolute_prices_from_now_to_the_day_s_end_survive_exi() -> None:
    offered = _offer(c.Pricing.ABSOLUTE)
    assert offered.charging_prices is not None and offered.discharging_prices is not None
    assert [(e.duration, e.price) for e in offered.charging_prices.entries] == [
        (1800.0, 0.45),
        (3600.0, 0.15),
        (79_200.0, 0.30),
    ]
    assert [e.price for e in offered.discharging_prices.entries] == [0.05, 0.02, 0.05]
    back = _over_the_wire(offered.charging_prices)
    assert back is not None and back.pricing is c.Pricing.ABSOLUTE and back.currency == "EUR"
    assert back.entries == offered.charging_prices.entries


def test_price_levels_rank_the_prices_and_survive_exi() -> None:
    offered = _offer(c.Pricing.PRICE_LEVELS)
    assert offered.charging_prices is not None
    assert [e.price for e in offered.charging_prices.entries] == [2.0, 0.0, 1.0]
    back = _over_the_wire(offered.charging_prices)
    assert back is not None and back.pricing is c.Pricing.PRICE_LEVELS and back.levels == 3
    assert [e.price for e in back.entries] == [2.0, 0.0, 1.0]


def test_a_level_beyond_the_count_or_an_empty_schedule_is_refused() -> None:
    levels = common.PriceLevelScheduleType(
        TimeAnchor=0,
        PriceScheduleID=1,
        NumberOfPriceLevels=2,
        PriceLevelScheduleEntries=common.PriceLevelScheduleEntryListType(
            PriceLevelScheduleEntry=[common.PriceLevelScheduleEntryType(Duration=60, PriceLevel=5)]
        ),
    )
    schedule = common.ChargingScheduleType(
        PowerSchedule=common.PowerScheduleType(
            TimeAnchor=0,
            PowerScheduleEntries=common.PowerScheduleEntryListType(PowerScheduleEntry=[]),
        ),
        PriceLevelSchedule=levels,
    )
    with pytest.raises(PriceScheduleError, match="beyond"):
        received_prices(schedule)
    with pytest.raises(ValueError):
        c.PriceSchedule(c.Pricing.ABSOLUTE, ())


@pytest.mark.parametrize("pricing", [c.Pricing.ABSOLUTE, c.Pricing.PRICE_LEVELS])
def test_a_received_schedule_begins_at_its_time_anchor_on_the_receiver_s_clock(
    pricing: c.Pricing,
) -> None:
    offered = _offer(pricing)
    assert offered.charging_prices is not None
    origin = ANCHOR - 1_000.25  # the receiving engine's clock read 1000.25 s at the anchor
    back = _over_the_wire(offered.charging_prices, origin)
    assert back is not None and back.start == pytest.approx(1_000.25)


def _managed_ev(now: float) -> SimEv:
    world = World(WorldConfig())
    ev = SimEv(world, max_charge_w=11_000.0, max_discharge_w=11_000.0)
    battery = world.battery
    # Half a day away, 5 kWh above what the pack holds: a need the cheap window can carry.
    ev.set_departure(now + 6 * 3600.0, battery.energy_wh + 5_000.0)
    ev.manage_by_prices(0.95)
    return ev


def test_the_managed_ev_plans_from_the_prices_anchor_not_from_when_it_plans() -> None:
    """The SECC anchors its prices when it answers ScheduleExchangeReq; the EV plans at
    PowerDelivery, seconds later. The cheap window starts 1,800 s after the anchor: the EV's
    profile changes there, 1,800 s less the delay from its own start."""
    prices = c.PriceSchedule(
        c.Pricing.ABSOLUTE,
        (c.PriceEntry(1_800.0, 0.45), c.PriceEntry(7_200.0, 0.10), c.PriceEntry(77_400.0, 0.45)),
        start=100.0,
    )
    tup = c.ScheduleTuple(
        1,
        (c.ScheduleEntry(86_400.0, 11_000.0),),
        (c.ScheduleEntry(86_400.0, -11_000.0),),
        charging_prices=prices,
    )
    offer = c.ScheduleOffer(tuples=(tup,))
    for delay in (0.0, 2.4, 30.0):
        now = 100.0 + delay
        profile = _managed_ev(now).choose_power_profile(offer, ControlMode.SCHEDULED, now)
        starts = [sum(e.duration for e in profile.entries[:k]) for k in range(len(profile.entries))]
        charging = [t for t, e in zip(starts, profile.entries, strict=True) if e.power > 0]
        assert charging and charging[0] >= 1_800.0 - delay - 1e-6, (delay, profile.entries)
        assert 1_800.0 - delay in [pytest.approx(t) for t in starts], (delay, profile.entries)
    # Without an anchor the EV can only count from when it plans.
    unanchored = dataclasses.replace(prices, start=None)
    offer = c.ScheduleOffer(tuples=(dataclasses.replace(tup, charging_prices=unanchored),))
    profile = _managed_ev(130.0).choose_power_profile(offer, ControlMode.SCHEDULED, 130.0)
    starts = [sum(e.duration for e in profile.entries[:k]) for k in range(len(profile.entries))]
    assert 1_800.0 in [pytest.approx(t) for t in starts], profile.entries


def test_whole_second_durations_end_each_entry_at_its_true_end_rounded() -> None:
    # Entries of 1,799.7 s, 3,600 s and 0.2 s that begin 0.6 s after a whole-second anchor: their
    # true ends are 1,800.3, 5,400.3 and 5,400.5 s after the anchor.
    assert whole_second_durations([1_799.7, 3_600.0, 0.2], 100.6, 100) == [1_800, 3_600, 1]
    # A run of fractional durations does not drift: 100 entries of 10.4 s end at 1,040 s.
    durations = whole_second_durations([10.4] * 100, 0.0, 0)
    assert sum(durations) == 1_040 and set(durations) == {10, 11}
    # Nothing is negative or beyond the schema's uint32.
    assert whole_second_durations([0.0, 0.3, 1e12], 0.4, 0) == [0, 1, 0xFFFFFFFF]


@pytest.mark.parametrize("pricing", [c.Pricing.ABSOLUTE, c.Pricing.PRICE_LEVELS])
def test_the_wire_s_price_changes_are_within_half_a_second_of_the_tariff_s(
    pricing: c.Pricing,
) -> None:
    """Offered at 1,800.7 s of the day with the header's TimeStamp truncated to ANCHOR: the
    received schedule's price changes, counted from its anchor, fall within half a second of
    the tariff's windows (3,600 s and 7,200 s of the day)."""
    offered = _offer(pricing, now=1_800.7)
    assert offered.charging_prices is not None
    origin = ANCHOR - 1_800.0  # the day's clock at the anchor: 1,800 s (1,800.7 truncated)
    absolute, levels = price_schedule(offered.charging_prices, ANCHOR, begins=ANCHOR + 0.7)
    schedule = absolute if absolute is not None else levels
    entries = (
        [e.Duration for e in schedule.PriceRuleStacks.PriceRuleStack]
        if absolute is not None
        else [e.Duration for e in schedule.PriceLevelScheduleEntries.PriceLevelScheduleEntry]
    )
    changes = [ANCHOR - origin + sum(entries[: k + 1]) for k in range(len(entries) - 1)]
    assert changes == [3_600.0, 7_200.0]
    back = _over_the_wire(offered.charging_prices, origin)
    assert back is not None and back.start == 1_800.0
