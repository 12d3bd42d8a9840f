"""Schema-informed EXI grammars (W3C EXI 1.0, section 8.5.4) for the types of a schema set.

For every complex type this builds the normalized type grammar as a small automaton: states whose
first-level productions carry their event codes. The steps follow the recommendation:

- 8.5.4.1.3 complex type grammar = attribute uses sorted by qname (local name, then URI), then
  the content: CH [typed] + EE for simple content, the particle grammar + EE for element content,
  EE alone for empty content; mixed content adds CH [untyped] to every content state; attribute
  wildcards add AT(*) / AT(uri:*); base content comes before extension content.
- 8.5.4.1.4-8 particles: minOccurs copies then (maxOccurs - minOccurs) optional copies or a loop;
  element terms expand substitution groups (the head and every member, sorted by local name
  then URI; abstract declarations keep their production, see GrammarBuilder.members);
  wildcards give SE(*) (##any, ##other) or SE(uri:*).
- 8.5.4.2 normalization: epsilon productions are eliminated and productions with the same
  terminal merged (a subset construction), so an optional element followed by another of the
  same name leads to one merged state.
- 8.5.4.3 event code assignment: AT(qname) sorted, AT(uri:*), AT(*), SE(qname) in schema order,
  SE(uri:*), SE(*), EE, CH.
- 8.5.4.4 non-strict: every state also has second-level productions, so a state with N
  first-level productions spends ceil(log2(N + 1)) bits and the value N escapes to level two.

Repetitions of one element particle (maxOccurs > 1) are kept as a counted loop instead of
maxOccurs copies: the copies differ only by whether the count is below minOccurs, between the
bounds, or at maxOccurs, so a state carries that class and the codec keeps the count. This is
exact (the copies give the same productions and codes) and keeps 1024-entry lists small.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from rig.v2g.exi.xsd import (
    UNBOUNDED,
    XS,
    AttributeUse,
    ComplexType,
    ElementDecl,
    ModelGroup,
    Particle,
    QName,
    SchemaError,
    SchemaSet,
    SimpleType,
    Wildcard,
)


class Kind(enum.IntEnum):
    """Event kinds in event-code order (EXI 8.5.4.3)."""

    AT = 0
    AT_URI = 1
    AT_ANY = 2
    SE = 3
    SE_URI = 4
    SE_ANY = 5
    EE = 6
    CH = 7


@dataclass(frozen=True)
class Terminal:
    """A grammar terminal: event kind plus qname (AT/SE), URI (uri:*) or typedness (CH)."""

    kind: Kind
    uri: str = ""
    local: str = ""
    typed: bool = True

    @property
    def qname(self) -> QName:
        return (self.uri, self.local)

    def __str__(self) -> str:
        k = self.kind
        if k in (Kind.AT, Kind.SE):
            return f"{k.name}({self.local})"
        if k in (Kind.AT_URI, Kind.SE_URI):
            return f"{k.name[:2]}({self.uri}:*)"
        if k in (Kind.AT_ANY, Kind.SE_ANY):
            return f"{k.name[:2]}(*)"
        if k == Kind.CH:
            return "CH" if self.typed else "CH[untyped]"
        return "EE"


EE = Terminal(Kind.EE)


class CountClass(enum.IntEnum):
    """Where the count of a counted repetition stands."""

    LOW = 0  # 1 <= count < minOccurs: only another item may follow
    MID = 1  # minOccurs <= count < maxOccurs: another item or what follows
    TOP = 2  # count == maxOccurs: only what follows


@dataclass(frozen=True)
class Counter:
    """A counted repetition of one element particle."""

    cid: int
    min_occurs: int
    max_occurs: int  # UNBOUNDED allowed

    def class_of(self, count: int) -> CountClass:
        if count < self.min_occurs:
            return CountClass.LOW
        if self.max_occurs != UNBOUNDED and count >= self.max_occurs:
            return CountClass.TOP
        return CountClass.MID


@dataclass(frozen=True)
class Production:
    """A first-level production of a normalized state.

    `target` is the next state (None after EE). For a counted repetition, `counter` names it,
    `counter_op` is "start" (first item, count becomes 1) or "inc" (one more item), and
    `targets` gives the next state per count class of the new count.
    """

    terminal: Terminal
    code: int
    target: int | None
    counter: int | None = None
    counter_op: str | None = None
    targets: tuple[tuple[CountClass, int], ...] = ()


@dataclass(frozen=True)
class State:
    productions: tuple[Production, ...]
    width: int  # bits of the first-level event code

    def find(self, terminal: Terminal) -> Production | None:
        for p in self.productions:
            if p.terminal == terminal:
                return p
        return None


@dataclass(frozen=True)
class TypeGrammar:
    """Normalized grammar of one complex type; state 0 is the start."""

    states: tuple[State, ...]
    counters: tuple[Counter, ...]


def width_for(n_first_level: int) -> int:
    """Bits of a non-strict first-level event code for a state with n first-level productions."""
    return (n_first_level).bit_length()  # == ceil(log2(n + 1))


# --- effective content of complex types -------------------------------------------------------


@dataclass
class Content:
    """Effective content of a complex type after following its derivation chain."""

    attributes: list[AttributeUse]
    attribute_wildcard: Wildcard | None
    kind: str  # "empty" | "simple" | "element"
    particles: list[Particle]
    mixed: bool
    value_type: SimpleType | None


def effective_content(ct: ComplexType) -> Content:
    """Attributes and content of `ct`, base content first (EXI 8.5.4.1.3)."""
    own_attrs = [a for a in ct.attributes if isinstance(a, AttributeUse)]
    base = ct.base
    if ct.simple_content:
        if isinstance(base, SimpleType):
            value: SimpleType | None = base
            attrs: list[AttributeUse] = []
            wildcard = None
        elif isinstance(base, ComplexType):
            bc = effective_content(base)
            if bc.kind != "simple":
                raise SchemaError(f"{ct.source}: simpleContent over non-simple base")
            value = bc.value_type
            attrs = list(bc.attributes)
            wildcard = bc.attribute_wildcard
        else:
            raise SchemaError(f"{ct.source}: simpleContent without base")
        if ct.derivation == "restriction" and ct.simple_facets is not None and value is not None:
            value = SimpleType(name=None, variety="atomic", base=value, facets=ct.simple_facets)
        attrs = _merge_attrs(attrs, own_attrs)
        return Content(attrs, ct.attribute_wildcard or wildcard, "simple", [], False, value)
    particles: list[Particle] = []
    attrs = []
    wildcard = None
    if isinstance(base, ComplexType) and base.name != (XS, "anyType"):
        bc = effective_content(base)
        attrs = list(bc.attributes)
        wildcard = bc.attribute_wildcard
        if ct.derivation == "extension":
            particles = list(bc.particles)
    elif isinstance(base, SimpleType):
        raise SchemaError(f"{ct.source}: complexContent with a simple base")
    if ct.particle is not None and not _empty_particle(ct.particle):
        particles.append(ct.particle)
    attrs = _merge_attrs(attrs, own_attrs)
    kind = "element" if particles else "empty"
    return Content(attrs, ct.attribute_wildcard or wildcard, kind, particles, ct.mixed, None)


def _merge_attrs(base: list[AttributeUse], own: list[AttributeUse]) -> list[AttributeUse]:
    out = {a.qname: a for a in base}
    for a in own:
        if a.prohibited:
            out.pop(a.qname, None)
        else:
            out[a.qname] = a
    return sorted(out.values(), key=lambda a: (a.qname[1], a.qname[0]))


def _empty_particle(p: Particle) -> bool:
    if p.max_occurs == 0:
        return True
    t = p.term
    return isinstance(t, ModelGroup) and all(_empty_particle(c) for c in t.particles)


# --- NFA construction -------------------------------------------------------------------------


@dataclass
class _Edge:
    terminal: Terminal
    target: int  # for counted "inc" edges: the loop's canonical state (ignored)
    key: tuple[int, int]  # schema-order key for SE terminals
    counter: int | None = None
    counter_op: str | None = None


@dataclass
class _Loop:
    """NFA states of a counted repetition: one loop state per count class, and `after`."""

    counter: Counter
    states: dict[CountClass, int]
    after: int


class _NFA:
    def __init__(self) -> None:
        self.eps: list[list[int]] = []
        self.edges: list[list[_Edge]] = []
        self.loops: list[_Loop] = []
        self.loop_of: dict[int, tuple[_Loop, CountClass]] = {}
        self.position = 0

    def new(self) -> int:
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def add(self, src: int, edge: _Edge) -> None:
        self.edges[src].append(edge)

    def epsilon(self, src: int, dst: int) -> None:
        self.eps[src].append(dst)


class GrammarBuilder:
    """Builds normalized type grammars for the types of one schema set (one namespace set)."""

    def __init__(self, sset: SchemaSet) -> None:
        self.sset = sset
        self.cache: dict[int, TypeGrammar] = {}

    # -- substitution groups
    def members(self, decl: ElementDecl) -> list[ElementDecl]:
        """SE options of an element particle: the head and all members, sorted.

        An abstract declaration keeps its SE production (and so shifts the event codes of the
        members sorted after it). That is what EXIficient does, and with it every DIN 70121 and
        ISO 15118-2 codec in the field: the -2 Body lists the abstract BodyElement between
        AuthorizationRes and CableCheckReq, so SessionSetupReq is code 29 of 36 (6 bits) in
        the real captures in ../shared/pcaps and in libcbv2g's generated decoder, not 28; the
        iso15118 package's EXIficient reads and writes those streams byte for byte. Whether EXI
        1.0 8.5.4.1.6 means abstract declarations to be left out is read differently by
        implementations (?); the deployed codecs decide here. The -20 schemas declare no
        abstract element, so their grammars are the same under both readings.
        """
        if not decl.is_global:
            return [decl]
        out = [decl, *self.sset.substitution_members(decl.qname)]
        out.sort(key=lambda d: (d.qname[1], d.qname[0]))
        return out

    # -- particles
    def _term(self, nfa: _NFA, term: object, cur: int) -> int:
        """Add one occurrence of `term` starting at `cur`; return the end state."""
        if isinstance(term, ElementDecl):
            end = nfa.new()
            pos = nfa.position
            nfa.position += 1
            for i, m in enumerate(self.members(term)):
                t = Terminal(Kind.SE, m.qname[0], m.qname[1])
                nfa.add(cur, _Edge(t, end, (pos, i)))
            return end
        if isinstance(term, Wildcard):
            end = nfa.new()
            pos = nfa.position
            nfa.position += 1
            for i, t in enumerate(_wildcard_terminals(term, element=True)):
                nfa.add(cur, _Edge(t, end, (pos, i)))
            return end
        if isinstance(term, ModelGroup):
            if term.compositor == "sequence":
                for p in term.particles:
                    cur = self._particle(nfa, p, cur)
                return cur
            if term.compositor == "choice":
                end = nfa.new()
                if not term.particles:
                    nfa.epsilon(cur, end)
                for p in term.particles:
                    nfa.epsilon(self._particle(nfa, p, cur), end)
                return end
            if term.compositor == "all":
                # EXI 8.5.4.1.6: an all group accepts its particles in any order; modelled as a
                # loop over the particles (the recommendation's grammar is equally permissive).
                loop = nfa.new()
                nfa.epsilon(cur, loop)
                for p in term.particles:
                    one = Particle(1, 1, p.term)
                    nfa.epsilon(self._particle(nfa, one, loop), loop)
                return loop
        raise SchemaError(f"unsupported particle term {term!r}")

    def _particle(self, nfa: _NFA, p: Particle, cur: int) -> int:
        if p.max_occurs == 0:
            return cur
        if isinstance(p.term, ElementDecl) and (p.max_occurs == UNBOUNDED or p.max_occurs > 1):
            return self._counted(nfa, p, cur)
        for _ in range(p.min_occurs):
            cur = self._term(nfa, p.term, cur)
        if p.max_occurs == UNBOUNDED:
            loop = nfa.new()
            nfa.epsilon(cur, loop)
            nfa.epsilon(self._term(nfa, p.term, loop), loop)
            return loop
        optional = p.max_occurs - p.min_occurs
        if optional > 0:
            end = nfa.new()
            for _ in range(optional):
                nfa.epsilon(cur, end)
                cur = self._term(nfa, p.term, cur)
            nfa.epsilon(cur, end)
            cur = end
        return cur

    def _counted(self, nfa: _NFA, p: Particle, cur: int) -> int:
        """A repeated element particle as a counted loop (exactly equal to its copies)."""
        assert isinstance(p.term, ElementDecl)
        counter = Counter(len(nfa.loops), p.min_occurs, p.max_occurs)
        after = nfa.new()
        classes = [CountClass.MID]
        if p.min_occurs > 1:
            classes.insert(0, CountClass.LOW)
        if p.max_occurs != UNBOUNDED:
            classes.append(CountClass.TOP)
        if p.max_occurs != UNBOUNDED and p.max_occurs <= p.min_occurs:
            classes = [c for c in classes if c != CountClass.MID]
        states = {c: nfa.new() for c in classes}
        loop = _Loop(counter, states, after)
        nfa.loops.append(loop)
        for c, s in states.items():
            nfa.loop_of[s] = (loop, c)
            if c != CountClass.LOW:
                nfa.epsilon(s, after)
        if p.min_occurs == 0:
            nfa.epsilon(cur, after)
        pos = nfa.position
        nfa.position += 1
        first = states[counter.class_of(1)]
        for i, m in enumerate(self.members(p.term)):
            t = Terminal(Kind.SE, m.qname[0], m.qname[1])
            nfa.add(cur, _Edge(t, first, (pos, i), counter.cid, "start"))
            for c, s in states.items():
                if c != CountClass.TOP:
                    nfa.add(s, _Edge(t, s, (pos, i), counter.cid, "inc"))
        return after

    # -- type grammars
    def type_grammar(self, ct: ComplexType) -> TypeGrammar:
        key = id(ct)
        if key not in self.cache:
            self.cache[key] = self._build(effective_content(ct))
        return self.cache[key]

    def simple_grammar(self) -> TypeGrammar:
        """Grammar of a simple type: CH [typed] then EE (EXI 8.5.4.1.2)."""
        return self._build(Content([], None, "simple", [], False, None))

    def _build(self, content: Content) -> TypeGrammar:
        nfa = _NFA()
        start = nfa.new()
        cur = start
        attr_states: list[int] = []
        for a in content.attributes:
            nxt = nfa.new()
            attr_states.append(cur)
            nfa.add(cur, _Edge(Terminal(Kind.AT, a.qname[0], a.qname[1]), nxt, (0, 0)))
            if not a.required:
                nfa.epsilon(cur, nxt)
            cur = nxt
        attr_states.append(cur)
        if content.attribute_wildcard is not None:
            for s in attr_states:
                for t in _wildcard_terminals(content.attribute_wildcard, element=False):
                    nfa.add(s, _Edge(t, s, (0, 0)))
        final = nfa.new()
        content_start = nfa.new()
        nfa.epsilon(cur, content_start)
        if content.kind == "simple":
            c1 = nfa.new()
            nfa.add(content_start, _Edge(Terminal(Kind.CH), c1, (0, 0)))
            nfa.add(c1, _Edge(EE, final, (0, 0)))
        else:
            first_content_state = len(nfa.eps) - 1
            end = content_start
            for p in content.particles:
                end = self._particle(nfa, p, end)
            nfa.add(end, _Edge(EE, final, (0, 0)))
            if content.mixed:
                untyped = Terminal(Kind.CH, typed=False)
                for s in range(first_content_state, len(nfa.eps)):
                    if s != final:
                        nfa.add(s, _Edge(untyped, s, (0, 0)))
        return _determinize(nfa, start, final)


def _wildcard_terminals(w: Wildcard, element: bool) -> list[Terminal]:
    """SE(*)/AT(*) for ##any and ##other, else SE(uri:*)/AT(uri:*) per namespace (EXI 8.5.4.1.7)."""
    if isinstance(w.namespaces, str):
        return [Terminal(Kind.SE_ANY if element else Kind.AT_ANY)]
    kind = Kind.SE_URI if element else Kind.AT_URI
    return [Terminal(kind, uri) for uri in sorted(set(w.namespaces))]


