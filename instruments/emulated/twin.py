"""The base of every emulated instrument: a SCPI engine bound to the shared World and a clock.

Every message first advances the world to `now()`, so time flows between commands exactly as
the caller's clock says (VirtualClock in emulated runs, RealClock behind the TCP server). The
twin keeps the instrument's own state (output on/off, setpoints) as Python attributes that tests
inspect, and forwards what the instrument would do physically to the World (through the shared
SiteWiring where several instruments act on one thing). Measuring twins read the World's state
history through a Meter (update window, accuracy, resolution).

Faults on command (`twin.faults`), for the runner's and the drivers' tests: `mute()` makes the
instrument ignore messages (the client's read times out), `drop()` makes the transport end the
connection at the next message, `inject_error()` pushes an error into the queue mid-run.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from instruments.emulated.meter import METER_OPTIONS, Meter, MeterSpec, UpdateClock
from instruments.emulated.scpi import ScpiEngine
from instruments.emulated.site import SiteWiring, site_of
from instruments.emulated.world import WorldLike
from rig.sim.history import StateHistory


class ConnectionDropped(Exception):
    """The twin was told to drop the connection: the transport closes the session."""


@dataclass
class TwinFaults:
    """Misbehaviour on command; transports and Twin.handle read it."""

    #: Messages still to ignore (None: none; -1: every message until `clear()`).
    muted: int | None = None
    drop_pending: bool = False

    def mute(self, messages: int | None = None) -> None:
        """Ignore the next `messages` program messages (all of them if None): no execution,
        no reply, so the client's read times out (VISA VI_ERROR_TMO)."""
        self.muted = -1 if messages is None else messages

    def drop(self) -> None:
        """End the connection at the next message (VI_ERROR_CONN_LOST in-process; the TCP
        server closes the socket)."""
        self.drop_pending = True

    def clear(self) -> None:
        self.muted = None
        self.drop_pending = False

    def swallow(self) -> bool:
        """True if this message is to be ignored (counts it)."""
        if self.muted is None:
            return False
        if self.muted > 0:
            self.muted -= 1
            if self.muted == 0:
                self.muted = None
        return True


class Twin(ScpiEngine):
    """An emulated instrument: `handle(line)` answers like the real one would."""

    maker: ClassVar[str]
    #: Model as the twin reports it in *IDN? unless the `model` option overrides it.
    default_model: ClassVar[str]
    firmware: ClassVar[str]
    #: Option names the twin understands (anything else is refused).
    option_names: ClassVar[frozenset[str]] = frozenset()
    #: The model's measuring behaviour (None: the twin measures nothing itself).
    meter_spec: ClassVar[MeterSpec | None] = None

    @classmethod
    def known_options(cls) -> frozenset[str]:
        """Every bench option the twin reads (its own, the meter's, `model`)."""
        known = cls.option_names | {"model"}
        return known | METER_OPTIONS if cls.meter_spec is not None else known

    def __init__(
        self,
        world: WorldLike,
        now: Callable[[], float],
        *,
        serial: str = "EMU0001",
        options: Mapping[str, object] | None = None,
    ) -> None:
        options = dict(options or {})
        known = self.known_options()
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown option(s) {unknown}; known: {sorted(known)}"
            )
        self.world = world
        self.now = now
        self.serial = serial
        model = options.pop("model", self.default_model)
        if not isinstance(model, str):
            raise ValueError(f"model option must be a string, got {model!r}")
        self.model = model
        self.options = options
        self.faults = TwinFaults()
        self.site: SiteWiring = site_of(world)
        self.meter: Meter | None = None
        self.updates: UpdateClock | None = None
        self.history: StateHistory | None = None
        if self.meter_spec is not None:
            spec = self.meter_spec.with_options(options)
            rng = world.spawn_rng(f"{type(self).__name__}:{serial}")
            self.meter = Meter(spec, rng)
            self.updates = UpdateClock(
                spec.update_interval_s, spec.jitter_s, seed=int(rng.integers(1 << 62))
            )
            self.history = world.record_history(self.history_span_s(spec))
        self.configure()
        super().__init__()

    def history_span_s(self, spec: MeterSpec) -> float:
        """How much state history this twin reads back (at least a few update windows)."""
        return max(1.0, 4.0 * spec.update_interval_s)

    def configure(self) -> None:
        """Model-specific setup from `self.options` and `self.world` (ratings, initial state)."""

    @abstractmethod
    def state(self) -> dict[str, bool | float | str]:
        """The instrument's own view of its outputs and setpoints (for tests and auditors)."""

    def identity(self) -> str:
        return f"{self.maker},{self.model},{self.serial},{self.firmware}"

    def handle(self, line: str) -> str | None:
        """One program message in, the reply (without terminator) or None out."""
        if self.faults.drop_pending:
            self.faults.drop_pending = False
            raise ConnectionDropped(f"{self.model} {self.serial} dropped the connection")
        if self.faults.swallow():
            return None
        self._sync()
        return self.execute(line)

    def resume(self, *, forced: bool = False) -> str | None:
        self._sync()
        return super().resume(forced=forced)

    def _sync(self) -> None:
        self.world.advance_to(self.now())

    def inject_error(self, code: int, message: str) -> None:
        """Push an instrument error into the queue now (a fault hook for tests)."""
        self.push_entry(code, message)

    # --- measuring through the meter -------------------------------------------------------------

    def latest_window(self) -> tuple[int, tuple[float, float]]:
        """(update index, averaging window) of the last update completed by now."""
        assert self.updates is not None
        k = self.updates.latest(self.now())
        return k, self.updates.window(k)
