"""Command line of the EXI codec (wired as `rig exi ...`).

    decode --ns NS HEX        print the JSON form of an EXI document (indent 2)
    encode --ns NS (JSON|-)   print the EXI document as lower-case hex (JSON from stdin with -)

Errors print one line on stderr (for decode errors including the bit offset) and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TextIO

from rig.v2g.exi.codec import DOCUMENT_SETS, decode, encode
from rig.v2g.exi.errors import EXIError
from rig.v2g.exi.jsonform import from_json, to_json


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


class _UsageError(Exception):
    pass


#: Longest JSON form accepted (the largest -20 message is a few kB as JSON).
MAX_JSON = 1 << 20


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="rig exi", description="EXI codec: ISO 15118-20, ISO 15118-2, DIN 70121, AppProtocol"
    )
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("decode", help="EXI hex -> JSON form")
    d.add_argument("--ns", required=True, choices=DOCUMENT_SETS)
    d.add_argument("hex", help="the EXI document as hex (whitespace ignored)")
    e = sub.add_parser("encode", help="JSON form -> EXI hex")
    e.add_argument("--ns", required=True, choices=DOCUMENT_SETS)
    e.add_argument("json", help="the JSON form, or - to read it from stdin")
    return ap


def main(argv: list[str], stdin: TextIO | None = None) -> int:
    """Run one command; 0 on success, 2 on any error (one line on stderr)."""
    try:
        args = _parser().parse_args(argv)
    except _UsageError as e:
        print(f"rig exi: {e}", file=sys.stderr)
        return 2
    try:
        if args.command == "decode":
            text = "".join(args.hex.split())
            try:
                data = bytes.fromhex(text)
            except ValueError:
                print("rig exi: the EXI document is not valid hex", file=sys.stderr)
                return 2
            print(json.dumps(to_json(decode(args.ns, data)), indent=2))
            return 0
        source = (stdin or sys.stdin).read(MAX_JSON + 1) if args.json == "-" else args.json
        if len(source) > MAX_JSON:
            print(f"rig exi: the JSON form is longer than {MAX_JSON} characters", file=sys.stderr)
            return 2
        try:
            obj = json.loads(source)
        except RecursionError:
            print("rig exi: invalid JSON: nested too deeply", file=sys.stderr)
            return 2
        except ValueError as e:  # JSONDecodeError, and integers of more than 4300 digits
            print(f"rig exi: invalid JSON: {e}", file=sys.stderr)
            return 2
        print(encode(from_json(args.ns, obj), args.ns).hex())
        return 0
    except EXIError as e:
        print(f"rig exi: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except RecursionError:
        print("rig exi: the JSON form is nested too deeply for any message", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`rig exi decode ... | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
