"""The interactive page (shrink run -o page.html): what the file holds, and what a real
browser shows (headless Chromium through selenium; skipped, with the reason, where
Debian's chromium or chromium-driver is missing)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("plotly", reason="the page needs plotly: pip install 'shrinkcli[html]'")

CHICK = Path(__file__).parent / "data" / "real" / "ChickWeight" / "data.csv"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WAIT = 20.0  # seconds at most for anything the browser is waited for


def _decode(spec) -> np.ndarray:
    """A plotly.js typed array ({dtype, bdata}) or a list, as float64."""
    if isinstance(spec, dict):
        dtype = {"f8": "<f8", "f4": "<f4"}[spec["dtype"]]
        return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=dtype).astype(float)
    return np.asarray(spec, dtype=float)


def _figure(page: Path) -> dict:
    """The figure the page carries (its own data)."""
    text = page.read_text(encoding="utf-8")
    m = re.search(r'<script id="shrink-figure" type="application/json">(.*?)</script>', text, re.S)
    assert m, "the page carries no figure"
    return json.loads(m.group(1))


def _run(output: Path, **kw):
    from shrinkcli.pipeline import run

    return run(output=output, **kw)


def _chick(output: Path | None):
    from shrinkcli.data import read_csv
    from shrinkcli.pipeline import run

    data = read_csv(CHICK, y="weight", x="Time", cluster="Chick")
    return run(data=data, output=output)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The baseline and ChickWeight pages, written once, with their runs."""
    folder = tmp_path_factory.mktemp("pages")
    base = _run(folder / "baseline.html")
    chick = _chick(folder / "chick.html")
    return {"baseline": (folder / "baseline.html", base), "chick": (folder / "chick.html", chick)}


# ----------------------------------------------------------------------------- the file


def test_page_is_self_contained_and_small(pages, tmp_path):
    page, result = pages["baseline"]
    text = page.read_text(encoding="utf-8")
    assert result.output == page
    scripts = re.findall(r"<script>(.*?)</script>", text, re.S)
    plotlyjs = max(scripts, key=len)
    assert "Plotly" in plotlyjs and len(plotlyjs) > 1_000_000  # plotly.js is inline
    outside = text.replace(plotlyjs, "")
    assert "<link" not in outside and not re.search(r"(?:src|href)\s*=", outside)
    assert page.stat().st_size < 5_000_000
    from shrinkcli.page import write_run_page

    cdn = write_run_page(result, tmp_path / "cdn.html", plotlyjs="cdn").read_text("utf-8")
    assert len(cdn.encode("utf-8")) < 300_000
    assert _figure(tmp_path / "cdn.html")["frames"] == _figure(page)["frames"]
    assert re.search(r'<script charset="utf-8" src="https://cdn\.plot\.ly/plotly-[\d.]+\.min\.js"'
                     r' integrity="sha384-[A-Za-z0-9+/=]+"', cdn)  # fmt: skip


def test_slider_runs_along_the_pooling_path_from_ols_to_the_fit(pages):
    from shrinkcli.pipeline import pooling_path_frames

    for name in ("baseline", "chick"):
        page, result = pages[name]
        fig = _figure(page)
        fits = result.fits
        moving = np.array(fig["page"]["moving_clusters"])
        assert np.array_equal(moving, np.flatnonzero(np.isfinite(fits.ols).all(axis=1)))
        frames = fig["frames"]
        kappas, path = pooling_path_frames(result.data, fits, len(frames))
        assert len(frames) == 60 == len(fig["layout"]["sliders"][0]["steps"])
        first, last = frames[0]["data"][0], frames[-1]["data"][0]
        for axis, k in (("x", 0), ("y", 1)):
            assert np.abs(_decode(first[axis]) - fits.ols[moving, k]).max() <= 1e-9
            assert np.abs(_decode(last[axis]) - fits.mixed[moving, k]).max() <= 1e-9
        for i in (1, 15, 30, 45):  # between: the path's models, as float32
            got = _decode(frames[i]["data"][0]["x"])
            want = path[i, moving, 0]
            assert np.allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())
        labels = [s["label"] for s in fig["layout"]["sliders"][0]["steps"]]
        assert labels[0].startswith("∞") and labels[-1].startswith("1 ")
        assert np.isinf(kappas[0]) and kappas[-1] == 1.0


