"""The report's parts on synthetic data: the message sequence, the DUT's events, outcomes and the
decisive check, plan summaries across processes, record.json, junit.xml, report.html, the figure
and the run identity. Each malformed input ends in a bounded, honest result, never a crash."""

import base64
import datetime as dt
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rig.checks import Marker, Relation, Verdict
from rig.ev import EVSpec
from rig.identity import (
    FileIdentity,
    RigIdentity,
    RunIdentity,
    calibration_expired,
    rig_identity,
    run_identity,
    sha256_file,
    shown_path,
)
from rig.report import sequence
from rig.report.dutevents import MAX_EVENTS, Kind, dut_marks, figure_marks
from rig.report.figure import envelope, render_png, zoom_windows
from rig.report.html import render_report
from rig.report.junit import build_junit, write_junit
from rig.report.outcome import Outcome, decisive, margin, plan_outcome
from rig.report.record import build_record, write_record
from rig.report.summary import PlanSummary, error_summary, headline
from rig.report.table import as_html, fmt_value, params_text
from rig.trace import Event, Trace

REPO = Path(__file__).resolve().parent.parent


def _msg(t: float, message: str, side: str = "evcc", **extra: Any) -> Event:
    direction = "tx" if message.endswith("Req") == (side == "evcc") else "rx"
    return Event(t, "v2g", "message", {"dir": direction, "side": side, "message": message, **extra})


# ------------------------------------------------------------------------------ message sequence
def test_an_hour_of_charge_loop_folds_into_one_row_with_period_and_worst_response() -> None:
    events = [
        _msg(0.0, "SessionSetupReq"),
        _msg(0.004, "SessionSetupRes", code="OK_NewSessionEstablished"),
    ]
    t0 = 10.0
    for k in range(14_400):
        t = t0 + 0.25 * k
        events.append(_msg(t, "DC_ChargeLoopReq"))
        response = 0.0031 if k == 777 else 0.0012
        events.append(_msg(t + response, "DC_ChargeLoopRes", code="OK"))
    events.append(_msg(3700.0, "SessionStopReq"))
    events.append(_msg(3700.002, "SessionStopRes", code="OK"))
    seq = sequence.compact(events, rig_side="evcc")
    texts = [r.describe() for r in seq.rows]
    assert texts == [
        "SessionSetupReq/Res, response 4 ms",
        "DC_ChargeLoopReq/Res × 14,400, 250 ms period, max response 3.1 ms",
        "SessionStopReq/Res, response 2 ms",
    ]
    assert seq.messages == len(events) and seq.side == "evcc" and seq.malformed == 0
    loop = seq.rows[1]
    assert loop.t_first == t0 and loop.t_last == pytest.approx(t0 + 0.25 * 14_399)


def test_the_rig_side_is_shown_when_both_sides_logged_and_failures_are_counted() -> None:
    events = []
    for k in range(3):
        t = float(k)
        code = "FAILED_SequenceError" if k == 2 else "OK"
        events += [_msg(t, "PowerDeliveryReq", "evcc"), _msg(t + 0.001, "PowerDeliveryReq", "secc")]
        events += [_msg(t + 0.002, "PowerDeliveryRes", "secc", code=code)]
        events += [_msg(t + 0.003, "PowerDeliveryRes", "evcc", code=code)]
    events.append(_msg(5.0, "PowerDeliveryReq", "evcc"))  # never answered
    seq = sequence.compact(events, rig_side="secc")
    assert seq.side == "secc" and seq.messages == 6
    (row,) = seq.rows
    assert row.describe() == (
        "PowerDeliveryReq/Res × 3, 1 s period, max response 1 ms, FAILED_SequenceError"
    )
    evcc = sequence.compact(events, rig_side="evcc")
    assert evcc.rows[0].unanswered == 1 and "1 without response" in evcc.rows[0].describe()


def test_malformed_message_events_are_counted_and_skipped() -> None:
    hostile: list[Event] = [
        Event(1.0, "v2g", "message", {"message": 42, "side": "evcc"}),
        Event(2.0, "v2g", "message", {"message": "x" * 10_000, "side": "evcc"}),
        Event(3.0, "v2g", "message", {"message": "Bad\x00Req", "side": "evcc"}),
        Event(float("nan"), "v2g", "message", {"message": "SessionSetupReq", "side": "evcc"}),
        Event(4.0, "v2g", "message", "not a mapping"),  # type: ignore[arg-type]
        Event(5.0, "v2g", "message", {"message": "SessionSetupReq", "side": ["evcc"]}),
        _msg(6.0, "SessionSetupReq"),
        _msg(6.5, "SessionSetupRes", code={"nested": "code"}),
    ]
    seq = sequence.compact(hostile)
    assert seq.malformed == 6
    (row,) = seq.rows
    assert row.describe() == "SessionSetupReq/Res, response 500 ms"


