"""shrink grid and sweeps: panels, arrangement, the shared window, fits, refusals."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from shrinkcli import sweep, window
from shrinkcli.errors import UsageError
from shrinkcli.grid import grid_arrangement, plan_grid, run_grid, seed_note
from tests.conftest import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
SIX = sorted((ROOT / "scenarios").glob("*.toml"))


def _files_plan(files=SIX, **flags):
    from shrinkcli.config import read_scenario

    return plan_grid([str(f) for f in files], flags, file_values=[read_scenario(f) for f in files])


@pytest.fixture(scope="module")
def six():
    """The six scenario files fitted as one grid (nothing drawn)."""
    return run_grid(_files_plan(), None)


# ----------------------------------------------------------------------------- sweeps


@pytest.mark.parametrize(
    ("text", "kind", "want"),
    [
        ("0.1,0.25,1", float, (0.1, 0.25, 1.0)),
        (" 3 , 10,100", int, (3, 10, 100)),
        ("0.5", float, 0.5),
        ("7", int, 7),
        ("-1e-3", float, -0.001),
        (None, float, None),
    ],
)
def test_flag_text_becomes_a_number_or_a_list(text, kind, want):
    got = sweep.parse_value("sd_slope", text, kind)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize(
    ("text", "kind", "words"),
    [
        ("1,,2", float, "empty item"),
        ("1,", float, "empty item"),
        ("x", float, "'x' is not a number"),
        ("0.1,abc", float, "'abc' is not a number"),
        ("1.5", int, "'1.5' is not a whole number"),
        ("3,3", int, "repeats a value"),
        ("١٢", int, "not a whole number"),  # digits, but not ASCII ones
        ("0x10", int, "not a whole number"),
    ],
)
def test_bad_flag_text_is_refused_plainly(text, kind, words):
    with pytest.raises(UsageError, match=words):
        sweep.parse_value("sd_slope", text, kind)


def test_lists_cross_into_panels_row_by_row():
    values = {"obs_per_cluster": (3, 10), "sd_slope": (0.1, 0.25, 1.0), "seed": 5}
    got = sweep.panels(values)
    assert [(p["obs_per_cluster"], p["sd_slope"]) for p in got] == [
        (3, 0.1), (3, 0.25), (3, 1.0), (10, 0.1), (10, 0.25), (10, 1.0)
    ]  # fmt: skip
    assert all(p["seed"] == 5 for p in got)


@pytest.mark.parametrize(
    ("values", "rows", "words"),
    [
        ({"sd_slope": tuple(range(13))}, 1, "13 panels are too many"),
        ({"sd_slope": (1, 2, 3, 4), "sd_int": (1, 2, 3, 4)}, 1, "16 panels"),
        ({"sd_slope": (1, 2, 3, 4)}, 4, "16 panels"),
        ({"sd_slope": (1, 2), "sd_int": (1, 2), "sigma": (1, 2)}, 1, "more than two dim"),
        ({"sd_slope": (1, 2), "sd_int": (1, 2)}, 2, "scenario files and one list"),
    ],
)
def test_too_many_panels_or_dimensions_are_refused(values, rows, words):
    with pytest.raises(UsageError, match=words):
        sweep.panels(values, n_rows_given=rows)


def test_twelve_panels_are_allowed():
    assert len(sweep.panels({"sd_slope": (1, 2, 3, 4), "sd_int": (1, 2, 3)})) == 12


# ----------------------------------------------------------------------------- plans


def test_two_lists_fix_rows_and_columns_and_name_each_panel():
    plan = plan_grid([], {"obs_per_cluster": (3, 10), "sd_slope": (0.1, 0.25, 1.0)})
    assert plan.shape == (2, 3)
    assert [p.title for p in plan.panels][:4] == [
        "obs per cluster = 3, sd slope = 0.1",
        "obs per cluster = 3, sd slope = 0.25",
        "obs per cluster = 3, sd slope = 1",
        "obs per cluster = 10, sd slope = 0.1",
    ]


def test_files_crossed_with_a_list_are_rows_by_columns():
    plan = _files_plan(SIX[:2], sd_slope=(0.1, 1.0))
    assert plan.shape == (2, 2)
    assert plan.panels[1].title.endswith(": sd slope = 1")
    assert plan.panels[1].values["sd_slope"] == 1.0
    assert plan.panels[2].values.get("obs_per_cluster") == 3  # fewer_obs.toml, second row


def test_flags_override_every_file_and_files_keep_their_own_values():
    plan = _files_plan(SIX, seed=42)
    assert all(p.values["seed"] == 42 for p in plan.panels)
    assert {p.values.get("obs_per_cluster") for p in plan.panels} == {None, 3, 100}


def test_a_grid_needs_two_panels():
    with pytest.raises(UsageError, match="a grid needs panels"):
        plan_grid([], {"sd_slope": 0.5})
    with pytest.raises(UsageError, match="at least two panels"):
        _files_plan(SIX[:1])


@pytest.mark.parametrize(
    ("n", "width", "height", "cols", "shape", "want"),
    [
        (6, None, None, None, None, ((2, 3), (1200, 800))),
        (3, None, None, None, None, ((1, 3), (1200, 454))),
        (4, None, None, None, None, ((2, 2), (800, 800))),
        (12, None, None, None, None, ((3, 4), (1600, 1146))),
        (6, 1200, 800, None, None, ((2, 3), (1200, 800))),
        (6, 600, 1400, None, None, ((3, 2), (600, 1400))),
        (6, 1800, 400, None, None, ((1, 6), (1800, 400))),
        (6, None, None, 2, None, ((3, 2), (800, 1146))),
        (5, 1000, None, 4, None, ((2, 4), (1000, 800))),
        (6, None, None, None, (3, 2), ((3, 2), (800, 1146))),
    ],
)
def test_panels_arrange_to_fit_the_size(n, width, height, cols, shape, want):
    assert grid_arrangement(n, width, height, cols, shape) == want


def test_the_seed_note_says_when_the_clusters_are_the_same():
    same = plan_grid([], {"sd_slope": (0.1, 1.0)})
    assert "the same clusters" in same.seed_note and "888" in same.seed_note
    rows = plan_grid([], {"obs_per_cluster": (3, 10, 100)})
    assert "other rows, other clusters" in rows.seed_note
    seeds = plan_grid([], {"seed": (1, 2)})
    assert "own seed" in seeds.seed_note
    mixed = _files_plan()  # four designs of 100 x 10, one of 3 and one of 100 per cluster
    assert "only panels with the same numbers" in mixed.seed_note
    assert seed_note(list(_files_plan(SIX[:1] * 2).panels)).startswith("Same seed (888)")


def test_same_seed_really_gives_the_same_clusters():
    """What the note claims: an sd sweep draws the same standard normals (effects
    scale exactly), an obs-per-cluster sweep does not."""
    res = run_grid(plan_grid([], {"sd_int": (0.5, 1.0)}), None)
    a, b = (d.truth[:, 0] - 1.0 for d in res.data)
    np.testing.assert_allclose(b, 2 * a, rtol=1e-12)
    res = run_grid(plan_grid([], {"obs_per_cluster": (3, 10)}), None)
    assert not np.allclose(res.data[0].truth, res.data[1].truth)


# ----------------------------------------------------------------------------- fits and window


def test_each_panel_is_fitted_exactly_as_alone(six):
    from shrinkcli.fit import fit_mixed
    from shrinkcli.scenario import Scenario
    from shrinkcli.simulate import simulate

    by_title = dict(zip((p.title for p in six.panels), six.fits, strict=True))
    for name, changes in SCENARIOS.items():
        alone = fit_mixed(simulate(Scenario().with_changes(**changes)))
        panel = next(f for t, f in by_title.items() if t == _title_of(name))
        for field in ("fixed", "re_cov", "mixed", "ols"):
            np.testing.assert_array_equal(getattr(panel, field), getattr(alone, field))
        assert panel.criterion == alone.criterion


def _title_of(name: str) -> str:
    from shrinkcli.config import read_scenario

    return read_scenario(ROOT / "scenarios" / f"{name}.toml")["title"]


def test_each_panel_fit_equals_shrink_fit_for_that_scenario(cli, six):
    for k in (1, 5):  # fewer_obs, unbalanced
        got = cli("fit", "--json", *_scenario_flags(SIX[k]))
        assert got.code == 0, got.err
        fit = json.loads(got.out)
        doc = six.fits[k]
        np.testing.assert_array_equal(
            [fit["fixed"][n]["estimate"] for n in ("intercept", "slope")], doc.fixed
        )
        assert fit["criterion"] == doc.criterion


def _scenario_flags(path: Path) -> list[str]:
    from shrinkcli.config import read_scenario

    flags = []
    for k, v in read_scenario(path).items():
        if k not in ("name", "title", "lesson"):
            flags += [f"--{k.replace('_', '-')}", str(v)]
    return flags


def test_the_shared_window_holds_every_panels_mixed_estimates(six):
    from shrinkcli.draw import axis_limits
    from shrinkcli.settings import RenderSettings

    xlim, ylim = six.window
    for pic in six.pictures:
        assert not window.outside(pic.mixed, xlim, ylim).any()
        (a, b), (c, d) = axis_limits(pic, RenderSettings())
        assert xlim[0] <= a and b <= xlim[1] and ylim[0] <= c and d <= ylim[1]
    # and it is the union: some panel reaches each edge
    boxes = [axis_limits(p, RenderSettings()) for p in six.pictures]
    assert xlim == (min(b[0][0] for b in boxes), max(b[0][1] for b in boxes))
    assert ylim == (min(b[1][0] for b in boxes), max(b[1][1] for b in boxes))


def test_panel_captions_give_fitted_sds_and_truth_rmse(six):
    from shrinkcli.pipeline import short_number
    from shrinkcli.summary import truth_rmse

    for pic, fits, data in zip(six.pictures, six.fits, six.data, strict=True):
        sd = np.sqrt(np.diag(fits.re_cov))
        assert pic.caption[0].startswith(
            f"SD int {short_number(sd[0])}, slope {short_number(sd[1])}"
        )
        r = truth_rmse(fits, data.truth)
        assert (
            f"{short_number(r['ols']['slope'])} → {short_number(r['mixed']['slope'])}"
            in (pic.caption[1])
        )


# ----------------------------------------------------------------------------- pictures


@pytest.fixture(scope="module")
def layout(six):
    from shrinkcli.render.grid import GridLayout
    from shrinkcli.settings import RenderSettings

    settings = RenderSettings(width=900, height=600)
    return GridLayout(list(six.pictures), settings, shape=(2, 3), limits=six.window,
                      title="six", captions=[p.caption for p in six.pictures])  # fmt: skip


def test_panels_sit_in_rows_and_columns_of_equal_size(layout):
    boxes = np.array([layout.canvas.box(p.ax) for p in layout.panels])
    lefts, bottoms = np.unique(boxes[:, 0].round(3)), np.unique(boxes[:, 1].round(3))
    assert len(lefts) == 3 and len(bottoms) == 2
    sizes = boxes[:, 2:] - boxes[:, :2]
    np.testing.assert_allclose(sizes, np.broadcast_to(sizes[0], sizes.shape), atol=1e-6)
    assert (boxes[:3, 1] > boxes[3:, 3]).all()  # the first row above the second
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 900).all()
    first = [p.ax.yaxis.get_tick_params()["labelleft"] for p in layout.panels]
    assert first == [True, False, False, True, False, False]


def test_every_panel_shows_the_shared_window(layout, six):
    for p in layout.panels:
        assert p.ax.get_xlim() == pytest.approx(six.window[0])
        assert p.ax.get_ylim() == pytest.approx(six.window[1])


def _colour_at(image, xy) -> np.ndarray:
    c, r = np.round(xy).astype(int).T
    return image[r, c].astype(float)


def test_first_frame_orange_at_ols_last_olive_at_mixed(layout, six):
    from shrinkcli.render.layout import FrameState
    from shrinkcli.render.style import RGB

    start = [FrameState(p.ols, 0.0) for p in six.pictures]
    end = [FrameState(p.mixed, 1.0) for p in six.pictures]
    first, last = layout.draw(start), layout.draw(end)
    for k, pic in enumerate(six.pictures):
        inside = ~window.outside(pic.ols, *six.window)
        orange = _colour_at(first, layout.to_pixel(k, pic.ols[inside]))
        near = np.abs(orange - RGB["orange"] * 255).max(axis=1) < 60
        assert near.mean() > 0.6, k  # overlaps and the black hole hide a few
        olive = _colour_at(last, layout.to_pixel(k, pic.mixed))
        assert (np.abs(olive - RGB["olive"] * 255).max(axis=1) < 60).mean() > 0.6, k


# ----------------------------------------------------------------------------- the command


def test_six_scenarios_gif_is_reproducible_byte_for_byte(cli, tmp_path):
    from PIL import Image

    outs = []
    for name in ("a.gif", "b.gif"):
        got = cli("grid", *SIX, "-o", tmp_path / name, "--frames", "8", "--hold", "2", "--json")
        assert got.code == 0, got.err
        outs.append((tmp_path / name).read_bytes())
    assert hashlib.sha256(outs[0]).digest() == hashlib.sha256(outs[1]).digest()
    doc = json.loads(got.out)
    assert (doc["rows"], doc["cols"], doc["size"]) == (2, 3, [1200, 800])
    assert len(doc["panels"]) == 6
    assert [p["title"] for p in doc["panels"]][0] == "Baseline: the article's defaults"
    with Image.open(tmp_path / "b.gif") as im:
        assert im.size == (1200, 800) and im.n_frames == 10


def test_run_with_a_list_draws_a_panel_per_value(cli, tmp_path):
    from PIL import Image

    got = cli("run", "--sd-slope", "0.1,0.25,1", "-o", tmp_path / "s.png", "--json", "-q")
    assert got.code == 0, got.err
    doc = json.loads(got.out)
    assert [p["values"]["sd_slope"] for p in doc["panels"]] == [0.1, 0.25, 1.0]
    assert (doc["rows"], doc["cols"]) == (1, 3)
    with Image.open(tmp_path / "s.png") as im:
        assert im.size == (1200, 454)
    alone = cli("fit", "--json", "--sd-slope", "0.25")
    assert json.loads(alone.out)["criterion"] == doc["panels"][1]["fit"]["criterion"]


def test_grid_writes_mp4(cli, tmp_path):
    got = cli("grid", "--sd-int", "0.2,1", "-o", tmp_path / "g.mp4", "--frames", "4",
              "--hold", "1", "--width", "400", "--height", "240")  # fmt: skip
    assert got.code == 0, got.err
    assert (tmp_path / "g.mp4").read_bytes()[4:8] == b"ftyp"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["simulate", "--sd-slope", "0.1,1"], "this command takes one value"),
        (["fit", "--seed", "1,2"], "this command takes one value"),
        (["batch", "x.toml", "--seed", "1,2"], "this command takes one value"),
        (["run", "--sd-slope", "0.1,1", "--layout", "explain"], "give each flag one value"),
        (["run", "--sd-slope", "0.1,1", "--highlight", "3"], "give each flag one value"),
        (["grid", "--sd-slope", "1,2", "--width", "0"], "--width 0 must be"),
        (["grid", "--sd-slope", "1,2", "--fps", "0"], "shrink: error: --fps 0"),
        (["grid", "--sd-slope", "1,2", "--sigma", "1,-1"], "--sigma -1"),
        (["grid", "--sd-slope", "1,2", "--cols", "3"], "--cols 3 must be from 1 to 2"),
        (["grid", "--sd-slope", "1,2", "--sd-int", "1,2", "--cols", "2"], "drop --cols"),
        (["grid", "--sd-slope", "1,2", "--story"], "give each flag one value"),
        (
            ["grid", "--sd-int", "1,2", "--formula", "y ~ 1 + (1 | cluster)", "--story"],
            "give each flag one value",
        ),
        (["grid", "--sd-slope", ",".join(str(v) for v in range(13))], "too many"),
        (["grid", "--n-cluster", "1,5"], "--n-cluster"),
        (["grid", "--obs-per-cluster", "2.5,3"], "whole number"),
        (["grid"], "give scenario files"),
        (["run", "--sd-slope", "1,2", "--data", "x.csv"], "simulation flag"),
    ],
)
def test_refusals_are_one_line_exit_2_and_write_nothing(cli, tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text("y,x,cluster\n1,2,a\n")
    got = cli(*args)
    assert got.code == 2, got.err
    lines = got.err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in got.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_an_output_that_is_a_scenario_file_is_refused_before_any_work(cli, tmp_path):
    for f in SIX[:2]:
        shutil.copy(f, tmp_path / f.name)
    target = tmp_path / SIX[1].name
    before = target.read_bytes()
    got = cli("grid", tmp_path / SIX[0].name, target, "-o", target)
    assert got.code == 2 and "--output" in got.err or "-o" in got.err
    assert target.read_bytes() == before


def test_help_is_light_and_lists_grid(cli):
    got = cli("--help")
    assert got.code == 0 and "grid" in got.out


def test_a_size_too_small_for_the_panels_is_refused(cli, tmp_path):
    got = cli("grid", "--sd-slope", "0.1,1", "--width", "300", "--height", "200",
              "-o", tmp_path / "g.png")  # fmt: skip
    assert got.code == 2 and "need at least 400x240 pixels" in got.err
    assert not (tmp_path / "g.png").exists()
    ok = cli("grid", "--sd-slope", "0.1,1", "--width", "400", "--height", "240", "-q",
             "-o", tmp_path / "g.png")  # fmt: skip
    assert ok.code == 0, ok.err


def test_a_warning_is_said_once_naming_its_panels(cli, tmp_path):
    got = cli("grid", "--sd-slope", "0.1,0.11,0.12,1", "-o", tmp_path / "g.png")
    assert got.code == 0, got.err
    lines = [ln for ln in got.err.splitlines() if "singular" in ln]
    assert len(lines) == 1, got.err
    assert lines[0].startswith("shrink: warning: 3 panels (sd slope = 0.1; sd slope = 0.11;")


def _real_scenarios(folder: Path) -> list[Path]:
    """Two scenario files on R's ChickWeight (REML and ML) and one on Orange."""
    data = Path(__file__).parent / "data" / "real"
    shutil.copy(data / "ChickWeight" / "data.csv", folder / "chick.csv")
    shutil.copy(data / "Orange" / "data.csv", folder / "orange.csv")
    chick = 'data = "chick.csv"\nformula = "weight ~ Time + (Time | Chick)"\n'
    (folder / "reml.toml").write_text('title = "REML"\n' + chick)
    (folder / "ml.toml").write_text('title = "ML"\nml = true\n' + chick)
    (folder / "orange.toml").write_text(
        'data = "orange.csv"\nformula = "circumference ~ age + (age | Tree)"\n'
    )
    return [folder / "reml.toml", folder / "ml.toml", folder / "orange.toml"]


