"""The cable in the plan and bench formats: `link:`, plug_in / unplug, wait_for: link_up in plans;
`link:` in bench files; every mistake a `file:line: field: message` (exit 2 from rig validate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.bench import bench_from_source, load_bench
from rig.cli import main
from rig.plan import (
    KIND_OF_ACTION,
    LINK_UP,
    STEP_KIND_BY_KEY,
    PlugIn,
    Unplug,
    WaitFor,
    load_plan,
    loads_plan,
)
from rig.v2g.slac import SlacTiming
from rig.v2g.vocabulary import SessionPhase
from rig.yamlsrc import SourceError, loads

REPO = Path(__file__).resolve().parents[2]

PLAN = """\
title: t
dut: evse
ev: {capacity: 60 kWh, soc: 60 %, reserve: 30 %}
link:
  slac: {ev_match_retry: 3, batch_msg_interval: 40 ms, evse_slac_init: 50 s}
  sdp: true
steps:
  - {at: 1 s, plug_in: {}}
  - wait_for: link_up
    timeout: 15 s
  - wait_for: charge_loop
  - session: stop
  - wait_for: stopped
  - unplug: {}
checks:
  - pilot_pwm: {}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(SourceError) as exc:
        loads_plan(text, "p.yaml")
    return [str(p) for p in exc.value.problems]


def test_link_and_the_cable_steps_parse_into_typed_values() -> None:
    plan = loads_plan(PLAN, "p.yaml")
    assert plan.link is not None
    assert dict(plan.link.slac) == {
        "ev_match_retry": 3,
        "batch_msg_interval": pytest.approx(0.04),
        "evse_slac_init": 50.0,
    }
    assert plan.link.sdp is True and plan.link.tls is None and plan.link.line == 4
    actions = [a for s in plan.steps for a in s.actions]
    assert actions[0] == PlugIn() and actions[-1] == Unplug()
    assert actions[1] == WaitFor(LINK_UP, None, 15.0)
    assert actions[2] == WaitFor(SessionPhase.CHARGE_LOOP, None, 60.0)
    # The overrides are what SlacTiming takes.
    timing = SlacTiming().overridden(plan.link.slac)
    assert timing.ev_match_retry == 3 and timing.batch_msg_interval == pytest.approx(0.04)


def test_the_step_table_declares_the_cable_steps() -> None:
    for key, action in (("plug_in", PlugIn), ("unplug", Unplug)):
        kind = STEP_KIND_BY_KEY[key]
        assert KIND_OF_ACTION[action] is kind and kind.summary and not kind.blocking
        assert kind.needs_roles == ()  # the emulated bench has no pilot instrument: no skip
    assert "link_up" in STEP_KIND_BY_KEY["wait_for"].summary


def test_tls_may_be_forced_either_way_and_sdp_defaults_to_direct() -> None:
    on = loads_plan(PLAN.replace("  sdp: true\n", "  tls: true\n"), "p.yaml").link
    off = loads_plan(PLAN.replace("  sdp: true\n", "  tls: false\n"), "p.yaml").link
    assert on is not None and on.tls is True and on.sdp is False
    assert off is not None and off.tls is False