def test_the_table_never_grows_beyond_its_bound() -> None:
    events = [_msg(float(k), f"M{k % 2}Req") for k in range(2 * sequence.MAX_ROWS + 10)]
    seq = sequence.compact(events)
    assert len(seq.rows) == sequence.MAX_ROWS and seq.rows_dropped == sequence.MAX_ROWS + 10
    assert all(r.unanswered == 1 for r in seq.rows)


def test_no_message_at_all_is_an_empty_sequence() -> None:
    seq = sequence.compact([Event(0.0, "dut", "session_state", {"state": "setup"})])
    assert seq.rows == () and seq.messages == 0 and seq.side is None


# --------------------------------------------------------------------------------- DUT events
def test_dut_events_become_marks_with_notifications_only_when_they_change() -> None:
    body = {"EVSEStatus": {"NotificationMaxDelay": 60, "EVSENotification": "Pause"}}
    events = [
        Event(0.0, "dut", "session_state", {"state": "setup", "service": "DC_BPT"}),
        Event(4.0, "dut", "ev_limits", {"present_soc": 0.6}),
        Event(34.15, "dut", "island_detected", {"method": "active", "after_s": 0.102}),
        Event(40.0, "v2g", "message", {"message": "DC_ChargeLoopRes", "body": body}),
        Event(40.25, "v2g", "message", {"message": "DC_ChargeLoopRes", "body": body}),
        Event(41.0, "runner", "interrupted", {"signal": "SIGTERM"}),
        Event(41.0, "runner", "safe_state", {"instrument": "dut", "ok": True}),
    ]
    marks, dropped = dut_marks(events)
    assert dropped == 0
    assert [(m.t, m.kind, m.label) for m in marks] == [
        (0.0, Kind.STATE, "session setup"),
        (4.0, Kind.ENERGY, "ev limits"),
        (34.15, Kind.GRID, "island detected"),
        (40.0, Kind.PROTOCOL, "EVSENotification Pause"),
        (41.0, Kind.RIG, "interrupted"),
    ]
    assert marks[2].detail == "method=active, after_s=0.102"
    assert [m.label for m in figure_marks(marks)] == [
        "session setup",
        "island detected",
        "EVSENotification Pause",
        "interrupted",
    ]


def test_hostile_dut_events_are_bounded() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(10_000):
        node["x"] = {}
        node = node["x"]
    events = [Event(float(k), "dut", "x" * 5000, {"k": "y" * 5000}) for k in range(MAX_EVENTS + 50)]
    events.append(Event(1.0, "v2g", "message", {"message": "DC_ChargeLoopRes", "body": deep}))
    marks, dropped = dut_marks(events)
    assert len(marks) == MAX_EVENTS and dropped == 50
    assert all(len(m.label) <= 40 and len(m.detail) <= 160 for m in marks)


# ------------------------------------------------------------------------------------ outcomes
def _check(
    name: str, verdict: str, measured: float | None, limit: float | None, relation: str | None = "≤"
) -> dict[str, Any]:
    return {
        "name": name,
        "verdict": verdict,
        "measured": measured,
        "limit": limit,
        "unit": "s",
        "relation": relation,
        "detail": f"{name} detail",
        "clause": "",
        "params": {},
    }


def test_a_plan_shows_its_worst_check_and_never_a_pass_it_did_not_earn() -> None:
    ok = _check("a", "pass", 0.1, 2.0)
    assert plan_outcome("pass", [ok]) is Outcome.PASS
    assert (
        plan_outcome("fail", [ok, _check("b", "inconclusive", 1.99, 2.0)]) is Outcome.INCONCLUSIVE
    )
    assert plan_outcome("fail", [ok, _check("b", "not judged", None, 2.0)]) is Outcome.NOT_JUDGED
    assert plan_outcome("fail", [ok]) is Outcome.FAIL  # the runner said fail: never shown as pass
    assert plan_outcome("pass", []) is Outcome.NOT_JUDGED
    assert plan_outcome("error", [ok]) is Outcome.ERROR
    assert plan_outcome("interrupted", [ok]) is Outcome.INTERRUPTED
    assert plan_outcome("pass", [_check("c", "maybe", 1.0, 2.0)]) is Outcome.ERROR
    assert (
        Outcome.of("not-judged") is Outcome.NOT_JUDGED and Outcome.NOT_JUDGED.label == "NOT JUDGED"
    )


