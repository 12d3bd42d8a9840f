"""Hypothesis strategies for valid messages of any generated class.

Valid content is drawn by walking the class's normalized EXI grammar (the same one the codec was
generated from): every path through the grammar is a schema-valid content model, so choices,
required elements and list bounds hold by construction. Simple values come from the facets of
the field's simple type. Wildcard productions are never taken.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from rig.v2g.exi import lazy
from rig.v2g.exi.grammar import Kind, TypeGrammar
from rig.v2g.exi.meta import FieldKind, FieldMeta, Rep, SimpleSpec
from rig.v2g.exi.model import ModelBuilder

MAX_ITEMS = 2  # list items drawn beyond minOccurs
MAX_BINARY = 48  # longest binary drawn (a few at the exact maximum too)
EXAMPLES = int(os.environ.get("RIG_HYPOTHESIS_EXAMPLES", "25"))


@functools.cache
def model(schemas: str) -> ModelBuilder:
    from rig.v2g.exi import xsd
    from rig.v2g.exi.generate import NS_SETS, import_locations

    mb = ModelBuilder()
    for name, entry in NS_SETS.items():
        mb.add_set(name, xsd.load([Path(schemas) / entry], import_locations(Path(schemas))))
    return mb


@functools.cache
def grammar_of(schemas: str, module: str, name: str) -> TypeGrammar:
    for cm in model(schemas).classes.values():
        if cm.module == module and cm.name == name:
            return cm.grammar
    raise KeyError(f"{module}.{name}")


@functools.cache
def simple_values(spec: SimpleSpec) -> st.SearchStrategy[Any]:
    rep = spec.rep
    if rep == Rep.BOOLEAN:
        return st.booleans()
    if rep in (Rep.NBIT, Rep.UINT, Rep.INT):
        lo = spec.lo if spec.lo is not None else -(2**80)
        hi = spec.hi if spec.hi is not None else 2**80
        edges = st.sampled_from(
            sorted({lo, hi, max(lo, min(hi, 0)), max(lo, min(hi, 127)), max(lo, min(hi, 128))})
        )
        return st.one_of(edges, st.integers(lo, hi))
    if rep == Rep.ENUM:
        return st.sampled_from(list(spec.enum))
    if rep == Rep.STRING:
        lo = spec.min_length or 0
        hi = spec.max_length if spec.max_length is not None else 40
        chars = st.characters(blacklist_categories=("Cs",))
        return st.one_of(
            st.text(
                alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                min_size=lo,
                max_size=max(lo, min(hi, 40)),
            ),
            st.text(alphabet=chars, min_size=lo, max_size=max(lo, min(hi, 12))),
        )
    lo = spec.min_length or 0
    hi = spec.max_length if spec.max_length is not None else 64
    sizes = st.integers(lo, min(hi, max(lo, MAX_BINARY)))
    if hi > MAX_BINARY:
        sizes = st.one_of(sizes, st.just(hi))
    return sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n))


def _fields_by_terminal(cls: type) -> dict[tuple[Kind, str], FieldMeta]:
    out: dict[tuple[Kind, str], FieldMeta] = {}
    for fm in cls._exi_fields:  # type: ignore[attr-defined]
        if fm.kind == FieldKind.ATTRIBUTE:
            out[(Kind.AT, fm.name)] = fm
        elif fm.kind == FieldKind.CONTENT:
            out[(Kind.CH, "")] = fm
        elif fm.kind == FieldKind.SUBSTITUTION:
            for name, _cls in fm.members:
                out[(Kind.SE, name)] = fm
        else:
            out[(Kind.SE, fm.name)] = fm
    return out


@functools.cache
def generatable(schemas: str, cls: type) -> bool:
    """False for classes whose every instance needs wildcard content (no path without it)."""
    module = cls.__module__.rsplit(".", 1)[-1]
    name = cls.__name__
    g = grammar_of(schemas, module, name)
    by_terminal = _fields_by_terminal(cls)
    # a state is fine if some non-wildcard production leads (eventually) to EE
    good: set[int] = set()
    changed = True
    while changed:
        changed = False
        for s, state in enumerate(g.states):
            if s in good:
                continue
            for p in state.productions:
                t = p.terminal
                if t.kind == Kind.EE:
                    good.add(s)
                    changed = True
                    break
                key = (t.kind, t.local if t.kind != Kind.CH else "")
                if t.kind not in (Kind.SE, Kind.AT, Kind.CH) or key not in by_terminal:
                    continue
                if t.kind == Kind.CH and not t.typed:
                    continue
                if not _child_ok(schemas, by_terminal[key], t.local):
                    continue
                targets = [p.target] if p.target is not None else [x for _, x in p.targets]
                if any(x in good for x in targets):
                    good.add(s)
                    changed = True
                    break
    return 0 in good


def _child_ok(schemas: str, fm: FieldMeta, local: str) -> bool:
    if fm.kind == FieldKind.SUBSTITUTION:
        return generatable(schemas, dict(fm.members)[local])
    if fm.simple is None and fm.kind == FieldKind.ELEMENT:
        return generatable(schemas, fm.cls)
    return True


@st.composite
def instances(draw: st.DrawFn, schemas: str, cls: type, depth: int = 0) -> Any:
    """A valid instance of generated class `cls`."""
    module = cls.__module__.rsplit(".", 1)[-1]
    g = grammar_of(schemas, module, cls.__name__)
    by_terminal = _fields_by_terminal(cls)
    values: dict[str, Any] = {}
    for fm in cls._exi_fields:  # type: ignore[attr-defined]
        if fm.is_list:
            values[fm.name] = []
    s: int | None = 0
    counts: dict[int, int] = {}
    steps = 0
    while s is not None:
        state = g.states[s]
        options = []
        for p in state.productions:
            t = p.terminal
            if t.kind == Kind.EE:
                options.append(p)
                continue
            key = (t.kind, t.local if t.kind != Kind.CH else "")
            if key not in by_terminal or (t.kind == Kind.CH and not t.typed):
                continue
            if not _child_ok(schemas, by_terminal[key], t.local):
                continue
            options.append(p)
        # bound the size: leave a list after a few items when the grammar lets us
        long_lists = [
            p
            for p in options
            if p.counter_op == "inc"
            and counts[p.counter] >= g.counters[p.counter].min_occurs + MAX_ITEMS - 1
        ]
        if long_lists and len(long_lists) < len(options):
            options = [p for p in options if p not in long_lists]
        steps += 1
        if steps > 12 + MAX_ITEMS * 4 and any(p.terminal.kind == Kind.EE for p in options):
            options = [p for p in options if p.terminal.kind == Kind.EE]
        p = options[draw(st.integers(0, len(options) - 1))] if len(options) > 1 else options[0]
        t = p.terminal
        if t.kind == Kind.EE:
            break
        fm = by_terminal[(t.kind, t.local if t.kind != Kind.CH else "")]
        if fm.kind == FieldKind.SUBSTITUTION:
            member = dict(fm.members)[t.local]
            value = draw(instances(schemas, member, depth + 1))
        elif fm.simple is not None:
            value = draw(simple_values(fm.simple))
        else:
            value = draw(instances(schemas, fm.cls, depth + 1))
        if fm.is_list:
            values[fm.name].append(value)
        else:
            values[fm.name] = value
        if p.counter is not None:
            n = 1 if p.counter_op == "start" else counts[p.counter] + 1
            counts[p.counter] = n
            if p.counter_op == "start":
                s = p.target
            else:
                cnt = g.counters[p.counter]
                s = dict(p.targets)[cnt.class_of(n)]
        else:
            s = p.target
    return cls(**values)


def home(cls: type) -> str:
    return cls.__module__.rsplit(".", 1)[-1]


def class_of(module: str, name: str) -> type:
    obj: type = lazy.get(lazy.module_globals(module), name)
    return obj


__all__ = [
    "EXAMPLES",
    "class_of",
    "generatable",
    "home",
    "instances",
    "model",
    "simple_values",
]
