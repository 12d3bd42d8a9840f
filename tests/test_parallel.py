"""`rig run -n N`: plans spread over pytest-xdist workers give the same verdicts and figures as a
serial run, in one record, one report and one junit, listed in the same order; plans are placed
longest first on the least-loaded worker."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rig.pytest_plugin import _plan_scheduling, plan_cost

REPO = Path(__file__).resolve().parent.parent


def _run(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rig", "run", "--out", str(out), "--seed", "5", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _figures(record: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            r["plan"],
            r["verdict"],
            r["simulated_s"],
            r["headline"],
            [
                (c["name"], c["verdict"], c["measured"], c["limit"], c["relation"])
                for c in r["checks"]
            ],
        )
        for r in record["runs"]
    ]


def test_two_workers_give_the_same_verdicts_and_measured_values_as_one_process(
    tmp_path: Path,
) -> None:
    serial, parallel = _run(tmp_path / "n0", "-n", "0"), _run(tmp_path / "n2", "-n", "2")
    assert serial.returncode == 0, serial.stdout + serial.stderr
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    one = json.loads((tmp_path / "n0/record.json").read_text())
    two = json.loads((tmp_path / "n2/record.json").read_text())
    assert len(one["runs"]) == 4 and _figures(one) == _figures(two)
    assert [r["plan"] for r in two["runs"]] == sorted(r["plan"] for r in two["runs"])
    assert one["instruments"] == two["instruments"] and one["dut"] == two["dut"]
    assert one["plans"] == two["plans"] and one["seed"] == two["seed"] == 5
    # The traces are the same measurement, sample for sample (teardown records carry wall times).
    for run in one["runs"]:
        name = run["trace"]
        a, b = (
            [line for line in (d / name).read_text().splitlines() if '"src":"runner"' not in line]
            for d in (tmp_path / "n0", tmp_path / "n2")
        )
        assert len(a) > 1000 and a[1:] == b[1:], name
    cases = [
        [(c.get("classname"), c.get("name")) for c in ET.parse(d / "junit.xml").iter("testcase")]
        for d in (tmp_path / "n0", tmp_path / "n2")
    ]
    assert cases[0] == cases[1] and len(cases[0]) == 4
    html = (tmp_path / "n2/report.html").read_text()
    assert (
        html.count("data:image/png;base64,") == 4 and "4 plan(s) on Embedded emulated bench" in html
    )


def test_a_plans_cost_grows_with_its_samples() -> None:
    plans = {p.stem: plan_cost(p) for p in (REPO / "test_plans/v2h").glob("*.yaml")}
    # The most samples and exchanges of the four plans, and the fewest.
    assert plans["grid_loss_backup"] == max(plans.values())
    assert plans["grid_loss_grid_following"] == min(plans.values())
    # A block plan costs its cases: the 5.10 procedure runs 54 known cases and more.
    procedure = plan_cost(REPO / "test_plans/islanding/ieee1547_1_5_10.yaml")
    assert procedure > 20 * max(plans.values())
    assert plan_cost(REPO / "no/such/plan.yaml") == 1500.0


class _Node:
    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.sent: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


class _Config:
    rootpath = REPO

    def getvalue(self, name: str) -> Any:
        return {"tx": ["2*popen"]}[name]

    def getoption(self, name: str) -> Any:
        return {"maxschedchunk": None}[name]


def test_few_plans_are_placed_longest_first_on_the_least_loaded_worker() -> None:
    ids = [
        f"test_plans/v2h/{p.name}::{p.stem}"
        for p in sorted((REPO / "test_plans/v2h").glob("*.yaml"))
    ]
    cost = {i: plan_cost(REPO / i.split("::")[0]) for i in ids}
    sched = _plan_scheduling(_Config(), None)  # type: ignore[arg-type]
    a, b = _Node("a"), _Node("b")
    for node in (a, b):
        sched.add_node(node)
        sched.add_node_collection(node, ids)
    sched.schedule()
    assert a.shutting_down and b.shutting_down and not sched.pending
    assert sorted(a.sent + b.sent) == [0, 1, 2, 3]
    loads = [sum(cost[ids[i]] for i in n.sent) for n in (a, b)]
    # Longest first onto the lighter worker: the worst worker carries at most the longest plan
    # more than an even split.
    assert max(loads) <= sum(cost.values()) / 2 + max(cost.values())
    longest = max(cost, key=cost.__getitem__)
    assert ids[a.sent[0]] == longest


def test_many_plans_are_handed_out_in_chunks_longest_first() -> None:
    ids = [f"test_plans/v2h/grid_loss_backup.yaml::p{k}" for k in range(40)]
    sched = _plan_scheduling(_Config(), None)  # type: ignore[arg-type]
    nodes = [_Node("a"), _Node("b")]
    for node in nodes:
        sched.add_node(node)
        sched.add_node_collection(node, ids)
    sched.schedule()
    assert all(n.sent and not n.shutting_down for n in nodes)
    assert len(sched.pending) == 40 - sum(len(n.sent) for n in nodes) > 0


@pytest.mark.parametrize("value", ["-1", "x", "257"])
def test_a_bad_worker_count_is_a_one_line_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from rig.cli import main

    assert main(["run", "-n", value]) == 2
    assert capsys.readouterr().err.startswith(f"rig run: -n {value}")
