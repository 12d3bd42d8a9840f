"""Signals next to power hardware: the first one ends the run, none can skip the bench's safe state.

SIGINT (Ctrl-C), SIGTERM and SIGHUP (a closed terminal or ssh session) are handled alike:

- while a plan runs, the first signal raises RunInterrupted where the run is, and the guard moves
  to ENDING at once (inside the handler), so that a second signal a millisecond later cannot raise
  into the teardown that the first one starts;
- while ENDING (interrupted, or ending normally), signals are recorded and ignored until every
  instrument has been given its safe-state command (the critical section of the teardown);
- after that (SAFE), a third signal in all aborts what is left (closing sessions, writing the
  report): TeardownAborted is raised, and what was left undone is said.

One guard per process, installed from the main thread (the pytest plugin installs it for `rig run`;
rig.runner.execute installs it for its own duration when nothing has).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from enum import Enum
from types import FrameType
from typing import Any

HANDLED = tuple(
    s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None
)
#: Signals in all after which the rest of a teardown is abandoned (the bench is already safe).
ABORT_AT = 3


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by a signal (its name is the message)."""

    def __init__(self, signame: str) -> None:
        super().__init__(signame)
        self.signame = signame


class TeardownAborted(BaseException):
    """A third signal: what remains of the teardown after the safe state is abandoned."""


class Phase(Enum):
    RUNNING = "running"  # a signal interrupts the run
    ENDING = "ending"  # the safe state is being given: signals are recorded only
    SAFE = "safe"  # the rest of a teardown: a third signal abandons it
    ENDED = "ended"  # an interrupted run is over: signals are recorded only


class SignalGuard:
    def __init__(self) -> None:
        self.phase = Phase.RUNNING
        self.received: list[str] = []
        self.abort_requested = False
        #: The first signal's name until the run has caught its RunInterrupted (see check()).
        self._pending: str | None = None
        self._previous: dict[int, Any] = {}
        self.installed = False

    # -- installation --------------------------------------------------------------------------
    def install(self) -> bool:
        """Take over the handled signals (main thread only); False where that is not possible."""
        if self.installed or threading.current_thread() is not threading.main_thread():
            return False
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, self._handle)
        self.installed = True
        return True

    def uninstall(self) -> None:
        if not self.installed:
            return
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
        self.installed = False

    def reset(self) -> None:
        """A new plan starts (the previous one ended without a signal)."""
        self.phase = Phase.RUNNING
        self.received.clear()
        self.abort_requested = False
        self._pending = None

    def check(self) -> None:
        """Raise RunInterrupted if a signal asked to stop and the run has not yet stopped.

        Python runs a signal handler wherever the interpreter happens to be, including inside a
        weakref callback or a __del__, where an exception it raises is printed and dropped. The
        runner calls this at its own safe points (every sample, every wait), so a stop request
        can never be lost that way."""
        if self._pending is not None:
            raise RunInterrupted(self._pending)

    def acknowledge(self) -> None:
        """The run caught its RunInterrupted and is ending."""
        self._pending = None

    # -- the run's phases --------------------------------------------------------------------------
    @property
    def interrupted(self) -> str | None:
        """The name of the signal that stopped the run, if one did."""
        return self.received[0] if self.received else None

    def ending(self) -> None:
        """The run is over (normally or not): from now on signals never raise until safe()."""
        if self.phase is Phase.RUNNING:
            self.phase = Phase.ENDING

    def safe(self) -> None:
        """Every instrument has been given its safe-state command."""
        self.phase = Phase.SAFE

    def ended(self) -> None:
        """The run is over: after an interruption signals are only recorded from now on; after a
        normal end the next signal interrupts whatever runs next."""
        if self.interrupted:
            self.phase = Phase.ENDED
        else:
            self.reset()

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """The safe-state part of a teardown: signals are recorded, never raised, inside it."""
        self.ending()
        try:
            yield
        finally:
            self.safe()

    # -- the handler -----------------------------------------------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.received.append(name)
        if self.phase is Phase.RUNNING:
            self.phase = Phase.ENDING  # before raising: a second signal must not raise again
            self._pending = name
            raise RunInterrupted(name)
        if self.phase is Phase.ENDING:
            _say(
                f"rig: {name} while the bench goes to its safe state: ignored until every "
                "instrument has been told to go safe"
                + ("" if len(self.received) >= ABORT_AT else "; a third signal stops the rest")
            )
        if len(self.received) >= ABORT_AT:
            self.abort_requested = True
            if self.phase is Phase.SAFE:
                raise TeardownAborted(f"{name} (signal {len(self.received)})")


def _say(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


#: The process's guard.
GUARD = SignalGuard()


@contextlib.contextmanager
def guarded() -> Iterator[SignalGuard]:
    """The process guard for the duration of a run; installed here if nobody has installed it."""
    mine = GUARD.install()
    try:
        yield GUARD
    finally:
        if mine:
            GUARD.uninstall()