def test_the_decisive_check_is_the_worst_then_the_tightest_margin() -> None:
    wide = _check("wide", "pass", 0.1, 2.0)
    tight = _check("tight", "pass", 1.9, 2.0)
    floor = _check("floor", "pass", 31.0, 30.0, "≥")
    assert margin(tight) == pytest.approx(0.05) and margin(floor) == pytest.approx(1 / 30)
    assert decisive([wide, tight, floor]) == 2
    failed = _check("failed", "fail", None, 2.0)
    assert decisive([wide, tight, failed]) == 2
    assert decisive([wide, _check("norel", "pass", 1.99, 2.0, None)]) == 0
    assert decisive([]) is None


def test_headlines_say_what_failed_in_words() -> None:
    checks = [_check("islanding:grid_following", "fail", None, 2.0)]
    assert headline(Outcome.FAIL, checks, 0) == (
        "islanding:grid_following failed: no value measured, limit ≤ 2 s — "
        "islanding:grid_following detail"
    )
    assert headline(Outcome.PASS, [_check("t", "pass", 0.675, 2.0)], 0) == "t 675 ms (limit ≤ 2 s)"
    assert headline(Outcome.ERROR, [], None, error="VI_ERROR_CONN_LOST\nmore") == (
        "run error: VI_ERROR_CONN_LOST"
    )
    assert headline(Outcome.INTERRUPTED, [], None, interrupted="SIGTERM", simulated_s=120.0) == (
        "interrupted by SIGTERM after 2.0 min simulated; the bench was brought to its safe state"
    )


def test_values_are_formatted_with_their_units_and_params_in_the_plans_terms() -> None:
    assert fmt_value(0.0031, "s") == "3.1 ms" and fmt_value(None, "s") == "—"
    assert fmt_value(18000.0, "Wh") == "1.8e+04 Wh" and fmt_value(math.inf, "s") == "inf"
    params = {"mode": "grid_following", "within": 2.0, "threshold": 0.05}
    check = {"name": "islanding:grid_following", "params": params}
    assert params_text(check) == "mode=grid_following, within=2 s, threshold=5 %"


# -------------------------------------------------------------------------------- summaries
def _summary(outcome: Outcome = Outcome.PASS, **kw: Any) -> PlanSummary:
    checks = kw.pop("checks", (_check("islanding:grid_following", outcome.value, 0.13, 2.0),))
    base: dict[str, Any] = {
        "nodeid": "v2h/p.yaml::p",
        "plan": "test_plans/v2h/p.yaml",
        "name": "p",
        "title": "A plan",
        "classname": "test_plans.v2h",
        "outcome": outcome,
        "run_verdict": outcome.value,
        "simulated_s": 41.0,
        "wall_s": 0.5,
        "checks": tuple(checks),
        "decisive": 0,
        "headline": "islanding:grid_following 130 ms (limit ≤ 2 s)",
        "dut": {
            "side": "evse",
            "name": "Wallbox <X>",
            "firmware": "2.4.1",
            "emulated": False,
            "serial": "SN1",
        },
        "instruments": (
            {
                "role": "power_analyzer",
                "model": "yokogawa_wt5000",
                "idn": "YOKOGAWA,WT5000,1,F",
                "emulated": False,
                "address": "USB0::1::INSTR",
                "calibration_due": "2020-01-01",
            },
        ),
        "outputs": {"trace": "p.trace.jsonl", "figure": "p.png"},
        "figure_png": base64.b64encode(b"\x89PNG fake").decode(),
    }
    base.update(kw)
    return PlanSummary(**base)


def test_a_summary_crosses_processes_unchanged_and_a_malformed_one_is_an_error() -> None:
    s = _summary(
        sequence={"side": "evcc", "rows": [{"text": "x"}]},
        events=({"t": 1.0, "label": "island detected"},),
    )
    wire = json.loads(json.dumps(s.to_wire()))  # what xdist's channel can carry
    assert PlanSummary.from_wire(wire) == s
    broken = PlanSummary.from_wire({"nodeid": "a::b", "plan": 3})
    assert broken.outcome is Outcome.ERROR and "malformed plan summary" in (broken.error or "")
    assert PlanSummary.from_wire(["nope"]).outcome is Outcome.ERROR
    lying = PlanSummary.from_wire({**wire, "outcome": "totally fine"})
    assert lying.outcome is Outcome.ERROR  # an unknown outcome is never a pass


