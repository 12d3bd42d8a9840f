"""Coverage-guided fuzzing of rig.v2g.exi.decode with atheris, over all six namespaces.

Property (issue 3, "Robustness"; tests/fuzz/properties.py): for any byte string, decode(ns, data)
returns a message or raises EXIDecodeError; never another exception (also not one the codec wraps
as "internal decoder error"), never a hang, with bounded memory. A decoded message must survive
the way back: encode() gives bytes or EXIEncodeError, and those bytes decode to the same message.

Input layout: byte 0 picks the namespace (low 3 bits mod 6); bit 7 of byte 0 set means "replace the
first document byte by the 0x80 header" so that half of the random inputs get past the header check.
The rest is the EXI document. Seeds: every -20/AppProtocol vector of ../shared/vectors/everest in
its own namespace and in every other one.

Run (nice, it is CPU heavy; inputs, time bound and memory cap are libFuzzer flags):

    nice .venv/bin/python tests/fuzz/fuzz_exi_decode.py -runs=1000000 -timeout=2 -rss_limit_mb=2048 \
        -artifact_prefix=tests/fuzz/crashers/ [corpus_dir]

Without a corpus dir the seeds are written to a temporary one. Crash inputs land in
tests/fuzz/crashers/ (`crash-<sha1>`, `timeout-<sha1>`, `oom-<sha1>`); replay one with
`python tests/fuzz/fuzz_exi_decode.py tests/fuzz/crashers/crash-...` (or --replay FILE for a
readable traceback without libFuzzer).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
import types
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/, for fuzz.corpus

from fuzz.corpus import NAMESPACES, load_vectors  # noqa: E402
from fuzz.properties import check_decode  # noqa: E402

# One input may take at most this long before the harness calls it a hang (libFuzzer's -timeout
# catches true hangs; this catches the slow-but-finishing ones, e.g. quadratic paths).
SLOW_INPUT_S = float(os.environ.get("RIG_FUZZ_SLOW_S", "1.0"))
# Address-space cap for the whole process: a decoder that trusts a length field and allocates
# gigabytes raises MemoryError here (reported as a crash) instead of taking the machine down.
ADDRESS_SPACE_BYTES = int(os.environ.get("RIG_FUZZ_AS_BYTES", str(4 << 30)))


def split_input(data: bytes) -> tuple[str, bytes]:
    """(ns, document) of one fuzz input, as described in the module docstring."""
    if not data:
        return NAMESPACES[0], b""
    selector, document = data[0], data[1:]
    ns = NAMESPACES[(selector & 0x07) % len(NAMESPACES)]
    if selector & 0x80 and document:
        document = b"\x80" + document[1:]
    return ns, document


def seed_inputs(shared: Path) -> list[bytes]:
    """Every vector under every namespace selector, header flag off."""
    seeds = []
    for vector in load_vectors(shared):
        for index, _ns in enumerate(NAMESPACES):
            seeds.append(bytes([index]) + vector.data)
    return seeds


class SlowInput(AssertionError):
    """An input took longer than SLOW_INPUT_S."""


OUTCOMES: Counter[str] = Counter()


def check_one(data: bytes) -> None:
    """The property, for one input. Raises on a violation (atheris saves the input)."""
    from rig.v2g import exi

    ns, document = split_input(data)
    t0 = time.perf_counter()
    outcome = check_decode(exi, ns, document)
    elapsed = time.perf_counter() - t0
    if elapsed > SLOW_INPUT_S:
        raise SlowInput(f"decode took {elapsed:.3f} s (bound {SLOW_INPUT_S} s), ns={ns}")
    OUTCOMES[outcome.value] += 1
    total = sum(OUTCOMES.values())
    if total & (total - 1) == 0 or total % 100_000 == 0:  # powers of two, then every 100k
        _report(total)


def _report(total: int) -> None:
    # libFuzzer ends the process without running Python's atexit handlers, so the outcome
    # counts are printed as the run goes (like libFuzzer's own "pulse" lines).
    parts = ", ".join(f"{k} {v}" for k, v in OUTCOMES.most_common())
    print(f"exi-fuzz: {total} inputs checked: {parts}", file=sys.stderr, flush=True)


def instrument_generated_codec(atheris: Any) -> int:
    """Compile every generated codec function now and instrument it for coverage.

    rig.v2g.exi compiles its codec functions from source on first call (rig.v2g.exi.lazy), which
    import-time instrumentation never sees. This uses lazy's module layout (`_CODEC` names,
    codec()); if that changes, the harness still runs, with coverage of the runtime only.
    """
    from rig.v2g.exi import lazy

    count = 0
    try:
        for module in ("app", "common", "commontypes", "dc", "ac", "acdp", "wpt", "xmldsig"):
            g = lazy.module_globals(module)
            for name in list(g["_CODEC"]):
                fn = lazy.codec(module, name)
                if isinstance(fn, types.FunctionType):
                    atheris.instrument_func(fn)  # patches fn.__code__ in place
                    count += 1
    except (AttributeError, KeyError) as exc:
        print(f"exi-fuzz: WARNING: generated codec not instrumented ({exc!r})", file=sys.stderr)
    return count


def main() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = ADDRESS_SPACE_BYTES if hard == resource.RLIM_INFINITY else min(ADDRESS_SPACE_BYTES, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))

    args = sys.argv[1:]
    if args[:1] == ["--replay"]:  # plain Python, no instrumentation: a readable traceback
        for name in args[1:]:
            check_one(Path(name).read_bytes())
            print(f"{name}: ok")
        return

    import atheris

    with atheris.instrument_imports():
        # Instrument the codec for coverage feedback, including the generated modules, which
        # rig.v2g.exi otherwise loads lazily (after this block, uninstrumented).
        from rig.v2g import exi
        from rig.v2g.exi import codec, runtime  # noqa: F401

        for ns in NAMESPACES:
            exi.types(ns)
            exi.message_types(ns)
    print(f"exi-fuzz: instrumented {instrument_generated_codec(atheris)} codec functions")

    if not any(not a.startswith("-") for a in args):
        shared = Path(os.environ.get("RIG_SHARED", HERE.parent.parent.parent / "shared"))
        seeds_dir = Path(tempfile.mkdtemp(prefix="exi-fuzz-seeds-"))
        for i, seed in enumerate(seed_inputs(shared)):
            (seeds_dir / f"seed-{i:04d}").write_bytes(seed)
        args.append(str(seeds_dir))
    atheris.Setup([sys.argv[0], *args], check_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
