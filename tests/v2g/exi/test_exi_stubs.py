"""The type stubs say what the generated modules hold at run time: the same public names, every
class with the same fields in the same order, the same annotations, the same defaults and
bases, every enumeration with the same members, and `Document` as the union of the roots."""

from __future__ import annotations

import ast
import dataclasses
import enum
import inspect
import re
import typing
from pathlib import Path

import pytest

from rig.v2g.exi import lazy

GENERATED = Path(lazy.module_globals("app")["__file__"]).parent
MODULES = sorted(p.stem for p in GENERATED.glob("*.pyi"))


def _stub(module: str) -> ast.Module:
    return ast.parse((GENERATED / f"{module}.pyi").read_text(encoding="utf-8"))


def _plain(annotation: str) -> str:
    """A stub annotation with its private spellings undone: `_home_Name` (a foreign class
    imported for annotations only) and `_Name_` (an alias for a name a field shadows)."""
    homes = "|".join(MODULES)
    text = re.sub(rf"\b_(?:{homes})_(\w+)", r"\1", annotation)
    return re.sub(r"\b_(\w+)_\b", r"\1", text)


def _stub_classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}


def test_every_generated_module_has_a_stub() -> None:
    modules = sorted(p.stem for p in GENERATED.glob("*.py") if p.stem != "__init__")
    assert modules == MODULES
    assert {"app", "common", "commontypes", "dc", "ac", "acdp", "wpt", "xmldsig"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_stub_matches_the_module(module: str) -> None:
    g = lazy.module_globals(module)
    tree = _stub(module)
    stub_all = next(
        ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "__all__"
    )
    assert stub_all == g["__all__"]
    classes = _stub_classes(tree)
    own = [name for name in g["_PROVIDES"] if not name.startswith("_") and name != "Document"]
    assert sorted(classes) == sorted(own)
    checked = 0
    for name, node in classes.items():
        runtime = lazy.get(g, name)
        if issubclass(runtime, enum.Enum):
            members = [
                (s.targets[0].id, ast.literal_eval(s.value))  # type: ignore[attr-defined]
                for s in node.body
                if isinstance(s, ast.Assign)
            ]
            assert members == [(m.name, m.value) for m in runtime], name
            continue
        assert dataclasses.is_dataclass(runtime)
        params = runtime.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen
        assert all(f.kw_only for f in dataclasses.fields(runtime)), name
        bases = [_plain(ast.unparse(b)) for b in node.bases]
        assert bases == [b.__name__ for b in runtime.__bases__ if b is not object], name
        declared = [s for s in node.body if isinstance(s, ast.AnnAssign)]
        fields = [
            (s.target.id, _plain(ast.unparse(s.annotation)), s.value is not None)  # type: ignore[attr-defined]
            for s in declared
            if "ClassVar" not in ast.unparse(s.annotation)
        ]
        own_annotations = inspect.get_annotations(runtime)  # strings: the module's future import
        expected = [
            (
                f.name,
                own_annotations[f.name],
                f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING,
            )
            for f in dataclasses.fields(runtime)
            if f.name in own_annotations
        ]
        assert fields == expected, name
        checked += 1
    assert checked or not classes
    if "Document" in g["__all__"]:
        roots = [lazy.get(g, n) for n, _uri in g["ROOTS"]]
        assert list(typing.get_args(lazy.get(g, "Document"))) == roots or (
            len(roots) == 1 and lazy.get(g, "Document") is roots[0]
        )