# --- normalization: subset construction with counters -----------------------------------------


def _closure(nfa: _NFA, states: frozenset[int]) -> frozenset[int]:
    out = set(states)
    todo = list(states)
    while todo:
        s = todo.pop()
        for d in nfa.eps[s]:
            if d not in out:
                out.add(d)
                todo.append(d)
    return frozenset(out)


def _sort_key(t: Terminal, key: tuple[int, int]) -> tuple[object, ...]:
    if t.kind == Kind.AT:
        return (t.kind, t.local, t.uri)
    if t.kind in (Kind.AT_URI, Kind.SE_URI):
        return (t.kind, t.uri)
    if t.kind == Kind.SE:
        return (t.kind, key)
    return (t.kind,)


def _determinize(nfa: _NFA, start: int, final: int) -> TypeGrammar:
    index: dict[frozenset[int], int] = {}
    order: list[frozenset[int]] = []

    def state_of(subset: frozenset[int]) -> int:
        c = _closure(nfa, subset)
        if c not in index:
            index[c] = len(order)
            order.append(c)
        return index[c]

    state_of(frozenset([start]))
    built: list[State] = []
    i = 0
    while i < len(order):
        subset = order[i]
        i += 1
        groups: dict[Terminal, list[_Edge]] = {}
        keys: dict[Terminal, tuple[int, int]] = {}
        for s in sorted(subset):
            for e in nfa.edges[s]:
                groups.setdefault(e.terminal, []).append(e)
                if e.terminal not in keys or e.key < keys[e.terminal]:
                    keys[e.terminal] = e.key
        prods: list[tuple[tuple[object, ...], Production]] = []
        for t, edges in groups.items():
            prods.append((_sort_key(t, keys[t]), _transition(nfa, t, edges, final, state_of)))
        prods.sort(key=lambda kp: kp[0])
        numbered = tuple(
            Production(p.terminal, code, p.target, p.counter, p.counter_op, p.targets)
            for code, (_, p) in enumerate(prods)
        )
        built.append(State(numbered, width_for(len(numbered))))
    counters = tuple(loop.counter for loop in nfa.loops)
    return _minimize(TypeGrammar(tuple(built), counters))


