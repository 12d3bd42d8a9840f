"""A plan's figure drawn by the run's helper process (rig.report.figureserver): the same PNG as
in the calling process, drawn there instead whenever the server cannot answer, and a server that
ends with its command and survives a Ctrl-C to the process group."""

import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rig.checks import Context, Marker, Verdict
from rig.ev import EVSpec
from rig.process import children
from rig.report import figureserver
from rig.report.figure import render_png
from rig.report.figureserver import ENV, FigureServer, draw
from rig.report.outcome import Outcome
from rig.trace import Trace


def _inputs() -> tuple[Trace, Context, list[Verdict]]:
    trace = Trace()
    for k in range(600):
        t = k * 0.1
        trace.add_sample(t, "power_analyzer", {"evse_ac.p_w": 3000.0 if t < 30 else -2000.0})
        trace.add_sample(t, "dc_source", {"p_w": -3000.0})
    verdict = Verdict(
        "reserve_floor",
        "pass",
        0.5,
        0.3,
        "",
        "d",
        markers=(Marker("zoom", "reversal", (25.0, 35.0), "power_analyzer.evse_ac.p_w"),),
    )
    ev = EVSpec(
        capacity_wh=60_000.0,
        soc=0.7,
        reserve_soc=0.3,
        max_charge_w=11_000.0,
        max_discharge_w=11_000.0,
    )
    return trace, Context(ev=ev), [verdict]


def _draw(**kw: Any) -> bytes:
    trace, ctx, verdicts = _inputs()
    return draw(trace, ctx, verdicts, "t: title", outcome=Outcome.PASS, headline="h", **kw)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Any:
    with FigureServer() as s:
        monkeypatch.setenv(ENV, s.address)
        yield s


def test_the_server_draws_the_same_png_as_the_calling_process(
    server: FigureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[bytes | None] = []
    real = figureserver._ask

    def spy(address: str, inputs: tuple[Any, ...]) -> bytes | None:
        asked.append(real(address, inputs))
        return asked[-1]

    monkeypatch.setattr(figureserver, "_ask", spy)
    png = _draw()
    assert asked and asked[0] is not None  # the server drew it
    trace, ctx, verdicts = _inputs()
    here = render_png(trace, ctx, verdicts, "t: title", outcome=Outcome.PASS, headline="h")
    assert png == here and png.startswith(b"\x89PNG")


def test_without_a_server_the_calling_process_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    trace, ctx, verdicts = _inputs()
    assert _draw() == render_png(
        trace, ctx, verdicts, "t: title", outcome=Outcome.PASS, headline="h"
    )
    monkeypatch.setenv(ENV, "0")  # turned off
    assert _draw().startswith(b"\x89PNG")


def test_a_server_that_is_gone_leaves_the_figure_to_the_caller(
    server: FigureServer,
) -> None:
    assert server.process is not None
    server.process.kill()
    server.process.wait()
    assert _draw().startswith(b"\x89PNG")
    os.unlink(server.address)  # nobody listening at all
    assert _draw().startswith(b"\x89PNG")


def _fake_server(tmp_path: Path, reply: bytes) -> str:
    """A socket that answers every request with `reply` (raw bytes)."""
    address = str(tmp_path / "fake")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(4)

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            with conn:
                figureserver._receive(conn)
                conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    return address


@pytest.mark.parametrize(
    "reply",
    [
        figureserver._HEADER.pack(b"E", 5) + b"boom!",
        figureserver._HEADER.pack(b"P", 4) + b"GIF8",  # not a PNG
        figureserver._HEADER.pack(b"P", figureserver.MAX_MESSAGE + 1),  # over the bound
        figureserver._HEADER.pack(b"P", 100) + b"\x89PNG",  # cut short
    ],
    ids=["error", "not-png", "too-long", "cut-short"],
)
def test_a_reply_that_is_not_a_figure_leaves_it_to_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply: bytes
) -> None:
    monkeypatch.setenv(ENV, _fake_server(tmp_path, reply))
    monkeypatch.setattr(figureserver, "REPLY_TIMEOUT_S", 2.0)
    trace, ctx, verdicts = _inputs()
    assert _draw() == render_png(
        trace, ctx, verdicts, "t: title", outcome=Outcome.PASS, headline="h"
    )