def test_a_plan_without_link_has_none_and_its_steps_are_as_before() -> None:
    plan = load_plan(REPO / "test_plans/conformance/charge_loop_timing.yaml")
    assert plan.link is None
    assert not any(isinstance(a, PlugIn | Unplug) for s in plan.steps for a in s.actions)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "evse_slac_init: 50 s",
            "evse_slac_init: 50 s, match_responce: 1 s",
            "p.yaml:5: link.slac.match_responce: unknown SLAC timing; did you mean 'match_response'?",
        ),
        (
            "batch_msg_interval: 40 ms",
            "batch_msg_interval: 40",
            "p.yaml:5: link.slac.batch_msg_interval: 40 has no unit",
        ),
        (
            "ev_match_retry: 3",
            "ev_match_retry: 2 s",
            "p.yaml:5: link.slac.ev_match_retry: a count is a whole number, got '2 s'",
        ),
        (
            "ev_match_retry: 3",
            "ev_match_retry: 1000",
            "p.yaml:5: link.slac.ev_match_retry: 1000 is outside 0..100",
        ),
        (
            "ev_match_retry: 3",
            "ev_match_mnbc: 0",
            "p.yaml:5: link.slac.ev_match_mnbc: 0 is outside 1..100",
        ),
        (
            "evse_slac_init: 50 s",
            "evse_slac_init: 0 s",
            "p.yaml:5: link.slac.evse_slac_init: a SLAC timer is more than 0 s and at most 600 s",
        ),
        ("  sdp: true", "  sdp: maybe", "p.yaml:6: link.sdp: expected true or false, got 'maybe'"),
        ("  sdp: true", "  tls: 1", "p.yaml:6: link.tls: expected true or false, got 1"),
        ("  sdp: true", "  sdpp: true", "p.yaml:6: link.sdpp: unknown field; did you mean 'sdp'?"),
        (
            "  slac: {ev_match_retry: 3, batch_msg_interval: 40 ms, evse_slac_init: 50 s}",
            "  slac: 3",
            "p.yaml:5: link.slac: expected a mapping of SLAC timings, got int",
        ),
        (
            "link:\n  slac: {ev_match_retry: 3, batch_msg_interval: 40 ms, evse_slac_init: 50 s}\n"
            "  sdp: true\n",
            "link: true\n",
            "p.yaml:4: link: expected a mapping like {slac: {}, sdp: true}, got a boolean",
        ),
        (
            "{at: 1 s, plug_in: {}}",
            "{at: 1 s, plug_in: now}",
            "p.yaml:8: steps[0].plug_in: takes no parameters: write plug_in: {}",
        ),
        (
            "  - unplug: {}\n",
            "  - unplug: {}\n  - unplug: {}\n",
            "p.yaml:15: steps[6].unplug: already unplugged at line 14",
        ),
        (
            "  - {at: 1 s, plug_in: {}}\n",
            "  - unplug: {}\n  - {at: 1 s, plug_in: {}}\n",
            "p.yaml:8: steps[0].unplug: unplug before the EV was plugged in (plug_in: {})",
        ),
        (
            "  - unplug: {}\n",
            "  - unplug: {}\n  - plug_in: {}\n",
            "p.yaml:15: steps[6].plug_in: the EV is plugged in once per plan (already at line 8); "
            "plugging in again is not supported",
        ),
        (
            "  - {at: 1 s, plug_in: {}}\n  - wait_for: link_up\n    timeout: 15 s\n",
            "  - wait_for: link_up\n    timeout: 15 s\n  - {at: 1 s, plug_in: {}}\n",
            "p.yaml:8: steps[0].wait_for: waits for the link while the EV is not plugged in",
        ),
        (
            "  - session: stop\n",
            "  - session: start\n",
            "p.yaml:12: steps[3].session: with link:, the session starts when the link is up "
            "(wait_for: link_up); remove session: start",
        ),
        (
            "  - {at: 1 s, plug_in: {}}\n",
            "  - {at: 1 s, mark: here}\n",
            "p.yaml:4: link: a plan with link: plugs the EV in: add a step {plug_in: {}}",
        ),
        (
            "wait_for: link_up",
            "wait_for: link_upp",
            "p.yaml:9: steps[1].wait_for: 'link_upp' is not one of",
        ),
    ],
)
def test_a_malformed_link_or_cable_step_names_file_line_and_field(
    old: str, new: str, expected: str
) -> None:
    assert old in PLAN
    problems = _problems(PLAN.replace(old, new))
    assert any(p.startswith(expected) for p in problems), problems


def test_cable_steps_without_link_are_refused_where_they_stand() -> None:
    text = PLAN.split("link:")[0] + "steps:" + PLAN.split("steps:")[1]
    problems = _problems(text)
    assert problems == [
        "p.yaml:5: steps[0].plug_in: plug_in needs the plan's link: section (the cable sequence)",
        "p.yaml:6: steps[1].wait_for: wait_for: link_up needs the plan's link: section "
        "(the cable sequence)",
        "p.yaml:11: steps[5].unplug: unplug needs the plan's link: section (the cable sequence)",
    ]


