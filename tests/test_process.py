"""rig.process: a finished process skips the interpreter's teardown but loses nothing on the way:
every exit handler runs once, in the usual order, buffered output reaches its reader, the exit
code is the one given, and a process with a running thread exits the normal way."""

import os
import subprocess
import sys
import textwrap

import pytest

PRELUDE = """\
import atexit, sys, threading, time
atexit.register(lambda: print("first registered", flush=True))
atexit.register(lambda: print("second registered", flush=True))
sys.stdout.write("buffered, never flushed by the script\\n")
"""


def _run(body: str) -> subprocess.CompletedProcess[str]:
    script = PRELUDE + textwrap.dedent(body)
    # stdout is a pipe: block-buffered, so the buffered line is lost unless leave() flushes it.
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("from rig.process import leave\nleave(3)\nprint('not reached')", 3),
        ("from rig.process import leave_after_exit_handlers\nleave_after_exit_handlers(5)", 5),
    ],
    ids=["leave", "leave_after_exit_handlers"],
)
def test_every_exit_handler_runs_once_in_order_output_is_flushed_and_the_code_kept(
    body: str, code: int
) -> None:
    done = _run(body)
    assert done.returncode == code, done.stderr
    assert done.stdout.splitlines() == [
        "buffered, never flushed by the script",
        "second registered",
        "first registered",
    ]


def test_a_handler_registered_later_keeps_the_normal_exit() -> None:
    """It already ran when the quick exit's handler is reached: running the rest again would
    run it twice, so the interpreter's own exit goes on (exit code 0, each handler once)."""
    done = _run(
        """
        from rig.process import leave_after_exit_handlers
        leave_after_exit_handlers(5)
        atexit.register(lambda: print("registered after", flush=True))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "buffered, never flushed by the script",
        "registered after",
        "second registered",
        "first registered",
    ]


def test_a_running_thread_keeps_the_normal_exit() -> None:
    done = _run(
        """
        from rig.process import leave
        def late():
            time.sleep(0.3)
            print("thread finished", flush=True)
        threading.Thread(target=late).start()
        leave(4)
        """
    )
    assert done.returncode == 4, done.stderr
    # The interpreter waited for the thread before the exit handlers, as a normal exit does.
    lines = done.stdout.splitlines()
    assert lines.index("thread finished") < lines.index("second registered")


@pytest.mark.parametrize("workers", ["0", "2"])
def test_rig_run_leaves_complete_outputs(tmp_path, workers: str) -> None:  # type: ignore[no-untyped-def]
    """The command's files are all there and whole after the quick exit, serial and parallel."""
    import json

    plan = tmp_path / "short.yaml"
    plan.write_text(
        "title: Short\ndut: evse\nsession: {service: DC_BPT, control_mode: dynamic}\n"
        "ev: {capacity: 60 kWh, soc: 60 %, reserve: 30 %}\n"
        "steps:\n  - {at: 0 s, grid: {voltage: 230 V, frequency: 50 Hz}, home_load: 1 kW}\n"
        "  - {at: 3 s, mark: end}\nchecks:\n  - reserve_floor: {}\n"
    )
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rig",
            "run",
            "-q",
            "-n",
            workers,
            str(plan),
            str(plan),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((out / "record.json").read_text())
    assert record["complete"] is True and record["summary"]
    assert (out / "junit.xml").read_text().rstrip().endswith("</testsuites>")
    assert (out / "report.html").read_text().rstrip().endswith("</html>")
    traces = sorted(out.glob("*.trace.jsonl"))
    assert traces
    for trace in traces:
        lines = trace.read_text().splitlines()
        assert lines and all(json.loads(line) is not None for line in lines)


def test_the_rig_command_collects_its_young_generation_less_often() -> None:
    """`rig` (rig.cli.entry) starts with the young-generation threshold runs use, not 700."""
    script = (
        "import gc, rig.cli\n"
        "rig.cli.main = lambda: print(gc.get_threshold()[0]) or 0\n"
        "rig.cli.entry()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    from rig.process import YOUNG_THRESHOLD

    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == YOUNG_THRESHOLD != 700


def test_output_lost_to_a_full_disk_is_an_error_exit() -> None:
    """As the interpreter's own exit: stdout that cannot be flushed makes exit status 120."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    script = "import sys\nsys.stdout.write('lost')\nfrom rig.process import leave\nleave(0)\n"
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-c", script],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
        )
    assert done.returncode == 120, done.stderr
    assert "standard output lost" in done.stderr
