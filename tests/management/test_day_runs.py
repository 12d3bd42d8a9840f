"""Day plans through execute(): the good emulated DUT passes on both sides, each management
defect fails the check that judges it, a declared shortfall is judged as declared."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from dayruns import run, verdicts

from rig.runner import RunResult

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _drop_the_runs() -> Iterator[None]:
    """The cached runs hold their traces (some 60,000 objects each): they go with this module
    (tests/conftest.py collects them), or every full collection of the rest of a test session
    walks them."""
    yield
    run.cache_clear()


def _explain(name: str, side: str = "evse", defect: str = "") -> str:
    r = run(name, side, defect)
    return f"{r.error}; " + "; ".join(f"{v.name} {v.verdict}: {v.detail}" for v in r.verdicts)


@pytest.mark.parametrize(
    ("name", "side"),
    [("tou", "evse"), ("tight", "evse"), ("outage", "evse"), ("tou", "ev"), ("tight", "ev")],
)
def test_the_good_dut_passes_every_check_of_the_day(name: str, side: str) -> None:
    result = run(name, side)
    assert result.error is None and result.verdict == "pass", _explain(name, side)


@pytest.mark.parametrize(
    ("name", "side", "defect", "check"),
    [
        ("tou", "evse", "ignores_tariff", "tariff_cost"),
        ("tou", "evse", "misses_departure", "departure"),
        ("tight", "evse", "discharges_into_departure_need", "departure"),
        ("outage", "evse", "ignores_outage", "outage_supply"),
        ("tou", "ev", "ignores_tariff", "tariff_cost"),
        ("tight", "ev", "discharges_into_departure_need", "departure"),
    ],
)
def test_each_management_defect_fails_its_check(
    name: str, side: str, defect: str, check: str
) -> None:
    result = run(name, side, defect)
    assert result.error is None, result.error
    assert verdicts(result)[check] == "fail", _explain(name, side, defect)


def test_the_dut_that_cannot_make_it_says_so_in_time() -> None:
    result = run("unreachable")
    rows = verdicts(result)
    assert rows == {"departure:declared": "pass"}, _explain("unreachable")
    said = [e for e in result.trace.events if e.name == "departure_unreachable"]
    assert said and said[0].t < 60.0
    # It went over the wire: the SECC's DepartureTime in the ChargeLoopRes the rig's EV received.
    loop = next(
        e
        for e in result.trace.events
        if e.name == "message"
        and e.data.get("message") == "DC_ChargeLoopRes"
        and e.t > said[0].t + 1
    )
    assert "DepartureTime" in json.dumps(loop.data["body"])


def _offered(result: RunResult) -> str:
    """The ScheduleExchangeRes the rig's SECC sent, as JSON text."""
    schedule = next(
        e
        for e in result.trace.events
        if e.name == "message" and e.data.get("message") == "ScheduleExchangeRes"
    )
    return json.dumps(schedule.data["body"])


def test_the_ev_chose_its_power_profile_from_the_price_schedule() -> None:
    result = run("tou", "ev")
    offered = _offered(result)
    assert "AbsolutePriceSchedule" in offered and "PriceRuleStack" in offered
    delivery = next(
        e
        for e in result.trace.events
        if e.name == "message"
        and e.data.get("message") == "PowerDeliveryReq"
        and "EVPowerProfile" in json.dumps(e.data["body"])
    )
    entries = delivery.data["body"]["PowerDeliveryReq"]["EVPowerProfile"]["EVPowerProfileEntries"][
        "EVPowerProfileEntry"
    ]
    powers = [e["Power"]["Value"] * 10 ** e["Power"]["Exponent"] for e in entries]
    # Dear half hour first: it gives (negative), then buys back in the cheap half.
    assert powers[0] < 0 and max(powers) > 0, powers


def test_a_plan_offering_levels_gives_the_ev_a_price_level_schedule() -> None:
    offered = _offered(run("tight", "ev"))
    assert "PriceLevelSchedule" in offered and "AbsolutePriceSchedule" not in offered
    # Two prices in the day (0.30 and 0.45): two levels, the dear half hour the higher.
    assert '"NumberOfPriceLevels": 2' in offered, offered


def test_a_day_cut_short_or_no_day_at_all_is_not_judged() -> None:
    from dayruns import BENCH, plan_text

    from rig.checks import REGISTRY, Context
    from rig.plan import loads_plan
    from rig.runner import execute

    text = plan_text("tou", "evse").replace("  - hold: 1 h", "  - hold: 10 min")
    result = execute(loads_plan(text, "<cut>"), BENCH["evse"], seed=3)
    rows = {v.name: v for v in result.verdicts}
    assert (
        rows["departure"].verdict == "not judged"
        and "before the departure" in rows["departure"].detail
    )
    assert rows["tariff_cost"].verdict == "not judged"
    no_day = Context(ev=result.context.ev)
    for name in ("departure", "tariff_cost", "outage_supply"):
        (row,) = REGISTRY[name].run(result.trace, no_day, {})
        assert row.verdict == "not judged", (name, row.detail)