def test_a_figure_error_is_raised_in_the_calling_process(
    server: FigureServer,
) -> None:
    trace, ctx, verdicts = _inputs()
    bad_title: Any = None  # not text: drawing the header fails
    with pytest.raises(TypeError):
        render_png(trace, ctx, verdicts, bad_title, outcome=Outcome.PASS)
    with pytest.raises(TypeError):
        draw(trace, ctx, verdicts, bad_title, outcome=Outcome.PASS)
    assert _draw().startswith(b"\x89PNG")  # the server still serves


def test_the_server_ignores_ctrl_c_and_forwarded_signals_and_ends_with_its_command() -> None:
    server = FigureServer()
    assert server.process is not None
    process = server.process
    inputs = (*_inputs(), "t", Outcome.PASS, "", ())
    first = figureserver._ask(server.address, inputs)  # it serves: its handlers are in place
    assert first is not None and first.startswith(b"\x89PNG")
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGRTMIN + signal.SIGTERM)  # as forwarded to a worker
    time.sleep(0.2)
    assert figureserver._ask(server.address, inputs) == first
    t0 = time.monotonic()
    server.close()
    assert process.returncode == 0 and time.monotonic() - t0 < 2.0
    assert not server.folder.exists()


def test_a_stalled_request_holds_up_no_other_figure_and_ends_with_the_server() -> None:
    server = FigureServer()
    assert server.process is not None
    inputs = (*_inputs(), "t", Outcome.PASS, "", ())
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        stalled.connect(server.address)
        stalled.sendall(figureserver._HEADER.pack(b"R", 1000))  # and never the body
        t0 = time.monotonic()
        png = figureserver._ask(server.address, inputs)  # another worker's figure, meanwhile
        assert png is not None and png.startswith(b"\x89PNG")
        assert time.monotonic() - t0 < 30.0  # not REPLY_TIMEOUT_S behind the stalled one
        drawing = children(server.process.pid)
        assert drawing  # the stalled request's child, still waiting for its body
        t0 = time.monotonic()
        server.close()
        assert time.monotonic() - t0 < 2.0
        assert not any(Path(f"/proc/{pid}").exists() for pid in drawing)
    finally:
        stalled.close()
        server.close()


def test_the_helper_makes_the_run_s_emulated_pki_and_the_run_uses_it(
    server: FigureServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from rig.v2g.pki import Entity, PkiFolder
    from rig.v2gfiles import PKI_ENV, emulated_pki

    assert _draw().startswith(b"\x89PNG")  # made before the helper serves its first figure
    shared = Path(server.pki)
    assert shared.is_dir() and not shared.with_name("pki.partial").exists()
    assert PkiFolder(shared).chain(Entity.SECC_LEAF)
    monkeypatch.setenv(PKI_ENV, str(shared))
    assert emulated_pki() == shared
    monkeypatch.setenv(PKI_ENV, str(tmp_path / "not-there-yet"))  # not complete: its own
    own = emulated_pki()
    assert own != shared and own.is_dir()


def test_a_killed_command_leaves_no_helper_and_no_folder_behind() -> None:
    import subprocess
    import sys

    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from rig.report.figureserver import FigureServer\n"
            "s = FigureServer()\n"
            "print(s.folder, s.process.pid, flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        folder_text, helper_text = owner.stdout.readline().split()
        folder, helper = Path(folder_text), int(helper_text)
        deadline = time.monotonic() + 60
        while not (folder / "pki").is_dir() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (folder / "pki").is_dir()  # the run's keys are there while it runs
    finally:
        owner.kill()  # SIGKILL: the command cleans up nothing itself
        owner.wait()
    deadline = time.monotonic() + 5
    while (folder.exists() or Path(f"/proc/{helper}").exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not folder.exists()
    assert not Path(f"/proc/{helper}").exists() or _zombie(helper)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
