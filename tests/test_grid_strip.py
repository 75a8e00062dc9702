"""shrink grid and sweeps of random-intercept models: each panel the strip."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from shrinkcli.grid import plan_grid, run_grid
from shrinkcli.strip import StripPicture, outside, strip_window

MEANS = "y ~ 1 + (1 | cluster)"
SMALL = {"n_cluster": 20, "obs_per_cluster": 5}  # fast, and every row labelled


def _sweep(**flags):
    return plan_grid([], {"formula": MEANS, **SMALL, **flags})


@pytest.fixture(scope="module")
def three():
    """Three panels of an sd-int sweep of y ~ 1 + (1 | cluster), fitted (nothing drawn)."""
    return run_grid(_sweep(sd_int=(0.2, 0.5, 1.0)), None)


def test_a_sweep_makes_one_strip_panel_per_value_in_a_row(three):
    assert three.strip and three.shape == (1, 3) and three.size == (1200, 454)
    assert [p.title for p in three.panels] == ["sd int = 0.2", "sd int = 0.5", "sd int = 1"]
    assert all(isinstance(p, StripPicture) for p in three.pictures)
    assert all(p.n_clusters == 20 for p in three.pictures)


def test_two_lists_make_rows_and_columns_each_panel_its_own_clusters():
    res = run_grid(_sweep(n_cluster=(6, 12), sd_int=(0.5, 1.0)), None)
    assert res.shape == (2, 2)
    assert [p.n_clusters for p in res.pictures] == [6, 6, 12, 12]


def test_each_panel_fit_equals_fit_intercept_on_its_data(three):
    from shrinkcli.fit import fit_intercept
    from shrinkcli.formula import as_formula
    from shrinkcli.scenario import Scenario
    from shrinkcli.simulate import simulate

    for value, fits in zip((0.2, 0.5, 1.0), three.fits, strict=True):
        data = simulate(Scenario().with_changes(sd_int=value, **SMALL))
        alone = fit_intercept(data, formula=as_formula(MEANS))
        for field in ("fixed", "theta", "mixed", "ols"):
            np.testing.assert_array_equal(getattr(fits, field), getattr(alone, field))
        assert fits.criterion == alone.criterion and fits.re_var == alone.re_var


def test_a_panel_fit_equals_shrink_fit_json(cli, three):
    got = cli("fit", "--json", "--formula", MEANS, "--sd-int", "0.5",
              "--n-cluster", "20", "--obs-per-cluster", "5")  # fmt: skip
    assert got.code == 0, got.err
    doc = json.loads(got.out)
    assert doc["criterion"] == three.fits[1].criterion
    assert doc["fixed"]["intercept"]["estimate"] == three.fits[1].fixed[0]


def test_the_shared_window_is_the_union_and_holds_every_mixed_estimate(three):
    from shrinkcli.settings import RenderSettings

    lo, hi = three.window
    boxes = [strip_window(p, RenderSettings().zoom) for p in three.pictures]
    assert (lo, hi) == (min(b[0] for b in boxes), max(b[1] for b in boxes))
    for pic in three.pictures:
        assert not outside(pic.mixed, three.window).any()
    assert min(b[0] for b in boxes) < max(b[0] for b in boxes)  # the panels' own differ


def test_panel_captions_are_short_with_tau_sigma_and_truth_rmse(three):
    from shrinkcli.pipeline import short_number as f
    from shrinkcli.strip import truth_rmse

    for pic in three.pictures:
        assert pic.caption[0].startswith(f"τ = {f(pic.re_sd)}, σ = {f(pic.sigma)}")
        o, m = truth_rmse(pic)
        assert pic.caption[1] == f"RMSE intercept {f(o)} → {f(m)}"
        assert max(len(line) for line in pic.caption) < 45


def test_order_applies_to_every_panel():
    res = run_grid(_sweep(sd_int=(0.5, 1.0), order="estimate"), None)
    for pic in res.pictures:
        assert pic.order == "estimate"
        top = np.argmax(pic.rows)
        assert pic.mixed[top] == pic.mixed.max()


# ----------------------------------------------------------------------------- pictures


@pytest.fixture(scope="module")
def layout(three):
    from shrinkcli.render.grid_strip import StripGridLayout
    from shrinkcli.settings import RenderSettings

    settings = RenderSettings(width=900, height=360)
    return StripGridLayout(list(three.pictures), settings, shape=(1, 3), limits=three.window,
                           title="three", captions=[p.caption for p in three.pictures])  # fmt: skip


def test_cells_are_equal_in_one_row_and_show_the_shared_window(layout, three):
    boxes = np.array([layout.canvas.box(p.ax) for p in layout.panels])
    assert len(np.unique(boxes[:, 0].round(3))) == 3 and len(np.unique(boxes[:, 1])) == 1
    sizes = boxes[:, 2:] - boxes[:, :2]
    np.testing.assert_allclose(sizes, np.broadcast_to(sizes[0], sizes.shape), atol=1e-6)
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 900).all()
    for p in layout.panels:
        assert p.ax.get_xlim() == pytest.approx(three.window)
        assert p.ax.get_ylim() == pytest.approx(p.ylim)  # its own rows
        labels = [t.get_text() for t in p.ax.get_yticklabels()]
        assert len(labels) == 20  # every cluster's row labelled, in every cell


def _colour_at(image, xy) -> np.ndarray:
    c, r = np.round(xy).astype(int).T
    return image[r, c].astype(float)


def test_first_frame_orange_at_by_cluster_last_olive_at_mixed(layout, three):
    from shrinkcli.render.layout import FrameState
    from shrinkcli.render.style import RGB

    def state(values, progress):
        return [FrameState(np.column_stack([v, np.zeros(len(v))]), progress)
                for v in values]  # fmt: skip

    first = layout.draw(state([p.ols for p in three.pictures], 0.0))
    last = layout.draw(state([p.mixed for p in three.pictures], 1.0))
    for k, pic in enumerate(three.pictures):
        inside = ~outside(pic.ols, three.window)
        at = layout.to_pixel(k, np.column_stack([pic.ols, pic.rows])[inside])
        orange = _colour_at(first, at)
        assert (np.abs(orange - RGB["orange"] * 255).max(axis=1) < 60).mean() > 0.8, k
        at = layout.to_pixel(k, np.column_stack([pic.mixed, pic.rows]))
        olive = _colour_at(last, at)
        assert (np.abs(olive - RGB["olive"] * 255).max(axis=1) < 60).mean() > 0.8, k


# ----------------------------------------------------------------------------- the command


def test_sweep_gif_is_reproducible_byte_for_byte(cli, tmp_path):
    from PIL import Image

    outs = []
    for name in ("a.gif", "b.gif"):
        got = cli("run", "--formula", MEANS, "--sd-int", "0.2,1", "--n-cluster", "15", "-q",
                  "--frames", "4", "--hold", "1", "--width", "420", "--height", "260",
                  "-o", tmp_path / name, "--json")  # fmt: skip
        assert got.code == 0, got.err
        outs.append((tmp_path / name).read_bytes())
    assert hashlib.sha256(outs[0]).digest() == hashlib.sha256(outs[1]).digest()
    doc = json.loads(got.out)
    assert (doc["rows"], doc["cols"], len(doc["panels"])) == (1, 2, 2)
    assert set(doc["window"]) == {"estimate"}
    assert doc["panels"][0]["fit"]["model"] == "y ~ 1 + (1 | g)"
    with Image.open(tmp_path / "b.gif") as im:
        assert im.size == (420, 260) and im.n_frames == 5


def _chick_files(folder: Path, second: str = "weight ~ Time + (1 | Chick)") -> list[Path]:
    shutil.copy(Path(__file__).parent / "data" / "real" / "ChickWeight" / "data.csv",
                folder / "chick.csv")  # fmt: skip
    (folder / "reml.toml").write_text(
        'title = "REML"\ndata = "chick.csv"\nformula = "weight ~ Time + (1 | Chick)"\n'
    )
    (folder / "ml.toml").write_text(
        f'title = "ML"\nml = true\ndata = "chick.csv"\nformula = "{second}"\n'
    )
    return [folder / "reml.toml", folder / "ml.toml"]


def test_real_data_panels_are_fitted_as_fit_intercept_fits_them(cli, tmp_path):
    from shrinkcli.data import read_csv
    from shrinkcli.fit import fit_intercept
    from shrinkcli.formula import FORMULA_OPTIONS, as_formula

    files = _chick_files(tmp_path)
    got = cli("grid", *files, "-o", tmp_path / "g.png", "--json", "--width", "600",
              "--height", "300")  # fmt: skip
    assert got.code == 0, got.err
    model = as_formula("weight ~ Time + (1 | Chick)")
    data = read_csv(tmp_path / "chick.csv", **model.columns(), options=FORMULA_OPTIONS)
    panels = json.loads(got.out)["panels"]
    for panel, reml in zip(panels, (True, False), strict=True):
        alone = fit_intercept(data, reml=reml, formula=model)
        assert (panel["fit"]["method"], panel["fit"]["criterion"]) == (
            alone.method,
            alone.criterion,
        )
        assert panel["fit"]["fixed"]["slope"]["estimate"] == alone.fixed[1]
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def _refused(cli, tmp_path, *args) -> str:
    got = cli(*args)
    assert got.code == 2, got.err
    lines = got.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in got.err
    assert not (tmp_path / "g.gif").exists() and not (tmp_path / "g.html").exists()
    return lines[0]


def test_a_grid_mixing_strips_and_planes_is_refused_in_one_line(cli, tmp_path):
    files = _chick_files(tmp_path, second="weight ~ Time + (Time | Chick)")
    line = _refused(cli, tmp_path, "grid", *files, "-o", tmp_path / "g.gif")
    assert "different axes" in line and "(1 | Chick)" in line


def test_a_strip_grid_page_is_refused_in_one_line(cli, tmp_path):
    line = _refused(cli, tmp_path, "grid", "--formula", MEANS, "--sd-int", "0.5,1",
                    "-o", tmp_path / "g.html")  # fmt: skip
    assert "shrink run -o strip.html" in line
