"""Screenshots of a passing and a failing report, as a lab engineer first sees them.

Runs `rig run` twice on the embedded emulated bench — the default plans with a good DUT, and the
grid-forming backup plan with the DUT's island detection slowed (defect slow_island_detection) —
then opens each report.html in headless Chromium (Debian's `chromium` package) and saves:

    OUT/pass-first-screen.png    the first screen (1500 x 1000): verdict, what ran, on what
    OUT/pass-full.png            the whole page
    OUT/fail-first-screen.png
    OUT/fail-full.png

Usage: python tools/screenshot_report.py [OUT]   (default: reports/screenshots/)
Exit 0 when every screenshot was written; 2 when no Chromium is installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRST_SCREEN = (1500, 1000)
FULL_HEIGHT = 20000
#: name -> extra `rig run` arguments
RUNS = {
    "pass": [],
    "fail": ["test_plans/v2h/grid_loss_backup.yaml", "--defect", "slow_island_detection"],
}


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(browser: str, page: Path, png: Path, size: tuple[int, int]) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless=new",
                "--no-sandbox",  # root in CI containers
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}",
                f"--screenshot={png}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def trim(png: Path, margin: int = 24) -> None:
    """Cut the blank page below the report off a full-page shot (Pillow comes with matplotlib)."""
    from PIL import Image, ImageChops

    with Image.open(png) as image:
        rgb = image.convert("RGB")
    blank = Image.new("RGB", rgb.size, (255, 255, 255))
    box = ImageChops.difference(rgb, blank).getbbox()
    if box is not None:
        rgb.crop((0, 0, rgb.width, min(box[3] + margin, rgb.height))).save(png)


def main(argv: list[str]) -> int:
    out = (Path(argv[0]) if argv else REPO / "reports/screenshots").resolve()
    browser = chromium()
    if browser is None:
        print("screenshot_report: no chromium found (apt-get install chromium)", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for name, args in RUNS.items():
        run_dir = out / f"{name}-run"
        done = subprocess.run(
            [sys.executable, "-m", "rig", "run", "-q", *args, "--out", str(run_dir)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode not in (0, 1) or not (run_dir / "report.html").is_file():
            print(
                f"screenshot_report: rig run failed:\n{done.stdout}{done.stderr}", file=sys.stderr
            )
            return 1
        report = run_dir / "report.html"
        screenshot(browser, report, out / f"{name}-first-screen.png", FIRST_SCREEN)
        screenshot(browser, report, out / f"{name}-full.png", (FIRST_SCREEN[0], FULL_HEIGHT))
        trim(out / f"{name}-full.png")
        print(f"{name}: {out / f'{name}-first-screen.png'}, {out / f'{name}-full.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
