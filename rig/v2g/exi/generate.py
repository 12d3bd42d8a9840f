"""Generator of rig/v2g/exi/_generated/ from the ISO 15118-20, -2, DIN 70121 and AppProtocol schemas.

    python -m rig.v2g.exi.generate [--schemas DIR] [--check]

Reads the XSDs from DIR (default: $RIG_SCHEMAS, else <repo>/../shared/schemas), builds the EXI
grammars and the data model of every namespace set, and writes one Python module per schema
namespace with its type stub (.pyi, see rig.v2g.exi.stubgen). `--check` regenerates in memory
and exits 1 naming the files (modules and stubs) that differ from the committed ones. Output is
deterministic. The schema files themselves are never copied.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rig.v2g.exi import xsd
from rig.v2g.exi.codegen import ModuleWriter
from rig.v2g.exi.model import XMLDSIG, ModelBuilder, SetModel
from rig.v2g.exi.stubgen import StubWriter

PACKAGE_DIR = Path(__file__).resolve().parent
OUT_DIR = PACKAGE_DIR / "_generated"
REPO = PACKAGE_DIR.parents[2]

# namespace set -> entry schema (relative to the schemas folder); each set is the entry schema
# plus everything it imports (EXI grammars are built from the whole set, xmldsig included).
#
# EXI profile of DIN 70121 ("din") and ISO 15118-2 ("iso2"), checked against every V2GTP
# payload of the real-car captures in ../shared/pcaps (tests/v2g/exi/test_exi_captures.py):
# - the same EXI options as -20: header byte 0x80 (no cookie, no options), schema-informed by
#   the standard's schema set, bit-packed, non-strict, whole documents; values as string-table
#   misses (the cars' streams re-encode byte for byte with misses only).
# - a document is one root, V2G_Message (Header, then Body). The root's event code is its index
#   among all global elements of the set sorted by local name then URI, xmldsig's included, as
#   for -20: DIN has 81 globals (7 bits) and V2G_Message is 77, so every DIN document begins
#   80 9A; -2 has 80 globals (7 bits) and V2G_Message is 76: every -2 document begins 80 98.
# - Body holds one optional BodyElement, the head of the substitution group of all messages;
#   its first state lists the head and every member sorted by local name, then EE: 36
#   productions, 6 bits. An abstract head keeps its code (grammar.GrammarBuilder.members): in
#   -2 the abstract BodyElement is code 2, between AuthorizationRes and CableCheckReq; DIN
#   declares BodyElement non-abstract (of the abstract BodyBaseType) and it is code 0. Either
#   way SessionSetupReq is 29 and EE 35. -2's other abstract heads (EVChargeParameter,
#   EVSEChargeParameter, EVSEStatus, EVStatus, SASchedules, EVPowerDeliveryParameter, Entry,
#   TimeInterval) count the same way: after EVSEProcessing, ChargeParameterDiscoveryRes offers
#   SAScheduleList, SASchedules and three EVSEChargeParameter elements (5 productions, 3 bits;
#   2 bits without the abstract heads), which the chargers' responses in the -2 captures
#   confirm.
# - xmldsig: both headers import the W3C schema (the one -20 uses, byte-identical) from a
#   location their published folders lack; import_locations() supplies it, and the xmldsig
#   classes and codec are shared with -20 (one module, "xmldsig").
# - -2 qualifies its attributes (attributeFormDefault="qualified"; DIN does not). In a
#   schema-informed stream an attribute's qname is never written, so this changes no bit.
# - signatures as for -20: a signed element (AuthorizationReq, MeteringReceiptReq, ...) is a
#   fragment of its own set's fragment grammar ("iso2"), ds:SignedInfo a fragment of the
#   xmldsig schema alone; encode_fragment picks these by default. The iso15118 package agrees
#   byte for byte (tests/v2g/exi/test_peer_crosscheck.py); the captures hold no signature.
NS_SETS: dict[str, str] = {
    "xmldsig": "iso15118-20/xmldsig-core-schema.xsd",
    "common": "iso15118-20/V2G_CI_CommonMessages.xsd",
    "dc": "iso15118-20/V2G_CI_DC.xsd",
    "ac": "iso15118-20/V2G_CI_AC.xsd",
    "acdp": "iso15118-20/V2G_CI_ACDP.xsd",
    "wpt": "iso15118-20/V2G_CI_WPT.xsd",
    "app": "appprotocol/V2G_CI_AppProtocol.xsd",
    "din": "din70121/V2G_CI_MsgDef.xsd",
    "iso2": "iso15118-2/V2G_CI_MsgDef.xsd",
}

MODULE_DOCS: dict[str, str] = {
    "xmldsig": "XML signature types (http://www.w3.org/2000/09/xmldsig#) and its fragment grammar",
    "commontypes": "ISO 15118-20 CommonTypes: header, rational numbers, metering, control modes",
    "common": "ISO 15118-20 CommonMessages: classes, codec and document/fragment grammar tables",
    "dc": "ISO 15118-20 DC messages: classes, codec and document/fragment grammar tables",
    "ac": "ISO 15118-20 AC messages: classes, codec and document/fragment grammar tables",
    "acdp": "ISO 15118-20 ACDP messages: classes, codec and document/fragment grammar tables",
    "wpt": "ISO 15118-20 WPT messages: classes, codec and document/fragment grammar tables",
    "app": "supportedAppProtocol handshake (urn:iso:15118:2:2010:AppProtocol): classes and codec",
    "din": (
        "DIN SPEC 70121 messages (urn:din:70121:2012:*): classes, codec and grammar tables\n\n"
        "A document is one V2G_Message (root code 77 of 81, 7 bits): Header, then Body holding\n"
        "one member of the BodyElement substitution group. EXI profile: see the notes above\n"
        "NS_SETS in rig.v2g.exi.generate."
    ),
    "iso2": (
        "ISO 15118-2 messages (urn:iso:15118:2:2013:*): classes, codec and grammar tables\n\n"
        "A document is one V2G_Message (root code 76 of 80, 7 bits): Header, then Body holding\n"
        "one member of the BodyElement substitution group (the abstract head keeps code 2).\n"
        "EXI profile: see the notes above NS_SETS in rig.v2g.exi.generate."
    ),
}

INIT = '''"""Generated EXI codec modules, one per schema namespace (see rig.v2g.exi.generate)."""
'''


def default_schemas() -> Path:
    env = os.environ.get("RIG_SCHEMAS")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "schemas"


def import_locations(schemas: Path) -> dict[str, Path]:
    """Files for imports whose schemaLocation names nothing: the DIN 70121 header imports
    xmldsig from its own folder, which holds no copy, and the -2 header from the parent folder;
    the W3C schema beside the -2 schemas is the one both mean (identical to -20's copy)."""
    return {XMLDSIG: schemas / "iso15118-2" / "xmldsig-core-schema.xsd"}


def build(schemas: Path) -> dict[str, str]:
    """File name -> content of every generated module."""
    mb = ModelBuilder()
    sets: dict[str, SetModel] = {}
    for name, entry in NS_SETS.items():
        sets[name] = mb.add_set(name, xsd.load([schemas / entry], import_locations(schemas)))
    files: dict[str, str] = {"__init__.py": INIT}
    for module, doc in MODULE_DOCS.items():
        own_sets = [sets[module]] if module in sets else []
        writer = ModuleWriter(mb, module, doc)
        files[f"{module}.py"] = writer.write(own_sets)
        files[f"{module}.pyi"] = StubWriter(writer, own_sets).write()
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rig.v2g.exi.generate", description=__doc__)
    ap.add_argument("--schemas", type=Path, default=None, help="folder with the XSDs")
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed files differ")
    ap.add_argument("--out", type=Path, default=OUT_DIR, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    schemas = args.schemas or default_schemas()
    try:
        files = build(schemas)
    except (xsd.SchemaError, OSError) as e:
        print(f"generate: {e}", file=sys.stderr)
        return 2
    out: Path = args.out
    if args.check:
        stale = []
        for name, text in sorted(files.items()):
            path = out / name
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        extra = (
            sorted(str(p) for p in out.glob("*.py*") if p.name not in files) if out.is_dir() else []
        )
        if stale or extra:
            for s in stale:
                print(f"stale: {s}", file=sys.stderr)
            for s in extra:
                print(f"not generated (remove): {s}", file=sys.stderr)
            return 1
        print(f"{len(files)} generated files are up to date")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(files.items()):
        (out / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