def _identity(**kw: Any) -> RunIdentity:
    base: dict[str, Any] = {
        "rig": RigIdentity("0.1.0", "a" * 40, False),
        "bench": FileIdentity("fixtures/benches/lab-a.yaml", "b" * 64),
        "bench_name": "Lab A",
        "plans": (FileIdentity("test_plans/v2h/p.yaml", "c" * 64),),
        "seed": 3,
        "defects": ("slow_island_detection",),
        "host": "bench-pc",
        "started": dt.datetime(2026, 12, 5, 14, 0, 0, tzinfo=dt.UTC),
        "ended": dt.datetime(2026, 12, 5, 14, 1, 0, tzinfo=dt.UTC),
    }
    base.update(kw)
    return RunIdentity(**base)


# ----------------------------------------------------------------------------------- record
def test_the_record_carries_identity_parameters_relations_and_says_when_it_is_partial(
    tmp_path: Path,
) -> None:
    nan_check = {**_check("t", "fail", math.nan, 2.0), "params": {"within": 2.0}}
    s = _summary(Outcome.FAIL, checks=(nan_check,), messages=14_402, protocol="ISO 15118-20")
    record = build_record(_identity(), [s], stopped_by="SIGTERM", not_run=["test_plans/v2h/q.yaml"])
    write_record(tmp_path / "record.json", record)
    back = json.loads(
        (tmp_path / "record.json").read_text(), parse_constant=lambda c: pytest.fail(c)
    )
    assert back["schema_version"] == 2 and back["complete"] is False
    assert back["stopped_by"] == "SIGTERM" and back["not_run"] == ["test_plans/v2h/q.yaml"]
    assert back["rig"] == {"version": "0.1.0", "commit": "a" * 40, "dirty": False}
    assert back["bench"] == {
        "path": "fixtures/benches/lab-a.yaml",
        "sha256": "b" * 64,
        "name": "Lab A",
    }
    assert back["dut"]["serial"] == "SN1" and back["defects"] == ["slow_island_detection"]
    (inst,) = back["instruments"]
    assert inst["calibration_expired"] is True and inst["address"] == "USB0::1::INSTR"
    (run,) = back["runs"]
    assert run["protocol"] == "ISO 15118-20" and run["messages"] == 14_402
    assert run["checks"][0]["measured"] is None and run["checks"][0]["relation"] == "≤"
    assert run["checks"][0]["params"] == {"within": 2.0}
    assert back["summary"] == {"verdict": "interrupted", "counts": {"fail": 1}}


def test_verdicts_carry_their_relation_and_parameters_into_the_record() -> None:
    v = Verdict(
        "x", "pass", 1.0, 2.0, "s", "d", "clause", relation=Relation.AT_MOST, params={"within": 2.0}
    )
    assert v.as_record() == {
        "name": "x",
        "verdict": "pass",
        "measured": 1.0,
        "limit": 2.0,
        "unit": "s",
        "relation": "≤",
        "detail": "d",
        "clause": "clause",
        "params": {"within": 2.0},
        "uncertainty": None,
        "decision_rule": "",
    }