def test_real_data_panels_are_fitted_as_shrink_fit_fits_them(cli, tmp_path):
    reml, ml, _ = _real_scenarios(tmp_path)
    got = cli("grid", reml, ml, "-o", tmp_path / "g.png", "--json")
    assert got.code == 0, got.err
    doc = json.loads(got.out)
    assert [p["fit"]["method"] for p in doc["panels"]] == ["REML", "ML"]
    for panel, extra in zip(doc["panels"], ([], ["--ml"]), strict=True):
        alone = cli("fit", "--json", "--data", tmp_path / "chick.csv", "--formula",
                    "weight ~ Time + (Time | Chick)", *extra)  # fmt: skip
        assert json.loads(alone.out)["criterion"] == panel["fit"]["criterion"]


def test_panels_on_different_columns_are_refused(cli, tmp_path):
    reml, _, orange = _real_scenarios(tmp_path)
    got = cli("grid", reml, orange, "-o", tmp_path / "g.png")
    assert got.code == 2 and "different axes" in got.err
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("n", range(2, 13))
def test_default_sizes_are_even_so_that_mp4_takes_them(n):
    _, (w, h) = grid_arrangement(n, None, None)
    assert w % 2 == 0 and h % 2 == 0


def test_a_sweep_writes_mp4_at_the_default_size(cli, tmp_path):
    got = cli("run", "--sd-int", "0.2,1", "-o", tmp_path / "s.mp4", "--frames", "3", "--hold", "0")
    assert got.code == 0, got.err