def test_axes_caption_and_window_are_the_gifs(pages):
    page, result = pages["chick"]
    layout = _figure(page)["layout"]
    assert layout["xaxis"]["title"]["text"] == "Intercept (weight at Time = 0)"
    assert layout["yaxis"]["title"]["text"] == "Slope of Time"
    window = result.picture["window"]
    assert layout["xaxis"]["range"] == window["intercept"]
    assert layout["yaxis"]["range"] == window["slope"]
    caption = " ".join(a["text"] for a in layout["annotations"])
    assert "REML fit: SD intercept" in caption and "Pooling path" in caption
    base = _figure(pages["baseline"][0])["layout"]
    caption = " ".join(a["text"] for a in base["annotations"])
    assert "RMSE vs truth, OLS -&gt; mixed: intercept 0.314 -&gt; 0.270" in caption


def test_hover_text_names_each_cluster_with_its_numbers(pages):
    page, result = pages["baseline"]
    texts = _figure(page)["page"]["texts"]
    assert len(texts) == result.fits.n_clusters
    assert texts[0].startswith("<b>cluster 1</b> (10 obs)")
    assert "OLS: intercept" in texts[0] and "mixed: intercept" in texts[0]
    assert "truth: intercept" in texts[0]
    chick = _figure(pages["chick"][0])["page"]["texts"]
    assert not any("truth" in t for t in chick)


def _odd_labels(tmp_path) -> Path:
    """A CSV whose clusters are called '</script><b>x', 'a&b' and 'plain'."""
    csv = tmp_path / "d.csv"
    rows = ["y,x,g"]
    rng = np.random.default_rng(1)
    for label in ("</script><b>x", "a&b", "plain"):
        for x in range(6):
            rows.append(f"{rng.normal() + x},{x},{label}")
    csv.write_text("\n".join(rows) + "\n")
    return csv


def test_labels_cannot_break_out_of_the_page(tmp_path):
    """A cluster called '</script><b>x' is shown as text, not run or drawn as markup."""
    from shrinkcli.data import read_csv
    from shrinkcli.pipeline import run

    csv = _odd_labels(tmp_path)
    run(data=read_csv(csv, y="y", x="x", cluster="g"), output=tmp_path / "p.html")
    text = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert text.count("</script>") == text.count("<script")  # only the page's own scripts
    texts = _figure(tmp_path / "p.html")["page"]["texts"]
    assert any("cluster &lt;/script&gt;&lt;b&gt;x" in t for t in texts)
    assert any("cluster a&amp;b" in t for t in texts)


def test_the_strip_page_shows_labels_as_text(tmp_path):
    """The random-intercept page too: plotly reads hover and tick text as HTML."""
    from shrinkcli.data import read_csv
    from shrinkcli.pipeline import run
    from shrinkcli.strip_page import figure

    data = read_csv(_odd_labels(tmp_path), y="y", x="x", cluster="g")
    result = run(data=data, output=None, formula="y ~ x + (1 | g)")
    fig = figure(result.data, result.fits, title="a <b>title</b>")
    shown = [t for trace in fig.data if trace.hovertext for t in trace.hovertext]
    shown += list(fig.layout.yaxis.ticktext) + [fig.layout.title.text]
    assert any(t.startswith("<b>&lt;/script&gt;&lt;b&gt;x</b>") for t in shown)
    assert "a&amp;b" in shown and "a &lt;b&gt;title&lt;/b&gt;" in shown
    assert not any("</script>" in t or "<b>x" in t or "<b>title" in t for t in shown)