# ------------------------------------------------------------------------------------ junit
def test_junit_says_error_for_errors_failure_for_failures_and_never_passes_the_unjudged(
    tmp_path: Path,
) -> None:
    summaries = [
        _summary(Outcome.PASS, name="ok"),
        _summary(Outcome.FAIL, name="failed"),
        _summary(Outcome.INCONCLUSIVE, name="unsure"),
        _summary(Outcome.NOT_JUDGED, name="unjudged"),
        error_summary(
            "v2h/e.yaml::e",
            "test_plans/v2h/e.yaml",
            "OSError: VI_ERROR\x07 CONN_LOST",
            classname="test_plans.v2h",
        ),
        _summary(
            Outcome.INTERRUPTED,
            name="stopped",
            headline="interrupted by SIGTERM after 2 min simulated",
            checks=(),
        ),
    ]
    write_junit(tmp_path / "junit.xml", build_junit(_identity(), summaries, stopped_by="SIGTERM"))
    root = ET.parse(tmp_path / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "6",
        "failures": "2",
        "errors": "2",
        "skipped": "1",
    }
    props = {
        p.get("name"): p.get("value")
        for p in suite.iter("property")
        if p.get("name")
        in ("seed", "bench", "dut", "firmware", "defects", "stopped_by", "complete")
    }
    assert props == {
        "seed": "3",
        "bench": "fixtures/benches/lab-a.yaml",
        "dut": "Wallbox <X>",
        "firmware": "2.4.1",
        "defects": "slow_island_detection",
        "complete": "false",
        "stopped_by": "SIGTERM",
    }
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert all(c.get("classname") == "test_plans.v2h" for c in cases.values())
    assert list(cases["ok"]) == [cases["ok"].find("properties")]
    assert cases["failed"].find("failure").get("type") == "fail"  # type: ignore[union-attr]
    assert cases["unsure"].find("failure").get("type") == "inconclusive"  # type: ignore[union-attr]
    assert cases["unjudged"].find("skipped").get("type") == "not_judged"  # type: ignore[union-attr]
    assert cases["e"].find("error").get("type") == "error"  # type: ignore[union-attr]
    assert "\x07" not in (tmp_path / "junit.xml").read_text()
    stopped = cases["stopped"].find("error")
    assert stopped is not None and stopped.get("type") == "interrupted"
    assert stopped.get("message", "").startswith("interrupted by SIGTERM")
    figures = {p.get("name"): p.get("value") for p in cases["ok"].iter("property")}
    assert figures["islanding:grid_following.measured"] == "0.13"
    assert figures["islanding:grid_following.relation"] == "≤"


# ------------------------------------------------------------------------------------- html
def test_the_report_is_one_self_contained_page_that_escapes_what_it_shows() -> None:
    hostile = _summary(
        Outcome.FAIL,
        title="<script>alert(1)</script>",
        headline="<img src=x onerror=alert(1)>",
        events=({"t": 1.0, "label": "<b>x</b>", "detail": "&"},),
    )
    page = render_report(_identity(), [hostile])
    assert "<script" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<link" not in page and "http://" not in page and "https://" not in page
    srcs = [chunk.split("'", 1)[0] for chunk in page.split("src='")[1:]]
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    # What ran, on what, and the verdict, before the first plan section.
    first_screen = page.split("<section class=plan", 1)[0]
    for text in (
        "FAIL",
        "Lab A",
        "Wallbox &lt;X&gt;",
        "2.4.1",
        "SN1",
        "seed <b>3</b>",
        "slow_island_detection",
        "bench-pc",
        "2020-01-01 EXPIRED",
        "USB0::1::INSTR",
        "c" * 64,
    ):
        assert text in first_screen, text


def test_inconclusive_and_not_judged_are_shown_as_such_never_as_pass() -> None:
    summaries = [
        _summary(
            Outcome.INCONCLUSIVE, name="unsure", checks=(_check("a", "inconclusive", 1.99, 2.0),)
        ),
        _summary(
            Outcome.NOT_JUDGED, name="unjudged", checks=(_check("b", "not_judged", None, 2.0),)
        ),
    ]
    page = render_report(_identity(), summaries)
    assert page.count(">INCONCLUSIVE<") >= 3 and page.count(">NOT JUDGED<") >= 3
    assert ">PASS<" not in page
    assert "<title>INCONCLUSIVE" in page  # the run is no better than its worst plan


def test_a_partial_report_says_it_is_incomplete_and_names_what_did_not_run() -> None:
    page = render_report(
        _identity(),
        [_summary(Outcome.INTERRUPTED, headline="interrupted by SIGINT after 2 min simulated")],
        stopped_by="SIGINT",
        not_run=["test_plans/v2h/later.yaml"],
    )
    assert "INCOMPLETE: the run was stopped by SIGINT" in page
    assert "Not run: test_plans/v2h/later.yaml" in page and "NOT RUN" in page


def test_uncertainty_gets_a_column_once_a_verdict_carries_one() -> None:
    plain = as_html([_check("a", "pass", 1.0, 2.0)])
    assert "uncertainty" not in plain
    with_u = as_html([{**_check("a", "pass", 1.0, 2.0), "uncertainty": 0.05}])
    assert "<th>uncertainty</th>" in with_u and "± 50 ms" in with_u


# ------------------------------------------------------------------------------------ figure
def test_the_envelope_keeps_every_spike_of_a_long_series() -> None:
    t = np.arange(1_000_000, dtype=np.float64)
    y = np.zeros_like(t)
    y[123_457] = 5.0
    y[876_543] = -7.0
    te, ye = envelope(t, y, 2000)
    assert te.size <= 2002 and ye.max() == 5.0 and ye.min() == -7.0
    assert np.all(np.diff(te) >= 0)


