"""islanding on hand-made traces: each way it used to pass vacuously now says why it cannot pass,
and the matching good case still passes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from tracebuild import INSTRUMENTS, TraceBuilder, context, run

from rig.checks.uncertainty import Instrumentation

V = 230.0
I_RATED = 11_000.0 / V
LOSS = 10.0


def following(
    *,
    clear_at: float = 10.3,
    export_w: float = 3000.0,
    end: float = 25.0,
    step: float = 0.01,
    recorded: float | None = 0.0,
) -> TraceBuilder:
    """A grid-following EVSE exporting `export_w` until the loss at 10 s, then energized until
    `clear_at`."""
    t = np.round(np.arange(0.0, end + 1e-9, step), 6)
    live = t < clear_at
    b = TraceBuilder().sample(
        t,
        power_analyzer__evse_ac__v_rms=np.where(live, V, 0.0),
        power_analyzer__evse_ac__i_rms=np.where(live, export_w / V, 0.0),
        power_analyzer__evse_ac__p_w=np.where(live, -export_w, 0.0),
    )
    return b.grid_off(LOSS, recorded=recorded)


def test_a_clearing_within_the_limit_passes_with_its_uncertainty() -> None:
    verdict = run("islanding", following().trace)["islanding:grid_following"]
    assert verdict.verdict == "pass"
    assert verdict.measured == pytest.approx(0.3, abs=0.011)
    # 10 ms readings, 10 ms analyzer updates (two of them), 0.5 ms update jitter.
    assert verdict.uncertainty == pytest.approx(0.01 + 0.02 + 0.0005, abs=1e-6)
    assert verdict.relation is not None and verdict.relation.value == "≤"
    assert "exporting 3000 W (0.27 p.u.)" in verdict.detail


def test_a_unit_still_energized_fails() -> None:
    verdict = run("islanding", following(clear_at=99.0).trace)["islanding:grid_following"]
    assert verdict.verdict == "fail" and "still energized" in verdict.detail


def test_exporting_nothing_when_the_grid_went_away_is_not_judged() -> None:
    verdict = run("islanding", following(export_w=0.0).trace)["islanding:grid_following"]
    assert verdict.verdict == "not judged" and "exported 0 W" in verdict.detail


def test_the_stated_output_level_must_hold_at_the_loss() -> None:
    at_level = run("islanding", following().trace, output_level=0.27)
    assert at_level["islanding:grid_following"].verdict == "pass"
    low = run("islanding", following(export_w=1000.0).trace, output_level=0.27)
    assert low["islanding:grid_following"].verdict == "not judged"
    assert "± 0.05 p.u." in low["islanding:grid_following"].detail


def test_a_plan_that_stops_watching_right_after_the_loss_is_not_judged() -> None:
    short = run("islanding", following(end=10.5).trace)["islanding:grid_following"]
    assert short.verdict == "not judged" and "watched 0.50 s" in short.detail
    # The limit plus the 10 s the procedure sustains an island: 12 s are enough.
    assert run("islanding", following(end=22.1).trace)["islanding:grid_following"].verdict == (
        "pass"
    )


def test_no_record_that_the_grid_went_away_is_an_error_and_a_grid_that_stayed_is_not_judged() -> (
    None
):
    unknown = run("islanding", following(recorded=None).trace)["islanding:grid_following"]
    assert unknown.verdict == "error" and "grid_simulator.output_on" in unknown.detail
    stayed = run("islanding", following(recorded=1.0).trace)["islanding:grid_following"]
    assert stayed.verdict == "not judged" and "never went away" in stayed.detail


def test_missing_readings_that_could_hide_an_energized_island_are_an_error() -> None:
    b = following(clear_at=10.3)
    trace = b.trace
    # The analyzer stopped answering from 10.1 s to 13 s: whatever happened there is unseen.
    for name in ("power_analyzer.evse_ac.v_rms", "power_analyzer.evse_ac.i_rms"):
        t, v = trace._t[name], trace._v[name]
        for k, x in enumerate(t):
            if 10.1 <= x < 13.0:
                v[k] = float("nan")
    verdict = run("islanding", trace)["islanding:grid_following"]
    assert verdict.verdict == "error"
    assert "power_analyzer.evse_ac.v_rms: no valid reading for 2.9" in verdict.detail


def test_rms_over_slow_updates_cannot_judge_an_instantaneous_criterion() -> None:
    slow = Instrumentation(
        {
            name: dataclasses.replace(spec, update_interval_s=0.05)
            for name, spec in INSTRUMENTS.channels.items()
        }
    )
    verdict = run("islanding", following().trace, context(instrumentation=slow))
    assert verdict["islanding:grid_following"].verdict == "error"
    assert "per-cycle data" in verdict["islanding:grid_following"].detail


def test_readings_too_sparse_for_the_limit_are_an_error() -> None:
    sparse = run("islanding", following(step=0.5).trace)["islanding:grid_following"]
    assert sparse.verdict == "error" and "needs at most 100 ms" in sparse.detail


# ------------------------------------------------------------------------------ grid-forming
def forming(
    *,
    dark: tuple[float, float] = (10.0, 10.15),
    frequency: float = 50.0,
    grid_v_after: float = 0.0,
    blackout: tuple[float, float] | None = None,
    step: float = 0.01,
    end: float = 40.0,
) -> TraceBuilder:
    """The home dark over `dark`, then carried at `frequency`; the grid point at `grid_v_after`
    from the end of the dark spell; an optional later blackout."""
    t = np.round(np.arange(0.0, end + 1e-9, step), 6)
    lit = ~((t >= dark[0]) & (t < dark[1]))
    if blackout is not None:
        lit &= ~((t >= blackout[0]) & (t < blackout[1]))
    island = t >= dark[1]
    b = TraceBuilder().sample(
        t,
        power_analyzer__home__v_rms=np.where(lit, V, 0.0),
        power_analyzer__home__f_hz=np.where(lit, np.where(island, frequency, 50.0), np.nan),
        power_analyzer__grid__v_rms=np.where(t < dark[0], V, np.where(island, grid_v_after, 0.0)),
    )
    return b.grid_off(LOSS)


def _forming(b: TraceBuilder) -> dict[str, str]:
    verdicts = run("islanding", b.trace, mode="grid_forming", transfer_within=0.2)
    return {k: v.verdict for k, v in verdicts.items()}


def test_a_prompt_transfer_that_separates_the_home_passes() -> None:
    verdicts = run("islanding", forming().trace, mode="grid_forming", transfer_within=0.2)
    assert {k: v.verdict for k, v in verdicts.items()} == {
        "islanding:grid_forming": "pass",
        "islanding:grid_forming:backfeed": "pass",
    }
    assert verdicts["islanding:grid_forming"].measured == pytest.approx(0.15, abs=0.011)


def test_a_unit_that_never_separates_and_backfeeds_the_dead_grid_fails() -> None:
    # Never detects the island: the home never goes dark and the grid point stays energized.
    b = forming(dark=(10.0, 10.0), grid_v_after=V)
    assert _forming(b) == {
        "islanding:grid_forming": "pass",
        "islanding:grid_forming:backfeed": "fail",
    }


def test_an_island_at_45_hz_fails() -> None:
    assert _forming(forming(frequency=45.0))["islanding:grid_forming"] == "fail"
    assert _forming(forming(frequency=50.3))["islanding:grid_forming"] == "pass"


def test_a_blackout_between_two_1_s_readings_cannot_pass() -> None:
    # Dense around the loss (the runner's fast window), one reading a second afterwards.
    dense = forming(end=15.0, blackout=(25.4, 25.7))
    late = np.arange(16.0, 41.0, 1.0)
    dense.sample(
        late,
        power_analyzer__home__v_rms=V,
        power_analyzer__home__f_hz=50.0,
        power_analyzer__grid__v_rms=0.0,
    )
    verdicts = run("islanding", dense.trace, mode="grid_forming", transfer_within=0.2)
    assert verdicts["islanding:grid_forming"].verdict == "error"
    assert "a blackout as long as the 200 ms limit could hide" in (
        verdicts["islanding:grid_forming"].detail
    )


def test_a_blackout_seen_by_dense_readings_fails_and_none_passes() -> None:
    assert _forming(forming(blackout=(25.4, 25.7)))["islanding:grid_forming"] == "fail"
    assert _forming(forming())["islanding:grid_forming"] == "pass"


def test_a_plan_without_a_grid_loss_is_not_judged() -> None:
    t = np.arange(0.0, 5.0, 0.1)
    b = TraceBuilder().sample(
        t, power_analyzer__evse_ac__v_rms=V, power_analyzer__evse_ac__i_rms=1.0
    )
    verdict = run("islanding", b.trace)["islanding:grid_following"]
    assert verdict.verdict == "not judged"
