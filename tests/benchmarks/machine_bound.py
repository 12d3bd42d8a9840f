"""Wall-clock and CPU floors that hold on a fast machine of this kind and not on a slow one.

The 2-core machines this project develops and runs CI on vary in speed from day to day, and
within a day: the same code ran the benchmark hour plan with protocol none in 1.76 s on
2026-12-05, 2.05 s on 2026-12-06 and 3.79 s later that day, and the clean-clone CI took 33 min on
the fast days and 51 min on the slow one. A floor in seconds is therefore an expected failure,
not a strict one (MACHINE_BOUND): it shows in every run, XPASS when met and XFAIL when missed,
without deciding CI. What decides is what does not depend on the machine's speed (ratios measured
in the same run, counts, verdicts) and a strict guard well above each floor (GUARD_FACTOR times
it) that only a real regression, not a slow day, reaches.
"""

import pytest

MACHINE_BOUND = pytest.mark.xfail(
    reason="a wall or CPU floor: met on a fast machine of this kind, not on every one "
    "(tests/benchmarks/machine_bound.py)",
    strict=False,
)

#: The strict guard's multiple of a floor. The slowest day seen ran the same code 1.85 times
#: slower than the fastest (the hour plan, protocol none: 3.79 s against 2.05 s).
GUARD_FACTOR = 2.5
