"""Side-by-side EXI timings: rig.v2g.exi against the Java codec of the PyPI package `iso15118`.

Prints the median encode and decode time per message of both codecs for the two messages of the
issue 3 floors (DC_ChargeLoopReq with BPT_Dynamic_DC_CLReqControlMode, and SessionSetupReq), the
import times, and what the peer's transport costs. The peer is timed inside its own process (the
bridge's "bench" op), so the pipe between the rig and the bridge is not in its figures; its figures
do include one py4j call into the JVM each, whose bare cost is printed separately ("py4j null call").

    .venv/bin/python tests/benchmarks/exi_compare.py [--number 2000] [--repeat 7] [--no-peer]
        [--peer-number 20] [--peer-warmup 200]

The peer's calls cost tens of milliseconds each, hence its smaller call counts.

Needs .venv-peer (bash .ci/peer-setup) for the peer columns.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import timeit
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))  # tests/, for peers.josev

HEADER = {"SessionID": "5A2CDE53F701D4AC", "TimeStamp": 1718607534}


def _rational(value: int, exponent: int = 0) -> dict[str, int]:
    return {"Exponent": exponent, "Value": value}


# (a) A V2H charge-loop request in dynamic BPT mode with every element of the control mode set:
# 70 bytes in EXI ("about 68 bytes" in the issue).
DC_CHARGE_LOOP_BPT_DYNAMIC: dict[str, Any] = {
    "DC_ChargeLoopReq": {
        "Header": HEADER,
        "MeterInfoRequested": False,
        "EVPresentVoltage": _rational(400),
        "BPT_Dynamic_DC_CLReqControlMode": {
            "DepartureTime": 7200,
            "EVTargetEnergyRequest": _rational(40, 3),
            "EVMaximumEnergyRequest": _rational(60, 3),
            "EVMinimumEnergyRequest": _rational(-20, 3),
            "EVMaximumChargePower": _rational(150, 3),
            "EVMinimumChargePower": _rational(0),
            "EVMaximumChargeCurrent": _rational(300),
            "EVMaximumVoltage": _rational(900),
            "EVMinimumVoltage": _rational(150),
            "EVMaximumDischargePower": _rational(11, 3),
            "EVMinimumDischargePower": _rational(0),
            "EVMaximumDischargeCurrent": _rational(30),
            "EVMaximumV2XEnergyRequest": _rational(30, 3),
            "EVMinimumV2XEnergyRequest": _rational(18, 3),
        },
    }
}

# (b) The first -20 request of a session (EVCCID as in EVerest's session_setup test).
SESSION_SETUP_REQ: dict[str, Any] = {
    "SessionSetupReq": {
        "Header": {"SessionID": "0000000000000000", "TimeStamp": 1739635913},
        "EVCCID": "WMIV1234567890ABCDEX",
    }
}

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("DC_ChargeLoopReq BPT_Dynamic", "dc", DC_CHARGE_LOOP_BPT_DYNAMIC),
    ("SessionSetupReq", "common", SESSION_SETUP_REQ),
]


@dataclass(frozen=True)
class Row:
    """Median seconds per call of one message, ours and the peer's (None: peer not measured)."""

    name: str
    size: int
    ours_encode_s: float
    ours_decode_s: float
    peer_encode_s: float | None
    peer_decode_s: float | None
    same_bytes: bool | None


@dataclass(frozen=True)
class Report:
    rows: list[Row]
    ours_import_s: float
    ours_first_use_s: float
    peer_import_s: float | None
    peer_jvm_start_s: float | None
    py4j_null_s: float | None
    pipe_round_trip_s: float | None


def _median_per_call(fn: Any, number: int, repeat: int) -> float:
    return statistics.median(t / number for t in timeit.repeat(fn, number=number, repeat=repeat))


