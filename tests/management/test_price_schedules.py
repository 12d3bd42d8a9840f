"""Price schedules on the wire (rig.v2g.prices): what the rig's SECC offers in a
ScheduleExchangeRes survives EXI both ways, absolute prices and levels alike; a schedule the EV
cannot use is refused with a reason."""

from __future__ import annotations

import pytest

from rig.day import PriceWindow, Tariff
from rig.emulators.evse import SimEvse
from rig.sim import World, WorldConfig
from rig.v2g import controllers as c
from rig.v2g.exi import common, decode, encode
from rig.v2g.messages import ResponseCode, header, to_rational
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


def _over_the_wire(schedule: c.PriceSchedule) -> c.PriceSchedule | None:
    absolute, levels = price_schedule(schedule, 1_767_225_600)
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
    return received_prices(tup.ChargingSchedule)


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
