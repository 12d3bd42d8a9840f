"""The generated modules' compiled units are kept between processes (rig.v2g.exi.codecache):
a second process takes them from the cache instead of compiling, decodes the same, and a cache
file that is damaged, too large, of another source or turned off is never used."""

import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rig.v2g.exi import codecache

REPO = Path(__file__).resolve().parents[3]

#: Decodes and encodes one DC_ChargeLoopReq, prints how many units this process compiled and
#: the message's JSON form.
ROUND_TRIP = """
import json
from rig.v2g import exi
from rig.v2g.exi import lazy
compiled = []
real = compile
def counting(src, name, *args, **kwargs):
    compiled.append(name)
    return real(src, name, *args, **kwargs)
lazy.compile = counting
from tests.benchmarks.test_exi_speed import messages
ns, m = messages()['dc_charge_loop']
back = exi.decode(ns, exi.encode(m))
assert back == m
print(len(compiled))
print(json.dumps(exi.to_json(back), sort_keys=True))
"""


def _run(cache: str | None) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "RIG_CACHE_DIR"}
    if cache is not None:
        env["RIG_CACHE_DIR"] = cache
    done = subprocess.run(
        [sys.executable, "-c", ROUND_TRIP],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    count, form = done.stdout.splitlines()
    return int(count), form


def _files(folder: Path, module: str) -> list[Path]:
    return sorted(folder.glob(f"{module}.*.marshal"))


def test_a_second_process_takes_the_units_from_the_cache(tmp_path: Path) -> None:
    first, form = _run(str(tmp_path))
    assert first > 20  # the message's classes and codec functions, compiled
    (dc,) = _files(tmp_path, "dc")
    with open(dc, "rb") as fh:
        kept = marshal.load(fh)
    assert len(kept) > 10 and all(isinstance(k, str) for k in kept)
    second, form2 = _run(str(tmp_path))
    assert second == 0
    assert form2 == form


def test_a_damaged_cache_file_is_not_used_and_is_replaced(tmp_path: Path) -> None:
    _, form = _run(str(tmp_path))
    (dc,) = _files(tmp_path, "dc")
    dc.write_bytes(b"\x00not marshal" * 10)
    count, form2 = _run(str(tmp_path))
    assert count > 0 and form2 == form
    with open(dc, "rb") as fh:
        assert isinstance(marshal.load(fh), dict)
    assert _run(str(tmp_path))[0] == 0


def test_a_file_of_another_source_is_not_read_and_is_removed(tmp_path: Path) -> None:
    _, form = _run(str(tmp_path))
    (dc,) = _files(tmp_path, "dc")
    stale = dc.with_name(f"dc.{sys.implementation.cache_tag}.{'0' * 24}.marshal")
    dc.rename(stale)
    count, form2 = _run(str(tmp_path))
    assert count > 0 and form2 == form
    assert _files(tmp_path, "dc") == [dc]  # the new one is written, the stale one removed


def test_the_cache_is_off_when_rig_cache_dir_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run("")[0] > 0
    assert _run("")[0] > 0  # compiled again: nothing was kept
    monkeypatch.setenv("RIG_CACHE_DIR", "")
    assert codecache.folder() is None


def test_the_default_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RIG_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert codecache.folder() == tmp_path / "v2h-rig" / "exi"


def test_a_file_over_the_size_bound_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "mod.py"
    source.write_text("x = 1\n")
    monkeypatch.setenv("RIG_CACHE_DIR", str(tmp_path / "cache"))
    cache = codecache.ModuleCache(str(source), "mod")
    cache.add("unit", compile("y = 2", "<mod:unit>", "exec"))
    codecache.save_all()
    assert codecache.ModuleCache(str(source), "mod").get("unit") is not None
    monkeypatch.setattr(codecache, "MAX_BYTES", 8)
    assert codecache.ModuleCache(str(source), "mod").get("unit") is None


def test_units_another_process_wrote_meanwhile_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "mod.py"
    source.write_text("x = 1\n")
    monkeypatch.setenv("RIG_CACHE_DIR", str(tmp_path / "cache"))
    one = codecache.ModuleCache(str(source), "mod")
    two = codecache.ModuleCache(str(source), "mod")
    one.add("a", compile("a = 1", "<mod:a>", "exec"))
    one.save()
    two.add("b", compile("b = 1", "<mod:b>", "exec"))
    two.save()
    both = codecache.ModuleCache(str(source), "mod")
    assert both.get("a") is not None and both.get("b") is not None


def test_an_unwritable_folder_leaves_the_units_compiled_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "mod.py"
    source.write_text("x = 1\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("RIG_CACHE_DIR", str(blocker / "cache"))  # under a file: cannot exist
    cache = codecache.ModuleCache(str(source), "mod")
    code = compile("a = 1", "<mod:a>", "exec")
    cache.add("a", code)
    cache.save()  # no error
    assert cache.get("a") is code