def _minimize(g: TypeGrammar) -> TypeGrammar:
    """Merge states with identical productions and equivalent targets (Moore refinement).

    Normalization may leave several states that accept exactly the same continuations (for
    example the states inside a mixed wildcard loop); merging them changes no event code.
    """
    n = len(g.states)

    def sig(i: int, cls: list[int]) -> tuple[object, ...]:
        st = g.states[i]
        return (
            st.width,
            tuple(
                (
                    p.terminal,
                    p.code,
                    None if p.target is None else cls[p.target],
                    p.counter,
                    p.counter_op,
                    tuple((c, cls[t]) for c, t in p.targets),
                )
                for p in st.productions
            ),
        )

    cls = [0] * n
    while True:
        table: dict[tuple[object, ...], int] = {}
        new = [0] * n
        for i in range(n):
            # state 0 stays 0 and classes are numbered by first appearance: deterministic
            new[i] = table.setdefault((sig(i, cls), cls[i]), len(table))
        if len(table) == len(set(cls)):
            break
        cls = new
    first: dict[int, int] = {}
    for i in range(n):
        first.setdefault(cls[i], i)
    keep = sorted(first.values())
    renumber = {cls[old]: newi for newi, old in enumerate(keep)}
    states = []
    for old in keep:
        st = g.states[old]
        states.append(
            State(
                tuple(
                    Production(
                        p.terminal,
                        p.code,
                        None if p.target is None else renumber[cls[p.target]],
                        p.counter,
                        p.counter_op,
                        tuple((c, renumber[cls[t]]) for c, t in p.targets),
                    )
                    for p in st.productions
                ),
                st.width,
            )
        )
    return TypeGrammar(tuple(states), g.counters)


