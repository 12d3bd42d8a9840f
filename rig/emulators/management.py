"""The emulated DUT's V2H energy manager: follow a tariff, keep the reserve and the departure need.

One policy serves both emulated DUTs: the emulated EVSE's energy manager in Dynamic mode (it
learns the tariff and the grid outage forecast through its control interface, the EV's needs over
ISO 15118-20: EVTargetEnergyRequest, EVMinimumV2XEnergyRequest, DepartureTime) and the emulated
EV in Scheduled mode (it learns the prices from the SECC's price schedules and knows its own
battery). Every `DECIDE_EVERY_S` it decides one of three things:

- **charge** at its full power when the present import price is among the cheapest windows left
  before departure that together deliver the energy still needed (EVTargetEnergyRequest), when
  the time left barely suffices for that energy (a must-charge margin), or when a forecast outage
  lies ahead and the energy above the reserve would not carry the home through it;
- **carry the home** (discharge what the home draws, V2H, never exporting) when the present import
  price, less the round trip's losses, is above what refilling costs, the capacity of the cheaper
  windows before departure buys back the need, what it gives now and what the home will draw in
  the dearer windows ahead (those come first), the EV is above its reserve, and no forecast outage
  still needs that energy (the home is then carried by the battery: its energy above the reserve
  is held for it);
- otherwise **idle**.

An EV does not see the home: its manager (`blind`) assumes a home load and carries it only in the
dearest quarter of the windows ahead, where giving more than the home draws (an export) costs
least.

This is a heuristic a product might ship, not the optimum: rig.optimum computes that, and
`tariff_cost` judges how far from it the DUT's day was.

Seeded defects (MANAGEMENT_DEFECTS, listed by `rig defects`) change one rule each.

The prices travel over -20 both ways through this module too: `offered_prices` is the day's
tariff as an SECC's price schedule (the emulated EVSE's and the rig's bench charger's), and
`tariff_from_prices` the EV's reading of one received.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from rig.day import Outage, Tariff
from rig.v2g.controllers import PriceEntry, PriceSchedule, Pricing
from rig.v2g.frozen import fast_init


class Action(StrEnum):
    CHARGE = "charge"
    CARRY_HOME = "carry_home"
    IDLE = "idle"


@dataclass(frozen=True)
class ManagementDefect:
    """One seeded energy-management defect: the rule it changes and the checks it breaks."""

    name: str
    summary: str
    breaks: tuple[str, ...]


_ALL = (
    ManagementDefect(
        "ignores_tariff",
        "charges at full power from arrival until the departure need is met and never carries "
        "the home, whatever the prices",
        ("tariff_cost",),
    ),
    ManagementDefect(
        "misses_departure",
        "plans its charging for half the energy the EV asks for by its departure "
        "(EVTargetEnergyRequest at arrival read as twice too small) and stops there",
        ("departure",),
    ),
    ManagementDefect(
        "discharges_into_departure_need",
        "carries the home whenever the price is high and the EV is above its reserve, counting "
        "the energy the driver needs at departure as available and charging only after",
        ("departure",),
    ),
    ManagementDefect(
        "ignores_outage",
        "ignores the grid outage forecast: it spends the energy above the reserve before the "
        "outage, and the home goes dark when the battery reaches its reserve in the outage",
        ("outage_supply",),
    ),
)

MANAGEMENT_DEFECTS: Mapping[str, ManagementDefect] = MappingProxyType({d.name: d for d in _ALL})


@fast_init
@dataclass(frozen=True)
class Situation:
    """What the manager knows at one decision (battery-side energies in Wh, powers in W)."""

    now: float  # day-relative s
    departure_s: float  # day-relative s
    need_wh: float  # energy still to add for the departure (EVTargetEnergyRequest, >= 0)
    above_reserve_wh: float  # energy above the reserve (-EVMinimumV2XEnergyRequest)
    room_wh: float  # energy up to a full pack (EVMaximumEnergyRequest)
    charge_w: float  # AC-side charge power available (EV and EVSE limits)
    home_w: float  # what the home draws now (0 where the manager cannot see it)


@fast_init
@dataclass(frozen=True)
class Decision:
    action: Action
    #: AC power (rig sign) for CHARGE; the expected discharge for CARRY_HOME (for the record).
    power_w: float
    reason: str


class TariffPolicy:
    """The manager's rules (see the module docstring). Not thread-safe; one per DUT."""

    #: How often the manager decides (s; rig's own choice: an EMS re-plans every few seconds).
    DECIDE_EVERY_S = 10.0
    #: Must-charge margin: start when the time left is within this factor of the time needed,
    #: plus MUST_CHARGE_EXTRA_S, or MUST_CHARGE_EXTRA_SHARE of the stay (the time from the first
    #: decision to the departure) where that is less: five minutes' margin would make a stay of
    #: a few minutes all must-charge (rig's own choices).
    MUST_CHARGE_FACTOR = 1.05
    MUST_CHARGE_EXTRA_S = 300.0
    MUST_CHARGE_EXTRA_SHARE = 0.1
    #: A blind manager carries the home only where the import price is at least this quantile
    #: of the prices ahead (rig's own choice): elsewhere an assumed home load exports too much.
    BLIND_QUANTILE = 0.75
    #: Starting to carry the home needs room for this long of it (s; rig's own choice).
    HYSTERESIS_S = 600.0
    #: The span the home's power is averaged over for planning (s; rig's own choice).
    HOME_AVERAGE_S = 1800.0
    #: The home load a forecast outage is planned for (W; rig's own choice, configurable).
    OUTAGE_LOAD_W = 3_000.0

    def __init__(
        self,
        tariff: Tariff,
        outages: Sequence[Outage] = (),
        *,
        efficiency: float = 0.95,
        defects: Iterable[str] = (),
        outage_load_w: float | None = None,
        blind: bool = False,
    ) -> None:
        #: The manager does not see the home (an EV): it carries only in the dearest windows,
        #: where what it gives beyond the home's need costs least (see BLIND_QUANTILE).
        self.blind = blind
        self.tariff = tariff
        self.outages = tuple(outages)
        self.eta = efficiency
        self.defects = frozenset(d for d in defects if d in MANAGEMENT_DEFECTS)
        self.outage_load_w = self.OUTAGE_LOAD_W if outage_load_w is None else outage_load_w
        self.last: Decision | None = None
        self._next_decision = -math.inf
        self._first_need: float | None = None
        self._stay: float | None = None
        self._home_avg: float | None = None
        self._home_t: float | None = None

    def due(self, now: float) -> bool:
        return now >= self._next_decision

    # -- the windows ahead ------------------------------------------------------------------------
    def _ahead(self, now: float, until: float) -> list[tuple[float, float, float]]:
        """(start, duration s, import price) of the tariff's windows within [now, until)."""
        out = []
        for w in self.tariff.windows:
            a, b = max(w.start_s, now), min(w.end_s, until)
            if b > a:
                out.append((a, b - a, w.import_price))
        return out

    def _outage_hold_wh(self, now: float) -> float:
        """Battery energy above the reserve to keep for the forecast outages not yet over."""
        if "ignores_outage" in self.defects:
            return 0.0
        hold = 0.0
        for o in self.outages:
            if o.end_s > now:
                hold += self.outage_load_w * (o.end_s - max(o.start_s, now)) / 3600.0 / self.eta
        return hold

    def _home_average(self, s: Situation) -> float:
        """The home's power averaged over about HOME_AVERAGE_S (exponentially)."""
        if self._home_avg is None or self._home_t is None:
            self._home_avg, self._home_t = s.home_w, s.now
            return s.home_w
        weight = min(1.0, max(0.0, s.now - self._home_t) / self.HOME_AVERAGE_S)
        self._home_avg += (s.home_w - self._home_avg) * weight
        self._home_t = s.now
        return self._home_avg

    def decide(self, s: Situation) -> Decision:
        self._next_decision = s.now + self.DECIDE_EVERY_S
        self.last = self._decide(s)
        return self.last

    def _decide(self, s: Situation) -> Decision:
        eta = self.eta
        if self._stay is None:
            self._stay = max(0.0, s.departure_s - s.now)
        extra_s = min(self.MUST_CHARGE_EXTRA_S, self.MUST_CHARGE_EXTRA_SHARE * self._stay)
        charge_batt_w = max(s.charge_w * eta, 1.0)
        need = s.need_wh
        if "misses_departure" in self.defects:
            # It planned for half of what the EV asked at the first decision, and stops there.
            if self._first_need is None:
                self._first_need = s.need_wh
            need = max(0.0, s.need_wh - self._first_need / 2.0)
        if s.now >= s.departure_s:
            return Decision(Action.IDLE, 0.0, "after the departure")
        ahead = self._ahead(s.now, s.departure_s)
        price_now = self.tariff.import_at(s.now)
        if "ignores_tariff" in self.defects:
            if need > 0.0:
                return Decision(Action.CHARGE, s.charge_w, "charges until the need is met")
            return Decision(Action.IDLE, 0.0, "need met")
        hold = self._outage_hold_wh(s.now)
        in_outage = any(o.start_s <= s.now < o.end_s for o in self.outages)
        cheapest = min((p for _, _, p in ahead), default=price_now)
        if (
            "discharges_into_departure_need" in self.defects
            and price_now * eta * eta > cheapest
            and s.above_reserve_wh > 0.0
            and s.home_w > 0.0
        ):
            return Decision(Action.CARRY_HOME, -s.home_w, "price high (need not a floor)")
        time_left = s.departure_s - s.now
        time_needed = need / charge_batt_w * 3600.0
        if need > 0.0 and time_left <= time_needed * self.MUST_CHARGE_FACTOR + extra_s:
            return Decision(Action.CHARGE, s.charge_w, "must charge to meet the departure")
        # A forecast outage comes before any cheap window can matter: fill up to its hold now.
        if hold > s.above_reserve_wh and not in_outage:
            return Decision(Action.CHARGE, s.charge_w, "keeps enough for the forecast outage")
        # Charge in the cheapest windows that together deliver the need.
        want = need
        if want > 0.0 and not in_outage:
            got = 0.0
            threshold = -math.inf
            for _, dur, price in sorted(ahead, key=lambda w: (w[2], w[0])):
                threshold = price
                got += dur * charge_batt_w / 3600.0
                if got >= want * self.MUST_CHARGE_FACTOR:
                    break
            if price_now <= threshold + 1e-12:
                return Decision(Action.CHARGE, s.charge_w, f"among the cheapest ({price_now:g})")
        # Carry the home when refilling later is cheaper than importing now, keeping what the
        # refill can buy back for the dearer windows ahead first.
        typical = self._home_average(s)
        # Carrying a home that draws nothing now (PV covers it) gives nothing and costs nothing:
        # the decision rests on the home's average, so that a fridge's cycle does not flip it.
        dear_enough = True
        if self.blind and ahead:
            # The duration-weighted quantile of the prices ahead; carry above it (or at the top).
            total = sum(d for _, d, _ in ahead)
            seen, quantile = 0.0, price_now
            for _, dur, price in sorted(ahead, key=lambda w: w[2]):
                seen += dur
                quantile = price
                if seen >= self.BLIND_QUANTILE * total:
                    break
            top = max(p for _, _, p in ahead)
            dear_enough = price_now > quantile or price_now >= top
        if s.above_reserve_wh > hold and typical > 0.0 and not in_outage and dear_enough:
            carrying = self.last is not None and self.last.action is Action.CARRY_HOME
            # Hysteresis: starting to carry needs room for HYSTERESIS_S of it, going on does not.
            ahead_s = self.DECIDE_EVERY_S if carrying else self.HYSTERESIS_S
            give = typical * ahead_s / 3600.0 / eta
            refill = 0.0
            dearer = 0.0
            for start, dur, price in ahead:
                if start > s.now and price < price_now * eta * eta:
                    refill += dur * charge_batt_w / 3600.0
                if start > s.now and price > price_now:
                    dearer += typical * dur / 3600.0 / eta
            # The same margin as the must-charge rule, so that carrying never forces it.
            margin = charge_batt_w * extra_s / 3600.0
            budget = refill / self.MUST_CHARGE_FACTOR - margin - need
            if budget >= dearer + give and s.above_reserve_wh - hold > give:
                return Decision(Action.CARRY_HOME, -s.home_w, f"price high ({price_now:g})")
        return Decision(Action.IDLE, 0.0, "nothing to gain")


