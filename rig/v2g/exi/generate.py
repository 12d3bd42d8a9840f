"""Generator of rig/v2g/exi/_generated/ from the ISO 15118-20 and AppProtocol schemas.

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
from rig.v2g.exi.model import ModelBuilder, SetModel
from rig.v2g.exi.stubgen import StubWriter

PACKAGE_DIR = Path(__file__).resolve().parent
OUT_DIR = PACKAGE_DIR / "_generated"
REPO = PACKAGE_DIR.parents[2]

# namespace set -> entry schema (relative to the schemas folder); each set is the entry schema
# plus everything it imports (EXI grammars are built from the whole set, xmldsig included)
NS_SETS: dict[str, str] = {
    "xmldsig": "iso15118-20/xmldsig-core-schema.xsd",
    "common": "iso15118-20/V2G_CI_CommonMessages.xsd",
    "dc": "iso15118-20/V2G_CI_DC.xsd",
    "ac": "iso15118-20/V2G_CI_AC.xsd",
    "acdp": "iso15118-20/V2G_CI_ACDP.xsd",
    "wpt": "iso15118-20/V2G_CI_WPT.xsd",
    "app": "appprotocol/V2G_CI_AppProtocol.xsd",
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
}

INIT = '''"""Generated EXI codec modules, one per schema namespace (see rig.v2g.exi.generate)."""
'''


def default_schemas() -> Path:
    env = os.environ.get("RIG_SCHEMAS")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "schemas"


def build(schemas: Path) -> dict[str, str]:
    """File name -> content of every generated module."""
    mb = ModelBuilder()
    sets: dict[str, SetModel] = {}
    for name, entry in NS_SETS.items():
        sets[name] = mb.add_set(name, xsd.load([schemas / entry]))
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