def test_cli_writes_the_page_and_batch_takes_html(cli, tmp_path):
    out = tmp_path / "p.html"
    r = cli("run", "-o", str(out), "--frames", "12", "--quiet", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["output"] == str(out) and doc["picture"]["zoom"] == "auto"
    assert len(_figure(out)["frames"]) == 12
    scen = tmp_path / "s.toml"
    scen.write_text('name = "tiny"\nn-cluster = 12\nframes = 5\n')
    r = cli("batch", str(scen), "--out-dir", str(tmp_path / "b"), "--format", "html", "-j", "1")
    assert r.code == 0, r.err
    assert len(_figure(tmp_path / "b" / "tiny.html")["frames"]) == 5


def test_missing_plotly_is_one_line_and_exit_2(cli, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "plotly" or m.startswith("plotly.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "plotly", None)  # import plotly now fails
    r = cli("run", "-o", str(tmp_path / "p.html"))
    assert r.code == 2
    assert r.err.strip().endswith("needs plotly: pip install 'shrinkcli[html]'")
    assert len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "p.html").exists()


def test_truth_on_real_data_is_refused(cli, tmp_path):
    r = cli("run", "--data", str(CHICK), "--y", "weight", "--x", "Time", "--cluster", "Chick",
            "--truth", "-o", str(tmp_path / "p.html"))  # fmt: skip
    assert r.code == 2 and "--truth needs the true cluster effects" in r.err
    assert not (tmp_path / "p.html").exists()


def test_notebook_shows_the_run_as_the_figure(monkeypatch):
    import plotly.graph_objects as go
    import plotly.io as pio

    from shrinkcli.scenario import Scenario

    result = _run(None, scenario=Scenario(n_cluster=20))
    fig = result.figure()
    assert isinstance(fig, go.Figure)
    assert len(fig.frames) == 60 and len(fig.layout.sliders[0].steps) == 60
    mixed = [t for t in fig.data if t.name == "mixed" and t.customdata is not None][0]
    assert mixed.hovertext[0].startswith("<b>cluster 1</b>")
    monkeypatch.setattr(pio.renderers, "default", "plotly_mimetype")  # as JupyterLab's
    bundle = result._repr_mimebundle_()
    shown = bundle["application/vnd.plotly.v1+json"]
    assert len(shown["frames"]) == 60 and shown["layout"]["sliders"][0]["active"] == 0


# ----------------------------------------------------------------------------- in a browser


def _browser_missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.path.exists(path):
            return f"{path} is missing: apt-get install -y {package}"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium manager must download nothing
    profile = tempfile.mkdtemp(prefix="shrink-test-chrome-")
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                "--window-size=1200,1000"):  # fmt: skip
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(driver, script: str, *args):
    """Poll a script until it returns something true; at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        value = driver.execute_script(script, *args)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {WAIT:g} s in vain for: {script}")
        time.sleep(0.05)


def _open(driver, page: Path) -> None:
    driver.get(page.as_uri())
    _wait(driver, "var g = document.getElementById('shrink-page'); return g && g.dataset.ready;")


GD = "var gd = document.getElementById('shrink-page');"
READ_MOVING = (
    GD
    + """
var v = gd.data[arguments[0]], out = {};
['x', 'y'].forEach(function (a) {
  var d = v[a];
  if (d && typeof d.bdata === 'string') {
    var s = atob(d.bdata), b = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) { b[i] = s.charCodeAt(i); }
    d = d.dtype === 'f4' ? new Float32Array(b.buffer) : new Float64Array(b.buffer);
  }
  out[a] = Array.from(d);
});
return out;
"""
)


def _slide_to(driver, end: str) -> int:
    """Click the slider's rail at its left or right end; returns the active step."""
    from selenium.webdriver.common.action_chains import ActionChains

    rail = driver.find_element("css selector", "#shrink-page .slider-rail-touch-rect")
    width = rail.size["width"]
    dx = -width / 2 + 2 if end == "start" else width / 2 - 2
    ActionChains(driver).move_to_element_with_offset(rail, int(dx), 0).click().perform()
    n = driver.execute_script(GD + "return gd.layout.sliders[0].steps.length;")
    want = 0 if end == "start" else n - 1
    _wait(driver, GD + "return gd.layout.sliders[0].active === arguments[0];", want)
    return want


def _click(driver, label: str) -> None:
    """Click the page's button whose text holds ``label``."""
    from selenium.webdriver.common.action_chains import ActionChains

    for el in driver.find_elements("css selector", "#shrink-page .updatemenu-button"):
        if label in el.text:
            ActionChains(driver).move_to_element(el).click().perform()
            return
    raise AssertionError(f"no button {label!r}")


def _drawn_point(driver, trace: int, i: int):
    """The drawn point of trace ``trace``, data index ``i`` (None if not drawn)."""
    return driver.execute_script(
        GD + "var found = null, trace = arguments[0], i = arguments[1];"
        "gd.querySelectorAll('.scatterlayer .trace').forEach(function (t) {"
        "  if (t.__data__[0].trace.index !== trace) { return; }"
        "  t.querySelectorAll('path.point').forEach(function (p) {"
        "    if (p.__data__.i === i) { found = p; } }); });"
        "return found;",
        trace,
        i,
    )


def _hover_text(driver) -> str:
    """The hover label's text, once it shows."""
    return _wait(
        driver,
        "var h = document.querySelector('#shrink-page .hoverlayer .hovertext');"
        "return h && h.textContent;",
    )


def _loads_offline(driver, page: Path) -> None:
    """Open ``page``: no error in the console, and no request but for the page itself
    and data: URLs (none to any host)."""
    driver.get_log("browser")  # empty the logs of earlier pages
    driver.get_log("performance")
    _open(driver, page)
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    every, by_page = [], []  # the CDP network log: every request, and the page's own
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            every.append(msg["params"]["request"]["url"])
            if msg["params"].get("documentURL") == page.as_uri():
                by_page.append(msg["params"]["request"]["url"])
    assert page.as_uri() in by_page, "the CDP network log saw not even the page itself"
    assert all(u == page.as_uri() or u.startswith("data:") for u in by_page), by_page
    assert not [u for u in every if u.startswith(("http:", "https:", "ws:", "wss:"))]


