"""The generator: the committed modules are up to date (`--check`), output is deterministic,
stale output is named, and no schema text is copied into the project."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rig.v2g.exi import generate

REPO = Path(__file__).resolve().parents[3]


def run(*args: str, schemas: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RIG_SCHEMAS=str(schemas))
    return subprocess.run(
        [sys.executable, "-m", "rig.v2g.exi.generate", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_committed_output_is_up_to_date(shared: Path) -> None:
    result = run("--check", schemas=shared / "schemas")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_check_names_stale_files(shared: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    assert run("--out", str(out), schemas=shared / "schemas").returncode == 0
    (out / "dc.py").write_text("# edited\n")
    (out / "extra.py").write_text("")
    result = run("--check", "--out", str(out), schemas=shared / "schemas")
    assert result.returncode == 1
    assert "stale:" in result.stderr and "dc.py" in result.stderr
    assert "extra.py" in result.stderr


def test_check_names_a_stale_stub(shared: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    assert run("--out", str(out), schemas=shared / "schemas").returncode == 0
    stub = out / "app.pyi"
    stub.write_text(stub.read_text().replace("    SchemaID: int\n", "    SchemaID: str\n"))
    (out / "extra.pyi").write_text("")
    result = run("--check", "--out", str(out), schemas=shared / "schemas")
    assert result.returncode == 1
    assert f"stale: {stub}" in result.stderr
    assert "extra.pyi" in result.stderr


def test_output_is_deterministic(shared: Path) -> None:
    first = generate.build(shared / "schemas")
    second = generate.build(shared / "schemas")
    assert first == second
    modules = ["ac", "acdp", "app", "common", "commontypes", "dc", "din", "iso2", "wpt", "xmldsig"]
    assert sorted(first) == sorted(
        ["__init__.py"] + [f"{m}.py" for m in modules] + [f"{m}.pyi" for m in modules]
    )


def test_missing_schemas_is_an_error(tmp_path: Path) -> None:
    result = run("--check", schemas=tmp_path / "none")
    assert result.returncode == 2
    assert "not found" in result.stderr


def test_no_schema_text_in_generated_modules(shared: Path) -> None:
    generated = "".join(
        p.read_text() for p in (REPO / "rig" / "v2g" / "exi" / "_generated").glob("*.py*")
    )
    for marker in (
        "<xs:",
        "xs:complexType",
        "xs:sequence",
        "minOccurs=",
        "schemaLocation",
        "Copyright 2001 The Internet Society",
    ):
        assert marker not in generated
    # no comment line of any schema appears verbatim
    for xsd_file in (shared / "schemas").rglob("*.xsd"):
        for line in xsd_file.read_text(errors="replace").splitlines():
            text = line.strip()
            if text.startswith("<!--") and len(text) > 30:
                assert text not in generated, (xsd_file.name, text)


def test_every_source_unit_compiles() -> None:
    """Units are compiled on first use only; compile all of them here so none hides an error."""
    from rig.v2g.exi import lazy

    count = 0
    for module in (
        "xmldsig",
        "commontypes",
        "common",
        "dc",
        "ac",
        "acdp",
        "wpt",
        "app",
        "din",
        "iso2",
    ):
        g = lazy.module_globals(module)
        for name, (deps, source) in g["_UNITS"].items():
            compile(source, f"<{module}:{name}>", "exec")
            for dep in deps:
                assert dep in g["_PROVIDES"] or dep in g["_FOREIGN"], (module, name, dep)
            count += 1
    assert count > 700


def test_codec_functions_compile_lazily() -> None:
    code = (
        "from rig.v2g.exi import lazy\n"
        "assert not lazy.is_compiled('wpt', '_d_WPT_ChargeLoopReqType')\n"
        "assert callable(lazy.codec('wpt', '_d_WPT_ChargeLoopReqType'))\n"
        "assert lazy.is_compiled('wpt', '_d_WPT_ChargeLoopReqType')\n"
        "assert not lazy.is_compiled('wpt', '_e_WPT_ChargeLoopReqType')\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


def test_dispatch_tables_call_compiled_functions_once_warm() -> None:
    """A substitution member's encoder and JSON converter sit in a dispatch table that may be
    built before they are compiled; their first call replaces the stub there, so a warm charge
    loop never goes through a stub."""
    code = (
        "from rig.v2g import exi\n"
        "from rig.v2g.exi import lazy\n"
        "from tests.benchmarks.test_exi_speed import messages\n"
        "ns, m = messages()['dc_charge_loop']\n"
        "exi.decode(ns, exi.encode(m)); exi.to_json(m)\n"
        "calls = []\n"
        "def counting(self, *args):\n"
        "    calls.append(self.name)\n"
        "    return self.resolve()(*args)\n"
        "lazy._Stub.__call__ = counting\n"
        "exi.decode(ns, exi.encode(m)); exi.to_json(m)\n"
        "assert calls == [], calls\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
