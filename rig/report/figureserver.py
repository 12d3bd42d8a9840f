"""A plan's figure drawn by a helper process that imported matplotlib while the run started.

Importing matplotlib costs a `rig run` process about half a second, and drawing a plan's figure
another 0.3-0.4 s: together about half of a one-step plan's run from command to exit, and the
largest part of what each `rig run -n N` worker pays before its first plan ends. `rig run` starts
one FigureServer at its first line; the server imports matplotlib and the figure code on the
other core while the command imports pytest, validates the plans and runs the first one. The run's
processes (the command's own, and each xdist worker: they inherit ENV) send a plan's figure
inputs (the trace's samples and steps, the checks' context and verdicts, the DUT's marks) over a
Unix socket in a private folder and get the PNG back (draw()).

The helper first makes the run's emulated test PKI (rig.v2gfiles.make_shared_pki) in its private
folder, which the run's processes use instead of making one each (0.1-0.2 s each, on the way to
a worker's first plan); a process that finds it not yet complete makes its own, as without a
helper.

The figure is the same either way: the server calls rig.report.figure.render_png with the same
inputs. Whenever the server cannot answer (not started, gone, a reply that is not a PNG, an error
while drawing, a day plan, whose figure reads the trace's messages), draw() draws in the calling
process instead, so a figure error is raised where it always was and nothing depends on the
server being there.

The server draws each figure in a child it forks for the request (matplotlib already imported,
so a child starts drawing at once), at most DRAWERS at a time: the workers of `rig run -n 2` that
finish plans together get their figures together instead of one after the other (on 2026-12-06,
one server drawing one figure at a time held a worker up 0.6 s at each collision: twice in a run
of the four default plans). It ends when the command closes its standard input (at
the end of the run, or when the command's process ends however it ends), and then ends the
children still drawing (a figure nobody waits for any more) and removes its private folder (the
socket, the PKI's keys), so that a killed command leaves nothing behind; it ignores SIGINT, which
a Ctrl-C sends the whole process group: the command decides what an interrupt ends, and may still
ask for the interrupted plan's figure; it ignores the real-time signals by which a `rig run -n N`
controller passes a signal on to its children (the workers). `RIG_FIGURE_SERVER=0 rig run ...`
starts no server.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rig.checks import Context, Verdict
    from rig.report.dutevents import DutMark
    from rig.report.outcome import Outcome
    from rig.trace import Trace

#: The environment variable naming the server's socket (inherited by `rig run -n N` workers).
ENV = "RIG_FIGURE_SERVER"
#: The largest request or reply either side reads (a request holds a plan's sampled channels).
MAX_MESSAGE = 1 << 30
#: How long a client waits for its figure (the server may be drawing another worker's first).
REPLY_TIMEOUT_S = 120.0
#: How many figures the server draws at once, each in its own child (the machine's cores; at
#: least 2). A request beyond that waits in the socket's backlog until a child ends.
DRAWERS = max(2, os.cpu_count() or 1)
#: The server's niceness increment (see the end of this module).
NICE = 5
_HEADER = struct.Struct("!cQ")  # kind (b"R" request, b"P" PNG, b"E" error), length


class FigureServer:
    """The helper process and its socket, owned by the `rig run` command."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="rig-figures-"))  # 0700
        self.address = str(self.folder / "socket")
        #: The run's emulated PKI, once the helper has made it (rig.v2gfiles.PKI_ENV).
        self.pki = str(self.folder / "pki")
        # Listening before the server starts: a client that comes first waits in the backlog.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(self.address)
            listener.listen(16)
            self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "rig.report.figureserver",
                    str(listener.fileno()),
                    str(self.folder),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(listener.fileno(),),
            )

    def close(self, timeout_s: float = 2.0) -> None:
        """End the server (its standard input closes; killed if it has not ended in timeout_s)."""
        process, self.process = self.process, None
        if process is not None:
            with contextlib.suppress(OSError):
                if process.stdin is not None:
                    process.stdin.close()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> FigureServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def draw(
    trace: Trace,
    ctx: Context,
    verdicts: Sequence[Verdict],
    title: str,
    *,
    outcome: Outcome,
    headline: str = "",
    marks: Sequence[DutMark] = (),
) -> bytes:
    """The plan's figure (rig.report.figure.render_png), from the run's server where it can."""
    address = os.environ.get(ENV)
    if address and address != "0" and ctx.day is None:
        from rig.trace import Trace

        inputs = (
            Trace(meta=trace.meta, _t=trace._t, _v=trace._v, steps=trace.steps, end_t=trace.end_t),
            ctx,
            tuple(verdicts),
            title,
            outcome,
            headline,
            tuple(marks),
        )
        png = _ask(address, inputs)
        if png is not None:
            return png
    from rig.report.figure import render_png

    return render_png(trace, ctx, verdicts, title, outcome=outcome, headline=headline, marks=marks)


