"""The interactive page (shrink run -o page.html): size, time to write, slider redraw.

Run: python bench/bench_html.py [--clusters 100,2000] [--steps 40]

For each number of clusters (simulated as the article's baseline otherwise), the
page is written twice, plotly.js inline (the default, self-contained) and from its
CDN, and the file sizes are reported. Then the inline page is opened in headless
Chromium (Debian's chromium and chromium-driver, through selenium) and the slider
is moved: every step runs exactly what the slider runs (its step's Plotly.animate
call) and is timed until the browser has painted the result (the promise, then the
next animation frame). Steps go forward along the path and then jump at random.

Targets (issue 11): baseline page under 5 MB inline and 300 KB with the CDN,
written in under 2 s, slider redraw under 50 ms for 100 clusters and 200 ms for
2,000. "write" is page_html plus the atomic write, after simulating and fitting;
"shrink run" is the whole command in a fresh process, start-up included.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT = 30.0  # seconds at most for the page to be ready or a step to be painted

STEP_JS = """
var done = arguments[arguments.length - 1];
var gd = document.getElementById('shrink-page');
var step = gd.layout.sliders[0].steps[arguments[0]];
var t0 = performance.now();
Plotly.animate(gd, step.args[0], step.args[1]).then(function () {
  requestAnimationFrame(function () {
    setTimeout(function () { done(performance.now() - t0); }, 0);
  });
});
"""


def browser():
    """Headless Chromium with a fresh profile and no network of its own."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium manager downloads nothing
    profile = tempfile.mkdtemp(prefix="shrink-bench-chrome-")
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                "--window-size=1200,1000"):  # fmt: skip
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_script_timeout(WAIT)
    driver.set_page_load_timeout(WAIT)
    return driver, profile


def wait_ready(driver) -> None:
    deadline = time.monotonic() + WAIT
    script = "var g = document.getElementById('shrink-page'); return g && g.dataset.ready;"
    while not driver.execute_script(script):
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not become ready")
        time.sleep(0.05)


def browser_cpu_ms(profile: str) -> float:
    """CPU time used so far by the browser's processes (Linux /proc): unlike wall time,
    it does not grow when other work shares the machine."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if profile not in (entry / "cmdline").read_text(errors="replace"):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total * 1000 / os.sysconf("SC_CLK_TCK")


def write_pages(n_clusters: int, out: Path) -> dict:
    from shrinkcli.page import write_page
    from shrinkcli.pipeline import fit_data, make_frames, make_picture, page_settings
    from shrinkcli.scenario import Scenario
    from shrinkcli.settings import RenderSettings
    from shrinkcli.simulate import simulate

    scenario = Scenario(n_cluster=n_clusters)
    data = simulate(scenario)
    fits = fit_data(data)
    settings = RenderSettings()
    start = time.perf_counter()
    picture = make_picture(data, fits, scenario=scenario)
    frames = make_frames(data, fits, page_settings(settings))
    inline = write_page(picture, frames, settings, out / f"g{n_clusters}.html", labels=data.labels)
    seconds = time.perf_counter() - start
    cdn = write_page(picture, frames, settings, out / f"g{n_clusters}_cdn.html",
                     labels=data.labels, plotlyjs="cdn")  # fmt: skip
    return {"inline": inline, "cdn": cdn, "write_s": seconds}


def cli_seconds(out: Path, repeats: int = 3) -> float:
    """The best of a few whole `shrink run -o page.html` commands (the baseline)."""
    shrink = Path(sys.executable).with_name("shrink")
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([str(shrink), "run", "-q", "-o", str(out / "cli.html")], check=True,
                       stdout=subprocess.DEVNULL, timeout=120)  # fmt: skip
        best = min(best, time.perf_counter() - start)
    return best


def slider_ms(driver, profile: str, page: Path, n_steps: int) -> tuple[list[float], float]:
    """Wall milliseconds of each step, and the browser's CPU milliseconds per step."""
    driver.get(page.as_uri())
    wait_ready(driver)
    n = driver.execute_script(
        "return document.getElementById('shrink-page').layout.sliders[0].steps.length"
    )
    rng = random.Random(1)
    order = list(range(1, min(n, n_steps // 2 + 1))) + [
        rng.randrange(n) for _ in range(n_steps // 2)
    ]
    driver.execute_async_script(STEP_JS, 0)  # warm up
    cpu = browser_cpu_ms(profile)
    wall = [driver.execute_async_script(STEP_JS, k) for k in order]
    return wall, (browser_cpu_ms(profile) - cpu) / len(order)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", default="100,2000")
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="shrink-bench-html-"))
    have_browser = Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()
    driver = profile = None
    try:
        print(f"`shrink run -o page.html`, baseline, whole command: {cli_seconds(out):.2f} s")
        if have_browser:
            driver, profile = browser()
        else:
            print("no /usr/bin/chromium or /usr/bin/chromedriver: slider timings skipped")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"{'clusters':>8} {'inline MB':>10} {'CDN KB':>8} {'write s':>8} "
              f"{'slider ms median':>17} {'p90':>6} {'max':>6} {'CPU ms/step':>12}")  # fmt: skip
        for g in (int(v) for v in args.clusters.split(",")):
            pages = write_pages(g, out)
            mb = pages["inline"].stat().st_size / 1e6
            kb = pages["cdn"].stat().st_size / 1e3
            row = f"{g:>8} {mb:>10.3f} {kb:>8.1f} {pages['write_s']:>8.2f}"
            if driver is not None:
                ms, cpu = slider_ms(driver, profile, pages["inline"], args.steps)
                ms.sort()
                p90 = ms[int(0.9 * (len(ms) - 1))]
                row += f" {statistics.median(ms):>17.1f} {p90:>6.1f} {ms[-1]:>6.1f} {cpu:>12.1f}"
            print(row, flush=True)
    finally:
        if driver is not None:
            driver.quit()
        if profile:
            shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
