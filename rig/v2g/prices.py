"""Price information of -20 schedules: AbsolutePriceSchedule and PriceLevelSchedule, both ways.

In Scheduled mode the SECC's ScheduleExchangeRes carries, in each ChargingSchedule (and in a
DischargingSchedule, which is of the same type), a price schedule: either absolute prices
(AbsolutePriceSchedule: PriceRuleStacks of Duration and PriceRules, each an EnergyFee per kWh from
a PowerRangeStart) or price levels (PriceLevelSchedule: Duration and PriceLevel 0..255 per entry,
NumberOfPriceLevels). We send one PriceRule per stack (PowerRangeStart 0: the price holds at any
power) and read the first rule of each stack (a multi-rule stack prices by power range; the EV's
policy uses the lowest range's fee).
"""

from __future__ import annotations

from typing import Any

from rig.v2g.controllers import PriceEntry, PriceSchedule, Pricing
from rig.v2g.exi import common
from rig.v2g.messages import from_rational, to_rational, whole_second_durations

#: The schema's bounds: 1024 stacks or level entries, 8 rules per stack, 255 levels, 3-letter
#: currency and language codes (V2G_CI_CommonMessages.xsd).
MAX_ENTRIES = 1024
MAX_LEVELS = 256
#: PriceAlgorithm identifier for an energy price per kWh (?: not confirmed against the standard's
#: text; the schema says only "identifierType"). Configurable through the module constant.
PRICE_ALGORITHM = "urn:iso:std:iso:15118:-20:PriceAlgorithm:1-Power"
LANGUAGE = "eng"


class PriceScheduleError(ValueError):
    """A received price schedule the EV cannot use (empty, too long, a level beyond the count)."""


def price_schedule(
    prices: PriceSchedule, anchor: int, begins: float | None = None
) -> tuple[Any, Any]:
    """(AbsolutePriceSchedule, PriceLevelSchedule) for the wire: one of them is None. The entries
    begin at `begins` (the anchor's clock; default the anchor itself); their whole-second
    Durations are counted from the anchor so that each price change is within half a second of
    when it happens (rig.v2g.messages.whole_second_durations)."""
    entries = prices.entries[:MAX_ENTRIES]
    durations = whole_second_durations(
        [e.duration for e in entries], float(anchor) if begins is None else begins, anchor
    )
    if prices.pricing is Pricing.ABSOLUTE:
        stacks = [
            common.PriceRuleStackType(
                Duration=duration,
                PriceRule=[
                    common.PriceRuleType(
                        EnergyFee=to_rational(e.price), PowerRangeStart=to_rational(0)
                    )
                ],
            )
            for e, duration in zip(entries, durations, strict=True)
        ]
        return (
            common.AbsolutePriceScheduleType(
                TimeAnchor=anchor,
                PriceScheduleID=max(1, prices.schedule_id),
                Currency=prices.currency[:3],
                Language=LANGUAGE,
                PriceAlgorithm=PRICE_ALGORITHM,
                PriceRuleStacks=common.PriceRuleStackListType(PriceRuleStack=stacks),
            ),
            None,
        )
    levels = [
        common.PriceLevelScheduleEntryType(
            Duration=duration, PriceLevel=int(min(max(e.price, 0), 255))
        )
        for e, duration in zip(entries, durations, strict=True)
    ]
    return (
        None,
        common.PriceLevelScheduleType(
            TimeAnchor=anchor,
            PriceScheduleID=max(1, prices.schedule_id),
            NumberOfPriceLevels=min(max(prices.levels, 1), 255),
            PriceLevelScheduleEntries=common.PriceLevelScheduleEntryListType(
                PriceLevelScheduleEntry=levels
            ),
        ),
    )


def received_prices(schedule: Any, origin: float = 0.0) -> PriceSchedule | None:
    """The price information of a received ChargingScheduleType (None: it has none). A schedule
    the EV cannot use raises PriceScheduleError (the caller records it and goes on without).
    `origin` is the receiving engine's timestamp origin: the schedule's `start` is its TimeAnchor
    less it (the engine's clock)."""
    absolute = getattr(schedule, "AbsolutePriceSchedule", None)
    levels = getattr(schedule, "PriceLevelSchedule", None)
    if absolute is not None:
        stacks = absolute.PriceRuleStacks.PriceRuleStack
        if not stacks or len(stacks) > MAX_ENTRIES:
            raise PriceScheduleError(f"{len(stacks)} PriceRuleStacks (1..{MAX_ENTRIES})")
        out = []
        for stack in stacks:
            if not stack.PriceRule:
                raise PriceScheduleError("a PriceRuleStack without a PriceRule")
            lowest = min(stack.PriceRule, key=lambda r: from_rational(r.PowerRangeStart))
            out.append(PriceEntry(float(stack.Duration), from_rational(lowest.EnergyFee)))
        return PriceSchedule(
            Pricing.ABSOLUTE,
            tuple(out),
            currency=str(absolute.Currency),
            schedule_id=int(absolute.PriceScheduleID),
            start=float(absolute.TimeAnchor) - origin,
        )
    if levels is not None:
        entries = levels.PriceLevelScheduleEntries.PriceLevelScheduleEntry
        count = int(levels.NumberOfPriceLevels)
        if not entries or len(entries) > MAX_ENTRIES:
            raise PriceScheduleError(f"{len(entries)} PriceLevelScheduleEntries (1..{MAX_ENTRIES})")
        if any(e.PriceLevel >= max(count, 1) for e in entries):
            raise PriceScheduleError(f"a PriceLevel beyond NumberOfPriceLevels {count}")
        return PriceSchedule(
            Pricing.PRICE_LEVELS,
            tuple(PriceEntry(float(e.Duration), float(e.PriceLevel)) for e in entries),
            levels=count,
            schedule_id=int(levels.PriceScheduleID),
            start=float(levels.TimeAnchor) - origin,
        )
    return None
