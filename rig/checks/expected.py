"""What the DUT should do: the commanded power as the EV's live limits allow it.

A bidirectional EVSE that honours the EV is not blamed for refusing a command the EV's limits
forbid. The limits are what the EV announced on the wire (its ChargeParameterDiscoveryReq and
every ChargeLoopReq, rig.checks.v2gtrace): EVMaximumChargePower (zero when the pack is full),
EVMaximumDischargePower, and EVMinimumV2XEnergyRequest (zero or positive: the EV is at or below
its reserve and gives nothing back; OCPP 2.1's reading, FACTS.md). Never the DUT's claims.

For DC services the EV's limits are DC-side powers and the AC power that honours them depends on
the EVSE's conversion efficiency, which the rig does not know: the expectation is then an interval
(efficiency between `min_efficiency` and 1; the rig's own allowance). For AC services the limits
are AC powers and the interval closes to a point.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from rig.checks.v2gtrace import EvAnnouncement, PerTrace, ev_announcements, messages
from rig.trace import Trace


@dataclass(frozen=True)
class Expected:
    """The AC power (rig sign, W) the DUT should settle at: anywhere in [low, high]."""

    low: float
    high: float
    reason: str = ""

    def nearest(self, y: float) -> float:
        return min(max(y, self.low), self.high)

    def distance(self, y: float) -> float:
        """How far y lies outside the interval (0 inside)."""
        return abs(y - self.nearest(y))

    def describe(self) -> str:
        if abs(self.high - self.low) < 0.5:
            span = f"{self.low / 1e3:+.2f} kW"
        else:
            span = f"{self.low / 1e3:+.2f}…{self.high / 1e3:+.2f} kW"
        return span + (f" ({self.reason})" if self.reason else "")


@dataclass(frozen=True)
class LiveLimits:
    """The EV's announcements of a run, in time order, and whether they are AC-side."""

    announcements: tuple[EvAnnouncement, ...]
    ac: bool
    times: tuple[float, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", tuple(a.t for a in self.announcements))

    @classmethod
    def of(cls, trace: Trace) -> LiveLimits:
        """The run's limits (several checks ask for them: read once per trace, like messages())."""
        found = _LIMITS.get(trace)
        if found is not None:
            return found
        msgs = messages(trace)
        return _LIMITS.put(
            trace,
            cls(tuple(ev_announcements(msgs)), any(m.name.startswith("AC_") for m in msgs)),
        )

    def at(self, t: float) -> EvAnnouncement | None:
        """The announcement in force at time t (the latest at or before it)."""
        k = bisect.bisect_right(self.times, t) - 1
        return self.announcements[k] if k >= 0 else None

    def expected(
        self, command_w: float, t: float, rated_w: float, min_efficiency: float
    ) -> Expected:
        """What the DUT should settle at for `command_w` (AC, rig sign) under the limits in
        force at t, within its own rating."""
        command = min(max(command_w, -rated_w), rated_w)
        a = self.at(t)
        if a is None:
            return Expected(command, command, "no EV limit announced")
        eff_low = 1.0 if self.ac else min_efficiency
        if command < 0.0:
            if a.minimum_v2x_energy is not None and a.minimum_v2x_energy >= 0.0:
                return Expected(0.0, 0.0, "the EV's V2X window is used up: it gives nothing back")
            if a.max_discharge_power is None:
                return Expected(command, command, "")
            limit = -a.max_discharge_power  # magnitude (announcements are <= 0)
            deepest, shallowest = -limit, -limit * eff_low
            if command >= shallowest:
                return Expected(command, command, "")
            return Expected(
                max(command, deepest),
                shallowest,
                f"the EV allows {limit / 1e3:.2f} kW of discharge",
            )
        if command > 0.0:
            if a.max_charge_power is None:
                return Expected(command, command, "")
            limit = max(a.max_charge_power, 0.0)
            if limit <= 0.0:
                return Expected(0.0, 0.0, "the EV takes no charge (a full pack)")
            lowest, highest = limit, limit / eff_low
            if command <= lowest:
                return Expected(command, command, "")
            return Expected(
                lowest, min(command, highest), f"the EV takes {limit / 1e3:.2f} kW of charge"
            )
        return Expected(0.0, 0.0, "")


#: LiveLimits.of per trace (several checks ask for them).
_LIMITS: PerTrace[LiveLimits] = PerTrace()
