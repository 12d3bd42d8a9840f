"""On-demand creation of what the generated modules define (classes, enums, codec functions).

A generated module holds its definitions as source units (`_UNITS`: name -> (deps, source)) and
runs none of them at import: creating ~300 frozen dataclasses and compiling ~1 MB of codec code
would cost seconds. `install()` gives the module a PEP 562 `__getattr__`, so `dc.DC_ChargeLoopReq`
builds that class (and its base) on first access, and binds each codec function name to a
`_Stub` that compiles the real function into the module's globals on its first call. Codec
functions are the encoders, decoders and JSON converters (`_e_`, `_d_`, `_j_` + type name).
Compiled functions live in the module's own globals, so their calls to each other are plain
global lookups once resolved; a stub that a dispatch table (a list) captured before the compile
replaces itself there on its first call too. A unit's compiled code is kept between processes
(rig.v2g.exi.codecache).
"""

from __future__ import annotations
import __future__

import importlib
import itertools
import threading
from collections.abc import Callable
from types import CodeType
from typing import Any

from rig.v2g.exi.codecache import ModuleCache
from rig.v2g.frozen import fast_init

PACKAGE = "rig.v2g.exi._generated"
_FLAGS = __future__.annotations.compiler_flag
_LOCK = threading.RLock()
#: Name prefixes of the generated functions: encoder, decoder, JSON converter (one per type)
CODEC_PREFIXES = ("_e_", "_d_", "_j_")


def module_globals(name: str) -> dict[str, Any]:
    """The globals of generated module `name` ("dc", "commontypes", ...), importing it."""
    return importlib.import_module(f"{PACKAGE}.{name}").__dict__


class _Stub:
    """Stands for a codec function until its first call compiles it. Its first call also puts
    the compiled function in its place in the module's globals and in every dispatch table
    (a list, see _unit) that captured the stub, so later calls go straight to the function."""

    __slots__ = ("g", "home", "name", "real", "tables")

    def __init__(self, g: dict[str, Any], name: str, home: str) -> None:
        self.g = g
        self.name = name
        self.home = home
        self.real: Callable[..., Any] | None = None
        self.tables: list[tuple[list[Any], int]] = []

    def __call__(self, *args: Any) -> Any:
        real = self.real
        if real is None:
            real = self.resolve()
        return real(*args)

    def resolve(self) -> Callable[..., Any]:
        with _LOCK:
            real = self.real = codec(self.home, self.name)
            if self.g.get(self.name) is self:
                self.g[self.name] = real
            for table, index in self.tables:
                table[index] = real
            self.tables.clear()
        return real


def install(g: dict[str, Any]) -> None:
    """Make generated module globals `g` lazy (called at the end of the module)."""
    short = g["__name__"].rsplit(".", 1)[-1]

    def __getattr__(name: str) -> Any:
        return get(g, name)

    g["__getattr__"] = __getattr__
    g["_DONE"] = set()
    for fn in g["_CODEC"]:
        g[fn] = _Stub(g, fn, short)


def get(g: dict[str, Any], name: str) -> Any:
    """The object `name` of module globals `g`, creating it (or fetching it) on first use."""
    obj = g.get(name)
    if obj is not None:
        return obj
    with _LOCK:
        provides: dict[str, str] = g["_PROVIDES"]
        if name in provides:
            _unit(g, provides[name])
            return g[name]
        foreign: dict[str, str] = g["_FOREIGN"]
        if name in foreign:
            home = foreign[name]
            if name.startswith(CODEC_PREFIXES):
                # a stub of our own, so that this module's binding is replaced when compiled
                real = module_globals(home).get(name)
                obj = real if real is not None and not isinstance(real, _Stub) else None
                g[name] = obj if obj is not None else _Stub(g, name, home)
                return g[name]
            obj = get(module_globals(home), name)
            g[name] = obj
            return obj
    raise AttributeError(f"module {g['__name__']!r} has no attribute {name!r}")


def codec(home: str, name: str) -> Callable[..., Any]:
    """The compiled codec function `name` of generated module `home`."""
    g = module_globals(home)
    obj = g.get(name)
    if obj is None or isinstance(obj, _Stub):
        with _LOCK:
            _unit(g, g["_PROVIDES"][name])
        obj = g[name]
    assert callable(obj)
    return obj  # type: ignore[no-any-return]


def _unit(g: dict[str, Any], unit: str) -> None:
    done: set[str] = g["_DONE"]
    if unit in done:
        return
    deps, src = g["_UNITS"][unit]
    for d in deps:
        if d.startswith(CODEC_PREFIXES):
            cur = g.get(d)
            if cur is None or (isinstance(cur, _Stub) and d in g["_FOREIGN"]):
                # another module's function: bind it if compiled there, else a stub of ours
                home = g["_FOREIGN"][d]
                real = module_globals(home).get(d)
                if real is not None and not isinstance(real, _Stub):
                    g[d] = real
                elif cur is None:
                    g[d] = _Stub(g, d, home)
        elif d not in g:
            get(g, d)
    code = _code(g, unit, src)
    size = len(g)
    exec(code, g)
    # Dispatch tables the unit defined (new names, so at the end of the dict) may hold stubs:
    # tell each stub where it is, so that its first call puts the function there. Its message
    # classes get the direct-store __init__ (rig.v2g.frozen).
    for name in itertools.islice(reversed(g.keys()), len(g) - size):
        table = g[name]
        if type(table) is type:
            fast_init(table)
        elif type(table) is list:
            for index, fn in enumerate(table):
                if isinstance(fn, _Stub):
                    fn.tables.append((table, index))
    done.add(unit)


def _code(g: dict[str, Any], unit: str, src: str) -> CodeType:
    """Unit `unit`'s code: from the code cache (rig.v2g.exi.codecache), else compiled."""
    cache: ModuleCache | None = g.get("_CODE_CACHE")
    if cache is None:
        cache = g["_CODE_CACHE"] = ModuleCache(g["__file__"], g["__name__"].rsplit(".", 1)[-1])
    code = cache.get(unit)
    if code is None:
        code = compile(src, f"<{g['__name__']}:{unit}>", "exec", flags=_FLAGS, dont_inherit=True)
        cache.add(unit, code)
    return code


def is_compiled(home: str, name: str) -> bool:
    """Whether codec function `name` of module `home` has been compiled (for tests)."""
    obj = module_globals(home).get(name)
    return obj is not None and not isinstance(obj, _Stub)