def management_defects(names: Iterable[str]) -> tuple[str, ...]:
    """The energy-management defects among `names`."""
    return tuple(n for n in names if n in MANAGEMENT_DEFECTS)


#: A PriceLevelSchedule counts at most this many levels: NumberOfPriceLevels and PriceLevel are
#: unsignedBytes, and a level must stay below the count (V2G_CI_CommonMessages.xsd).
MAX_PRICE_LEVELS = 255


def offered_prices(
    tariff: Tariff | None, now: float, *, export: bool, pricing: Pricing
) -> PriceSchedule | None:
    """The day's import prices (for a charging schedule) or export prices (for a discharging
    one) from `now` (day-relative s) to the day's end, as an SECC offers them in Scheduled mode:
    absolute prices per kWh in the tariff's currency, or price levels (0 the cheapest, one per
    distinct price; beyond MAX_PRICE_LEVELS distinct prices the dearest share the top level).
    None: no tariff, no pricing, or nothing of the day is left."""
    if tariff is None or pricing is Pricing.NO_PRICING:
        return None
    entries = [
        PriceEntry(w.end_s - max(w.start_s, now), w.export_price if export else w.import_price)
        for w in tariff.windows
        if w.end_s > now
    ]
    if not entries:
        return None
    if pricing is Pricing.PRICE_LEVELS:
        distinct = sorted({e.price for e in entries})
        top = min(len(distinct), MAX_PRICE_LEVELS) - 1
        rank = {price: min(k, top) for k, price in enumerate(distinct)}
        return PriceSchedule(
            Pricing.PRICE_LEVELS,
            tuple(PriceEntry(e.duration, float(rank[e.price])) for e in entries),
            levels=top + 1,
            schedule_id=2,
        )
    return PriceSchedule(Pricing.ABSOLUTE, tuple(entries), currency=tariff.currency, schedule_id=1)


