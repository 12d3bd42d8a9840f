"""`rig decode`: real captures and live traffic read back as the rig's own trace and a report.

    main(["car.pcapng", "--out", "OUT"])     # the command (the lead wires `rig decode` to it)
    decode_capture(path, key_log=None)       # the decoded frames and messages (rig.decode.capture)

See rig.decode.cli for the outputs, rig.decode.timeline for the phases and the charge loop,
rig.decode.html for the report.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from rig.decode.cli import main as _main

    return _main(argv)


__all__ = ["main"]
