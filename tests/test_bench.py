"""Bench files: misspelt measurement points, unknown roles and options fail at load with
file:line and exit 2 (in `rig validate` and in `rig run`), before any instrument is touched."""

from pathlib import Path

import pytest

from rig.bench import load_bench
from rig.cli import main
from rig.yamlsrc import SourceError

REPO = Path(__file__).resolve().parent.parent
EMULATED = REPO / "fixtures/benches/emulated.yaml"
PLAN = str(REPO / "test_plans/v2h/charge_discharge_reversal.yaml")


def _bench(tmp_path: Path, old: str, new: str) -> Path:
    text = EMULATED.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "bench.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def test_a_misspelt_measurement_point_is_refused_with_file_line_and_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _bench(tmp_path, "2: evse_ac", "2: evse_acc")
    line = _line_of(bench, "evse_acc")
    assert main(["validate", str(bench)]) == 2
    out = capsys.readouterr().out
    assert (
        f"{bench}:{line}: instruments.analyzer.elements.2: 'evse_acc' is not a measurement point; "
        "did you mean 'evse_ac'?" in out
    )
    assert main(["run", PLAN, "--bench", str(bench), "--out", str(tmp_path / "out")]) == 2
    assert f"{bench}:{line}: instruments.analyzer.elements.2" in capsys.readouterr().err


def test_an_unknown_role_is_refused_by_validate_and_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _bench(tmp_path, "role: ac_load", "role: ac_lod")
    line = _line_of(bench, "role: ac_lod")
    assert main(["validate", str(bench)]) == 2
    assert (
        f"{bench}:{line}: instruments.home.role: 'ac_lod' is not one of" in capsys.readouterr().out
    )
    assert main(["run", PLAN, "--bench", str(bench), "--out", str(tmp_path / "out")]) == 2
    assert f"{bench}:{line}: instruments.home.role" in capsys.readouterr().err


def test_a_dc_point_on_an_element_not_listed_as_dc_is_refused(tmp_path: Path) -> None:
    bench = _bench(tmp_path, "dc_elements: [4]", "dc_elements: []")
    with pytest.raises(SourceError, match=r"elements\.4: evse_dc is a DC point"):
        load_bench(bench)


def test_an_option_the_model_does_not_know_is_refused_at_load(tmp_path: Path) -> None:
    bench = _bench(tmp_path, "    model: ea_psb10000\n", "    model: ea_psb10000\n    ramp: 5\n")
    with pytest.raises(
        SourceError, match=r"instruments\.battery: .*unknown option\(s\) \['ramp'\]"
    ):
        load_bench(bench)


def test_validate_tells_plans_from_benches_and_checks_both(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", str(EMULATED), str(REPO / "test_plans/v2h")]) == 0
    out = capsys.readouterr().out
    assert "4 plan(s), 1 bench file(s) OK" in out