def pricing_of(tariff: Tariff) -> Pricing:
    """The -20 price schedule a charger offers the tariff as (the plan's `tariff: offer:`)."""
    return Pricing.PRICE_LEVELS if tariff.offer == "levels" else Pricing.ABSOLUTE


def tariff_from_prices(
    entries: Sequence[tuple[float, float]], start: float, currency: str = "EUR"
) -> Tariff:
    """A day-relative Tariff from received price entries ((duration s, price)) from `start`;
    the last price holds to the end of the day, and before `start` the first one."""
    from rig.day import DAY_S, PriceWindow

    windows: list[PriceWindow] = []
    t = start
    for duration, price in entries:
        if duration <= 0:
            continue
        windows.append(PriceWindow(t, t + duration, price, 0.0))
        t += duration
    if not windows:
        raise ValueError("no price entry with a positive duration")
    first, last = windows[0], windows[-1]
    if first.start_s > 0:
        windows.insert(0, PriceWindow(0.0, first.start_s, first.import_price, 0.0))
    if last.end_s < DAY_S:
        windows.append(PriceWindow(last.end_s, DAY_S, last.import_price, 0.0))
    return Tariff(currency, tuple(windows))


@dataclass(frozen=True)
class Battery:
    """What the EV knows of its own pack for planning (Wh, W)."""

    energy_wh: float
    capacity_wh: float
    reserve_wh: float
    need_wh: float  # energy the pack must hold at departure
    charge_w: float  # AC-side charge power it may draw
    discharge_w: float  # AC-side discharge power it may give (magnitude)