@pytest.mark.parametrize(
    ("text", "kind", "want"),
    [("5.0", int, 5), ("1e2", int, 100), ("nan", float, None), ("inf", float, float("inf"))],
)
def test_whole_numbers_written_as_floats_and_non_finite_values_get_through(text, kind, want):
    got = sweep.parse_value("seed", text, kind)
    assert (got != got) if want is None else (got == want and type(got) is kind)


def test_panel_titles_keep_every_digit_given():
    plan = plan_grid([], {"seed": (1234567, 2147483647), "sigma": (1.0000001, 1.0000002)})
    assert [p.title for p in plan.panels][:2] == [
        "seed = 1234567, sigma = 1.0000001",
        "seed = 1234567, sigma = 1.0000002",
    ]


@pytest.mark.parametrize(
    ("lists", "words"),
    [
        ({"seed": (1, 2), "sd_slope": (0.1, 1.0)}, "Panels with the same seed show the same"),
        ({"seed": (1, 2)}, "its own seed"),
        ({"seed": (1, 2), "obs_per_cluster": (3, 10)}, "Different clusters in each panel"),
        ({"n_cluster": (20, 50)}, "other rows, other clusters"),
    ],
)
def test_the_seed_note_for_crossed_lists(lists, words):
    assert words in plan_grid([], lists).seed_note


