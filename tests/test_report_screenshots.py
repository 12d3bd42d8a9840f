"""Screenshots of a passing and a failing report in headless Chromium (tools/screenshot_report.py):
the page renders in a real browser, and its first screen shows the run's verdict in its colour."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import missing

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
from screenshot_report import FIRST_SCREEN, FULL_HEIGHT, chromium  # noqa: E402

pytestmark = pytest.mark.slow


def _has_colour(png: Path, rgb: tuple[int, int, int], rows: int) -> bool:
    """Whether the top `rows` pixel rows hold a block of this colour (the verdict badge)."""
    from PIL import Image

    with Image.open(png) as image:
        data = image.convert("RGB").crop((0, 0, 300, rows)).tobytes()
    pixels = (data[i : i + 3] for i in range(0, len(data), 3))
    close = sum(1 for p in pixels if sum(abs(a - b) for a, b in zip(p, rgb, strict=True)) < 30)
    return close > 400


def test_a_passing_and_a_failing_report_as_a_browser_shows_them(tmp_path: Path) -> None:
    if chromium() is None:
        missing("no chromium (Debian's chromium package; .ci/run installs it)")
    done = subprocess.run(
        [sys.executable, str(REPO / "tools/screenshot_report.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    from PIL import Image

    for name in ("pass", "fail"):
        first, full = tmp_path / f"{name}-first-screen.png", tmp_path / f"{name}-full.png"
        with Image.open(first) as image:
            assert image.size == FIRST_SCREEN
        with Image.open(full) as image:
            # Trimmed to the page, and taller than one screen (figures, tables below).
            assert FIRST_SCREEN[1] < image.size[1] < FULL_HEIGHT
    green, red = (0x1A, 0x7F, 0x37), (0xCF, 0x22, 0x2E)
    assert _has_colour(tmp_path / "pass-first-screen.png", green, 90)
    assert not _has_colour(tmp_path / "pass-first-screen.png", red, 90)
    assert _has_colour(tmp_path / "fail-first-screen.png", red, 90)
    assert not _has_colour(tmp_path / "fail-first-screen.png", green, 90)
