"""A day plan with a real EV as the DUT, through the real-bench path on one machine, in real time:
`rig emulate --serve --plan PLAN --bench-out FILE` serves the emulated bench with its EV as a
managed car (its owner's departure and need from the plan), and `rig run PLAN --bench FILE`
runs the day with the rig's own SECC over the bench charger (the served DC source). The charger
offers the tariff as price schedules, the car chooses its power profile from them, and the day's
checks judge it.

The plan (fixtures/plans/served_day_ev.yaml) is a two-minute day: a dear first minute, a cheap
second; the test costs that much wall time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rig.plan import load_plan
from rig.trace import Trace
from tests.served import run_plan, served_bench

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "fixtures/plans/served_day_ev.yaml"
SERVED = "fixtures/benches/emulated-ev.yaml"


def _rational(value: dict[str, Any]) -> float:
    return float(value["Value"] * 10 ** value["Exponent"])


def _message(trace: Trace, name: str, direction: str) -> Any:
    return next(
        e
        for e in trace.events
        if e.name == "message" and e.data.get("message") == name and e.data["dir"] == direction
    )


@pytest.fixture(scope="module")
def served_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Trace]:
    """The served bench with the day plan, and `rig run` of it: (the run's record, its trace)."""
    tmp = tmp_path_factory.mktemp("served_day")
    bench_file = tmp / "served.yaml"
    out = tmp / "out"
    with served_bench(SERVED, PLAN, bench_file):
        run_plan(PLAN, bench_file, out, timeout=300)
    (plan_run,) = json.loads((out / "record.json").read_text())["runs"]
    return plan_run, Trace.load(out / f"{PLAN.stem}.trace.jsonl")


def test_a_served_ev_that_ignores_the_tariff_fails_the_tariff_cost(
    tmp_path: Path,
) -> None:
    """`rig emulate --serve --plan --defect ignores_tariff`: the served car charges at once,
    dear minute included, and the rig's verdict says so (exit 1, tariff_cost failed)."""
    bench_file = tmp_path / "served.yaml"
    out = tmp_path / "out"
    with served_bench(SERVED, PLAN, bench_file, defects=("ignores_tariff",)):
        run_plan(PLAN, bench_file, out, timeout=300, exit_code=1)
    (plan_run,) = json.loads((out / "record.json").read_text())["runs"]
    rows = {c["name"]: c for c in plan_run["checks"]}
    assert rows["tariff_cost"]["verdict"] == "fail", rows["tariff_cost"]["detail"]
    assert rows["departure"]["verdict"] == "pass", rows["departure"]["detail"]


def test_the_day_s_checks_pass_for_the_good_ev_on_the_real_bench_path(
    served_day: tuple[dict[str, Any], Trace],
) -> None:
    plan_run, trace = served_day
    assert trace.meta["virtual_time"] is False and plan_run["protocol"] == "ISO 15118-20"
    rows = {c["name"]: c for c in plan_run["checks"]}
    for name in ("departure", "tariff_cost", "tariff_cost:profile", "reserve_floor:soc"):
        assert rows[name]["verdict"] == "pass", (name, rows[name]["detail"])
    assert plan_run["verdict"] == "pass"


def test_the_rig_s_secc_offered_the_day_s_prices(served_day: tuple[dict[str, Any], Trace]) -> None:
    _, trace = served_day
    day = load_plan(PLAN).day
    assert day is not None
    detail = _message(trace, "ServiceDetailRes", "tx").data["body"]["ServiceDetailRes"]
    sets = [
        {p["Name"]: p["intValue"] for p in s["Parameter"]}
        for s in detail["ServiceParameterList"]["ParameterSet"]
    ]
    # ControlMode -> Pricing: Scheduled (1) absolute prices (1); Dynamic (2) none (0).
    assert {s["ControlMode"]: s["Pricing"] for s in sets} == {1: 1, 2: 0}
    offer = _message(trace, "ScheduleExchangeRes", "tx")
    (tup,) = offer.data["body"]["ScheduleExchangeRes"]["Scheduled_SEResControlMode"][
        "ScheduleTuple"
    ]
    for schedule, export in (("ChargingSchedule", False), ("DischargingSchedule", True)):
        prices = tup[schedule]["AbsolutePriceSchedule"]
        assert prices["Currency"] == "EUR"
        stacks = prices["PriceRuleStacks"]["PriceRuleStack"]
        sent = [(s["Duration"], _rational(s["PriceRule"][0]["EnergyFee"])) for s in stacks]
        # From the moment it was sent to the day's end, window by window: each whole-second
        # Duration, counted from the TimeAnchor (the send time truncated to the second, up to
        # 1 s before offer.t), ends within half a second of its window's end.
        windows = [w for w in day.tariff.windows if w.end_s > offer.t]
        assert len(sent) == len(windows)
        ends = [offer.t + sum(d for d, _ in sent[: k + 1]) for k in range(len(sent))]
        for end, w in zip(ends, windows, strict=True):
            assert -0.5 <= end - w.end_s < 1.5, (end, w.end_s)
        expected = [w.export_price if export else w.import_price for w in windows]
        assert [p for _, p in sent] == pytest.approx(expected)


def test_the_ev_s_profile_follows_the_prices(served_day: tuple[dict[str, Any], Trace]) -> None:
    _, trace = served_day
    plan = load_plan(PLAN)
    assert plan.day is not None
    delivery = _message(trace, "PowerDeliveryReq", "rx")
    entries = delivery.data["body"]["PowerDeliveryReq"]["EVPowerProfile"]["EVPowerProfileEntries"][
        "EVPowerProfileEntry"
    ]
    powers = [_rational(e["Power"]) for e in entries]
    durations = [float(e["Duration"]) for e in entries]
    # Nothing while the price is dear, then the need at full power, then nothing.
    assert powers == [0.0, 11_000.0, 0.0], powers
    # The dear part ends at the price change (the minute), counted from the prices' TimeAnchor:
    # whole seconds on the wire, so up to about 3 s early, never late.
    assert 57.0 <= delivery.t + durations[0] <= 61.0, (delivery.t, durations)
    assert 20.0 <= durations[1] <= 50.0, durations
    # What the served EV did, measured at the charger's DC output by the rig's analyzer: from
    # its PowerDelivery(Start) on (the pre-charge before it draws a few hundred watts).
    t, p = trace.series("power_analyzer.evse_dc.p_w")
    dear = (t > delivery.t + 1.0) & (t < 59.0)
    assert dear.sum() > 40 and np.all(np.abs(p[dear]) < 100.0), p[dear]
    charging = p > 5_000.0
    assert charging.any()
    first, last = float(t[charging][0]), float(t[charging][-1])
    # The EV counts the prices from their TimeAnchor. The anchor and the Durations are whole
    # seconds, both cut down from the SECC's clock: the price change reaches the EV up to two
    # seconds before the plan's minute (and its reading lands on the next 1 s sample).
    assert 58.0 <= first <= 66.0 and last < 110.0, (first, last)
    after_start = t > delivery.t
    added_wh = float(np.trapezoid(p[after_start], t[after_start])) / 3600.0
    need_wh = plan.day.departure.energy_wh - plan.ev.energy_wh
    assert need_wh * 0.9 <= added_wh < need_wh * 1.2, added_wh
    after = t > last + 3.0
    assert np.all(np.abs(p[after]) < 100.0)
