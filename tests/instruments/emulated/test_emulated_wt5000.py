"""The emulated WT5000: wiring to World points, NUMeric group, one update at a time, errors."""

from __future__ import annotations

import math

import pytest
from world_double import Clock, FakeWorld

from instruments.emulated.scpi import Blocked
from instruments.emulated.wt5000 import WT5000Twin

IDEAL = {"noise": False}


@pytest.fixture
def wt(world: FakeWorld, clock: Clock) -> WT5000Twin:
    return WT5000Twin(world, clock.now, serial="91N000001", options=IDEAL)


def configure(wt: WT5000Twin, items: str) -> None:
    names = items.split(";")
    wt.handle(f":NUM:FORM ASCII;:NUM:NORM:NUMB {len(names)}")
    for index, item in enumerate(names, start=1):
        wt.handle(f":NUM:NORM:ITEM{index} {item}")


def values(wt: WT5000Twin, clock: Clock, *, after: float = 1.1) -> list[float]:
    """Let `after` seconds pass (more than an update at the default 500 ms), then read."""
    clock.t += after
    reply = wt.handle(":NUMeric:NORMal:VALue?")
    assert reply is not None
    return [float(v) for v in reply.split(",")]


def test_idn_carries_the_serial(wt: WT5000Twin) -> None:
    assert wt.handle("*IDN?") == "YOKOGAWA,WT5000,91N000001,F1.01"


def test_every_message_first_advances_the_world_to_now(
    wt: WT5000Twin, world: FakeWorld, clock: Clock
) -> None:
    clock.t = 12.5
    wt.handle("*OPC?")
    clock.t = 13.0
    wt.handle(":NUM:FORM?")
    assert world.advanced[-2:] == [12.5, 13.0]


def test_ac_elements_read_the_world_points(wt: WT5000Twin, world: FakeWorld, clock: Clock) -> None:
    world.home_on, world.home_p_w, world.home_q_var = True, 3000.0, 400.0
    configure(wt, "URMS,3;IRMS,3;P,3;Q,3;S,3;LAMBDA,3;FU,3;P,1")
    u, i, p, q, s, pf, f, grid_p = values(wt, clock)
    assert (u, p, q, f, grid_p) == (230.0, 3000.0, 400.0, 50.0, 3000.0)
    assert s == pytest.approx(math.hypot(3000, 400), rel=1e-5)
    assert i == pytest.approx(s / 230, rel=1e-5)
    assert pf == pytest.approx(3000 / s, rel=1e-5)


def test_the_dc_element_reads_the_battery_terminals_in_the_rig_sign(
    wt: WT5000Twin, world: FakeWorld, clock: Clock
) -> None:
    world.dc_output, world.evse_p_w = True, -7000.0  # discharging
    configure(wt, "UDC,4;IDC,4;P,4;FU,4")
    udc, idc, p, f = values(wt, clock)
    assert (udc, idc, p) == (400.0, -17.5, -7000.0)
    assert math.isnan(f)


def test_a_reading_is_the_average_over_the_update_not_the_instant(
    wt: WT5000Twin, world: FakeWorld, clock: Clock
) -> None:
    wt.handle(":RATE 100MS")  # the cycle restarts now: updates end at 0.1, 0.2, ...
    configure(wt, "P,3;URMS,3")
    world.home_on, world.home_p_w = True, 1000.0
    clock.t = 1.0
    wt.handle("*OPC?")  # the World records the 1 kW load until 1.05 s
    clock.t = 1.05
    world.home_p_w = 3000.0
    wt.handle("*OPC?")
    clock.t = 1.101  # just after the update ending at 1.1 s (plus its jitter of < 0.5 ms)
    p, u = values(wt, clock, after=0.0)
    # Update 11 averaged 1.0 .. 1.1 s: half at 1 kW, half at 3 kW.
    assert p == pytest.approx(2000.0, rel=1e-5) and u == 230.0


def test_a_fast_poll_reads_the_same_update_until_the_next_one_ends(
    wt: WT5000Twin, world: FakeWorld, clock: Clock
) -> None:
    wt.handle(":RATE 100MS")
    configure(wt, "P,3")
    world.home_on, world.home_p_w = True, 1000.0
    first = values(wt, clock, after=1.0)
    world.home_p_w = 2000.0
    assert values(wt, clock, after=0.01) == first  # same update, new timestamp
    assert values(wt, clock, after=0.2) != first


