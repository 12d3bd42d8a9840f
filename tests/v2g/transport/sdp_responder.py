"""Our SDP server as a process of its own: an entry point the namespace tests run on the EVSE end.

    python sdp_responder.py INTERFACE TCP_PORT [--security tls|no_tls]

Prints "ready <address> <tcp port>" once listening, then "served <source> <note>" for each
datagram; runs until SIGINT or SIGTERM and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transport_doubles import LoopScheduler

from rig.v2g.sdp import SdpServed, SdpServer, Security


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("interface")
    parser.add_argument("tcp_port", type=int)
    parser.add_argument("--security", choices=["tls", "no_tls"], default="no_tls")
    args = parser.parse_args()
    security = Security.TLS if args.security == "tls" else Security.NO_TLS

    loop = asyncio.new_event_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))

    def served(record: SdpServed) -> None:
        print(f"served {record.source} {record.answer.note}", flush=True)

    server = loop.run_until_complete(
        SdpServer.start(
            loop, LoopScheduler(loop), args.interface, {security: args.tcp_port}, recorder=served
        )
    )
    print(f"ready {server.offer.address} {args.tcp_port}", flush=True)
    try:
        loop.run_until_complete(stop)
    finally:
        server.close()
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
