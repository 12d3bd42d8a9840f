"""A plan's day: tariff, departure, home load, PV and grid outages, validated with file:line.

A day plan (issue 13) gives the device under test what a V2H energy manager lives on and the rig
what it judges it by:

```yaml
day:
  start: "17:00"              # time of day at the plan's t = 0 (the EV arrives)
  length: 14 h                # at most 24 h; the departure lies within it
  resolution: 1 min           # the home load's step and the optimum's time step
  tariff:                     # import and export prices per kWh, by time of day
    currency: EUR
    offer: absolute           # to an EV (DUT = EV, Scheduled mode): AbsolutePriceSchedule,
                              # or `levels`: PriceLevelSchedule (the prices ranked, 0 cheapest)
    windows:                  # cover the whole day, no overlap; or `csv: tariff.csv`
      - {from: "00:00", to: "07:00", import: 0.18, export: 0.05}
      - {from: "07:00", to: "17:00", import: 0.30, export: 0.05}
      - {from: "17:00", to: "21:00", import: 0.45, export: 0.05}
      - {from: "21:00", to: "24:00", import: 0.30, export: 0.05}
  departure: {at: "07:00", soc: 80 %}   # or energy: 48 kWh (stored in the battery then)
  home_load: {generate: {seed: 3, heat_pump: true}}   # or {csv: home.csv} or {constant: 1 kW}
  pv: {peak: 4 kW, sunrise: "06:30", sunset: "20:00"} # optional; or {csv: pv.csv}
  outages: [{from: "19:30", to: "20:30"}]            # optional grid outages
```

Times of day are "HH:MM" text; an unquoted 17:00 reaches us as YAML 1.1's sexagesimal 1020, the
minutes past midnight, and is read as such. A tariff CSV has the columns `from,to,import,export`
(a header row, times of day); a profile CSV (home load, PV) the columns `time,power_w` with the
time of day of each row, ascending from 00:00, each value holding until the next row (one per
minute or coarser). Files are relative to the plan and bounded (MAX_CSV_BYTES, MAX_CSV_ROWS,
finite values within range).

Everything is kept in day-relative seconds (0 = the plan's start) once parsed: the runner, the
DUT's energy manager, the optimum and the checks share one DaySpec.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rig import units
from rig.yamlsrc import Path_, Source

DAY_S = 86_400.0
#: Bounds on a day's files and values (rig's own choice: a minute profile is 1,440 rows).
MAX_CSV_BYTES = 1 << 20
MAX_CSV_ROWS = 10_000
#: How a tariff may be offered to an EV (Tariff.offer).
TARIFF_OFFERS = ("absolute", "levels")
MAX_PRICE = 1_000.0  # per kWh, any currency: beyond it a typo (a price in cents per Wh)
MAX_PROFILE_W = 100_000.0
MIN_RESOLUTION_S = 1.0
MAX_OUTAGES = 24
MAX_WINDOWS = 1_440


@dataclass(frozen=True)
class PriceWindow:
    """One tariff window, day-relative seconds [start, end), prices per kWh."""

    start_s: float
    end_s: float
    import_price: float
    export_price: float


@dataclass(frozen=True)
class Tariff:
    """Import and export prices over the day, windows in day-relative seconds (ascending)."""

    currency: str
    windows: tuple[PriceWindow, ...]
    #: How a charger offers the tariff to an EV in a -20 Scheduled session (the rig's SECC when
    #: the EV is the DUT): "absolute" (AbsolutePriceSchedule, prices per kWh) or "levels"
    #: (PriceLevelSchedule, the prices ranked).
    offer: str = "absolute"

    def window_at(self, t: float) -> PriceWindow:
        for w in self.windows:
            if w.start_s <= t < w.end_s:
                return w
        return self.windows[-1] if t >= self.windows[-1].end_s else self.windows[0]

    def import_at(self, t: float) -> float:
        return self.window_at(t).import_price

    def export_at(self, t: float) -> float:
        return self.window_at(t).export_price

    def sampled(self, step_s: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(import, export) per step of step_s, each at its step's start (n steps)."""
        return self.prices_at(np.arange(n) * step_s)

    def prices_at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(import, export) prices at day-relative times t."""
        starts = np.array([w.start_s for w in self.windows])
        k = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(self.windows) - 1)
        imp = np.array([w.import_price for w in self.windows])[k]
        exp = np.array([w.export_price for w in self.windows])[k]
        return imp, exp


@dataclass(frozen=True)
class Profile:
    """A power profile over the day (W, >= 0), one value per `step_s` from the plan's t = 0."""

    step_s: float
    values_w: tuple[float, ...]

    def at(self, t: float) -> float:
        k = min(max(int(t // self.step_s), 0), len(self.values_w) - 1)
        return self.values_w[k]

    def sampled(self, step_s: float, n: int) -> np.ndarray:
        """Mean power over each of n steps of step_s (exact for steps aligned to the profile)."""
        values = np.asarray(self.values_w, dtype=float)
        fine = min(step_s, self.step_s)
        sub = max(1, round(step_s / fine))
        t = (np.arange(n * sub) + 0.5) * (step_s / sub)
        k = np.clip((t // self.step_s).astype(int), 0, values.size - 1)
        out: np.ndarray = values[k].reshape(n, sub).mean(axis=1)
        return out


@dataclass(frozen=True)
class Departure:
    """When the driver leaves (day-relative s) and the energy the battery must hold then (Wh)."""

    at_s: float
    energy_wh: float


@dataclass(frozen=True)
class Outage:
    start_s: float
    end_s: float


@dataclass(frozen=True)
class DaySpec:
    """A plan's day, in day-relative seconds (0 = the plan's start)."""

    start_tod_s: float
    length_s: float
    resolution_s: float
    tariff: Tariff
    departure: Departure
    home_w: Profile
    pv_w: Profile | None
    outages: tuple[Outage, ...]
    #: What the generator was asked for (the report and record say where the load came from).
    home_source: str = ""
    line: int = 0

    @property
    def steps(self) -> int:
        return math.ceil(self.length_s / self.resolution_s - 1e-9)

    def net_home_w(self, t: float) -> float:
        """What the home draws from the bus at t: its load less the PV, never below zero (the
        emulated AC load cannot feed in: a PV surplus is not modelled, by the DUT's optimum
        neither)."""
        pv = self.pv_w.at(t) if self.pv_w is not None else 0.0
        return max(0.0, self.home_w.at(t) - pv)

    def net_home_profile(self) -> np.ndarray:
        n = self.steps
        home = self.home_w.sampled(self.resolution_s, n)
        if self.pv_w is not None:
            home = np.maximum(0.0, home - self.pv_w.sampled(self.resolution_s, n))
        return home

    def grid_on(self, t: float) -> bool:
        return not any(o.start_s <= t < o.end_s for o in self.outages)

    def grid_mask(self) -> np.ndarray:
        """True per step where the grid is there for the whole step."""
        n = self.steps
        t0 = np.arange(n) * self.resolution_s
        t1 = t0 + self.resolution_s
        on = np.ones(n, dtype=bool)
        for o in self.outages:
            on &= ~((t0 < o.end_s) & (t1 > o.start_s))
        return on

    def clock_of(self, t: float) -> str:
        """The time of day at day-relative t, as HH:MM."""
        m = round((self.start_tod_s + t) % DAY_S / 60.0)
        return f"{m // 60 % 24:02d}:{m % 60:02d}"


# ----------------------------------------------------------------------------------------- parsing
def _tod(src: Source, path: Path_, value: Any) -> float | None:
    """A time of day in seconds after midnight: "HH:MM" (or "24:00"), or YAML's minutes."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= 1440:
            return value * 60.0
        src.error(path, f"{value} is not a time of day; write it quoted, e.g. '17:00'")
        return None
    if isinstance(value, str):
        parts = value.strip().split(":")
        if len(parts) == 2 and all(p.isdigit() and 1 <= len(p) <= 2 for p in parts):
            h, m = int(parts[0]), int(parts[1])
            if (h < 24 and m < 60) or (h == 24 and m == 0):
                return h * 3600.0 + m * 60.0
    src.error(path, f"{value!r} is not a time of day like '07:30'")
    return None


def _number(src: Source, path: Path_, value: Any, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        src.error(path, f"expected a number, got {value!r}")
        return None
    v = float(value)
    if not math.isfinite(v) or not low <= v <= high:
        src.error(path, f"{value!r} is outside {low:g}..{high:g}")
        return None
    return v


def _quantity(src: Source, path: Path_, value: Any, dim: str) -> float | None:
    try:
        v = units.parse(value, dim)
    except units.UnitError as exc:
        src.error(path, str(exc))
        return None
    if not math.isfinite(v):
        src.error(path, "must be finite")
        return None
    return v


def _mapping(src: Source, path: Path_, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        src.error(path, f"expected a mapping with {', '.join(allowed)}")
        return {}
    for key in value:
        if key not in allowed:
            src.error((*path, key), f"unknown field; expected one of {', '.join(allowed)}")
    return {k: v for k, v in value.items() if k in allowed}


def _read_csv(src: Source, path: Path_, name: Any, base: Path) -> list[list[str]] | None:
    """The rows of a CSV file next to the plan (header dropped), bounded in size and rows."""
    if not isinstance(name, str) or not name.strip():
        src.error(path, "expected a file name relative to the plan")
        return None
    file = (base / name).resolve()
    try:
        size = file.stat().st_size
        if size > MAX_CSV_BYTES:
            src.error(path, f"{name}: {size} bytes, at most {MAX_CSV_BYTES}")
            return None
        with file.open("rb") as fh:
            raw = fh.read(MAX_CSV_BYTES + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        src.error(path, f"{name}: cannot read: {exc}")
        return None
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if len(rows) > MAX_CSV_ROWS + 1:
        src.error(path, f"{name}: {len(rows)} rows, at most {MAX_CSV_ROWS}")
        return None
    if rows and not _is_number(rows[0][-1]):
        rows = rows[1:]  # a header row
    if not rows:
        src.error(path, f"{name}: no data rows")
        return None
    return [[c.strip() for c in r] for r in rows]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _windows_from_rows(
    src: Source, path: Path_, rows: Sequence[Mapping[str, Any]], start_tod: float, where: str
) -> tuple[PriceWindow, ...] | None:
    """Tariff windows by time of day -> day-relative windows covering [0, 24 h) once."""
    if not rows or len(rows) > MAX_WINDOWS:
        src.error(path, f"{where}: give 1 to {MAX_WINDOWS} windows")
        return None
    spans: list[tuple[float, float, float, float]] = []
    ok = True
    for i, row in enumerate(rows):
        p: Path_ = (*path, i)
        a = _tod(src, (*p, "from"), row.get("from"))
        b = _tod(src, (*p, "to"), row.get("to"))
        imp = _number(src, (*p, "import"), row.get("import"), -MAX_PRICE, MAX_PRICE)
        exp = _number(src, (*p, "export"), row.get("export", 0.0), -MAX_PRICE, MAX_PRICE)
        if a is None or b is None or imp is None or exp is None:
            ok = False
            continue
        # from == to (or 00:00 to 24:00) is the whole day
        length = (b - a) % DAY_S or DAY_S
        spans.append(((a - start_tod) % DAY_S, length, imp, exp))
    if not ok:
        return None
    out: list[PriceWindow] = []
    for rel, length, imp, exp in spans:  # a window across the day's edge is cut in two
        end = rel + length
        if end <= DAY_S:
            out.append(PriceWindow(rel, end, imp, exp))
        else:
            out.append(PriceWindow(rel, DAY_S, imp, exp))
            out.append(PriceWindow(0.0, end - DAY_S, imp, exp))
    out.sort(key=lambda w: w.start_s)
    t = 0.0
    for w in out:
        if abs(w.start_s - t) > 1e-6:
            gap = "overlap" if w.start_s < t else "gap"
            src.error(path, f"{where}: the windows leave a {gap} at {_hhmm(t + start_tod)}")
            return None
        t = w.end_s
    if abs(t - DAY_S) > 1e-6:
        src.error(path, f"{where}: the windows do not cover the day (up to {_hhmm(t + start_tod)})")
        return None
    return tuple(out)


def _hhmm(tod: float) -> str:
    m = round(tod % DAY_S / 60.0)
    return f"{m // 60:02d}:{m % 60:02d}"


def _parse_tariff(src: Source, value: Any, start_tod: float, base: Path) -> Tariff | None:
    path: Path_ = ("day", "tariff")
    m = _mapping(src, path, value, ("currency", "offer", "windows", "csv"))
    currency = m.get("currency", "EUR")
    if not isinstance(currency, str) or not 1 <= len(currency) <= 8:
        src.error((*path, "currency"), "a short currency code, e.g. EUR")
        currency = "EUR"
    offer = m.get("offer", "absolute")
    if offer not in TARIFF_OFFERS:
        src.error((*path, "offer"), f"one of {', '.join(TARIFF_OFFERS)}")
        offer = "absolute"
    if ("windows" in m) == ("csv" in m):
        src.error(path, "give either windows: [...] or csv: FILE")
        return None
    if "windows" in m:
        rows = m["windows"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            src.error((*path, "windows"), "expected a list of {from, to, import, export}")
            return None
        for i, r in enumerate(rows):
            for key in r:
                if key not in ("from", "to", "import", "export"):
                    src.error((*path, "windows", i, key), "unknown field; from, to, import, export")
        windows = _windows_from_rows(src, (*path, "windows"), rows, start_tod, "tariff")
    else:
        raw = _read_csv(src, (*path, "csv"), m["csv"], base)
        if raw is None:
            return None
        rows_csv: list[dict[str, Any]] = []
        for i, r in enumerate(raw):
            if len(r) != 4 or not _is_number(r[2]) or not _is_number(r[3]):
                src.error((*path, "csv"), f"row {i + 1}: expected from,to,import,export")
                return None
            rows_csv.append(
                {"from": r[0], "to": r[1], "import": float(r[2]), "export": float(r[3])}
            )
        windows = _windows_from_rows(src, (*path, "csv"), rows_csv, start_tod, str(m["csv"]))
    return Tariff(currency, windows, offer) if windows else None


def _profile_from_csv(
    src: Source, path: Path_, name: Any, base: Path, start_tod: float, step_s: float
) -> Profile | None:
    raw = _read_csv(src, path, name, base)
    if raw is None:
        return None
    times: list[float] = []
    values: list[float] = []
    for i, r in enumerate(raw):
        if len(r) != 2 or not _is_number(r[1]):
            src.error(path, f"{name}: row {i + 1}: expected time,power_w")
            return None
        tod = _tod(src, path, r[0])
        p = float(r[1])
        if tod is None:
            return None
        if not math.isfinite(p) or not 0.0 <= p <= MAX_PROFILE_W:
            src.error(path, f"{name}: row {i + 1}: {r[1]} W outside 0..{MAX_PROFILE_W:g}")
            return None
        if times and tod <= times[-1]:
            src.error(path, f"{name}: row {i + 1}: times must ascend")
            return None
        times.append(tod)
        values.append(p)
    if times[0] != 0.0:
        src.error(path, f"{name}: the first row must be at 00:00")
        return None
    gaps = np.diff([*times, DAY_S])
    if gaps.size and float(np.min(gaps)) < 60.0 - 1e-6:
        src.error(path, f"{name}: one value per minute or coarser")
        return None
    return _by_time_of_day(np.array(times), np.array(values), start_tod, step_s)


def _by_time_of_day(
    times: np.ndarray, values: np.ndarray, start_tod: float, step_s: float
) -> Profile:
    """A time-of-day step profile re-sampled to day-relative steps of step_s (24 h of them)."""
    n = round(DAY_S / step_s)
    tod = (start_tod + (np.arange(n) + 0.5) * step_s) % DAY_S
    k = np.searchsorted(times, tod, side="right") - 1
    return Profile(step_s, tuple(float(v) for v in values[np.clip(k, 0, values.size - 1)]))


def _parse_profile(
    src: Source,
    path: Path_,
    value: Any,
    base: Path,
    start_tod: float,
    step_s: float,
    *,
    pv: bool,
) -> tuple[Profile | None, str]:
    kinds = (
        ("csv", "constant", "peak", "sunrise", "sunset") if pv else ("csv", "constant", "generate")
    )
    m = _mapping(src, path, value, kinds)
    if "csv" in m:
        return _profile_from_csv(src, (*path, "csv"), m["csv"], base, start_tod, step_s), str(
            m["csv"]
        )
    if "constant" in m:
        p = _quantity(src, (*path, "constant"), m["constant"], "power")
        if p is None or not 0 <= p <= MAX_PROFILE_W:
            if p is not None:
                src.error((*path, "constant"), f"outside 0..{MAX_PROFILE_W:g} W")
            return None, ""
        return Profile(step_s, (p,) * round(DAY_S / step_s)), f"constant {p:g} W"
    if pv and "peak" in m:
        peak = _quantity(src, (*path, "peak"), m["peak"], "power")
        rise = _tod(src, (*path, "sunrise"), m.get("sunrise", "06:30"))
        sets = _tod(src, (*path, "sunset"), m.get("sunset", "20:00"))
        if peak is None or rise is None or sets is None:
            return None, ""
        if not 0 <= peak <= MAX_PROFILE_W or sets <= rise:
            src.error(path, "peak within 0..100 kW and sunrise before sunset")
            return None, ""
        minutes = np.arange(1440) * 60.0
        phase = np.clip((minutes - rise) / (sets - rise), 0.0, 1.0)
        bell = peak * np.sin(np.pi * phase) ** 2  # a clear day's shape (rig's own model)
        return _by_time_of_day(minutes, bell, start_tod, step_s), f"clear-sky PV {peak:g} W"
    if not pv and "generate" in m:
        from rig.homeload import HomeModel, generate

        g = _mapping(src, (*path, "generate"), m["generate"] or {}, ("seed", "heat_pump", "base"))
        seed = g.get("seed", 1)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            src.error((*path, "generate", "seed"), "a whole number 0..2^32-1")
            return None, ""
        heat = g.get("heat_pump", False)
        if not isinstance(heat, bool):
            src.error((*path, "generate", "heat_pump"), "true or false")
            return None, ""
        model = HomeModel(heat_pump=heat)
        if "base" in g:
            b = _quantity(src, (*path, "generate", "base"), g["base"], "power")
            if b is None or not 0 <= b <= 5_000:
                if b is not None:
                    src.error((*path, "generate", "base"), "within 0..5 kW")
                return None, ""
            model = HomeModel(heat_pump=heat, base_w=b)
        minute = generate(seed, model)
        what = f"generated (seed {seed}{', heat pump' if heat else ''})"
        return _by_time_of_day(np.arange(1440) * 60.0, minute, start_tod, step_s), what
    src.error(path, f"give one of {', '.join(k for k in kinds if k not in ('sunrise', 'sunset'))}")
    return None, ""


def parse_day(src: Source, value: Any, ev_capacity_wh: float | None) -> DaySpec | None:
    """The plan's `day:` section; every problem goes to `src` with its line."""
    path: Path_ = ("day",)
    allowed = ("start", "length", "resolution", "tariff", "departure", "home_load", "pv", "outages")
    m = _mapping(src, path, value, allowed)
    if not m:
        return None
    for key in ("start", "tariff", "departure", "home_load"):
        if key not in m:
            src.error((*path, key), "missing")
    base = Path(src.file).parent if src.file and not src.file.startswith("<") else Path.cwd()
    start = _tod(src, (*path, "start"), m["start"]) if "start" in m else None
    length = _quantity(src, (*path, "length"), m.get("length", "24 h"), "time")
    res = _quantity(src, (*path, "resolution"), m.get("resolution", "1 min"), "time")
    if length is not None and not 0 < length <= DAY_S:
        src.error((*path, "length"), "more than 0 s and at most 24 h")
        length = None
    if res is not None and not MIN_RESOLUTION_S <= res <= 3600.0:
        src.error((*path, "resolution"), "between 1 s and 1 h")
        res = None
    if res is not None and abs(DAY_S / res - round(DAY_S / res)) > 1e-9:
        src.error((*path, "resolution"), "must divide 24 h (e.g. 1 min, 5 min, 15 min)")
        res = None
    if start is None or length is None or res is None:
        return None
    tariff = _parse_tariff(src, m["tariff"], start, base) if "tariff" in m else None
    departure = _parse_departure(src, m.get("departure"), start, length, ev_capacity_wh)
    home, home_what = (
        _parse_profile(src, (*path, "home_load"), m["home_load"], base, start, res, pv=False)
        if "home_load" in m
        else (None, "")
    )
    pv = None
    if m.get("pv") is not None:
        pv, _ = _parse_profile(src, (*path, "pv"), m["pv"], base, start, res, pv=True)
    outages = _parse_outages(src, m.get("outages"), start, length)
    if tariff is None or departure is None or home is None or outages is None:
        return None
    return DaySpec(
        start_tod_s=start,
        length_s=length,
        resolution_s=res,
        tariff=tariff,
        departure=departure,
        home_w=home,
        pv_w=pv,
        outages=outages,
        home_source=home_what,
        line=src.line(path),
    )


def _parse_departure(
    src: Source, value: Any, start: float, length: float, capacity: float | None
) -> Departure | None:
    path: Path_ = ("day", "departure")
    if value is None:
        return None
    m = _mapping(src, path, value, ("at", "soc", "energy"))
    at = _tod(src, (*path, "at"), m.get("at")) if "at" in m else None
    if "at" not in m:
        src.error((*path, "at"), "missing: the time of day the driver leaves")
    if ("soc" in m) == ("energy" in m):
        src.error(path, "give either soc: % or energy: kWh (what the battery holds at departure)")
        return None
    if "soc" in m:
        soc = _quantity(src, (*path, "soc"), m["soc"], "ratio")
        if soc is None or not 0 <= soc <= 1:
            if soc is not None:
                src.error((*path, "soc"), "between 0 % and 100 %")
            return None
        if capacity is None:
            return None
        energy = soc * capacity
    else:
        e = _quantity(src, (*path, "energy"), m["energy"], "energy")
        if e is None or e < 0 or (capacity is not None and e > capacity):
            if e is not None:
                src.error((*path, "energy"), "between 0 and the battery's capacity")
            return None
        energy = e
    if at is None:
        return None
    rel = (at - start) % DAY_S or DAY_S
    if rel > length + 1e-6:
        src.error((*path, "at"), f"after the day's end ({_hhmm(start + length)})")
        return None
    return Departure(rel, energy)


def _parse_outages(
    src: Source, value: Any, start: float, length: float
) -> tuple[Outage, ...] | None:
    path: Path_ = ("day", "outages")
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_OUTAGES:
        src.error(path, f"expected a list of at most {MAX_OUTAGES} {{from, to}}")
        return None
    out: list[Outage] = []
    for i, item in enumerate(value):
        m = _mapping(src, (*path, i), item, ("from", "to"))
        a = _tod(src, (*path, i, "from"), m.get("from"))
        b = _tod(src, (*path, i, "to"), m.get("to"))
        if a is None or b is None:
            return None
        rel = (a - start) % DAY_S
        span = (b - a) % DAY_S
        if span <= 0 or rel + span > length + 1e-6:
            src.error((*path, i), "an outage lies within the day and is not empty")
            return None
        out.append(Outage(rel, rel + span))
    out.sort(key=lambda o: o.start_s)
    for a_, b_ in itertools.pairwise(out):
        if b_.start_s < a_.end_s:
            src.error(path, "outages overlap")
            return None
    return tuple(out)
