"""Short CI variant of tests/fuzz/fuzz_exi_decode.py: a seeded mutator over the vectors, ~20-50 s (500,000 inputs).

For every input the property of tests/fuzz/properties.py holds (decode returns a message or
raises EXIDecodeError, never another exception nor a wrapped "internal decoder error"; decoded
messages re-encode, or refuse with EXIEncodeError, and decode back equal), within a per-input
time bound (SIGALRM) and, on a sample of inputs, a tracemalloc peak bound. The sequence is fixed by the seed, so a failure reproduces; the failing input's hex
is in the assertion message.
"""

from __future__ import annotations

import os
import random
import signal
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from fuzz.corpus import NAMESPACES, Vector, load_vectors
from fuzz.properties import check_decode

exi = pytest.importorskip("rig.v2g.exi", reason="rig.v2g.exi not built yet")

SEED = int(os.environ.get("RIG_FUZZ_SEED", "20240615"))
INPUTS = int(os.environ.get("RIG_FUZZ_INPUTS", "500000"))
PER_INPUT_S = 1.0  # a decode of a document of a few hundred bytes takes well under 1 ms
PEAK_BYTES = 32 << 20  # no input of <= 4 KiB may make the decoder hold 32 MiB
MEMORY_SAMPLE = 97  # measure tracemalloc peaks on every 97th input (it slows allocation ~3x)
MAX_LEN = 4096


class _Timeout(BaseException):
    """Raised by SIGALRM; a BaseException so that no `except Exception` in the codec eats it."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Timeout


def mutate(rng: random.Random, seeds: list[Vector]) -> Iterator[tuple[str, bytes]]:
    """Endless (ns, document) inputs: mutated vectors, splices, random bytes, in any namespace."""
    while True:
        base = rng.choice(seeds)
        ns = base.ns if rng.random() < 0.7 else rng.choice(NAMESPACES)
        data = bytearray(base.data)
        kind = rng.random()
        if kind < 0.08:
            size = rng.randrange(0, 64) if rng.random() < 0.8 else rng.randrange(64, MAX_LEN)
            data = bytearray(rng.randbytes(size))
            if data and rng.random() < 0.5:
                data[0] = 0x80
        elif kind < 0.15:
            other = rng.choice(seeds).data
            cut, cut2 = rng.randrange(len(data) + 1), rng.randrange(len(other) + 1)
            data = data[:cut] + other[cut2:]
        else:
            for _ in range(rng.choice((1, 1, 1, 2, 3, 4, 8))):
                op = rng.randrange(7)
                pos = rng.randrange(len(data)) if data else 0
                if op == 0 and data:  # flip one bit
                    data[pos] ^= 1 << rng.randrange(8)
                elif op == 1 and data:  # set one byte, often to an edge value
                    data[pos] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
                elif op == 2:  # insert bytes
                    data[pos:pos] = rng.randbytes(rng.randrange(1, 9))
                elif op == 3 and data:  # delete a run
                    del data[pos : pos + rng.randrange(1, 9)]
                elif op == 4:  # truncate
                    del data[rng.randrange(len(data) + 1) :]
                elif op == 5 and data:  # duplicate a run (long lists, repeated lengths)
                    run = data[pos : pos + rng.randrange(1, 17)]
                    data[pos:pos] = run * rng.randrange(1, 9)
                elif op == 6:  # append a long tail of one byte value (huge length prefixes)
                    data += bytes([rng.choice((0xFF, 0x80, 0x00))]) * rng.randrange(1, 64)
        yield ns, bytes(data[:MAX_LEN])


@pytest.mark.slow
def test_decoder_never_raises_anything_but_its_decode_error(shared: Path) -> None:
    seeds = load_vectors(shared)
    assert seeds, "no vectors to mutate"
    rng = random.Random(SEED)
    previous = signal.signal(signal.SIGALRM, _alarm)
    worst_s, worst_peak, checked, t_start = 0.0, 0, 0, time.perf_counter()
    outcomes: Counter[str] = Counter()
    try:
        for index, (ns, data) in zip(range(INPUTS), mutate(rng, seeds), strict=False):
            sample = index % MEMORY_SAMPLE == 0
            if sample:
                tracemalloc.start()
            signal.setitimer(signal.ITIMER_REAL, PER_INPUT_S)
            t0 = time.perf_counter()
            try:
                outcomes[check_decode(exi, ns, data).value] += 1
            except _Timeout:
                pytest.fail(f"input {index} took over {PER_INPUT_S} s: ns={ns} hex={data.hex()}")
            except Exception as exc:
                pytest.fail(f"input {index} raised {exc!r}: ns={ns} hex={data.hex()}")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                if sample:
                    peak = tracemalloc.get_traced_memory()[1]
                    tracemalloc.stop()
            worst_s = max(worst_s, time.perf_counter() - t0)
            if sample:
                worst_peak = max(worst_peak, peak)
                assert peak < PEAK_BYTES, (
                    f"input {index} peaked at {peak} B: ns={ns} hex={data.hex()}"
                )
            checked += 1
    finally:
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - t_start
    print(
        f"\nfuzz-ci: {checked} inputs in {elapsed:.1f} s ({checked / elapsed:.0f}/s), seed {SEED}, "
        f"slowest {worst_s * 1e3:.2f} ms, worst sampled peak {worst_peak / 1024:.0f} KiB; "
        + ", ".join(f"{k} {v}" for k, v in outcomes.most_common())
    )
    assert checked == INPUTS