def _transition(
    nfa: _NFA,
    t: Terminal,
    edges: list[_Edge],
    final: int,
    state_of: Callable[[frozenset[int]], int],
) -> Production:
    counted = [e for e in edges if e.counter is not None]
    plain = frozenset(e.target for e in edges if e.counter is None)
    if t.kind == Kind.EE:
        if plain != {final}:
            raise SchemaError("EE leads somewhere other than the end (grammar bug)")
        return Production(t, 0, None)
    if not counted:
        return Production(t, 0, state_of(plain))
    cids = {e.counter for e in counted}
    ops = {e.counter_op for e in counted}
    if len(cids) != 1 or len(ops) != 1 or plain:
        raise SchemaError(
            f"{t}: a counted repetition is ambiguous with another particle of the same name "
            "(not supported)"
        )
    (cid,) = cids
    (op,) = ops
    loop = nfa.loops[cid]  # type: ignore[index]
    if op == "start":
        (target,) = {e.target for e in counted}
        return Production(t, 0, state_of(frozenset([target])), cid, "start")
    # "inc": the next class depends on the count; offer every class the count can reach
    sources = [nfa.loop_of[e.target][1] for e in counted]
    reachable: set[CountClass] = set()
    for c in sources:
        if c == CountClass.LOW:
            reachable |= {CountClass.LOW, CountClass.MID, CountClass.TOP}
        elif c == CountClass.MID:
            reachable |= {CountClass.MID, CountClass.TOP}
    targets = tuple(
        (c, state_of(frozenset([loop.states[c]]))) for c in sorted(reachable) if c in loop.states
    )
    return Production(t, 0, None, cid, "inc", targets)


