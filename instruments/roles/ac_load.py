"""Role: the home load, an electronic AC load (constant power, or its own RLC mode)."""

from __future__ import annotations

from abc import abstractmethod

from instruments.roles.base import Instrument, Role
from instruments.roles.readings import AcReading


class ACLoad(Instrument):
    """The home load: constant power, or an RLC load for islanding tests."""

    role = Role.AC_LOAD

    @abstractmethod
    def set_power(self, p_w: float, q_var: float = 0.0) -> None: ...

    @abstractmethod
    def set_rlc(
        self, *, r_ohm: float, l_h: float | None = None, c_f: float | None = None
    ) -> None: ...

    @abstractmethod
    def set_input(self, on: bool) -> None: ...

    @abstractmethod
    def input_enabled(self) -> bool: ...

    @abstractmethod
    def measure(self) -> AcReading:
        """Positive power when the load consumes."""
