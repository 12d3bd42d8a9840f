"""Hand-made traces for the criteria tests: channels sampled on a time base, steps, the grid
source's recorded state and the EV's announcements as the runner would write them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from benches import EMULATED

from rig.checks import REGISTRY, Context, Verdict
from rig.checks.uncertainty import instrumentation_for
from rig.ev import EVSpec
from rig.trace import Event, StepMarker, Trace

INSTRUMENTS = instrumentation_for(EMULATED)


def context(ev: EVSpec | None = None, **kwargs: Any) -> Context:
    """A context with the embedded emulated bench's instruments (10 ms analyzer updates)."""
    return Context(
        ev=ev or EVSpec(60_000, 0.32, 0.30, 11_000.0, 11_000.0),
        instrumentation=kwargs.pop("instrumentation", INSTRUMENTS),
        **kwargs,
    )


Signal = Callable[[np.ndarray], np.ndarray] | np.ndarray | float


class TraceBuilder:
    def __init__(self) -> None:
        self.trace = Trace()

    def sample(self, times: np.ndarray, **signals: Signal) -> TraceBuilder:
        """Channels (names with "." written as "__") sampled together at `times`."""
        by_src: dict[str, dict[str, np.ndarray]] = {}
        for key, signal in signals.items():
            name = key.replace("__", ".")
            src, quantity = name.rsplit(".", 1) if name.count(".") > 1 else name.split(".", 1)
            if isinstance(signal, np.ndarray):
                values = signal
            elif callable(signal):
                values = signal(times)
            else:
                values = np.full(times.shape, float(signal))
            by_src.setdefault(src, {})[quantity] = np.asarray(values, dtype=float)
        for k, t in enumerate(times):
            for src, quantities in by_src.items():
                self.trace.add_sample(
                    float(t), src, {q: float(v[k]) for q, v in quantities.items()}
                )
        return self

    def step(self, t: float, action: str, **args: Any) -> TraceBuilder:
        self.trace.add_step(StepMarker(t, len(self.trace.steps), 1, action, args))
        return self

    def grid_off(self, t: float, *, recorded: float | None = 0.0) -> TraceBuilder:
        """The plan's `grid: off` step and, unless None, the source's state recorded after it."""
        self.step(t, "grid", on=False)
        if recorded is not None:
            self.trace.add_sample(t, "grid_simulator", {"output_on": recorded})
        return self

    def announce(self, t: float, **fields: float) -> TraceBuilder:
        """A ChargeLoopReq of the rig's EVCC carrying the EV's limits (W, Wh; RationalNumbers)."""
        body = {k: {"Exponent": 0, "Value": v} for k, v in fields.items()}
        self.trace.add_event(
            Event(
                t,
                "v2g",
                "message",
                {
                    "dir": "tx",
                    "side": "evcc",
                    "message": "DC_ChargeLoopReq",
                    "body": {"DC_ChargeLoopReq": {"BPT_Dynamic_DC_CLReqControlMode": body}},
                },
            )
        )
        return self


def run(name: str, trace: Trace, ctx: Context | None = None, **params: Any) -> dict[str, Verdict]:
    verdicts = REGISTRY[name].run(trace, ctx or context(), params)
    return {v.name: v for v in verdicts}


def rows(name: str, trace: Trace, ctx: Context | None = None, **params: Any) -> list[Verdict]:
    return REGISTRY[name].run(trace, ctx or context(), params)


def outcomes(verdicts: Mapping[str, Verdict]) -> dict[str, str]:
    return {k: v.verdict for k, v in verdicts.items()}