# --- document and fragment grammars -----------------------------------------------------------


def sorted_globals(sset: SchemaSet) -> list[ElementDecl]:
    """Global elements sorted by local name then URI: the document grammar's SE order (8.5.1)."""
    return sorted(sset.elements.values(), key=lambda d: (d.qname[1], d.qname[0]))


def document_width(sset: SchemaSet) -> int:
    """Bits of the DocContent event code: n global elements plus SE(*)."""
    return width_for(len(sset.elements))


@dataclass
class FragmentEntry:
    """One SE(qname) of the schema-informed fragment grammar (EXI 8.5.2)."""

    qname: QName
    types: list[ComplexType | SimpleType] = field(default_factory=list)

    @property
    def unique_type(self) -> ComplexType | SimpleType | None:
        """The type when all declarations of this qname agree, else None (relaxed grammar)."""
        first = self.types[0]
        return first if all(t is first for t in self.types) else None


def fragment_entries(sset: SchemaSet) -> list[FragmentEntry]:
    """All element declarations (global and local) by qname, sorted by local name then URI."""
    by_name: dict[QName, FragmentEntry] = {}
    for decl in sset.all_elements:
        entry = by_name.setdefault(decl.qname, FragmentEntry(decl.qname))
        entry.types.append(sset.type_of(decl))
    return sorted(by_name.values(), key=lambda e: (e.qname[1], e.qname[0]))


def fragment_width(n_elements: int) -> int:
    """FragmentContent: SE(F0..Fn-1), SE(*), ED, all first level."""
    return width_for(n_elements + 1)