def plan_profile(
    policy: TariffPolicy,
    now: float,
    departure_s: float,
    pack: Battery,
    home_w: float,
    step_s: float = 300.0,
) -> tuple[tuple[float, float], ...]:
    """The EV's power profile ((duration s, AC power W, rig sign), consecutive equal powers
    merged) from `now` to the departure: the policy run forward on the EV's own pack model,
    carrying an assumed home load `home_w` when it would carry the home (an EV does not see
    the home: its EVPowerProfile is fixed when it chooses it).

    The policy decides at the start of each step, on the price then: a step ends at the next
    price change (a window shorter than `step_s` is seen, and no dear minute is bought at a
    cheap step's price), and charging for the need ends, in whole seconds, where it is met."""
    eta = policy.eta
    energy = pack.energy_wh
    out: list[list[float]] = []
    changes = sorted({w.start_s for w in policy.tariff.windows})
    t = now
    while t < departure_s - 1e-6:
        k = bisect.bisect_right(changes, t + 1e-6)
        change = changes[k] if k < len(changes) else math.inf
        dt = min(step_s, departure_s - t, change - t)
        s = Situation(
            now=t,
            departure_s=departure_s,
            need_wh=max(0.0, pack.need_wh - energy),
            above_reserve_wh=energy - pack.reserve_wh,
            room_wh=pack.capacity_wh - energy,
            charge_w=pack.charge_w,
            home_w=home_w,
        )
        d = policy._decide(s)
        if d.action is Action.CHARGE:
            p = min(pack.charge_w, (pack.capacity_wh - energy) / eta / dt * 3600.0)
            if s.need_wh > 0.0 and p > 0.0:
                dt = min(dt, max(1.0, math.ceil(s.need_wh / (p * eta) * 3600.0)))
        elif d.action is Action.CARRY_HOME:
            p = -min(home_w, pack.discharge_w, max(0.0, s.above_reserve_wh) * eta / dt * 3600.0)
        else:
            p = 0.0
        energy += (p * eta if p >= 0 else p / eta) * dt / 3600.0
        if out and abs(out[-1][1] - p) < 1.0:
            out[-1][0] += dt
        else:
            out.append([dt, p])
        t += dt
    return tuple((float(d), float(p)) for d, p in out)
