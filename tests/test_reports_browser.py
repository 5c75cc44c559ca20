"""report.html in a real browser: headless Chromium loads it offline with no console error, every plot the
report draws is present and decodes to a non-empty image, the diagnosis, headline trajectories and round
panel render above the per-probe tables (the latest round panel open), and screenshots are kept as test
artifacts (LOOPPROBE_ARTIFACTS, default .ci-out/): the whole page and the top of it (report-header.png)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from probes.testing import crank_rounds, write_synthetic_run
from reports.build import build_report, write_report
from reports.html import plot_ids

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium package at /usr/bin/chromium "
                                "(.ci/run installs it: apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]

# Injected into a copy of the page for the test only (the report itself has no script): records script errors,
# console.error calls and resources that fail to load (capture phase), then writes what it saw, and every
# plot's decoded size, into the DOM for --dump-dom to return.
CHECK = """<script>
window.__errors = [];
window.addEventListener("error", e => __errors.push(e.message || ("failed to load " + (e.target && e.target.tagName))), true);
const __error = console.error;
console.error = (...a) => { __errors.push("console.error: " + a.join(" ")); __error.apply(console, a); };
window.addEventListener("load", () => {
  const plots = [...document.querySelectorAll("[data-plot]")].map(
    el => ({id: el.dataset.plot, width: el.naturalWidth, height: el.naturalHeight, complete: el.complete}));
  const out = document.createElement("pre");
  out.id = "loopprobe-check";
  const sections = [...document.querySelectorAll("[data-section]")].map(el => ({
    name: el.dataset.section, text: el.innerText.trim().length, height: el.getBoundingClientRect().height,
    top: el.getBoundingClientRect().top + window.scrollY,
    open: [...el.querySelectorAll("details.panel")].map(d => d.open)}));
  const firstProbe = document.querySelector("h4");
  out.textContent = JSON.stringify({errors: __errors, plots, sections,
    firstProbeTop: firstProbe ? firstProbe.getBoundingClientRect().top + window.scrollY : null});
  document.body.appendChild(out);
});
</script>"""


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # a fresh profile per launch
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                           *args], capture_output=True, text=True, timeout=90, check=False)


def artifact_dir() -> Path:
    root = Path(os.environ.get("LOOPPROBE_ARTIFACTS") or Path(__file__).resolve().parents[1] / ".ci-out")
    root.mkdir(parents=True, exist_ok=True)
    return root


def test_report_html_loads_in_headless_chromium_with_every_plot(tmp_path):
    run = write_synthetic_run(tmp_path / "run", crank_rounds(4), n_pool=120, n_test=80, n_ood=30, n_ref=30)
    report = build_report(run)
    write_report(report, run)
    expected = plot_ids(report)
    page = (run / "report.html").read_text()
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</head>", CHECK + "</head>", 1))

    dumped = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", checked.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    found = re.search(r'<pre id="loopprobe-check">(.*?)</pre>', dumped.stdout, re.DOTALL)
    assert found, f"the page did not finish loading; stderr: {dumped.stderr[-2000:]}"
    seen = json.loads(html.unescape(found.group(1)))
    assert seen["errors"] == []
    console = [line for line in dumped.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    plots = {p["id"]: p for p in seen["plots"]}
    assert sorted(plots) == sorted(expected) and len(expected) >= 10
    empty = [p for p in plots.values() if not (p["complete"] and p["width"] > 0 and p["height"] > 0)]
    assert empty == [], empty
    # the top of the report: diagnosis, headline trajectories, round panel (latest pair open), before the probes
    sections = {x["name"]: x for x in seen["sections"]}
    assert {"diagnosis", "headlines", "round-panel"} <= set(sections), sections
    assert all(x["text"] > 40 and x["height"] > 20 for x in sections.values()), sections
    assert sections["round-panel"]["open"] == [True, False, False]  # round 3 vs 2 open, earlier pairs collapsed
    assert sections["diagnosis"]["top"] < sections["headlines"]["top"] < sections["round-panel"]["top"] \
        < seen["firstProbeTop"]
    assert sections["diagnosis"]["top"] < 1000  # in the first screen
    assert "crank attractor" in page and page.index('data-section="diagnosis"') < page.index("<h4>")
    assert re.search(r"\d+ of \d+ fire \(BH, q ≤ 0\.05\)", page)  # the corrected verdict in the header

    shot = tmp_path / "report-screenshot.png"
    taken = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,4000", "--hide-scrollbars",
                     (run / "report.html").as_uri())
    assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]
    shutil.copy(shot, artifact_dir() / "report-screenshot.png")

    header = tmp_path / "report-header.png"
    taken = chromium(tmp_path, f"--screenshot={header}", "--window-size=1280,1000", "--hide-scrollbars",
                     (run / "report.html").as_uri())
    assert taken.returncode == 0 and header.stat().st_size > 10_000, taken.stderr[-2000:]
    shutil.copy(header, artifact_dir() / "report-header.png")
