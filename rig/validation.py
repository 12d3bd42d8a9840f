"""`rig validate`: plan files and bench files, told apart by their content, checked alike.

A bench file has `instruments:` (and no `steps:`); everything else is read as a plan. Every problem
of every file is reported as `file:line: field: message`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rig.bench import bench_from_source, is_bench_document
from rig.plan import discover, plan_from_source
from rig.yamlsrc import SourceError, load


@dataclass
class Validation:
    problems: list[str] = field(default_factory=list)
    plans: int = 0
    benches: int = 0


def validate_files(paths: list[str | Path]) -> Validation:
    out = Validation()
    files = discover(paths)
    if not files:
        out.problems.append(f"{', '.join(map(str, paths))}:0: (file): no plan or bench files found")
        return out
    for f in files:
        try:
            src = load(f)
            if is_bench_document(src.data):
                out.benches += 1
                bench_from_source(src)
            else:
                out.plans += 1
                plan_from_source(src)
        except SourceError as exc:
            out.problems.extend(str(p) for p in exc.problems)
    return out