@pytest.mark.parametrize("name", ["baseline", "chick"])
def test_page_loads_without_errors_or_requests(browser, pages, name):
    _loads_offline(browser, pages[name][0])


@pytest.mark.parametrize("name", ["baseline", "chick"])
def test_slider_ends_are_the_ols_and_mixed_estimates(browser, pages, name):
    page, result = pages[name]
    _open(browser, page)
    moving_trace = browser.execute_script(
        "return JSON.parse(document.getElementById('shrink-figure').textContent).page.moving;"
    )
    moving = np.flatnonzero(np.isfinite(result.fits.ols).all(axis=1))
    for end, want in (("end", result.fits.mixed), ("start", result.fits.ols)):
        _slide_to(browser, end)
        got = browser.execute_script(READ_MOVING, moving_trace)
        assert np.abs(np.array(got["x"]) - want[moving, 0]).max() <= 1e-9
        assert np.abs(np.array(got["y"]) - want[moving, 1]).max() <= 1e-9


def _lonely_cluster(result) -> int:
    """A cluster whose OLS estimate is inside the window and far from every other."""
    ols = result.fits.ols
    (x0, x1), (y0, y1) = result.picture["window"].values()
    span = np.array([x1 - x0, y1 - y0])
    inside = np.isfinite(ols).all(axis=1) & (ols[:, 0] > x0 + 0.1 * span[0])
    inside &= (ols[:, 0] < x1 - 0.1 * span[0]) & (ols[:, 1] > y0 + 0.1 * span[1])
    inside &= ols[:, 1] < y1 - 0.1 * span[1]
    pts = np.vstack([ols[np.isfinite(ols).all(axis=1)], result.fits.fixed[None]]) / span
    best, far = -1, -1.0
    for g in np.flatnonzero(inside):
        d = np.sort(np.hypot(*(pts - ols[g] / span).T))[1]  # [0] is the point itself
        if d > far:
            best, far = int(g), d
    return best


@pytest.mark.parametrize("name", ["baseline", "chick"])
def test_hovering_a_point_names_its_cluster_and_draws_its_track(browser, pages, name):
    from selenium.webdriver.common.action_chains import ActionChains

    page, result = pages[name]
    _open(browser, page)
    _slide_to(browser, "start")
    fig = _figure(page)
    g = _lonely_cluster(result)
    j = fig["page"]["moving_clusters"].index(g)
    label = str(result.data.labels[g])
    point = _drawn_point(browser, fig["page"]["moving"], j)
    assert point is not None
    ActionChains(browser).move_to_element(point).perform()
    assert f"cluster {label} (" in _hover_text(browser)
    track = _wait(browser, READ_MOVING.replace("return out;", "return out.x.length && out;"),
                  fig["page"]["highlight"])  # fmt: skip
    ols, mixed = result.fits.ols[g], result.fits.mixed[g]
    assert len(track["x"]) == len(fig["frames"])
    assert np.allclose([track["x"][0], track["y"][0]], ols, rtol=1e-6)
    assert np.allclose([track["x"][-1], track["y"][-1]], mixed, rtol=1e-6)


def test_screenshot_shows_the_points_in_the_articles_colours(browser, pages):
    from PIL import Image

    page, result = pages["baseline"]
    _open(browser, page)
    counts = {}
    for end in ("start", "end"):
        _slide_to(browser, end)
        browser.execute_async_script(  # let the browser paint
            "var done = arguments[0]; requestAnimationFrame(function () { setTimeout(done, 0); });"
        )
        img = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB"))
        for colour, rgb in (("orange", (0xF4, 0x9E, 0x71)), ("olive", (0x80, 0x81, 0x33))):
            near = np.abs(img.astype(int) - rgb).max(axis=2) <= 12
            counts[end, colour] = int(near.sum())
        assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # not blank
    assert counts["start", "orange"] > 1000  # every cluster at its OLS estimate
    assert counts["end", "olive"] > 1000 > counts["start", "olive"]  # arrived, olive


def test_play_runs_the_path_again_and_toggles_show_the_ellipses(browser, pages):
    page, _ = pages["baseline"]
    _open(browser, page)
    last = _slide_to(browser, "end")
    _click(browser, "Play")  # at the end:
    _wait(browser, GD + "var a = gd.layout.sliders[0].active; return a > 2 && a < arguments[0];",
          last)  # fmt: skip  # it plays again from no pooling
    _click(browser, "Pause")
    assert browser.execute_script(GD + "return gd.data[0].visible;") == "legendonly"
    _click(browser, "Ellipses")
    _wait(browser, GD + "return gd.data[0].visible === true;")
    _click(browser, "Ellipses")
    _wait(browser, GD + "return gd.data[0].visible === 'legendonly';")
