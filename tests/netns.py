"""Network namespaces for tests: a veth pair between an EVSE end and an EV end, made and removed
by the test itself (root and iproute2 needed; skipped through missing() otherwise).

SDP multicast to ff02::1 is not delivered over `lo`, so anything that discovers needs a real
link: two fresh network namespaces joined by a veth pair carrying fe80::1 (EVSE) and fe80::2 (EV),
with no other address (addrgenmode none, nodad), so "the link-local address" is unambiguous.

    with veth_pair(log_dir=tmp_path) as pair:             # or the `veth` fixture
        secc = pair.spawn("evse", [python, "-m", "x"])    # a process inside the EVSE end
        secc.wait_for(r"listening", timeout=10)
        with pair.entered("ev"):                           # this thread, inside the EV end:
            sock = socket.socket(...)                      # sockets made here live there

Cleanup, whatever happens: each namespace is held by a `sleep` child made with unshare(2); the
namespace, and with it the veth pair, disappears with the last process inside it. Every child
gets PR_SET_PDEATHSIG=SIGKILL, so even a test runner killed hard (SIGKILL, CI's timeout) takes
them along; the context manager stops them in order on a normal exit, an error or Ctrl-C.
Nothing is named globally (no /run/netns entries), so parallel runs cannot collide.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.unshare.argtypes = (ctypes.c_int,)
_libc.prctl.argtypes = (
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
)

Side = Literal["evse", "ev"]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _die_with_parent() -> None:
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")


def _new_namespace() -> None:
    # Runs in the child between fork and exec (preexec_fn): a fresh, empty network namespace.
    _die_with_parent()
    _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")


def _join_namespace(fd: int) -> Callable[[], None]:
    def join() -> None:
        _die_with_parent()
        _check(_libc.setns(fd, CLONE_NEWNET), "setns(CLONE_NEWNET)")

    return join


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) not found"
    if shutil.which("sleep") is None:
        return "`sleep` not found"
    return None


@dataclass
class NsProcess:
    """A process running inside a namespace; its output is streamed to a log file and kept."""

    name: str
    popen: subprocess.Popen[str]
    log_path: Path | None
    echo: bool = False
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._pump, name=f"ns-{self.name}", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        log = open(self.log_path, "a", encoding="utf-8") if self.log_path else None  # noqa: SIM115
        try:
            for raw in self.popen.stdout:
                line = raw.rstrip("\n")
                if log is not None:
                    log.write(raw)
                    log.flush()
                if self.echo:
                    print(f"[{self.name}] {line}", file=sys.stderr, flush=True)
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()
        finally:
            if log is not None:
                log.close()
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def tail(self, n: int = 30) -> str:
        with self._cond:
            return "\n".join(self.lines[-n:])

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout: float, start: int = 0
    ) -> re.Match[str]:
        """The first match of `pattern` in an output line from line `start` on; TimeoutError
        (with the output's tail) if none comes within `timeout` s or the process ends first."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        index = start
        with self._cond:
            while True:
                while index < len(self.lines):
                    match = regex.search(self.lines[index])
                    index += 1
                    if match:
                        return match
                if self._eof:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.popen.wait(2.0)  # output ends just before the exit status
                    why = f"{self.name} ended (code {self.popen.poll()})"
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    why = f"{self.name}: no {regex.pattern!r} within {timeout} s"
                    break
                self._cond.wait(min(remaining, 0.5))
        raise TimeoutError(f"{why}; last output:\n{self.tail()}")

    def wait(self, timeout: float) -> int:
        code = self.popen.wait(timeout)
        self._reader.join(timeout=5)
        return code

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, grace: float = 5.0) -> int:
        """Ctrl-C (SIGINT) to its process group, then SIGTERM, then SIGKILL; the exit code."""
        for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            if self.popen.poll() is not None:
                break
            self.signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(wait)
        # Children the process left in its group (a JVM) go too.
        self.signal(signal.SIGKILL)
        code = self.popen.wait(5)
        self._reader.join(timeout=5)
        return code


class Namespace:
    """A fresh network namespace, held by a `sleep` child until close()."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._holder = subprocess.Popen(
            ["sleep", "infinity"],
            preexec_fn=_new_namespace,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            self.fd = self._wait_for_namespace()
        except BaseException:
            self._holder.kill()
            self._holder.wait()
            raise
        self.processes: list[NsProcess] = []

    def _wait_for_namespace(self) -> int:
        # The child unshares before exec; /proc/PID/ns/net then differs from ours.
        ours = os.stat("/proc/self/ns/net").st_ino
        path = f"/proc/{self._holder.pid}/ns/net"
        for _ in range(500):
            if self._holder.poll() is not None:
                assert self._holder.stderr is not None
                raise OSError(f"namespace holder exited: {self._holder.stderr.read()!r}")
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_ino != ours:
                    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            time.sleep(0.002)
        raise OSError(f"namespace of holder {self._holder.pid} did not appear")

    @property
    def pid(self) -> int:
        """A process inside (for `ip link ... netns PID`)."""
        return self._holder.pid

    def run(self, argv: Sequence[str], timeout: float = 10.0) -> str:
        """Run a short command inside; its stdout; CalledProcessError with stderr on failure."""
        done = subprocess.run(
            list(argv),
            preexec_fn=_join_namespace(self.fd),
            pass_fds=(self.fd,),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise subprocess.CalledProcessError(
                done.returncode, argv, done.stdout, f"[{self.name}] {done.stderr.strip()}"
            )
        return done.stdout

    def spawn(
        self,
        argv: Sequence[str],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        log_path: Path | None = None,
        echo: bool = False,
    ) -> NsProcess:
        """Start a long-running process inside, in its own process group, output streamed."""
        popen = subprocess.Popen(
            list(argv),
            preexec_fn=_join_namespace(self.fd),
            pass_fds=(self.fd,),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=None if env is None else dict(env),
            cwd=None if cwd is None else str(cwd),
        )
        process = NsProcess(name or f"{self.name}:{Path(argv[0]).name}", popen, log_path, echo)
        self.processes.append(process)
        return process

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """This thread inside the namespace: sockets made meanwhile belong to it for good."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(self.fd, CLONE_NEWNET), "setns into the test namespace")
            try:
                yield
            finally:
                _check(_libc.setns(own, CLONE_NEWNET), "setns back")
        finally:
            os.close(own)

    def close(self) -> None:
        """Stop what runs inside, then the holder: the namespace and its links go away."""
        for process in reversed(self.processes):
            with contextlib.suppress(Exception):
                process.stop(grace=2.0)
        if self._holder.poll() is None:
            self._holder.kill()
        self._holder.wait(5)
        if self._holder.stderr is not None:
            self._holder.stderr.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)