def test_wait_blocks_until_the_end_of_the_next_update(wt: WT5000Twin, clock: Clock) -> None:
    wt.handle(":RATE 50MS;:STAT:FILT1 FALL")
    clock.t = 1.0
    assert wt.handle(":STAT:EESR?") == "1"  # updates ended since power-on
    assert wt.handle(":STAT:EESR?") == "0"  # read and cleared
    assert wt.handle(":COMM:WAIT 1") is None
    assert wt.blocked_until is not None and 1.0 < wt.blocked_until <= 1.0 + 0.05 + 0.0005
    clock.t = wt.blocked_until
    assert wt.resume() is None and wt.blocked_until is None
    assert wt.handle(":COMM:WAIT? 1") == "1"  # the event is set: no wait
    assert wt.handle(":STAT:EESR?") == "1"
    assert wt.errors == []


def test_without_the_transition_filter_a_wait_never_ends_by_itself(wt: WT5000Twin) -> None:
    wt.handle(":COMM:WAIT 1")
    first = wt.blocked_until
    assert first is not None
    assert wt.resume(forced=True) is None and wt.blocked_until is None  # a forced release


def test_a_rate_the_model_lacks_is_refused(wt: WT5000Twin) -> None:
    wt.handle(":RATE 30MS")
    assert wt.errors[0][0] == -224
    assert wt.handle(":RATE?") == "5.000E-01"


def test_fixed_ranges_clip_to_overrange(wt: WT5000Twin, world: FakeWorld, clock: Clock) -> None:
    wt.handle(":INP:VOLT:RANG:ELEM1 150V;:INP:CURR:RANG:ELEM1 1A")
    assert wt.handle(":INP:VOLT:RANG:ELEM1?;:INP:VOLT:AUTO:ELEM1?") == "1.500E+02;0"
    world.home_on, world.home_p_w = True, 100.0
    configure(wt, "URMS,1;IRMS,1")
    u, i = values(wt, clock)
    assert u == math.inf  # 230 V on the 150 V range: beyond 140 % of it
    assert i == pytest.approx(100 / 230, rel=1e-5)


def test_noise_gives_each_seed_its_own_small_errors(clock: Clock) -> None:
    readings = []
    for seed in (1, 1, 2):
        world = FakeWorld(seed=seed)
        world.home_on, world.home_p_w = True, 3000.0
        twin = WT5000Twin(world, clock.now)
        configure(twin, "URMS,3;P,3")
        readings.append(values(twin, clock))
    assert readings[0] == readings[1] and readings[0] != readings[2]
    for u, p in readings:
        assert u == pytest.approx(230.0, rel=1e-3) and p == pytest.approx(3000.0, rel=1e-3)
        assert (u, p) != (230.0, 3000.0)


def test_unset_items_read_nan_and_unwired_elements_zero(wt: WT5000Twin) -> None:
    configure(wt, "URMS,7;NONE")
    assert wt.handle(":NUM:VAL?") == "0.00000E+00,NAN"


def test_item_query_and_single_value_query(wt: WT5000Twin, clock: Clock) -> None:
    configure(wt, "URMS,1;LAMB,2")
    assert wt.handle(":NUMERIC:NORMAL:ITEM2?") == "LAMBDA,2"
    clock.t = 1.1
    assert wt.handle(":NUM:VAL? 1") == "2.30000E+02"


def test_float_format_is_refused_as_not_emulated(wt: WT5000Twin) -> None:
    wt.handle(":NUM:FORM FLOAT")
    assert wt.handle(":STATus:ERRor?") == '-221,"Settings conflict;FLOAT format not emulated"'
    assert wt.numeric_format == "ASCII"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (":NUM:NORM:ITEM1 WATTS,1", -224),
        (":NUM:NORM:ITEM1 URMS,8", -222),
        (":NUM:NORM:NUMB 0", -222),
        (":NUM:NORM:ITEM256 URMS,1", -114),
        (":INP:VOLT:RANG:ELEM8 300V", -114),
        ("SYST:ERR?", -113),  # a WT reads its errors with :STATus:ERRor?
    ],
)
def test_bad_settings_queue_scpi_errors(wt: WT5000Twin, message: str, code: int) -> None:
    wt.handle(message)
    assert wt.errors[0][0] == code


def test_the_error_queue_is_bounded_and_reports_its_overflow(wt: WT5000Twin) -> None:
    for _ in range(25):
        wt.handle(":NUM:NORM:NUMB 0")
    assert len(wt.errors) == wt.error_queue_length
    assert wt.errors[-1] == (-350, "Queue overflow")


def test_wiring_comes_from_options(world: FakeWorld, clock: Clock) -> None:
    wt = WT5000Twin(world, clock.now, options={"elements": {"2": "home"}, "dc_elements": []})
    assert wt.wiring == {2: "home"} and not wt.dc_elements
    with pytest.raises(ValueError, match="unknown option"):
        WT5000Twin(world, clock.now, options={"wiring": {}})


def test_blocked_is_a_signal_with_its_time() -> None:
    assert Blocked(1.5).until == 1.5
