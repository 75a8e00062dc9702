"""shrink grid -o grid.html: the panels as subplots of one interactive page, in the
grid's shared window, moved in step by one pooling slider; what the file holds and
what headless Chromium shows (skipped, with the reason, without the browser)."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest

pytest.importorskip("plotly", reason="the page needs plotly: pip install 'shrinkcli[html]'")

from shrinkcli.grid import run_grid  # noqa: E402
from tests.test_grid import SIX, _files_plan  # noqa: E402
from tests.test_html import (  # noqa: E402, F401  (browser: the shared headless Chromium)
    GD,
    READ_MOVING,
    _click,
    _decode,
    _drawn_point,
    _figure,
    _hover_text,
    _loads_offline,
    _open,
    _slide_to,
    _wait,
    browser,
)

FRAMES = 8  # slider steps: few, to keep the tests fast
FOUR = [f for f in SIX if f.stem in ("baseline", "fewer_obs", "more_slope_variance", "unbalanced")]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """Four scenario files (2 x 2) as a page, with their fits."""
    page = tmp_path_factory.mktemp("grid_page") / "four.html"
    result = run_grid(_files_plan(FOUR, frames=FRAMES), page)
    return page, result


def _axes(layout: dict, letter: str) -> list[str]:
    names = [k for k in layout if re.fullmatch(letter + r"axis\d*", k)]
    return sorted(names, key=lambda k: int(k[5:] or 1))


def _moving(result, p: int) -> np.ndarray:
    return np.flatnonzero(np.isfinite(result.fits[p].ols).all(axis=1))


def test_page_is_one_offline_file_of_subplots_in_the_shared_window(grid):
    page, result = grid
    assert result.output == page and result.shape == (2, 2)
    text = page.read_text(encoding="utf-8")
    plotlyjs = max(re.findall(r"<script>(.*?)</script>", text, re.S), key=len)
    assert "Plotly" in plotlyjs and len(plotlyjs) > 1_000_000  # plotly.js is inline
    outside = text.replace(plotlyjs, "")
    assert "<link" not in outside and not re.search(r"(?:src|href)\s*=", outside)
    assert page.stat().st_size < 8_000_000
    layout = _figure(page)["layout"]
    xs, ys = _axes(layout, "x"), _axes(layout, "y")
    assert len(xs) == len(ys) == 4
    (x0, x1), (y0, y1) = result.window
    for name in xs:
        assert layout[name]["range"] == [x0, x1] and layout[name]["autorange"] is False
    for name in ys:
        assert layout[name]["range"] == [y0, y1] and layout[name]["autorange"] is False
    cells = {
        (tuple(layout[x]["domain"]), tuple(layout[y]["domain"]))
        for x, y in zip(xs, ys, strict=True)
    }
    assert len(cells) == 4  # four places, in two columns and two rows
    assert len({c[0] for c in cells}) == 2 and len({c[1] for c in cells}) == 2
    notes = [a["text"] for a in layout["annotations"]]
    for pic in result.pictures:  # long titles on two lines
        assert html.escape(pic.title) in [n.replace("<br>", " ") for n in notes]
        assert "<br>".join(html.escape(line) for line in pic.caption) in notes
    assert layout["title"]["text"] == "4 scenarios side by side"
    assert any("pooling path" in n and "Point area shows cluster size" in n for n in notes)


def test_every_trace_sits_on_its_panels_axes_and_the_legend_is_one(grid):
    page, _ = grid
    fig = _figure(page)
    panels = fig["page"]["panels"]
    for p, panel in enumerate(panels):
        ax = "" if p == 0 else str(p + 1)
        for key in ("tracks", "highlight", "moving"):
            trace = fig["data"][panel[key]]
            assert (trace["xaxis"], trace["yaxis"]) == ("x" + ax, "y" + ax)
    shown = [t["name"] for t in fig["data"] if t.get("showlegend", True)]
    assert len(shown) == len(set(shown))
    assert {"by-cluster", "mixed", "average"} <= set(shown)
    assert len(fig["layout"]["sliders"]) == 1


def test_slider_moves_every_panel_from_its_ols_to_its_mixed_estimates(grid):
    page, result = grid
    fig = _figure(page)
    frames, panels = fig["frames"], fig["page"]["panels"]
    assert len(frames) == FRAMES == len(fig["layout"]["sliders"][0]["steps"])
    moving_traces = [p["moving"] for p in panels]
    assert all(f["traces"][: len(panels)] == moving_traces for f in frames)
    kappas = [[d["text"][0] for d in f["data"][len(panels) :]] for f in frames]  # each panel's
    assert kappas[0] == ["κ = ∞"] * len(panels) and kappas[-1] == ["κ = 1"] * len(panels)
    for p, panel in enumerate(panels):
        moving = _moving(result, p)
        offset = sum(f.n_clusters for f in result.fits[:p])
        assert panel["moving_clusters"] == [int(g) + offset for g in moving]
        first, last = frames[0]["data"][p], frames[-1]["data"][p]
        for axis, k in (("x", 0), ("y", 1)):
            assert np.abs(_decode(first[axis]) - result.fits[p].ols[moving, k]).max() <= 1e-9
            assert np.abs(_decode(last[axis]) - result.fits[p].mixed[moving, k]).max() <= 1e-9
    labels = [s["label"] for s in fig["layout"]["sliders"][0]["steps"]]
    assert labels[0].startswith("κ = ∞") and labels[-1].startswith("κ = 1")


def test_hover_texts_name_each_panels_clusters(grid):
    page, result = grid
    fig = _figure(page)
    texts = fig["page"]["texts"]
    assert len(texts) == sum(f.n_clusters for f in result.fits)
    for p, panel in enumerate(fig["page"]["panels"]):
        trace = fig["data"][panel["moving"]]
        g = trace["customdata"][0] - panel["moving_clusters"][0]  # 0: the panel's first
        j = int(_moving(result, p)[g])
        size = int(result.pictures[p].sizes[j])
        label = result.data[p].labels[j]
        assert texts[trace["customdata"][0]].startswith(f"<b>cluster {label}</b> ({size} obs)")
        assert "truth: intercept" in texts[trace["customdata"][0]]


def test_cli_writes_the_grid_page(cli, tmp_path):
    out = tmp_path / "g.html"
    got = cli("grid", "--sd-slope", "0.1,1", "--n-cluster", "12", "--frames", "5", "-o", out,
              "--json", "--quiet")  # fmt: skip
    assert got.code == 0, got.err
    doc = json.loads(got.out)
    assert doc["output"] == str(out) and (doc["rows"], doc["cols"]) == (1, 2)
    fig = _figure(out)
    assert len(fig["frames"]) == 5 and len(fig["page"]["panels"]) == 2
    assert fig["layout"]["xaxis2"]["range"] == doc["window"]["intercept"]


def test_missing_plotly_is_one_line_before_any_work(cli, tmp_path, monkeypatch):
    import sys

    for name in [m for m in sys.modules if m == "plotly" or m.startswith("plotly.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "plotly", None)  # import plotly now fails
    got = cli("grid", "--sd-slope", "0.1,1", "-o", tmp_path / "g.html")
    assert got.code == 2
    assert got.err.strip().endswith("needs plotly: pip install 'shrinkcli[html]'")
    assert len(got.err.strip().splitlines()) == 1 and not (tmp_path / "g.html").exists()


def test_cdn_page_is_small(grid, tmp_path):
    from shrinkcli.grid_page import write_grid_page
    from shrinkcli.pipeline import make_frames, page_settings
    from shrinkcli.settings import RenderSettings

    page, result = grid
    on_path = page_settings(RenderSettings(frames=FRAMES))
    frames = [make_frames(d, f, on_path) for d, f in zip(result.data, result.fits, strict=True)]
    out = write_grid_page(result.pictures, frames, on_path, tmp_path / "cdn.html",
                          shape=result.shape, limits=result.window, title="four",
                          labels=[d.labels for d in result.data], plotlyjs="cdn")  # fmt: skip
    assert out.stat().st_size < 500_000
    assert _figure(out)["frames"] == _figure(page)["frames"]


# ----------------------------------------------------------------------------- in a browser


def test_page_loads_without_errors_or_requests(browser, grid):  # noqa: F811
    _loads_offline(browser, grid[0])


def test_moving_the_slider_moves_every_panel(browser, grid):  # noqa: F811
    page, result = grid
    _open(browser, page)
    panels = _figure(page)["page"]["panels"]
    for end, which in (("end", "mixed"), ("start", "ols"), ("end", "mixed")):
        _slide_to(browser, end)
        for p, panel in enumerate(panels):
            want = getattr(result.fits[p], which)[_moving(result, p)]
            got = browser.execute_script(READ_MOVING, panel["moving"])
            assert np.abs(np.array(got["x"]) - want[:, 0]).max() <= 1e-9, (end, p)
            assert np.abs(np.array(got["y"]) - want[:, 1]).max() <= 1e-9, (end, p)


def test_hovering_a_point_in_a_later_panel_names_its_cluster(browser, grid):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains

    page, result = grid
    _open(browser, page)
    _slide_to(browser, "end")
    fig = _figure(page)
    p = 3
    panel = fig["page"]["panels"][p]
    moving = _moving(result, p)
    mixed, ols = result.fits[p].mixed, result.fits[p].ols
    # a cluster whose mixed estimate is far from every other point of the panel
    others = np.vstack([ols[moving], mixed[moving], result.fits[p].fixed[None]])
    span = np.array([np.ptp(w) for w in result.window])
    gaps = [np.sort(np.hypot(*((others - mixed[g]) / span).T))[1] for g in moving]
    j = int(np.argmax(gaps))
    point = _drawn_point(browser, panel["moving"], j)  # panel p's moving trace, index j
    assert point is not None
    ActionChains(browser).move_to_element(point).perform()
    assert f"cluster {result.data[p].labels[moving[j]]} (" in _hover_text(browser)
    track = _wait(browser, READ_MOVING.replace("return out;", "return out.x.length && out;"),
                  panel["highlight"])  # fmt: skip
    assert len(track["x"]) == FRAMES


def test_play_runs_and_a_toggle_shows_the_ellipses_in_every_panel(browser, grid):  # noqa: F811
    page, _ = grid
    _open(browser, page)
    _slide_to(browser, "start")
    _click(browser, "Play")
    _wait(browser, GD + "return gd.layout.sliders[0].active === arguments[0];", FRAMES - 1)
    ellipses = [i for i, t in enumerate(_figure(page)["data"]) if t["name"].startswith("50/80")]
    assert len(ellipses) == 4
    shown = GD + "return arguments[0].map(function (i) { return gd.data[i].visible; });"
    assert browser.execute_script(shown, ellipses) == ["legendonly"] * 4
    _click(browser, "Ellipses")
    _wait(browser, GD + "return arguments[0].every(function (i) { return gd.data[i].visible "
          "=== true; });", ellipses)  # fmt: skip
