"""The emulated bench served on loopback (`rig emulate --serve`) for tests of the real-bench path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def served_bench(
    served: str, plan: Path, bench_out: Path, defects: tuple[str, ...] = ()
) -> Iterator[list[str]]:
    """Serve bench `served` for `plan` (with seeded `defects`), writing the served bench file to
    `bench_out`; yields the lines the server printed up to "serving", and stops it (SIGINT, then
    kill) on leaving."""
    server = subprocess.Popen(
        [sys.executable, "-m", "rig", "emulate", "--serve", "--port", "0", "--bench", served,
         "--bench-out", str(bench_out), "--plan", str(plan),
         *(arg for name in defects for arg in ("--defect", name))],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        lines = []
        assert server.stdout is not None
        deadline = time.monotonic() + 60
        for line in server.stdout:
            lines.append(line.rstrip())
            if line.startswith("serving") or time.monotonic() > deadline:
                break
        assert lines and lines[-1].startswith("serving"), lines
        yield lines
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def run_plan(plan: Path, bench: Path, out: Path, timeout: float, exit_code: int = 0) -> None:
    """`rig run PLAN --bench FILE --out DIR` in a new process; it must exit with `exit_code`
    (0: every plan passed; 1: a verdict failed)."""
    run = subprocess.run(
        [sys.executable, "-m", "rig", "run", str(plan), "--bench", str(bench), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert run.returncode == exit_code, run.stdout + run.stderr
