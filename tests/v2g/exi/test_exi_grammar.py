"""Grammar construction facts (EXI 1.0 section 8.5.4) on small schemas written here, and the
facts of the -20 document and fragment grammars that other implementations pin."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.v2g.exi import lazy, xsd
from rig.v2g.exi.grammar import EE, GrammarBuilder, Kind, Terminal, TypeGrammar, width_for

TNS = "urn:test"
SCHEMA = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="urn:test"
    targetNamespace="urn:test" elementFormDefault="qualified" attributeFormDefault="qualified">
  <xs:element name="Ambiguous"><xs:complexType><xs:sequence>
    <xs:element name="A" type="xs:int" minOccurs="0"/>
    <xs:element name="A" type="xs:int"/>
  </xs:sequence></xs:complexType></xs:element>
  <xs:element name="Counted"><xs:complexType><xs:sequence>
    <xs:element name="A" type="xs:int" minOccurs="2" maxOccurs="4"/>
    <xs:element name="B" type="xs:int" minOccurs="0"/>
  </xs:sequence></xs:complexType></xs:element>
  <xs:element name="Copies"><xs:complexType><xs:sequence>
    <xs:element name="A" type="xs:int"/>
    <xs:element name="A" type="xs:int"/>
    <xs:element name="A" type="xs:int" minOccurs="0"/>
    <xs:element name="A" type="xs:int" minOccurs="0"/>
    <xs:element name="B" type="xs:int" minOccurs="0"/>
  </xs:sequence></xs:complexType></xs:element>
  <xs:element name="Head" type="Base" abstract="true"/>
  <xs:element name="Zulu" type="Base" substitutionGroup="Head"/>
  <xs:element name="Alpha" type="Base" substitutionGroup="Head"/>
  <xs:element name="Deep" type="Base" substitutionGroup="Zulu"/>
  <xs:element name="Hidden" type="Base" substitutionGroup="Head" abstract="true"/>
  <xs:complexType name="Base"/>
  <xs:element name="Holder"><xs:complexType><xs:sequence>
    <xs:element name="First" type="xs:int"/>
    <xs:element ref="Head"/>
  </xs:sequence>
  <xs:attribute name="b" type="xs:int"/>
  <xs:attribute name="a" type="xs:int" use="required"/>
  </xs:complexType></xs:element>
  <xs:element name="Extended"><xs:complexType><xs:complexContent>
    <xs:extension base="BaseSeq"><xs:sequence><xs:element name="Own" type="xs:int"/>
    </xs:sequence></xs:extension></xs:complexContent></xs:complexType></xs:element>
  <xs:complexType name="BaseSeq"><xs:sequence>
    <xs:element name="Inherited" type="xs:int" minOccurs="0"/></xs:sequence></xs:complexType>
</xs:schema>
"""


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> tuple[xsd.SchemaSet, GrammarBuilder]:
    path = tmp_path_factory.mktemp("xsd") / "t.xsd"
    path.write_text(SCHEMA)
    sset = xsd.load([path])
    return sset, GrammarBuilder(sset)


def grammar(builder: tuple[xsd.SchemaSet, GrammarBuilder], element: str) -> TypeGrammar:
    sset, gb = builder
    t = sset.elements[(TNS, element)].type
    assert isinstance(t, xsd.ComplexType)
    return gb.type_grammar(t)


def se(name: str) -> Terminal:
    return Terminal(Kind.SE, TNS, name)


def codes(g: TypeGrammar, events: list[Terminal]) -> list[tuple[int, int]]:
    """(code, width) of each event along a path, keeping the count of counted repetitions."""
    out = []
    s: int | None = 0
    counts: dict[int, int] = {}
    for t in events:
        assert s is not None
        state = g.states[s]
        p = state.find(t)
        assert p is not None, f"{t} not allowed in state {s}"
        out.append((p.code, state.width))
        if p.counter is None:
            s = p.target
        else:
            n = 1 if p.counter_op == "start" else counts[p.counter] + 1
            counts[p.counter] = n
            s = (
                p.target
                if p.counter_op == "start"
                else dict(p.targets)[g.counters[p.counter].class_of(n)]
            )
    return out


