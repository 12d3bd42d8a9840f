"""The rig's terminal: the live line of a running plan read from its growing trace, verdict lines,
quiet and verbose modes, progress lines where there is no terminal, rich only on a terminal."""

import io
import json
from pathlib import Path
from typing import Any

import pytest

import rig.terminal
from rig.report.outcome import Outcome
from rig.report.summary import PlanSummary
from rig.terminal import Display, Mode, Tail, counts_text


def _write(path: Path, *records: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, separators=(",", ":")) + "\n")


def _trace(path: Path) -> None:
    _write(
        path,
        {"t": 0.0, "k": "meta", "plan": "p"},
        {
            "t": 0.0,
            "k": "step",
            "i": 0,
            "line": 7,
            "action": "grid",
            "args": {"voltage_v": 230.0, "on": True},
        },
        {
            "t": 0.0,
            "k": "event",
            "src": "dut",
            "name": "session_state",
            "data": {"state": "charge_loop"},
        },
        {
            "t": 1.0,
            "k": "step",
            "i": 1,
            "line": 8,
            "action": "hold",
            "args": {"duration_s": 43200.0},
        },
        {"t": 7380.0, "k": "sample", "src": "dc_source", "v": {"p_w": -3000.0}},
    )


def _summary(outcome: Outcome, checks: tuple[dict[str, Any], ...] = ()) -> PlanSummary:
    return PlanSummary(
        nodeid="p.yaml::p",
        plan="p.yaml",
        name="long_hold",
        title="t",
        classname="x",
        outcome=outcome,
        simulated_s=41.0,
        wall_s=0.5,
        checks=checks,
        headline="reserve_floor:soc 60 % (limit ≥ 30 %)"
        if outcome is Outcome.PASS
        else "reserve_floor:soc failed: 29 %, limit ≥ 30 %",
    )


def test_a_tail_returns_whole_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    tail = Tail(path)
    assert tail.lines() == []  # not there yet
    path.write_bytes(b'{"a":1}\n{"b":')
    assert tail.lines() == [b'{"a":1}']
    with open(path, "ab") as fh:
        fh.write(b"2}\n")
    assert tail.lines() == [b'{"b":2}']
    assert tail.lines() == []


def test_the_live_line_shows_the_step_its_progress_and_simulated_against_wall_time(
    tmp_path: Path,
) -> None:
    trace = tmp_path / "long_hold.trace.jsonl"
    _trace(trace)
    display = Display(Mode.NORMAL, io.StringIO(), live=False)
    display.plan_started("k", "long_hold", trace=trace, steps_total=4, planned_s=43_300.0)
    running = display._running["k"]
    display._poll(running)

    class TenSeconds:
        def elapsed(self) -> float:
            return 10.0

    running.watch = TenSeconds()  # type: ignore[assignment]
    assert running.line() == (
        "long_hold  step 2/4 hold 12.00 h (2.05 h of 12.00 h) · charge_loop · "
        "2.05 h of ≤12.03 h simulated in 10.0 s wall (738×)"
    )


def test_verdict_lines_and_the_closing_line(tmp_path: Path) -> None:
    out = io.StringIO()
    display = Display(Mode.NORMAL, out, live=False)
    display.plan_finished("a", _summary(Outcome.PASS))
    failed = {
        "name": "reserve_floor:soc",
        "verdict": "fail",
        "measured": 29.0,
        "limit": 30.0,
        "unit": "%",
        "relation": "≥",
        "detail": "lowest SoC 29 %",
    }
    display.plan_finished("b", _summary(Outcome.FAIL, (failed,)))
    display.finish(
        outcome=Outcome.FAIL,
        counts=counts_text([Outcome.PASS, Outcome.FAIL]),
        stopped_by=None,
        report=Path("r/report.html"),
    )
    lines = out.getvalue().splitlines()
    assert (
        lines[0]
        == "PASS         long_hold  reserve_floor:soc 60 % (limit ≥ 30 %)  · 41.0 s in 500 ms"
    )
    assert lines[1].startswith(
        "FAIL         long_hold  reserve_floor:soc failed: 29 %, limit ≥ 30 %"
    )
    assert "measured         29 %  limit ≥ 30 %" in lines[2] and "lowest SoC 29 %" in lines[3]
    assert lines[-1] == "FAIL: 2 plan(s): 1 pass, 1 fail  report: r/report.html"


def test_quiet_prints_only_what_did_not_pass() -> None:
    out = io.StringIO()
    display = Display(Mode.QUIET, out, live=True)  # quiet is never live, terminal or not
    assert not display.live
    display.plan_finished("a", _summary(Outcome.PASS))
    assert out.getvalue() == ""
    display.plan_finished("b", _summary(Outcome.INCONCLUSIVE))
    assert out.getvalue().startswith("INCONCLUSIVE long_hold")


def test_verbose_logs_steps_events_and_commands(tmp_path: Path) -> None:
    trace, commands = tmp_path / "p.trace.jsonl", tmp_path / "p.commands.log"
    _trace(trace)
    commands.write_text("EA Elektro-Automatik PSB 10000 > OUTP OFF\n")
    out = io.StringIO()
    display = Display(Mode.VERBOSE, out, live=False)
    display.plan_started("k", "p", trace=trace, commands=commands)
    display._poll_once()
    text = out.getvalue()
    assert "▶ p started" in text
    assert "[0.000 s] p step 0 (line 7): grid on 230 V" in text
    assert "[0.000 s] p dut session_state state=charge_loop" in text
    assert "[1.000 s] p step 1 (line 8): hold 12.00 h" in text
    assert "  p EA Elektro-Automatik PSB 10000 > OUTP OFF" in text


def test_without_a_terminal_a_long_plan_still_says_how_far_it_got(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rig.terminal, "PROGRESS_EVERY_S", 0.0)
    trace = tmp_path / "p.trace.jsonl"
    _trace(trace)
    out = io.StringIO()
    display = Display(Mode.NORMAL, out, live=False)
    display.plan_started("k", "long_hold", trace=trace)
    display._poll_once()
    assert out.getvalue().startswith(
        "… long_hold  hold 12.00 h (2.05 h of 12.00 h) · charge_loop · 2.05 h simulated"
    )


def test_the_live_display_runs_with_rich_and_stops_cleanly(tmp_path: Path) -> None:
    trace = tmp_path / "p.trace.jsonl"
    _trace(trace)
    out = io.StringIO()
    display = Display(Mode.NORMAL, out, live=True)
    display.start()
    display.plan_started("k", "long_hold", trace=trace)
    display._poll_once()
    rendered = display._render()
    assert "▶ long_hold  hold 12.00 h" in str(rendered)
    display.plan_finished("k", _summary(Outcome.PASS))
    display.finish(outcome=Outcome.PASS, counts="1 plan(s): 1 pass", stopped_by=None, report=None)
    assert (
        "PASS         long_hold" in out.getvalue() and "PASS: 1 plan(s): 1 pass" in out.getvalue()
    )
    assert display._poller is None and display._live is None


def test_a_garbled_trace_does_not_stop_the_display(tmp_path: Path) -> None:
    trace = tmp_path / "p.trace.jsonl"
    trace.write_bytes(
        b'{"k":"step" garbage\n\xff\xfe\n[1,2]\n{"t":"soon","k":"event","data":7}\n' + b"x" * 100
    )
    display = Display(Mode.VERBOSE, io.StringIO(), live=False)
    display.plan_started("k", "p", trace=trace)
    display._poll_once()
    assert display._running["k"].t == 0.0
