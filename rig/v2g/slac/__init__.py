"""ISO 15118-3 SLAC: pairing the EV's and the EVSE's HomePlug Green PHY modems before any V2GTP byte.

- messages: the management frames as values (encode / decode, bounded, never raising but
  SlacDecodeError);
- timing: -3's timers and counters (SlacTiming), configurable;
- ev, evse: the two sides as sans-IO machines (EvSlac, EvseSlac): frames in, frames out, one
  deadline; records of what happened for the trace;
- endpoint: a side served on a frame port and the run's scheduler (SlacEndpoint);
- powerline: an emulated line with emulated modems, for virtual time (Powerline);
- raw: a real interface through a packet socket (RawPort), and stand-ins for absent modems on a
  point-to-point link (ModemStandIn);
- emulated_modem: the stand-in modem itself (EmulatedModem);
- link: the cable sequence around SLAC (pilot states, 5 % PWM, SLAC, then the session) as the
  runner and the Dut drive it.
"""

from rig.v2g.slac.endpoint import FramePort, SlacEndpoint
from rig.v2g.slac.ev import EvConfig, EvSlac, EvState
from rig.v2g.slac.evse import EvseConfig, EvseSlac, EvseState
from rig.v2g.slac.records import RecordKind, SlacMatch, SlacRecord
from rig.v2g.slac.timing import SlacTiming

__all__ = [
    "EvConfig",
    "EvSlac",
    "EvState",
    "EvseConfig",
    "EvseSlac",
    "EvseState",
    "FramePort",
    "RecordKind",
    "SlacEndpoint",
    "SlacMatch",
    "SlacRecord",
    "SlacTiming",
]