def test_a_data_file_on_columns_y_and_x_shares_axes_with_simulated_panels(cli, tmp_path):
    sim = cli("simulate", "--seed", "5", "-o", tmp_path / "sim5.csv")
    assert sim.code == 0
    (tmp_path / "a.toml").write_text('data = "sim5.csv"\n')
    shutil.copy(SIX[0], tmp_path / "b.toml")
    got = cli("grid", tmp_path / "a.toml", tmp_path / "b.toml", "-o", tmp_path / "g.png")
    assert got.code == 0, got.err
    truth = cli("grid", tmp_path / "a.toml", tmp_path / "b.toml", "--truth", "-o",
                tmp_path / "t.png")  # fmt: skip
    assert truth.code == 2 and "--truth needs the true cluster effects" in truth.err
    assert not (tmp_path / "t.png").exists()


def test_data_from_a_stream_is_read_once_for_every_panel(tmp_path):
    import subprocess
    import sys

    csv = subprocess.run([sys.executable, "-m", "shrinkcli", "simulate", "--seed", "5"],
                         capture_output=True, check=True).stdout  # fmt: skip
    (tmp_path / "a.toml").write_text("title = 'REML'\n")
    (tmp_path / "b.toml").write_text("title = 'ML'\nml = true\n")
    got = subprocess.run(
        [sys.executable, "-m", "shrinkcli", "grid", "a.toml", "b.toml", "--data", "-",
         "-o", "g.png", "--json"],
        input=csv, cwd=tmp_path, capture_output=True, timeout=120,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    assert [p["fit"]["method"] for p in doc["panels"]] == ["REML", "ML"]


def test_out_of_memory_in_a_sweep_names_its_largest_design():
    from shrinkcli.cli import _out_of_memory

    said = _out_of_memory({"n_cluster": (100, 100_000), "obs_per_cluster": 500})
    assert said.startswith("out of memory with 50,000,000 simulated observations (100,000 clust")