def test_width_is_for_n_productions_plus_the_escape() -> None:
    assert [width_for(n) for n in (1, 2, 3, 4, 7, 8)] == [1, 2, 2, 3, 3, 4]


def test_optional_element_followed_by_same_name_merges_states(builder) -> None:  # type: ignore[no-untyped-def]
    g = grammar(builder, "Ambiguous")
    assert codes(g, [se("A"), EE]) == [(0, 1), (1, 2)]
    assert codes(g, [se("A"), se("A"), EE]) == [(0, 1), (0, 2), (0, 1)]
    assert g.states[0].find(EE) is None  # one A is required


@pytest.mark.parametrize("count", [2, 3, 4])
@pytest.mark.parametrize("with_b", [False, True])
def test_counted_repetition_codes_equal_the_copies(builder, count: int, with_b: bool) -> None:  # type: ignore[no-untyped-def]
    events = [se("A")] * count + ([se("B")] if with_b else []) + [EE]
    assert codes(grammar(builder, "Counted"), events) == codes(grammar(builder, "Copies"), events)


def test_counted_repetition_codes(builder) -> None:  # type: ignore[no-untyped-def]
    g = grammar(builder, "Counted")
    # after 1 A only another A (1 bit); after 2..3 A, B or EE (2 bits); after 4 no more A
    assert codes(g, [se("A"), se("A"), se("A"), se("A"), EE]) == [
        (0, 1),
        (0, 1),
        (0, 2),
        (0, 2),
        (1, 2),
    ]
    assert codes(g, [se("A"), se("A"), EE]) == [(0, 1), (0, 1), (2, 2)]
    assert len(g.states) < 8  # counted, not four copies


def test_substitution_group_members_sorted_with_abstract_ones(builder) -> None:  # type: ignore[no-untyped-def]
    g = grammar(builder, "Holder")
    s = g.states[0].find(Terminal(Kind.AT, TNS, "a")).target  # type: ignore[union-attr]
    s = g.states[s].find(se("First")).target  # type: ignore[union-attr,index]
    state = g.states[s]  # type: ignore[index]
    names = [p.terminal.local for p in state.productions]
    # transitive members (Deep via Zulu); the abstract head and the abstract member keep their
    # productions, as EXIficient and the DIN / -2 codecs in the field count them
    assert names == ["Alpha", "Deep", "Head", "Hidden", "Zulu"]
    assert [p.code for p in state.productions] == [0, 1, 2, 3, 4]
    assert state.width == 3


def test_attributes_sorted_and_qualified_before_content(builder) -> None:  # type: ignore[no-untyped-def]
    g = grammar(builder, "Holder")
    first = g.states[0].productions
    assert [(p.terminal.kind, p.terminal.local, p.terminal.uri) for p in first] == [
        (Kind.AT, "a", TNS)  # required a first; optional b after it
    ]
    second = g.states[first[0].target].productions  # type: ignore[index]
    assert [str(p.terminal) for p in second] == ["AT(b)", "SE(First)"]


def test_extension_content_follows_base_content(builder) -> None:  # type: ignore[no-untyped-def]
    g = grammar(builder, "Extended")
    assert [str(p.terminal) for p in g.states[0].productions] == ["SE(Inherited)", "SE(Own)"]


def test_empty_type_has_ee_only(builder) -> None:  # type: ignore[no-untyped-def]
    sset, gb = builder
    g = gb.type_grammar(sset.complex_types[(TNS, "Base")])
    assert [(str(p.terminal), p.code) for p in g.states[0].productions] == [("EE", 0)]
    assert g.states[0].width == 1


def test_simple_type_grammar_spends_one_bit_per_event(builder) -> None:  # type: ignore[no-untyped-def]
    _, gb = builder
    g = gb.simple_grammar()
    assert [(str(p.terminal), s.width) for s in g.states for p in s.productions] == [
        ("CH", 1),
        ("EE", 1),
    ]


# --- facts of the -20 grammars ---------------------------------------------------------------


