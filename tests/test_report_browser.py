"""`dlexp report --html` opened in a real browser: headless Chromium, offline, at a phone's width.

A copy of the page gets a few lines of script appended that, once the page has loaded, write into
the DOM each image's decoded (natural) size and how far the page overflows the window sideways;
Chromium's ``--dump-dom`` gives that DOM back. The page itself carries no script. ``.ci/run``
installs Debian's ``chromium`` when it is absent; this test skips, saying why, only where no
Chromium binary exists.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import DEEP_SIGMOID, invoke

PHONE = (390, 844)  # CSS pixels of a common phone in portrait
PROBE = """<script>
addEventListener("load", () => {
  for (const img of document.images) img.dataset.natural = img.naturalWidth + "x" + img.naturalHeight;
  const root = document.documentElement;
  document.body.dataset.overflow = String(root.scrollWidth - root.clientWidth);
  document.body.dataset.verdictRows = String(document.querySelectorAll("table.verdicts tbody tr").length);
});
</script>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium binary (chromium, chromium-browser or google-chrome) on PATH; .ci/run installs "
                "Debian's chromium package when it can (apt-get as root)")


def headless(binary: str, *args: str, tmp: Path) -> subprocess.CompletedProcess:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp / 'profile'}",
               f"--window-size={PHONE[0]},{PHONE[1]}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    config = root / "deep.yaml"
    config.write_text(DEEP_SIGMOID)
    for seed in (1, 2):
        code, _, err = invoke("train", config, "--runs-dir", root / "runs", "--seed", seed, "--quiet")
        assert code == 0, err
    out = root / "report.html"
    code, _, err = invoke("report", *sorted((root / "runs").iterdir()), "--html", out)
    assert code == 0, err
    return out


def test_figures_decode_and_the_verdict_tables_render_at_phone_width(page, tmp_path):
    binary = chromium()
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = headless(binary, "--virtual-time-budget=15000", "--dump-dom", probe.as_uri(), tmp=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    sizes = re.findall(r'data-natural="(\d+)x(\d+)"', dom)
    n_images = page.read_text().count("<img ")
    assert n_images == 1 + 2 * 4  # overlaid curves, then per run: loss, accuracy, gradient lines, heatmap
    assert len(sizes) == n_images
    assert all(int(w) > 0 and int(h) > 0 for w, h in sizes), sizes
    # the decoded sizes are the PNGs' own
    assert {(int(w), int(h)) for w, h in sizes} >= {(900, 550)}
    # verdict tables: the overview (one row per run) and each run's per-layer table (7 layers)
    rows = int(re.search(r'data-verdict-rows="(\d+)"', dom).group(1))
    assert rows == 2 + 2 * 7
    assert "verdict-vanishing" in dom
    # at a phone's width the page itself never scrolls sideways (wide tables scroll in their own box)
    assert re.search(r'data-overflow="(-?\d+)"', dom).group(1) == "0"


def test_a_screenshot_of_the_page_is_drawn(page, tmp_path):
    binary = chromium()
    shot = tmp_path / "shot.png"
    done = headless(binary, f"--screenshot={shot}", page.as_uri(), tmp=tmp_path)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= PHONE[0] and height >= PHONE[1] // 2
