"""The site's transfer switch between the grid point and the home bus (V2H backup).

Closed in normal operation. A grid-forming EVSE opens it before forming the island, so that the
home is separated from the grid it backs up, and closes it after resynchronizing.
"""

from __future__ import annotations


class TransferSwitch:
    def __init__(self) -> None:
        self.closed = True

    def open(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True