def test_document_grammar_widths() -> None:
    widths = {
        ns: lazy.module_globals(ns)["DOCUMENT_WIDTH"]
        for ns in ("app", "common", "dc", "ac", "acdp", "wpt")
    }
    assert widths == {"app": 2, "common": 6, "dc": 6, "ac": 6, "acdp": 6, "wpt": 6}
    roots = {ns: len(lazy.module_globals(ns)["ROOTS"]) for ns in widths}
    assert roots == {"app": 2, "common": 54, "dc": 48, "ac": 42, "acdp": 34, "wpt": 38}


def test_root_codes_sorted_by_local_name_then_uri() -> None:
    roots = lazy.module_globals("dc")["ROOTS"]
    assert list(roots) == sorted(roots, key=lambda r: (r[0], r[1]))
    assert roots.index(("DC_ChargeLoopReq", "urn:iso:std:iso:15118:-20:DC")) == 13
    assert roots[6] == ("CLReqControlMode", "urn:iso:std:iso:15118:-20:CommonTypes")


def test_fragment_grammar_matches_libcbv2g() -> None:
    # event codes of EVerest libcbv2g's generated iso20 fragment encoders
    common = lazy.module_globals("common")
    frags = [(n, u) for n, u, _c in common["FRAGMENTS"]]
    assert len(frags) == 281 and common["FRAGMENT_WIDTH"] == 9  # ED is 282
    assert frags.index(("SignedInfo", "http://www.w3.org/2000/09/xmldsig#")) == 230
    assert (
        frags.index(("SignedInstallationData", "urn:iso:std:iso:15118:-20:CommonMessages")) == 231
    )
    assert (
        frags.index(("OEMProvisioningCertificateChain", "urn:iso:std:iso:15118:-20:CommonMessages"))
        == 128
    )
    assert frags[280] == ("shortValue", "urn:iso:std:iso:15118:-20:CommonMessages")
    xmldsig = lazy.module_globals("xmldsig")
    names = [n for n, _u, _c in xmldsig["FRAGMENTS"]]
    assert xmldsig["FRAGMENT_WIDTH"] == 6
    assert {
        n: names.index(n)
        for n in (
            "CanonicalizationMethod",
            "DSAKeyValue",
            "DigestMethod",
            "KeyInfo",
            "KeyValue",
            "Manifest",
            "Object",
            "PGPData",
            "RSAKeyValue",
        )
    } == {
        "CanonicalizationMethod": 0,
        "DSAKeyValue": 1,
        "DigestMethod": 2,
        "KeyInfo": 8,
        "KeyValue": 10,
        "Manifest": 11,
        "Object": 14,
        "PGPData": 16,
        "RSAKeyValue": 21,
    }


def test_mixed_wildcard_content_keeps_its_productions(shared: Path) -> None:
    sset = xsd.load([shared / "schemas" / "iso15118-20" / "xmldsig-core-schema.xsd"])
    gb = GrammarBuilder(sset)
    ns = "http://www.w3.org/2000/09/xmldsig#"
    g = gb.type_grammar(sset.complex_types[(ns, "CanonicalizationMethodType")])
    assert [str(p.terminal) for p in g.states[0].productions] == ["AT(Algorithm)"]
    assert [str(p.terminal) for p in g.states[1].productions] == ["SE(*)", "EE", "CH[untyped]"]
    reference = gb.type_grammar(sset.complex_types[(ns, "ReferenceType")])
    assert [str(p.terminal) for p in reference.states[0].productions] == [
        "AT(Id)",
        "AT(Type)",
        "AT(URI)",
        "SE(Transforms)",
        "SE(DigestMethod)",
    ]


def test_optional_trailing_elements_put_ee_last(shared: Path) -> None:
    sset = xsd.load([shared / "schemas" / "iso15118-20" / "V2G_CI_CommonTypes.xsd"])
    g = GrammarBuilder(sset).type_grammar(
        sset.complex_types[("urn:iso:std:iso:15118:-20:CommonTypes", "DisplayParametersType")]
    )
    first = g.states[0]
    assert (str(first.productions[-1].terminal), first.productions[-1].code, first.width) == (
        "EE",
        10,
        4,
    )
