"""The World's state history and the instantaneous waveforms synthesized from it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sim_helpers import MakeWorld

from rig.sim import World, WorldConfig, balanced_rlc
from rig.sim.history import INPUTS, StateHistory
from rig.sim.waveform import Probe, Quantity, sample_times, synthesize


def row(**values: float) -> tuple[float, ...]:
    """A history row: 230 V / 50 Hz connected bus, everything else zero unless given."""
    base = dict.fromkeys(INPUTS, 0.0)
    base.update(bus_v=230.0, bus_f=50.0, grid_v=230.0, grid_f=50.0, source_on=1.0, connected=1.0)
    base.update(values)
    return tuple(base[name] for name in INPUTS)


def history(*rows: tuple[float, tuple[float, ...]]) -> StateHistory:
    h = StateHistory(100.0)
    for t, values in rows:
        h.record(t, values)
    return h


# --- the history ------------------------------------------------------------------------------


def test_a_second_row_at_one_instant_replaces_the_first() -> None:
    h = history((0.0, row(home_p=100.0)), (1.0, row(home_p=200.0)), (1.0, row(home_p=300.0)))
    assert len(h) == 2 and h.state_at(1.5)["home_p"] == 300.0
    with pytest.raises(ValueError, match="forward"):
        h.record(0.5, row())


def test_averages_weight_each_row_by_its_time_in_the_window() -> None:
    h = history((0.0, row(home_p=1000.0)), (1.0, row(home_p=3000.0, bus_v=0.0, bus_f=0.0)))
    average = h.average_ac("home", 0.5, 1.5)
    assert average.p_w == pytest.approx(2000.0)
    assert average.v_rms == pytest.approx(230.0 / math.sqrt(2))  # RMS over the window
    assert average.f_hz == pytest.approx(50.0)  # frequency only while energized
    assert h.average_ac("home", 5.0, 5.0).p_w == 3000.0  # a zero window reads the instant


def test_a_window_before_the_first_row_reads_the_first_row() -> None:
    h = history((10.0, row(home_p=500.0)))
    assert h.average_ac("home", 0.0, 1.0).p_w == 500.0


def test_old_rows_are_dropped_beyond_the_span_keeping_the_one_in_force() -> None:
    h = StateHistory(1.0)
    for k in range(10_000):
        h.record(k * 0.001, row(home_p=float(k)))
    assert h.start <= 10.0 - 1.0 and len(h) < 10_000
    assert h.state_at(9.0)["home_p"] == 9000.0


def test_angles_integrate_the_frequency_so_the_phase_is_continuous() -> None:
    h = history((0.0, row()), (0.013, row(bus_f=51.0, grid_f=51.0)))
    theta = h.state_at(0.013)["bus_theta"]
    assert theta == pytest.approx(math.fmod(2 * math.pi * 50.0 * 0.013, 2 * math.pi))


def test_the_world_records_its_solves_when_asked() -> None:
    world = World(WorldConfig(), seed=1)
    assert world.history is None
    h = world.record_history(10.0)
    world.enable_power_stage(True)
    world.command_setpoint(-3000.0)
    world.advance_to(2.0)
    assert world.history is h and h.end == 2.0 and len(h) > 100  # 1 ms substeps while moving
    assert h.average_ac("evse_ac", 1.9, 2.0).p_w == pytest.approx(-3000.0)
    assert h.average_dc("evse_dc", 1.9, 2.0).p_w < -3000.0  # the battery gives the losses too


# --- waveforms ---------------------------------------------------------------------------------


def test_voltage_is_the_rms_times_sqrt2_at_the_frequency() -> None:
    h = history((0.0, row()))
    t = sample_times(0.0, 10_000.0, 2000)
    v = synthesize(h, Probe.parse("home.v"), t)
    assert v.max() == pytest.approx(230.0 * math.sqrt(2), rel=1e-6)
    crossings = np.flatnonzero((v[:-1] < 0) & (v[1:] >= 0))
    assert np.diff(t[crossings]) == pytest.approx(np.full(crossings.size - 1, 0.02), abs=1.5e-4)


def test_current_lags_for_inductive_q_and_turns_round_when_exporting() -> None:
    t = sample_times(0.0, 100_000.0, 2000)
    h = history((0.0, row(home_p=2300.0, home_q=2300.0, evse_p=-2300.0)))
    v = synthesize(h, Probe("home", Quantity.VOLTAGE), t)
    i = synthesize(h, Probe("home", Quantity.CURRENT), t)
    assert i.max() == pytest.approx(math.hypot(2300, 2300) / 230 * math.sqrt(2), rel=1e-3)
    lag = (np.argmax(i) - np.argmax(v)) / 100_000.0
    assert lag == pytest.approx(0.02 / 8, abs=2e-5)  # 45 degrees behind
    export = synthesize(h, Probe("evse_ac", Quantity.CURRENT), t)
    assert np.corrcoef(export, v)[0, 1] == pytest.approx(-1.0, abs=1e-6)


def test_three_phases_are_120_degrees_apart() -> None:
    h = StateHistory(10.0, phases=3)
    h.record(0.0, row())
    t = sample_times(0.0, 100_000.0, 2000)
    phases = [synthesize(h, Probe.parse(f"grid.v{k}" if k > 1 else "grid.v"), t) for k in (1, 2, 3)]
    assert np.abs(sum(phases)).max() < 1e-9  # a balanced set sums to zero
    peaks = [int(np.argmax(p[:2000])) for p in phases]
    assert (peaks[1] - peaks[0]) % 2000 == pytest.approx(2000 / 3, abs=2)


def test_a_dead_rlc_island_rings_down_with_2rc() -> None:
    tank = balanced_rlc(3000.0)
    tau = 2.0 * tank.r_ohm * tank.c_f  # type: ignore[operator]
    h = history(
        (0.0, row(home_p=3000.0, decay_tau_s=tau, source_on=0.0, connected=0.0)),
        (0.1, row(bus_v=0.0, bus_f=0.0, grid_v=0.0, grid_f=0.0, decay_tau_s=tau, source_on=0.0,
                  connected=0.0)),
    )  # fmt: skip
    t = sample_times(0.1, 1_000_000.0, 200_000)
    v = synthesize(h, Probe.parse("home.v"), t)
    # The tank rings at the island's last frequency (its resonance), phase continuous.
    carrier = np.sin(2 * math.pi * 50.0 * t)
    strong = (np.abs(carrier) > 0.9) & (t < 0.1 + 5 * tau)
    envelope = v[strong] / carrier[strong]
    expected = 230.0 * math.sqrt(2) * np.exp(-(t[strong] - 0.1) / tau)
    np.testing.assert_allclose(envelope, expected, rtol=1e-9)
    assert np.abs(v[t > 0.1 + 13 * tau]).max() == 0.0
    assert np.abs(synthesize(h, Probe.parse("evse_ac.i"), t)).max() == 0.0


def test_a_ring_down_goes_on_through_later_dead_rows() -> None:
    dead = row(bus_v=0.0, bus_f=0.0, grid_v=0.0, grid_f=0.0, decay_tau_s=0.01, source_on=0.0,
               connected=0.0)  # fmt: skip
    h = history(
        (0.0, row(decay_tau_s=0.01, source_on=0.0, connected=0.0)), (0.1, dead), (0.105, dead)
    )
    t = sample_times(0.106, 100_000.0, 400)
    v = synthesize(h, Probe.parse("home.v"), t)
    assert np.abs(v).max() == pytest.approx(325.27 * math.exp(-0.006 / 0.01), rel=0.1)


def test_an_island_forms_and_collapses_in_the_world(make_world: MakeWorld) -> None:
    world = make_world()
    tank = balanced_rlc(3000.0)
    world.set_home_rlc(r_ohm=tank.r_ohm, l_h=tank.l_h, c_f=tank.c_f)
    h = world.record_history(30.0)
    world.command_setpoint(-3000.0)
    world.advance_to(5.0)
    world.set_grid_output(False)
    world.advance_to(7.0)
    t = sample_times(4.9, 50_000.0, 100_000)
    v = synthesize(h, Probe.parse("home.v"), t)
    assert np.abs(v[t < 5.0]).max() == pytest.approx(325.27, rel=1e-3)
    assert np.abs(v[(t > 5.05) & (t < 5.4)]).max() == pytest.approx(325.27, rel=0.02)
    assert np.abs(v[t > 5.7]).max() == 0.0  # detected after 0.5 s, ceased, rung down


@pytest.mark.parametrize("text", ["grid", "home.x", "evse_dc.v", "home.v4", "house.v"])
def test_probe_names_are_checked(text: str) -> None:
    with pytest.raises(ValueError):
        Probe.parse(text)


def test_a_probe_on_a_phase_the_bench_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="phase"):
        synthesize(history((0.0, row())), Probe.parse("grid.v2"), sample_times(0, 1e3, 10))