def test_the_figure_draws_verdict_zooms_and_dut_marks() -> None:
    trace = Trace()
    for k in range(400):
        t = k * 0.1
        v = 230.0 if t < 20 else 0.0
        trace.add_sample(
            t,
            "power_analyzer",
            {
                "evse_ac.p_w": -3000.0,
                "evse_ac.v_rms": v,
                "evse_ac.i_rms": 13.0 if t < 20 else 0.0,
                "home.v_rms": v,
            },
        )
        trace.add_sample(t, "dc_source", {"p_w": -3000.0})
    verdict = Verdict(
        "islanding:grid_following",
        "pass",
        0.13,
        2.0,
        "s",
        "d",
        markers=(
            Marker("time", "grid lost", 19.9, "power_analyzer.evse_ac.v_rms"),
            Marker("threshold", "0.05 p.u.", 11.5, "power_analyzer.evse_ac.v_rms"),
            Marker("span", "limit", (19.9, 21.9), "power_analyzer.evse_ac.v_rms"),
            Marker("zoom", "grid loss", (19.0, 23.0), "power_analyzer.evse_ac.v_rms"),
        ),
        relation=Relation.AT_MOST,
    )
    marks, _ = dut_marks([Event(20.0, "dut", "island_detected", {"method": "active"})])
    ctx_ev = EVSpec(
        capacity_wh=60_000.0,
        soc=0.7,
        reserve_soc=0.3,
        max_charge_w=11_000.0,
        max_discharge_w=11_000.0,
    )
    from rig.checks import Context

    png = render_png(
        trace,
        Context(ev=ctx_ev),
        [verdict],
        "t: title",
        outcome=Outcome.PASS,
        headline="h",
        marks=marks,
    )
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    assert zoom_windows([verdict]) == [
        (19.0, 23.0, "power_analyzer.evse_ac.v_rms", "islanding:grid_following: grid loss")
    ]


# ---------------------------------------------------------------------------------- identity
def test_the_run_identity_names_files_by_their_hash_and_paths_inside_the_rig_relatively(
    tmp_path: Path,
) -> None:
    plan = REPO / "test_plans/v2h/grid_loss_backup.yaml"
    outside = tmp_path / "p.yaml"
    outside.write_bytes(b"title: x\n")
    ident = run_identity(
        bench_path=REPO / "fixtures/benches/emulated.yaml",
        bench_name="B",
        plans=[plan, outside],
        seed=1,
        defects=[],
    )
    assert ident.plans[0].path == "test_plans/v2h/grid_loss_backup.yaml"
    assert ident.plans[1] == FileIdentity(str(outside), sha256_file(outside))
    assert sha256_file(tmp_path / "missing") is None
    assert shown_path(tmp_path) == str(tmp_path)
    assert ident.finished().ended is not None and ident.as_record()["ended_utc"] is None
    assert rig_identity(tmp_path) == RigIdentity(ident.rig.version, None, None)


def test_calibration_dates_are_judged_against_the_run_day() -> None:
    day = dt.date(2026, 12, 5)
    assert calibration_expired("2026-12-04", day) is True
    assert calibration_expired("2026-12-05", day) is False
    assert (
        calibration_expired("next spring", day) is None and calibration_expired(None, day) is None
    )


def test_the_report_shows_the_message_sequence_beside_the_figure() -> None:
    events = [_msg(0.0, "SessionSetupReq"), _msg(0.003, "SessionSetupRes", code="OK")]
    for k in range(14_400):
        events += [
            _msg(10 + 0.25 * k, "DC_ChargeLoopReq"),
            _msg(10 + 0.25 * k + 0.0031, "DC_ChargeLoopRes"),
        ]
    seq = sequence.compact(events, rig_side="evcc").as_record()
    page = render_report(
        _identity(), [_summary(sequence=seq, protocol="ISO 15118-20", messages=28_802)]
    )
    section = page.split("<section class=plan", 1)[1]
    assert "28,802 messages as the evcc saw them" in section
    assert "DC_ChargeLoopReq/Res × 14,400, 250 ms period, max response 3.1 ms" in section
    assert (
        section.index("img class=figure")
        < section.index("Message sequence")
        < section.index("Verdicts")
    )
    assert "protocol ISO 15118-20, 28,802 messages" in section
