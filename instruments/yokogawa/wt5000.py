"""Yokogawa WT5000 precision power analyzer as the rig's power analyzer (one element per point).

The command set is the WT series' (see wt_series.py and its COMMANDS table); this module holds
what is particular to the WT5000: seven input elements, its update intervals and the ranges of
its 30 A input element (760902). Per IM WT5000-17EN 4-4, headers may be truncated anywhere
between the short and the long form, and `ELEMent` without a number means element 1.
"""

from __future__ import annotations

from instruments.yokogawa.wt_series import (
    AC_FUNCTIONS,
    COMMANDS,
    DC_FUNCTIONS,
    WTSeries,
    element_list,
    element_map,
)

__all__ = ["AC_FUNCTIONS", "COMMANDS", "DC_FUNCTIONS", "WT5000", "element_list", "element_map"]


class WT5000(WTSeries):
    model = "WT5000"
    #: The WT5000 mainframe takes up to seven input elements (IM WT5000-01EN 3-2).
    ELEMENTS = range(1, 8)
    #: (?) 10 ms to 20 s per the WT5000 datasheet as read here; IM WT5000-01EN 6-6 names the
    #: 50 ms to 20 s steps.
    UPDATE_INTERVALS_S = (0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
    #: (?) 30 A element 760902: voltage 1.5 V to 1000 V, direct current 500 mA to 30 A.
    VOLTAGE_RANGES_V = (1.5, 3.0, 6.0, 10.0, 15.0, 30.0, 60.0, 100.0, 150.0, 300.0, 600.0, 1000.0)
    CURRENT_RANGES_A = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0)
    #: (?) line filter cut-offs offered by the element.
    LINE_FILTERS_HZ = (100.0, 1000.0, 10_000.0, 100_000.0, 1_000_000.0)