def ours_import_s(runs: int = 5) -> float:
    """Median wall time of `import rig.v2g.exi` in a fresh interpreter."""
    code = (
        "import time; t = time.perf_counter(); import rig.v2g.exi; print(time.perf_counter() - t)"
    )
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
        )
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def ours_first_use_s(runs: int = 5) -> float:
    """Median wall time of import plus the first from_json/encode/decode of message (a), in a
    fresh interpreter: rig.v2g.exi builds its classes and codec functions on first use."""
    code = (
        f"m = {DC_CHARGE_LOOP_BPT_DYNAMIC!r}\n"
        "import time; t = time.perf_counter(); from rig.v2g import exi; "
        "exi.decode('dc', exi.encode(exi.from_json('dc', m))); print(time.perf_counter() - t)"
    )
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
        )
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def run(
    number: int = 2000,
    repeat: int = 7,
    with_peer: bool = True,
    peer_number: int = 20,
    peer_warmup: int = 200,
) -> Report:
    from rig.v2g import exi

    peer = None
    if with_peer:
        from peers import josev

        reason = josev.unavailable_reason()
        if reason is None:
            peer = josev.JosevPeer()
        else:
            print(f"peer not measured: {reason}", file=sys.stderr)
    rows = []
    py4j_null: list[float] = []
    try:
        for name, ns, obj in CASES:
            message = exi.from_json(ns, obj)
            data = exi.encode(message)
            enc = _median_per_call(lambda m=message: exi.encode(m), number, repeat)
            dec = _median_per_call(lambda d=data, n=ns: exi.decode(n, d), number, repeat)
            peer_enc = peer_dec = None
            same = None
            if peer is not None:
                same = peer.encode(ns, obj) == data
                timings = peer.bench(
                    ns, obj, data, number=peer_number, repeat=repeat, warmup=peer_warmup
                )
                peer_enc = statistics.median(timings["encode_s"])
                peer_dec = statistics.median(timings["decode_s"])
                py4j_null.extend(timings["py4j_null_s"])
            rows.append(Row(name, len(data), enc, dec, peer_enc, peer_dec, same))
        return Report(
            rows=rows,
            ours_import_s=ours_import_s(),
            ours_first_use_s=ours_first_use_s(),
            peer_import_s=peer.info["import_s"] if peer else None,
            peer_jvm_start_s=peer.info["jvm_start_s"] if peer else None,
            py4j_null_s=statistics.median(py4j_null) if py4j_null else None,
            pipe_round_trip_s=peer.round_trip_s() if peer else None,
        )
    finally:
        if peer is not None:
            peer.close()


def _us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.1f}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:,.0f} ms"


def format_report(report: Report) -> str:
    head = f"{'message':30} {'bytes':>5} {'ours enc':>10} {'ours dec':>10} {'peer enc':>10} {'peer dec':>10}  same bytes"
    lines = ["median per call, µs (peer timed inside its process, one py4j call each)", head]
    for r in report.rows:
        same = "-" if r.same_bytes is None else ("yes" if r.same_bytes else "NO")
        lines.append(
            f"{r.name:30} {r.size:>5} {_us(r.ours_encode_s):>10} {_us(r.ours_decode_s):>10} "
            f"{_us(r.peer_encode_s):>10} {_us(r.peer_decode_s):>10}  {same}"
        )
    lines += [
        f"import: rig.v2g.exi {_ms(report.ours_import_s)} "
        f"(with the first encode+decode of DC_ChargeLoopReq {_ms(report.ours_first_use_s)}); "
        f"iso15118 codec module {_ms(report.peer_import_s)} + JVM start and grammars {_ms(report.peer_jvm_start_s)}",
        f"peer transport: py4j null call {_us(report.py4j_null_s)} µs; "
        f"rig <-> bridge pipe round trip {_us(report.pipe_round_trip_s)} µs",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000, help="calls per timing run (ours)")
    parser.add_argument("--repeat", type=int, default=7, help="timing runs; the median is shown")
    parser.add_argument("--no-peer", action="store_true", help="time rig.v2g.exi only")
    parser.add_argument("--peer-number", type=int, default=20, help="calls per timing run (peer)")
    parser.add_argument("--peer-warmup", type=int, default=200, help="untimed peer calls first")
    args = parser.parse_args(argv)
    report = run(args.number, args.repeat, not args.no_peer, args.peer_number, args.peer_warmup)
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