def _ask(address: str, inputs: tuple[Any, ...]) -> bytes | None:
    """The server's PNG for `inputs`; None where it gave none (the caller draws it)."""
    try:
        request = pickle.dumps(inputs, protocol=pickle.HIGHEST_PROTOCOL)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(REPLY_TIMEOUT_S)
            conn.connect(address)
            _send(conn, b"R", request)
            kind, body = _receive(conn)
    except (OSError, EOFError, ValueError, pickle.PicklingError):
        return None
    if kind == b"P" and body.startswith(b"\x89PNG\r\n\x1a\n"):
        return body
    return None


def _send(conn: socket.socket, kind: bytes, body: bytes) -> None:
    conn.sendall(_HEADER.pack(kind, len(body)))
    conn.sendall(body)


def _exactly(conn: socket.socket, n: int) -> bytes:
    parts: list[bytes] = []
    while n:
        chunk = conn.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _receive(conn: socket.socket) -> tuple[bytes, bytes]:
    kind, length = _HEADER.unpack(_exactly(conn, _HEADER.size))
    if length > MAX_MESSAGE:
        raise ValueError(f"a message of {length} bytes (at most {MAX_MESSAGE})")
    return kind, _exactly(conn, length)


def serve(listening_fd: int, folder: str = "") -> int:
    """The server's main loop on the listening socket it was given: figures until its standard
    input closes, each drawn in a child of its own (at most DRAWERS at once). With the run's
    private `folder`: first the run's emulated PKI in it, and the folder removed at the end (the
    command removes it too; this way also when the command was killed)."""
    from rig.process import collect_less_often

    collect_less_often()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # An xdist controller forwards a signal to its children as a real-time signal (rig's pytest
    # plugin) before it knows its workers' pids: meant for workers, not for the helper.
    for rt in range(getattr(signal, "SIGRTMIN", 0), getattr(signal, "SIGRTMAX", -1) + 1):
        signal.signal(rt, signal.SIG_IGN)
    listener = socket.socket(fileno=listening_fd)
    if folder:
        from rig.v2gfiles import make_shared_pki

        with contextlib.suppress(Exception):  # the run's processes make their own instead
            make_shared_pki(Path(folder) / "pki")
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401

    import rig.report.figure  # noqa: F401  (imported once, before any child is forked)

    stdin = sys.stdin.fileno()
    drawers: set[int] = set()
    try:
        while True:
            _reap(drawers, wait=len(drawers) >= DRAWERS)
            waiting = [stdin] if len(drawers) >= DRAWERS else [listener, stdin]
            # With children drawing, wake now and then to reap them and take the next request.
            ready, _, _ = select.select(waiting, [], [], 0.05 if drawers else None)
            if stdin in ready and not os.read(stdin, 4096):
                return 0
            if listener not in ready:
                continue
            conn, _ = listener.accept()
            with conn:
                pid = os.fork()
                if pid == 0:  # the child: draws this one figure, then ends without cleanup
                    code = 1
                    try:
                        listener.close()
                        _answer(conn)
                        code = 0
                    finally:
                        os._exit(code)
                drawers.add(pid)
    finally:
        for pid in drawers:  # figures nobody waits for any more
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def _answer(conn: socket.socket) -> None:
    """Read one request from `conn`, draw it and send the PNG back (or the error)."""
    from rig.report.figure import render_png

    try:
        conn.settimeout(REPLY_TIMEOUT_S)
        kind, body = _receive(conn)
        if kind != b"R":
            raise ValueError(f"not a request: {kind!r}")
        trace, ctx, verdicts, title, outcome, headline, marks = pickle.loads(body)
        png = render_png(
            trace, ctx, verdicts, title, outcome=outcome, headline=headline, marks=marks
        )
        _send(conn, b"P", png)
    except Exception as exc:  # the client draws it itself, and sees the error there
        with contextlib.suppress(OSError):
            _send(conn, b"E", repr(exc).encode("utf-8", "replace"))


def _reap(drawers: set[int], *, wait: bool) -> None:
    """Forget the children that have ended; with `wait`, wait for one to end first."""
    while drawers:
        try:
            pid, _ = os.waitpid(-1, 0 if wait else os.WNOHANG)
        except ChildProcessError:
            drawers.clear()
            return
        if pid == 0:
            return
        drawers.discard(pid)
        wait = False


if __name__ == "__main__":
    from rig.process import leave

    # Behind the processes that run plans: while they start, this one's matplotlib import is the
    # third and fourth busy process on a 2-core machine's two cores (`rig run -n 2`), and on a
    # real bench a plan runs in real time; a waiting plan leaves its core to the drawing child.
    os.nice(NICE)

    leave(serve(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else ""))
