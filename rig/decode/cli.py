"""`rig decode CAPTURE [--keylog FILE] [--out DIR]` and `rig decode --iface IF`: the command.

Writes DIR/trace.jsonl (every frame as an event, in the run trace's format: rig.trace), DIR/
decode.json (the counts and what was undecodable, with the phases) and DIR/report.html. Exit
status 0 when everything decoded, 1 when something was undecodable (the files are written
either way), 2 for a usage error or an unreadable input.

Live (`--iface`): frames of the interface (SLAC, SDP, V2G TCP) are captured into DIR/live.pcapng
with rig.v2g.capture.LiveCapture until `--duration` seconds pass or Ctrl-C, then decoded like a
file (the outputs are written at the end, not while the capture runs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rig.decode.capture import DecodedCapture, decode_capture
from rig.decode.html import render
from rig.decode.timeline import charge_loop, phases
from rig.trace import TraceWriter

#: The largest key log file read (rig.v2g.tls_records' own bound).
MAX_KEY_LOG = 16 << 20


def write_outputs(decoded: DecodedCapture, out_dir: Path) -> dict[str, object]:
    """trace.jsonl, decode.json and report.html in out_dir; returns decode.json's content."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spans = phases(decoded.events)
    loop = charge_loop(decoded.events)
    writer = TraceWriter(
        out_dir / "trace.jsonl",
        {"capture": decoded.source, "format": decoded.format, "tool": "rig decode"},
    )
    try:
        for event in decoded.events:
            writer.event(event.t, event.src, event.name, event.data)
    finally:
        writer.close(decoded.events[-1].t if decoded.events else 0.0)
    summary: dict[str, object] = decoded.summary()
    summary["phases"] = [p.as_record() for p in spans]
    summary["charge_loop_points"] = len(loop)
    (out_dir / "decode.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out_dir / "report.html").write_text(render(decoded, spans, loop), encoding="utf-8")
    return summary


def _live(interface: str, out_dir: Path, duration: float | None) -> Path:
    from rig.v2g.capture import CaptureWriter, LiveCapture, live_filter, live_interface

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "live.pcapng"
    writer = CaptureWriter(
        path,
        epoch_ns=time.time_ns(),
        interface=live_interface(interface, live_filter((), sdp=True, slac=True)),
    )
    # Every TCP port: the SECC's port is whatever its SDP response says.
    capture = LiveCapture(writer, interface, sdp=True, slac=True)
    capture.start()
    print(f"rig decode: capturing on {interface} into {path}; Ctrl-C stops", flush=True)
    try:
        end = None if duration is None else time.monotonic() + duration
        while end is None or time.monotonic() < end:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        capture.stop()
        writer.close()
    print(f"rig decode: {capture.frames} frames captured", flush=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rig decode",
        description="Decode a V2G capture (SLAC, SDP, V2GTP, EXI of DIN 70121, ISO 15118-2 and "
        "-20) into trace.jsonl, decode.json and report.html.",
    )
    parser.add_argument("capture", nargs="?", help="pcap or pcapng file")
    parser.add_argument("--keylog", help="TLS key log (NSS format) for -20 over TLS")
    parser.add_argument("--out", default=None, help="output folder (default: CAPTURE.decoded)")
    parser.add_argument("--iface", help="capture live on this interface instead of a file")
    parser.add_argument(
        "--duration", type=float, default=None, help="live: stop after this many seconds"
    )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if (args.capture is None) == (args.iface is None):
        parser.print_usage(sys.stderr)
        print("rig decode: give a CAPTURE file or --iface, not both", file=sys.stderr)
        return 2
    key_log = None
    if args.keylog:
        try:
            with open(args.keylog, encoding="ascii", errors="replace") as fh:
                key_log = fh.read(MAX_KEY_LOG + 1)
        except OSError as exc:
            print(f"rig decode: cannot read the key log {args.keylog}: {exc}", file=sys.stderr)
            return 2
        if len(key_log) > MAX_KEY_LOG:
            print(f"rig decode: key log {args.keylog} over {MAX_KEY_LOG} bytes", file=sys.stderr)
            return 2
    if args.iface:
        out_dir = Path(args.out or f"decode-{args.iface}")
        try:
            source = _live(args.iface, out_dir, args.duration)
        except (OSError, ValueError, RuntimeError) as exc:
            print(f"rig decode: live capture on {args.iface}: {exc}", file=sys.stderr)
            return 2
    else:
        source = Path(args.capture)
        out_dir = Path(args.out or f"{source}.decoded")
        if not source.is_file():
            print(f"rig decode: no file {source}", file=sys.stderr)
            return 2
    try:
        decoded = decode_capture(source, key_log=key_log)
    except OSError as exc:
        print(f"rig decode: cannot read {source}: {exc}", file=sys.stderr)
        return 2
    summary = write_outputs(decoded, out_dir)
    problems = summary["undecodable"]
    assert isinstance(problems, list)
    print(
        f"rig decode: {decoded.frames} frames, {decoded.slac} SLAC, {decoded.sdp} SDP, "
        f"{decoded.v2gtp} V2GTP ({decoded.exi_decoded} decoded, {decoded.exi_failed} failed), "
        f"{len(problems)} undecodable -> {out_dir}"
    )
    return 1 if problems else 0
