"""The emulated EVSE's control interface: its energy manager's setpoint and follow-home, in SCPI.

Served beside the instruments by `rig emulate --serve`, so that a plan's `setpoint` and
`follow_home_load` reach the served emulated EVSE the way they reach a real one: through the
interface its bench file names (instruments.rig.evse_control).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from instruments.emulated.scpi import Command, ErrorCode, Params, ScpiError
from instruments.emulated.twin import Twin

#: Bounds on what the interface accepts (rig's own: a day at one-minute prices is 1,440 windows).
MAX_WINDOWS = 1_440
MAX_OUTAGES = 24
MAX_SECONDS = 7 * 86_400.0
MAX_PRICE = 1_000.0


class EvseControlTwin(Twin):
    maker = "V2H rig"
    default_model = "EVSE control (emulated)"
    firmware = "1.0"

    def configure(self) -> None:
        self.setpoint_w = 0.0
        self.follow = False
        self._clear_day()
        #: Where a committed tariff goes: the served EVSE's manager (rig.emulators.evse.SimEvse
        #: .manage, wired by rig.serve); it receives a TariffPolicy, or None to stop.
        self.manager: Callable[[Any], None] | None = None
        #: Seeded energy-management defects the manager is given with a tariff
        #: (rig.emulators.management; `rig emulate --defect`).
        self.management_defects: tuple[str, ...] = ()

    def _clear_day(self) -> None:
        self.windows: list[tuple[float, float, float, float]] = []
        self.outages: list[tuple[float, float]] = []
        self.currency = "EUR"
        self.following_tariff = False

    def reset(self) -> None:
        self.setpoint_w = 0.0
        self.follow = False
        self._stop_tariff()
        self._apply()
        evse: Any = getattr(self.world, "evse", None)
        if evse is not None and hasattr(evse, "anti_islanding"):
            evse.anti_islanding = True

    def state(self) -> dict[str, bool | float | str]:
        return {
            "setpoint_w": self.setpoint_w,
            "follow_home": self.follow,
            "tariff": self.following_tariff,
            "anti_islanding": self._island_detection(),
        }

    def commands(self) -> Sequence[Command]:
        return [
            Command("CONTrol:SETPoint", write=self._set_setpoint, read=lambda p: f"{self.setpoint_w:.1f}"),
            Command("CONTrol:FOLLow", write=self._set_follow, read=lambda p: str(int(self.follow))),
            Command("CONTrol:TARiff:CLEar", write=lambda p: self._stop_tariff()),
            Command("CONTrol:TARiff:CURRency", write=self._set_currency, read=lambda p: self.currency),
            Command("CONTrol:TARiff:WINDow", write=self._add_window),
            Command("CONTrol:TARiff:WINDow:COUNt", read=lambda p: str(len(self.windows))),
            Command("CONTrol:OUTage:WINDow", write=self._add_outage),
            Command("CONTrol:TARiff:COMMit", write=self._commit),
            Command("CONTrol:TARiff:STATe", read=lambda p: str(int(self.following_tariff))),
            Command("CONTrol:ISLanding:DETection", write=self._set_island_detection, read=lambda p: str(int(self._island_detection()))),
        ]  # fmt: skip

    # -- a day plan's tariff -----------------------------------------------------------------------
    def _stop_tariff(self) -> None:
        was = getattr(self, "following_tariff", False)
        self._clear_day()
        if was and self.manager is not None:
            self.manager(None)

    def _set_currency(self, params: Params) -> None:
        params.expect(1)
        code = params.args[0].strip().strip('"')
        if not (1 <= len(code) <= 3 and code.isalpha()):
            raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, "a currency is up to 3 letters")
        self.currency = code.upper()

    def _add_window(self, params: Params) -> None:
        params.expect(4)
        if len(self.windows) >= MAX_WINDOWS:
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, f"at most {MAX_WINDOWS} tariff windows")
        a = params.number(0, unit="s", low=0.0, high=MAX_SECONDS)
        b = params.number(1, unit="s", low=0.0, high=MAX_SECONDS)
        imp = params.number(2, low=-MAX_PRICE, high=MAX_PRICE)
        exp = params.number(3, low=-MAX_PRICE, high=MAX_PRICE)
        if b <= a or (self.windows and a < self.windows[-1][1]):
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "windows ascend and do not overlap")
        self.windows.append((a, b, imp, exp))

    def _add_outage(self, params: Params) -> None:
        params.expect(2)
        if len(self.outages) >= MAX_OUTAGES:
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, f"at most {MAX_OUTAGES} outages")
        a = params.number(0, unit="s", low=0.0, high=MAX_SECONDS)
        b = params.number(1, unit="s", low=0.0, high=MAX_SECONDS)
        if b <= a:
            raise ScpiError(ErrorCode.ILLEGAL_PARAMETER_VALUE, "an outage ends after it starts")
        self.outages.append((a, b))

    def _commit(self, params: Params) -> None:
        params.expect(0)
        if not self.windows:
            raise ScpiError(ErrorCode.SETTINGS_CONFLICT, "no tariff window")
        if self.manager is None:
            raise ScpiError(ErrorCode.EXECUTION_ERROR, "no energy manager to follow a tariff")
        from rig.day import Outage, PriceWindow, Tariff
        from rig.emulators.management import TariffPolicy

        t0 = self.now()
        tariff = Tariff(
            self.currency,
            tuple(PriceWindow(t0 + a, t0 + b, i, e) for a, b, i, e in self.windows),
        )
        outages = tuple(Outage(t0 + a, t0 + b) for a, b in self.outages)
        config: Any = getattr(self.world, "config", None)
        efficiency = float(config.evse.efficiency) if config is not None else 0.95
        self.manager(
            TariffPolicy(tariff, outages, efficiency=efficiency, defects=self.management_defects)
        )
        self.following_tariff = True

    def _island_detection(self) -> bool:
        evse: Any = getattr(self.world, "evse", None)
        return bool(getattr(evse, "anti_islanding", True))

    def _set_island_detection(self, params: Params) -> None:
        params.expect(1)
        evse: Any = getattr(self.world, "evse", None)
        if evse is None or not hasattr(evse, "anti_islanding"):
            raise ScpiError(ErrorCode.EXECUTION_ERROR, "no EVSE behind this interface")
        evse.anti_islanding = params.boolean(0)

    def _set_setpoint(self, params: Params) -> None:
        params.expect(1)
        self.setpoint_w = params.number(0, unit="W", low=-1e6, high=1e6)
        self.follow = False
        self._apply()

    def _set_follow(self, params: Params) -> None:
        params.expect(1)
        self.follow = params.boolean(0)
        self._apply()

    def _apply(self) -> None:
        self.world.command_setpoint(self.setpoint_w)
        if self.follow:
            self.world.command_follow_home(True)
