"""A link plan on a real bench that cannot run its cable says why, before any session: no `link:`
in the bench file, a modem interface that does not exist, a pilot without the EV's side. The
pilot box is its twin served on loopback (the bench reaches it through pyvisa-py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from instruments.emulated.pilot_box import PilotBoxTwin
from instruments.emulated.server import ServerHandle, serve
from rig.bench import load_bench
from rig.plan import load_plan
from rig.runner import execute
from rig.sim import World, WorldConfig

REPO = Path(__file__).resolve().parents[2]
PLAN = load_plan(REPO / "fixtures/plans/cable_veth.yaml")


@pytest.fixture
def pilot_box() -> Iterator[ServerHandle]:
    twin = PilotBoxTwin(World(WorldConfig(), seed=1), lambda: 0.0, serial="EMU-PILOT")
    handle = serve({"pilot": twin}, host="127.0.0.1")
    try:
        yield handle
    finally:
        handle.close()


def _bench(tmp_path: Path, address: str, *, link: str, side: str = "ev") -> Path:
    path = tmp_path / "bench.yaml"
    path.write_text(
        f"""\
dut: {{side: evse, name: wallbox, emulated: false, address: "::1", port: 1}}
{link}
instruments:
  pilot: {{role: control_pilot, model: rig_pilot_box, address: "{address}", side: {side}}}
""",
        encoding="utf-8",
    )
    return path


def _error(bench: Path) -> str:
    result = execute(PLAN, load_bench(bench), seed=1)
    assert result.verdict == "error" and result.error is not None
    assert result.messages == 0  # no session was started
    return result.error


def test_a_bench_without_link_cannot_run_a_link_plan(
    tmp_path: Path, pilot_box: ServerHandle
) -> None:
    error = _error(_bench(tmp_path, pilot_box.address("pilot"), link=""))
    assert "cable_veth.yaml:9: link: on a real bench needs the bench file's link:" in error


def test_a_modem_interface_that_does_not_exist_is_named(
    tmp_path: Path, pilot_box: ServerHandle
) -> None:
    link = 'link: {interface: nosuchif0, modem: "00:b0:52:00:00:01"}'
    error = _error(_bench(tmp_path, pilot_box.address("pilot"), link=link))
    assert "cannot open a packet socket on nosuchif0 for SLAC" in error


def test_a_pilot_box_on_the_evse_side_is_refused(tmp_path: Path, pilot_box: ServerHandle) -> None:
    link = 'link: {interface: lo, modem: "00:b0:52:00:00:01"}'
    error = _error(_bench(tmp_path, pilot_box.address("pilot"), link=link, side="evse"))
    assert "the rig plays the EV here: its pilot needs the EV side" in error