def test_rig_validate_exits_2_on_a_bad_link_and_passes_the_link_plans(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(PLAN.replace("batch_msg_interval: 40 ms", "batch_msg_intervall: 40 ms"))
    assert main(["validate", str(bad)]) == 2
    out = capsys.readouterr().out
    assert f"{bad}:5: link.slac.batch_msg_intervall: unknown SLAC timing" in out
    good = [
        str(REPO / "test_plans/link"),
        str(REPO / "fixtures/plans/cable_sequence_ev.yaml"),
        str(REPO / "fixtures/benches/lab-link-example.yaml"),
    ]
    assert main(["validate", *good]) == 0, capsys.readouterr().out
    assert "2 plan(s), 1 bench file(s) OK" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ the bench
BENCH = """\
dut: {side: evse, name: wallbox, emulated: false}
link:
  interface: eth1
  modem: "00:b0:52:00:00:01"
instruments:
  pilot: {role: control_pilot, model: rig_pilot_box, address: "TCPIP::192.0.2.25::5025::SOCKET", side: ev}
"""


def _bench_problems(text: str) -> list[str]:
    with pytest.raises(SourceError) as exc:
        bench_from_source(loads(text, "b.yaml"))
    return [str(p) for p in exc.value.problems]


def test_the_example_bench_names_its_modem_interface() -> None:
    bench = load_bench(REPO / "fixtures/benches/lab-link-example.yaml")
    assert bench.link is not None and bench.link.interface == "eth1"
    assert bench.link.modem_mac == bytes.fromhex("00b052000001") and bench.link.ev_mac is None
    assert bench.link.pilot_poll_s == pytest.approx(0.02)
    assert not bench.dut.emulated  # a real EVSE found by SDP on the link: no address needed
    # Documentation addresses only: the example is never connected.
    assert all("192.0.2." in i.address for i in bench.instruments)
    assert load_bench(REPO / "fixtures/benches/emulated.yaml").link is None


def test_a_bench_link_with_an_ev_mac_parses() -> None:
    bench = bench_from_source(
        loads(BENCH.replace("  modem:", '  ev_mac: "02-00-00-00-EE-01"\n  modem:'), "b.yaml")
    )
    assert bench.link is not None and bench.link.ev_mac == bytes.fromhex("02000000ee01")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            '"00:b0:52:00:00:01"',
            '"00:b0:52:00:00"',
            "b.yaml:4: link.modem: '00:b0:52:00:00' is not a MAC address like 00:b0:52:00:00:01",
        ),
        ("  interface: eth1\n", "", "b.yaml:2: link.interface: missing: the modem's Ethernet"),
        (
            "eth1",
            "eth1 with/slash",
            "b.yaml:3: link.interface: 'eth1 with/slash' is not a network interface name",
        ),
        ('  modem: "00:b0:52:00:00:01"\n', "", "b.yaml:2: link.modem: missing: the modem's MAC"),
        (
            '  modem: "00:b0:52:00:00:01"\n',
            '  modem: "00:b0:52:00:00:01"\n  pilot_poll: 5 s\n',
            "b.yaml:5: link.pilot_poll: must be between 1 ms and 1 s",
        ),
        (
            '  modem: "00:b0:52:00:00:01"\n',
            '  modem: "00:b0:52:00:00:01"\n  iface: eth2\n',
            "b.yaml:5: link.iface: unknown field; known: interface, modem, ev_mac, pilot_poll",
        ),
        (
            "emulated: false",
            "emulated: true",
            "b.yaml:2: link: an emulated DUT's cable is emulated",
        ),
        (
            'link:\n  interface: eth1\n  modem: "00:b0:52:00:00:01"\n',
            "link: eth1\n",
            "b.yaml:2: link: expected a mapping {interface, modem, ev_mac}",
        ),
    ],
)
def test_a_malformed_bench_link_names_file_line_and_field(
    old: str, new: str, expected: str
) -> None:
    assert old in BENCH
    problems = _bench_problems(BENCH.replace(old, new))
    assert any(p.startswith(expected) for p in problems), problems


def test_rig_validate_exits_2_on_a_bad_bench_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bench.yaml"
    bad.write_text(BENCH.replace('"00:b0:52:00:00:01"', "nope"))
    assert main(["validate", str(bad)]) == 2
    assert f"{bad}:4: link.modem: 'nope' is not a MAC address" in capsys.readouterr().out
