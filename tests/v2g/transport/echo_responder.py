"""Our TCP server, connection layer and echo engine as a process of its own (a test entry point
the namespace tests and benchmarks run on the EVSE end, so that the exchange crosses processes
as it does between a real EV and a real charger).

    python echo_responder.py HOST [--interface IF] [--port N]

Prints "ready <port>" once listening, "ended <reason>" per finished connection; runs until
SIGINT or SIGTERM and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transport_doubles import EchoEngine, LoopScheduler

from rig.v2g.connection import Connection
from rig.v2g.transport.tcp import TcpLink, TcpServer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("--interface")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    loop = asyncio.new_event_loop()
    scheduler = LoopScheduler(loop)
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))

    def on_link(link: TcpLink) -> None:
        engine = EchoEngine()

        def ended(_: Connection) -> None:
            print(f"ended {engine.requests} requests: {engine.end_reason}", flush=True)

        Connection(engine, link, scheduler, on_ended=ended).start()

    server = loop.run_until_complete(
        TcpServer.start(loop, args.host, args.port, on_link, interface=args.interface)
    )
    print(f"ready {server.port}", flush=True)
    try:
        loop.run_until_complete(stop)
    finally:
        server.close()
        loop.run_until_complete(asyncio.sleep(0.01))
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
