"""The base of every emulated instrument: a SCPI engine bound to the shared World and a clock.

Every message first advances the world to `now()`, so time flows between commands exactly as
the caller's clock says (VirtualClock in emulated runs, RealClock behind the TCP server). The
twin keeps the instrument's own state (output on/off, setpoints) as Python attributes that tests
inspect, and forwards what the instrument would do physically to the World.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from typing import ClassVar

from instruments.emulated.scpi import ScpiEngine
from instruments.emulated.world import AcMeasurementLike, DcMeasurementLike, WorldLike


class Twin(ScpiEngine):
    """An emulated instrument: `handle(line)` answers like the real one would."""

    maker: ClassVar[str]
    #: Model as the twin reports it in *IDN? unless the `model` option overrides it.
    default_model: ClassVar[str]
    firmware: ClassVar[str]
    #: Option names the twin understands (anything else is refused).
    option_names: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        world: WorldLike,
        now: Callable[[], float],
        *,
        serial: str = "EMU0001",
        options: Mapping[str, object] | None = None,
    ) -> None:
        options = dict(options or {})
        unknown = sorted(set(options) - self.option_names - {"model"})
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown option(s) {unknown}; "
                f"known: {sorted(self.option_names | {'model'})}"
            )
        self.world = world
        self.now = now
        self.serial = serial
        model = options.pop("model", self.default_model)
        if not isinstance(model, str):
            raise ValueError(f"model option must be a string, got {model!r}")
        self.model = model
        self.options = options
        # One World measurement per point and message: the items of a reply are coherent.
        self._acquired_ac: dict[str, AcMeasurementLike] = {}
        self._acquired_dc: dict[str, DcMeasurementLike] = {}
        self.configure()
        super().__init__()

    def configure(self) -> None:
        """Model-specific setup from `self.options` and `self.world` (ratings, initial state)."""

    @abstractmethod
    def state(self) -> dict[str, bool | float | str]:
        """The instrument's own view of its outputs and setpoints (for tests and auditors)."""

    def identity(self) -> str:
        return f"{self.maker},{self.model},{self.serial},{self.firmware}"

    def handle(self, line: str) -> str | None:
        """One program message in, the reply (without terminator) or None out."""
        self.world.advance_to(self.now())
        self._acquired_ac.clear()
        self._acquired_dc.clear()
        return self.execute(line)

    def acquire_ac(self, point: str) -> AcMeasurementLike:
        """The AC measurement at `point` for the message being handled."""
        found = self._acquired_ac.get(point)
        if found is None:
            found = self._acquired_ac[point] = self.world.measure_ac(point)
        return found

    def acquire_dc(self, point: str) -> DcMeasurementLike:
        """The DC measurement at `point` for the message being handled."""
        found = self._acquired_dc.get(point)
        if found is None:
            found = self._acquired_dc[point] = self.world.measure_dc(point)
        return found


def option_float(options: Mapping[str, object], name: str, default: float) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"option {name} must be a number, got {value!r}")
    return float(value)


def option_str(options: Mapping[str, object], name: str, default: str) -> str:
    value = options.get(name, default)
    if not isinstance(value, str):
        raise ValueError(f"option {name} must be a string, got {value!r}")
    return value
