"""The control interface of an EVSE's energy manager, as the rig drives it: setpoint and follow-home.

In Dynamic control mode the EVSE decides the power it transfers (ISO 15118-20: FACTS.md "Who
decides discharge"); a plan's `setpoint` and `follow_home_load` steps therefore reach it through
its own control interface, not through the -20 session. Real products expose that interface in
their own ways (OCPP, Modbus, a vendor API); the rig's emulated EVSE serves this small SCPI one
(instruments.emulated.evse_control), and a bench file names it as the DUT's `control:`.

    CONTrol:SETPoint <W>     commanded AC power, + charges the EV, - discharges (also ?)
    CONTrol:FOLLow ON|OFF    discharge what the home draws (also ?)

A day plan (issue 13) gives the manager a tariff and a grid outage forecast, and lets it decide
(the rig's own commands; a real product's interface names them its own way):

    CONTrol:TARiff:CLEar                          forget the tariff and the forecast; manager off
    CONTrol:TARiff:CURRency <code>                the prices' currency (3 letters)
    CONTrol:TARiff:WINDow <from s>,<to s>,<import>,<export>
                                                  a price window (per kWh), seconds from COMMit
    CONTrol:OUTage:WINDow <from s>,<to s>         a forecast grid outage, seconds from COMMit
    CONTrol:TARiff:COMMit                         the manager follows the tariff from now on
    CONTrol:TARiff:STATe?                         1 while it does
    CONTrol:TARiff:WINDow:COUNt?                  windows received since the last CLEar

An islanding test (IEEE 1547.1 5.10) first confirms that an island persists with the unit's
anti-islanding disabled; the safe state always enables it again (the rig's own command):

    CONTrol:ISLanding:DETection ON|OFF            the unit's anti-islanding (unintentional
                                                  islanding detection) on or off; ? reads it
"""

from __future__ import annotations

from typing import Any

from instruments.numbers import format_nrf, parse_boolean, parse_number
from instruments.roles import Identity


class EvseControl:
    """The EVSE's control interface over a pyvisa message-based resource."""

    def __init__(self, resource: Any, *, name: str = "dut control") -> None:
        self.resource = resource
        self.name = name
        for attribute in ("read_termination", "write_termination"):
            if hasattr(resource, attribute):
                setattr(resource, attribute, "\n")

    def identify(self) -> Identity:
        return Identity.parse(self.resource.query("*IDN?"))

    def set_setpoint(self, p_w: float) -> None:
        self.resource.write(f"CONT:SETP {format_nrf(p_w)}")
        self._check()

    def follow_home_load(self, on: bool) -> None:
        self.resource.write(f"CONT:FOLL {'ON' if on else 'OFF'}")
        self._check()

    def setpoint(self) -> float:
        return parse_number(self.resource.query("CONT:SETP?"))

    def following(self) -> bool:
        return parse_boolean(self.resource.query("CONT:FOLL?"))

    def set_day(self, day: Any) -> None:
        """A day plan's tariff and outage forecast (rig.day.DaySpec, day-relative seconds; the
        rig sends it at the plan's t = 0, so COMMit marks the day's start)."""
        self.resource.write("CONT:TAR:CLE")
        self._check()
        self.resource.write(f"CONT:TAR:CURR {day.tariff.currency}")
        self._check()
        for w in day.tariff.windows:
            self.resource.write(
                "CONT:TAR:WIND "
                + ",".join(
                    format_nrf(x) for x in (w.start_s, w.end_s, w.import_price, w.export_price)
                )
            )
        self._check()
        for o in day.outages:
            self.resource.write(f"CONT:OUT:WIND {format_nrf(o.start_s)},{format_nrf(o.end_s)}")
        self._check()
        count = int(parse_number(self.resource.query("CONT:TAR:WIND:COUN?")))
        if count != len(day.tariff.windows):
            raise RuntimeError(
                f"{self.name}: the EVSE holds {count} tariff windows, {len(day.tariff.windows)} sent"
            )
        self.resource.write("CONT:TAR:COMM")
        self._check()
        if not parse_boolean(self.resource.query("CONT:TAR:STAT?")):
            raise RuntimeError(f"{self.name}: the EVSE's manager did not take the tariff")

    def set_island_detection(self, on: bool) -> None:
        """The unit's anti-islanding on or off (off only to confirm an island persists)."""
        self.resource.write(f"CONT:ISL:DET {'ON' if on else 'OFF'}")
        self._check()
        if self.island_detection() != on:
            raise RuntimeError(f"{self.name}: the EVSE's anti-islanding did not turn {on}")

    def island_detection(self) -> bool:
        return parse_boolean(self.resource.query("CONT:ISL:DET?"))

    def safe_state(self) -> None:
        """No power commanded, no home following, anti-islanding on (the session's own stop
        does the rest)."""
        self.resource.write("CONT:TAR:CLE")
        self.resource.write("CONT:FOLL OFF;:CONT:SETP 0;:CONT:ISL:DET ON")
        if self.setpoint() != 0.0 or self.following():
            raise RuntimeError(f"{self.name}: the EVSE's control interface did not go to 0 W")
        if not self.island_detection():
            raise RuntimeError(f"{self.name}: the EVSE's anti-islanding did not turn back on")

    def _check(self) -> None:
        reply = self.resource.query("SYST:ERR?").strip()
        if not reply.startswith(("0,", "+0,")):
            raise RuntimeError(f"{self.name}: the EVSE's control interface refused: {reply}")

    def close(self) -> None:
        self.resource.close()
