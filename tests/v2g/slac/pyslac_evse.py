"""pyslac's EVSE side for the SLAC cross-check: run by .venv-slac's python inside the EVSE's
network namespace (tests/v2g/slac/test_slac_pyslac.py starts it). Standard library and pyslac only.

    python pyslac_evse.py IFACE

It sets a fresh NMK on the local modem (CM_SET_KEY, answered by the test's stand-in), then
handles a pilot change to state B as a charge point's controller would, prints READY, and once
pyslac's session is matched prints `MATCHED <nmk> <nid> <ev mac> <run id>` (hex) and exits.
pyslac's SLAC_SETTLE_TIME (10 s after CM_SET_KEY, a pause for a real modem to restart) is cut to
0.2 s: the stand-in has nothing to restart; -3's timers stay as pyslac has them.
"""

from __future__ import annotations

import asyncio
import sys
import time

SETTLE_S = 0.2
MATCH_TIMEOUT_S = 60.0


async def main(interface: str) -> int:
    import pyslac.session as session_module
    from pyslac.enums import STATE_MATCHED
    from pyslac.environment import Config

    session_module.SLAC_SETTLE_TIME = SETTLE_S  # read by evse_set_key at call time
    config = Config(slac_init_timeout=30.0, slac_atten_results_timeout=None, log_level="DEBUG")
    session = session_module.SlacEvseSession("DE*RIG*E0001", interface, config)
    await session.evse_set_key()
    print(f"KEY {session.nmk.hex()} {session.nid.hex()}", flush=True)
    controller = session_module.SlacSessionController()
    await controller.process_cp_state(session, "B")
    print("READY", flush=True)
    deadline = time.monotonic() + MATCH_TIMEOUT_S
    while session.state != STATE_MATCHED:
        if time.monotonic() > deadline:
            print("TIMEOUT", flush=True)
            return 1
        await asyncio.sleep(0.01)
    print(
        f"MATCHED {session.nmk.hex()} {session.nid.hex()} {session.pev_mac.hex()} "
        f"{session.run_id.hex()}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
