"""The emulated WT5000: wiring to World points, NUMeric group, time flow, errors."""

from __future__ import annotations

import math

import pytest
from world_double import Clock, FakeWorld

from instruments.emulated.wt5000 import WT5000Twin


@pytest.fixture
def wt(world: FakeWorld, clock: Clock) -> WT5000Twin:
    return WT5000Twin(world, clock.now, serial="91N000001")


def configure(wt: WT5000Twin, items: str) -> None:
    names = items.split(";")
    wt.handle(f":NUM:FORM ASCII;:NUM:NORM:NUMB {len(names)}")
    for index, item in enumerate(names, start=1):
        wt.handle(f":NUM:NORM:ITEM{index} {item}")


def values(wt: WT5000Twin) -> list[float]:
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


def test_ac_elements_read_the_world_points(wt: WT5000Twin, world: FakeWorld) -> None:
    world.home_on, world.home_p_w, world.home_q_var = True, 3000.0, 400.0
    configure(wt, "URMS,3;IRMS,3;P,3;Q,3;S,3;LAMBDA,3;FU,3;P,1")
    u, i, p, q, s, pf, f, grid_p = values(wt)
    assert (u, p, q, f, grid_p) == (230.0, 3000.0, 400.0, 50.0, 3000.0)
    assert s == pytest.approx(math.hypot(3000, 400), rel=1e-5)
    assert i == pytest.approx(s / 230, rel=1e-5)
    assert pf == pytest.approx(3000 / s, rel=1e-5)


def test_the_dc_element_reads_the_battery_terminals_in_the_rig_sign(
    wt: WT5000Twin, world: FakeWorld
) -> None:
    world.dc_output, world.evse_p_w = True, -7000.0  # discharging
    configure(wt, "UDC,4;IDC,4;P,4;FU,4")
    udc, idc, p, f = values(wt)
    assert (udc, idc, p) == (400.0, -17.5, -7000.0)
    assert math.isnan(f)


def test_unset_items_read_nan_and_unwired_elements_zero(wt: WT5000Twin) -> None:
    configure(wt, "URMS,7;NONE")
    assert wt.handle(":NUM:VAL?") == "0.00000E+00,NAN"


def test_item_query_and_single_value_query(wt: WT5000Twin) -> None:
    configure(wt, "URMS,1;LAMB,2")
    assert wt.handle(":NUMERIC:NORMAL:ITEM2?") == "LAMBDA,2"
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
        ("SYST:ERR?", -113),  # a WT reads its errors with :STATus:ERRor?
    ],
)
def test_bad_settings_queue_scpi_errors(wt: WT5000Twin, message: str, code: int) -> None:
    wt.handle(message)
    assert wt.errors[0][0] == code


def test_wiring_comes_from_options(world: FakeWorld, clock: Clock) -> None:
    wt = WT5000Twin(world, clock.now, options={"elements": {"2": "home"}, "dc_elements": []})
    assert wt.wiring == {2: "home"} and not wt.dc_elements
    with pytest.raises(ValueError, match="unknown option"):
        WT5000Twin(world, clock.now, options={"wiring": {}})
