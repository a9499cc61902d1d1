"""report.html of real lab drills, opened in headless Chromium with the network cut off.

Runs ``runbooks/dc1-to-dc2-broken.yml`` (fails, rolls back), ``runbooks/dc1-to-dc2.yml``
(succeeds) and ``runbooks/dc2-to-dc1.yml`` (puts the lab back), then opens each run's
report.html in Debian's chromium through chromedriver (selenium) and asserts: the timeline
SVG rendered with a non-zero size and one band per step that ran, no console error, and no
request left the page (the DevTools performance log sees every request; the browser is also
offline and has no resolver), and that it prints to PDF. A full-page screenshot and the PDF
of each report are kept in the test's tmp dir and in ``reports/browser/`` as artifacts.

Serialize lab use: ``flock /tmp/drill-lab.lock .venv/bin/pytest tests/lab/test_report_browser.py``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "reports" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def drill_run(lab: Any, tmp_path: Path, runbook: str) -> tuple[int, Path, dict[str, Any]]:
    report_dir = tmp_path / runbook.removesuffix(".yml")
    argv = [
        sys.executable, "-m", "drill", "run", str(REPO / "runbooks" / runbook),
        "-i", str(lab.inventory_dir), "--yes", "--report-dir", str(report_dir),
    ]  # fmt: skip
    env = {**os.environ, "DRILL_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert (report_dir / "report.json").exists(), done.stderr + done.stdout
    assert (report_dir / "report.html").exists(), done.stderr + done.stdout
    return done.returncode, report_dir, json.loads((report_dir / "report.json").read_text())


def _pids_using(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (our own temp profile dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(entry.name))
    return pids


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path / "chromium-profile"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,1000",
        # belt and braces: whatever the page asked for could not leave this machine
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver_pid = service.process.pid if service.process is not None else None
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
        )
        yield driver
    finally:
        driver.quit()
        # Every process we started ends: chromedriver by its pid, chromium's by the profile
        # dir only they were given.
        for pid in [*([driver_pid] if driver_pid else []), *_pids_using(str(profile))]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _requests(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(str(message["params"]["request"]["url"]))
    return urls


def _open_and_check(driver: Any, html: Path, report: dict[str, Any], shot: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.get_log("performance")  # drop what came before this page
    driver.get_log("browser")
    driver.get(html.resolve().as_uri())
    svg = driver.find_element(By.CSS_SELECTOR, "#timeline svg.timeline")
    size = svg.size
    assert size["width"] > 300 and size["height"] > 100, size
    bands = svg.find_elements(By.CSS_SELECTOR, "g[id^='step-band-']")
    ran = [s for s in report["steps"] if s["started"] is not None]
    assert len(bands) == len(ran) > 0
    assert [b.get_attribute("id") for b in bands] == [
        f"step-band-{n}" for n, s in enumerate(report["steps"], start=1) if s["started"]
    ]
    rendered = driver.execute_script(
        "return Array.from(arguments[0]).filter(g => g.getBBox().height > 0).length", bands
    )
    assert rendered == len(bands)
    assert driver.find_element(By.ID, "verdict").text.strip()
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    page = html.resolve().as_uri()
    assert [u for u in _requests(driver) if u != page] == []
    # printable: Chromium's own print to PDF (what "Save as PDF" does) gives a real document
    from selenium.webdriver.common.print_page_options import PrintOptions

    printing = PrintOptions()
    printing.orientation = "landscape"
    pdf = base64.b64decode(driver.print_page(printing))
    assert pdf.startswith(b"%PDF-") and len(pdf) > 20_000
    shot.with_suffix(".pdf").write_bytes(pdf)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(int(height) + 40, 6000))
    assert driver.save_screenshot(str(shot))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / shot.name)
    shutil.copy(shot.with_suffix(".pdf"), ARTIFACTS / shot.with_suffix(".pdf").name)


def test_reports_render_offline(lab: Any, tmp_path: Path, browser: Any) -> None:
    code, broken_dir, broken = drill_run(lab, tmp_path, "dc1-to-dc2-broken.yml")
    assert code == 1 and broken["outcome"] == "rolled_back"
    assert {"rollback", "verify"} <= {s["phase"] for s in broken["steps"]}
    code, good_dir, good = drill_run(lab, tmp_path, "dc1-to-dc2.yml")
    assert code == 0 and good["outcome"] == "succeeded"
    code, _, back = drill_run(lab, tmp_path, "dc2-to-dc1.yml")
    assert code == 0, back["notes"]

    runs = (("broken", broken_dir, broken), ("dc1-to-dc2", good_dir, good))
    for name, report_dir, report in runs:
        run_dir = tmp_path / "state" / "runs" / report["run_id"]
        bins = sorted(p.name for p in (run_dir / "probes").glob("*.bins.jsonl"))
        assert len(bins) == len(report["probes"]) == 2, bins
        _open_and_check(browser, report_dir / "report.html", report, tmp_path / f"{name}.png")
        # the copy in the run directory is the same page
        assert (run_dir / "report.html").read_bytes() == (report_dir / "report.html").read_bytes()
