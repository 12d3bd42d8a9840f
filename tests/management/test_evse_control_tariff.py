"""The tariff over the EVSE's control interface (SCPI, the rig's own commands): the driver
against its twin, which hands the committed tariff to the served EVSE's manager."""

from __future__ import annotations

import pytest

from instruments.emulated.evse_control import MAX_WINDOWS, EvseControlTwin
from instruments.rig.evse_control import EvseControl
from rig.day import DaySpec, Departure, Outage, PriceWindow, Profile, Tariff
from rig.emulators.evse import SimEvse
from rig.sim import World, WorldConfig
from rig.v2g.vocabulary import Service


class Wire:
    """A message-based resource straight onto a twin (no VISA): what the driver sends, the twin
    executes."""

    def __init__(self, twin: EvseControlTwin) -> None:
        self.twin = twin
        self.sent: list[str] = []

    def write(self, message: str) -> None:
        self.sent.append(message)
        self.twin.handle(message)

    def query(self, message: str) -> str:
        self.sent.append(message)
        return self.twin.handle(message) or ""

    def close(self) -> None:
        pass


def _day() -> DaySpec:
    return DaySpec(
        start_tod_s=17 * 3600.0,
        length_s=4 * 3600.0,
        resolution_s=60.0,
        tariff=Tariff(
            "EUR",
            (
                PriceWindow(0.0, 7200.0, 0.45, 0.05),
                PriceWindow(7200.0, 86_400.0, 0.2, 0.05),
            ),
        ),
        departure=Departure(4 * 3600.0, 40_000.0),
        home_w=Profile(60.0, (1000.0,) * 1440),
        pv_w=None,
        outages=(Outage(3600.0, 5400.0),),
    )


@pytest.fixture
def bench() -> tuple[EvseControl, EvseControlTwin, SimEvse, list[float]]:
    now = [100.0]
    world = World(WorldConfig())
    twin = EvseControlTwin(world, lambda: now[0], serial="EMU-CTRL")
    evse = SimEvse(world, (Service.DC_BPT,))
    twin.manager = evse.manage
    return EvseControl(Wire(twin)), twin, evse, now


def test_the_tariff_reaches_the_manager_from_the_commit(bench: tuple) -> None:
    driver, twin, evse, _ = bench
    driver.set_day(_day())
    policy = evse.policy
    assert policy is not None and twin.following_tariff
    # Seconds from the commit, at t = 100 s on the EVSE's clock.
    assert policy.tariff.windows[0].start_s == 100.0 and policy.tariff.import_at(150.0) == 0.45
    assert policy.tariff.import_at(7400.0) == 0.2
    assert [(o.start_s, o.end_s) for o in policy.outages] == [(3700.0, 5500.0)]
    driver.safe_state()
    assert evse.policy is None and not twin.following_tariff


def test_the_served_evse_s_seeded_management_defects_go_with_the_tariff(bench: tuple) -> None:
    """`rig emulate --serve --defect ignores_tariff` sets them on the control twin."""
    driver, twin, evse, _ = bench
    driver.set_day(_day())
    assert evse.policy is not None and evse.policy.defects == frozenset()
    twin.management_defects = ("ignores_tariff",)
    driver.set_day(_day())
    assert evse.policy is not None and evse.policy.defects == {"ignores_tariff"}


def test_a_manager_that_is_not_there_is_an_error(bench: tuple) -> None:
    driver, twin, _, _ = bench
    twin.manager = None
    with pytest.raises(RuntimeError, match="refused"):
        driver.set_day(_day())


def test_the_interface_bounds_what_it_accepts(bench: tuple) -> None:
    _, twin, _, _ = bench
    for k in range(MAX_WINDOWS):
        twin.handle(f"CONT:TAR:WIND {k},{k + 1},0.1,0.0")
    twin.handle(f"CONT:TAR:WIND {MAX_WINDOWS},{MAX_WINDOWS + 1},0.1,0.0")
    assert twin.handle("CONT:TAR:WIND:COUN?") == str(MAX_WINDOWS)
    assert not twin.handle("SYST:ERR?").startswith("0,")
    twin.handle("CONT:TAR:CLE")
    for bad in ("CONT:TAR:WIND 10,5,0.1,0", "CONT:TAR:WIND 0,5,nan,0", "CONT:OUT:WIND 9,9"):
        twin.handle(bad)
        assert not twin.handle("SYST:ERR?").startswith("0,"), bad
    twin.handle("CONT:TAR:COMM")  # no window
    assert not twin.handle("SYST:ERR?").startswith("0,")
    assert twin.handle("CONT:TAR:STAT?") == "0"


def test_anti_islanding_is_set_read_back_and_turned_on_again_by_the_safe_state(
    bench: tuple,
) -> None:
    control, twin, _, _ = bench
    evse = twin.world.evse
    control.set_island_detection(False)
    assert evse.anti_islanding is False and control.island_detection() is False
    assert twin.state()["anti_islanding"] is False
    control.safe_state()
    assert evse.anti_islanding is True and twin.state()["anti_islanding"] is True
    assert twin.handle("SYST:ERR?").startswith(("0,", "+0,"))