@dataclass
class VethPair:
    """Two namespaces joined by a veth pair; the EVSE end carries fe80::1, the EV end fe80::2."""

    evse: Namespace
    ev: Namespace
    evse_interface: str
    ev_interface: str
    evse_address: str
    ev_address: str
    log_dir: Path | None

    def side(self, side: Side) -> Namespace:
        return self.evse if side == "evse" else self.ev

    def interface(self, side: Side) -> str:
        return self.evse_interface if side == "evse" else self.ev_interface

    def address(self, side: Side) -> str:
        return self.evse_address if side == "evse" else self.ev_address

    def spawn(
        self,
        side: Side,
        argv: Sequence[str],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        echo: bool = False,
    ) -> NsProcess:
        """Start `argv` (our Python entry point or the peer's venv python) on one end; its
        output goes to <log_dir>/<name>.log as it comes."""
        label = name or f"{side}-{Path(argv[0]).name}"
        log_path = self.log_dir / f"{label}.log" if self.log_dir is not None else None
        return self.side(side).spawn(
            argv, name=label, env=env, cwd=cwd, log_path=log_path, echo=echo
        )

    def entered(self, side: Side) -> contextlib.AbstractContextManager[None]:
        return self.side(side).entered()


@contextlib.contextmanager
def veth_pair(
    *,
    evse_interface: str = "veth-secc",
    ev_interface: str = "veth-evcc",
    evse_address: str = "fe80::1",
    ev_address: str = "fe80::2",
    log_dir: Path | None = None,
) -> Iterator[VethPair]:
    """Make the two namespaces and the veth pair; remove everything on the way out."""
    made: list[Namespace] = []
    try:
        evse = Namespace("evse")
        made.append(evse)
        ev = Namespace("ev")
        made.append(ev)
        evse.run(
            [
                *("ip", "link", "add", evse_interface, "type", "veth"),
                *("peer", "name", ev_interface, "netns", str(ev.pid)),
            ]
        )
        for ns, interface, address in (
            (evse, evse_interface, evse_address),
            (ev, ev_interface, ev_address),
        ):
            # No address but ours: "the interface's link-local address" must be unambiguous.
            ns.run(["ip", "link", "set", interface, "addrgenmode", "none"])
            ns.run(["ip", "-6", "addr", "add", f"{address}/64", "dev", interface, "nodad"])
            ns.run(["ip", "link", "set", "lo", "up"])
            ns.run(["ip", "link", "set", interface, "up"])
        for ns, interface in ((evse, evse_interface), (ev, ev_interface)):
            _wait_up(ns, interface)
        yield VethPair(evse, ev, evse_interface, ev_interface, evse_address, ev_address, log_dir)
    finally:
        for ns in reversed(made):
            ns.close()


def _wait_up(ns: Namespace, interface: str, timeout: float = 5.0) -> None:
    # Not /sys/class/net: sysfs shows the namespace it was mounted in, not the thread's.
    deadline = time.monotonic() + timeout
    while True:
        line = ns.run(["ip", "-o", "link", "show", "dev", interface]).strip()
        flags = line.split("<", 1)[-1].split(">", 1)[0].split(",")
        if "UP" in flags and "LOWER_UP" in flags:
            return
        if time.monotonic() > deadline:
            raise OSError(f"{interface} in {ns.name} is not up: {line}")
        time.sleep(0.01)


def _missing(reason: str) -> None:
    from peers.josev import missing  # tests/conftest.py's missing(), also from subfolders

    missing(reason)


def veth_fixture(log_dir: Path | None = None) -> Iterator[VethPair]:
    """Body of a pytest fixture: skip (fail in CI) where namespaces cannot be made."""
    reason = unavailable_reason()
    if reason is not None:
        _missing(reason)
    try:
        context = veth_pair(log_dir=log_dir)
        pair = context.__enter__()
    except (OSError, subprocess.SubprocessError) as exc:
        _missing(f"cannot make a veth pair in network namespaces: {exc}")
        raise  # not reached: missing() skips or fails
    try:
        yield pair
    finally:
        context.__exit__(None, None, None)


@pytest.fixture
def veth(tmp_path: Path) -> Iterator[VethPair]:
    """A veth pair between two fresh namespaces; process logs under tmp_path."""
    yield from veth_fixture(tmp_path)
