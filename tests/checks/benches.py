"""Benches for the verdict tests: the embedded emulated bench, and the same with noisier instruments."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rig import units
from rig.bench import BenchConfig, InstrumentConfig, load_bench

REPO = Path(__file__).resolve().parents[2]
EMULATED = load_bench(REPO / "fixtures/benches/emulated.yaml")


def _scaled_accuracy(accuracy: Mapping[str, Any], factor: float) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for quantity, terms in accuracy.items():
        out[str(quantity)] = {
            term: (value if isinstance(value, int | float) else units.parse(value, "ratio"))
            * factor
            for term, value in dict(terms).items()
        }
    return out


def noisier(bench: BenchConfig, factor: float) -> BenchConfig:
    """The bench with every measuring instrument's stated accuracy, and with it the twins' gain,
    offset, drift and noise, `factor` times the datasheet's; timestamp jitter likewise."""
    from instruments.registry import MODELS

    instruments: list[InstrumentConfig] = []
    for inst in bench.instruments:
        spec = MODELS[inst.model].twin.meter_spec
        if spec is None:
            instruments.append(inst)
            continue
        stated = inst.options.get("accuracy") or {
            q: {"reading": a.reading, "range": a.range} for q, a in spec.accuracy.items()
        }
        options = dict(inst.options)
        options["accuracy"] = _scaled_accuracy(stated, factor)
        options["timestamp_jitter"] = spec.jitter_s * factor
        instruments.append(dataclasses.replace(inst, options=options))
    return dataclasses.replace(bench, instruments=tuple(instruments))
