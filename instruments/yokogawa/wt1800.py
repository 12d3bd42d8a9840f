"""Yokogawa WT1800 / WT1800E precision power analyzer as the rig's power analyzer.

The command set is the WT series' (see wt_series.py and its COMMANDS table; IM WT1801-17EN per
an open transcription names the same NUMeric, RATE, STATus and COMMunicate:WAIT commands). This
module holds what is particular to the WT1800: six input elements, update intervals from 50 ms,
and the ranges of its 50 A input element.
"""

from __future__ import annotations

from instruments.yokogawa.wt_series import COMMANDS, WTSeries

__all__ = ["COMMANDS", "WT1800"]


class WT1800(WTSeries):
    model = "WT1800"
    #: Up to six input elements.
    ELEMENTS = range(1, 7)
    #: (?) 50 ms to 20 s.
    UPDATE_INTERVALS_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
    #: (?) 50 A element: voltage 1.5 V to 1000 V, direct current 1 A to 50 A.
    VOLTAGE_RANGES_V = (1.5, 3.0, 6.0, 10.0, 15.0, 30.0, 60.0, 100.0, 150.0, 300.0, 600.0, 1000.0)
    CURRENT_RANGES_A = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
    #: (?) line filter cut-offs.
    LINE_FILTERS_HZ = (500.0, 5500.0, 300_000.0)
