"""The notebook API: shrinkcli.fit and shrinkcli.animate on pandas DataFrames — the same
numbers and messages as the CSV path, and reprs that a notebook shows."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import DATA, REFERENCE

import shrinkcli
from shrinkcli.data import read_csv, read_frame
from shrinkcli.errors import DataError, ShrinkError, UsageError

SLEEP = DATA / "lme4" / "sleepstudy" / "data.csv"
FORMULAS = [
    "Reaction ~ Days + (Days | Subject)",
    "Reaction ~ Days + (1 | Subject)",
    "Reaction ~ 1 + (1 | Subject)",
]


def test_import_stays_light_and_exports_the_api():
    code = (
        "import sys, shrinkcli\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'matplotlib') if m in sys.modules))\n"
        "print(sorted(shrinkcli.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = out.stdout.splitlines()
    assert lines[0] == "[]", out.stderr
    assert "fit" in lines[1] and "animate" in lines[1]


def test_fit_is_both_the_engine_module_and_the_api():
    from shrinkcli import animate, fit
    from shrinkcli.fit import fit_mixed

    assert fit is shrinkcli.fit and callable(fit) and fit.fit_mixed is fit_mixed
    assert animate is shrinkcli.animate
    with pytest.raises(AttributeError):
        shrinkcli.no_such_name  # noqa: B018


@pytest.mark.parametrize("formula", FORMULAS)
def test_dataframe_gives_the_numbers_of_the_csv_path(cli, formula):
    df = pd.read_csv(SLEEP)
    result = shrinkcli.fit(df, formula=formula)
    doc = json.loads(cli("fit", "--data", SLEEP, "--formula", formula, "--json").out)
    mine = json.loads(json.dumps(result.to_dict()))
    assert mine.pop("data") == "DataFrame" and doc.pop("data") == str(SLEEP)
    assert mine == doc  # every number, bit for bit
    assert result.summary() == cli("fit", "--data", SLEEP, "--formula", formula).out.replace(
        f"Data: {SLEEP}", "Data: DataFrame"
    )


def test_estimates_are_the_csv_table(cli, tmp_path):
    df = pd.read_csv(SLEEP)
    table = shrinkcli.fit(df, "Reaction ~ Days + (1 | Subject)").estimates()
    res = cli("fit", "--data", SLEEP, "--formula", "Reaction ~ Days + (1 | Subject)",
              "--estimates", tmp_path / "e.csv")  # fmt: skip
    assert res.code == 0, res.err
    written = pd.read_csv(tmp_path / "e.csv")
    assert list(table.columns) == list(written.columns)
    assert list(table.columns)[-1] == "shrinkage"
    np.testing.assert_array_equal(table["cluster"].to_numpy(), written["cluster"].to_numpy())
    # read as text, then float(): pandas 2's read_csv can be some units in the last place off
    exact = pd.read_csv(tmp_path / "e.csv", dtype=str).iloc[:, 1:].astype(float)
    np.testing.assert_allclose(table.iloc[:, 1:].to_numpy(float), exact, rtol=1e-15)


def test_text_labels_y_x_cluster_keywords_and_csv_paths():
    ref = pd.read_csv(REFERENCE / "baseline" / "data.csv")
    df = ref.rename(columns={"y": "score", "x": "hours", "cluster": "school"})
    df["school"] = "s" + df["school"].astype(str)
    by_names = shrinkcli.fit(df, y="score", x="hours", cluster="school")
    by_formula = shrinkcli.fit(df, "score ~ hours + (hours | school)")
    by_path = shrinkcli.fit(REFERENCE / "baseline" / "data.csv", "y ~ x + (x | cluster)")
    assert by_names.fits.criterion == by_formula.fits.criterion
    # text labels sort s1, s10, s100, ...: the sums run in another order
    assert by_path.fits.criterion == pytest.approx(by_names.fits.criterion, abs=1e-9)
    assert by_names.fits.criterion == pytest.approx(3012.189508088, abs=1e-8)
    assert str(by_names.formula) == "score ~ hours + (hours | school)"
    assert by_names.data.labels[0] == "s1" and by_path.data.labels[0] == 1
    assert "Formula: y ~ x + (x | cluster)" in repr(by_path)


@pytest.mark.parametrize(
    "column",
    [
        pd.array([308, 309, 308, 309, 310, 310], dtype="Int64"),
        pd.Categorical(["308", "309", "308", "309", "310", "310"]),
        np.array([308.0, 309.0, 308.0, 309.0, 310.0, 310.0]),
        pd.Series(["308", "309", "308", "309", "310", "310"], dtype=object),
        pd.Series([308, "309", 308, "309", 310, "310"], dtype=object),
    ],
    ids=["Int64", "categorical", "float", "text", "mixed"],
)
def test_cluster_columns_of_any_dtype_read_as_the_csv_text_would(column):
    df = pd.DataFrame({"y": [1.0, 2.0, 2.5, 3.5, 5.0, 4.0], "x": [0.0, 1, 2, 3, 4, 5], "g": column})
    d = read_frame(df, cluster="g")
    assert d.labels.tolist() == [308, 309, 310] and d.codes.tolist() == [0, 1, 0, 1, 2, 2]


def _message(fn) -> str:
    with pytest.raises(ShrinkError) as err:
        fn()
    return str(err.value)


@pytest.mark.parametrize(
    ("csv", "kwargs"),
    [
        ("y,x,cluster\n1,2,a\n,3,b\n2,1,b\n", {}),
        ("y,x,cluster\n1,2,a\nfoo,3,b\n2,1,b\n", {}),
        ("y,x,cluster\n1,2,a\n2,3,a\n", {}),
        ("y,x,cluster\n1,2,a\n2,3,b\n", {}),
        ("y,x,cluster\n1,2,a\n2,2,b\n3,2,b\n", {}),
        ("y,x,cluster\n1,2,a\n2,3,\n3,2,b\n", {}),
        ("y,x,cluster\n1,2,a\n2,3,b\n3,2,b\n", {"x": "hours"}),
        ("y,x,cluster\n1,2,a\n2,3,b\n3,2,b\n", {"formula": "y ~ hours + (1 | cluster)"}),
        ("y,x,cluster\ninf,2,a\n2,3,b\n3,2,b\n", {}),  # any finite size is read
        ("y,x,cluster\n", {}),
    ],
    ids=[
        "missing",
        "text",
        "one-cluster",
        "clusters=rows",
        "constant-x",
        "no-label",
        "no-column",
        "no-column-formula",
        "infinite",
        "no-rows",
    ],  # fmt: skip
)
def test_dataframe_messages_are_the_csv_messages(tmp_path, csv, kwargs):
    path = tmp_path / "d.csv"
    path.write_text(csv)
    df = pd.read_csv(path)
    formula = kwargs.get("formula")
    cols = dict(kwargs)
    cols.pop("formula", None)
    from_frame = _message(lambda: shrinkcli.fit(df, formula, **cols))
    from_file = _message(lambda: shrinkcli.fit(path, formula, **cols))
    assert str(path) in from_file and "DataFrame" in from_frame
    assert from_frame == from_file.replace(str(path), "DataFrame")
    cli_words = read_csv_message(path, formula, cols)
    assert re.sub(r"(--formula|--[a-z]+)", "OPTION", cli_words) == re.sub(
        r"(formula=|\b[a-z]+=)", "OPTION", from_file
    )


def read_csv_message(path, formula, cols) -> str:
    """The CLI path's message (options spelt --y, --formula)."""
    from shrinkcli.formula import FORMULA_OPTIONS, parse_formula

    if formula is not None:
        names = {**parse_formula(formula).columns(), "options": FORMULA_OPTIONS}
    else:
        names = {"y": "y", "x": "x", "cluster": "cluster", **cols}
    return _message(lambda: read_csv(path, **names))


def test_api_refusals_are_shrink_errors():
    df = pd.read_csv(SLEEP)
    with pytest.raises(UsageError, match="formula= names the columns, and y= names one too"):
        shrinkcli.fit(df, "Reaction ~ Days + (1 | Subject)", y="Reaction")
    with pytest.raises(UsageError, match="cannot fit 'Days:Subject'"):
        shrinkcli.fit(df, "Reaction ~ Days:Subject + (1 | Subject)")
    with pytest.raises(UsageError, match="fits only y ~ x"):
        shrinkcli.fit(df, "Reaction ~ Days + (1 | Subject)", engine="statsmodels")
    with pytest.raises(UsageError, match="no data"):
        shrinkcli.fit(None, "y ~ x + (1 | g)")
    with pytest.raises(DataError, match="not a table"):
        shrinkcli.fit(42, "y ~ x + (1 | g)")
    with pytest.raises(UsageError, match="--order 'up' is not known"):
        shrinkcli.animate(df, "Reaction ~ Days + (1 | Subject)", order="up")
    with pytest.raises(UsageError, match="--frames"):
        shrinkcli.animate(df, FORMULAS[0], frames=1)


# --------------------------------------------------------------------------------------
# What a notebook shows


@pytest.fixture(scope="module")
def animation():
    df = pd.read_csv(SLEEP)
    return shrinkcli.animate(df, formula=FORMULAS[0], frames=4, hold=2, width=240, height=180)


def test_repr_html_embeds_the_gif(animation):
    from PIL import Image

    page = animation._repr_html_()
    found = re.fullmatch(r'<img src="data:image/gif;base64,([A-Za-z0-9+/=]+)" alt="[^"]*"/>', page)
    assert found, page[:100]
    gif = base64.b64decode(found.group(1))
    assert gif == animation.content and gif[:6] == b"GIF89a"
    with Image.open(io.BytesIO(gif)) as image:
        assert image.size == (240, 180) and image.n_frames == 6
    assert animation.path is None and "in memory (.gif)" in repr(animation)
    assert animation.fit.fits.n_clusters == 18


def test_repr_png_is_the_last_frame(animation):
    from PIL import Image

    png = animation._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(png)) as still, Image.open(io.BytesIO(animation.content)) as gif:
        gif.seek(gif.n_frames - 1)
        assert still.size == (240, 180)
        assert np.array_equal(np.asarray(still.convert("RGB")), np.asarray(gif.convert("RGB")))


def test_animate_writes_the_output_and_a_png_is_its_own_repr(tmp_path):
    df = pd.read_csv(SLEEP)
    out = tmp_path / "still.png"
    still = shrinkcli.animate(df, FORMULAS[0], output=out, frames=3, hold=0)
    assert still.path == out and out.read_bytes() == still.content
    assert still._repr_png_() == still.content
    assert still._repr_html_().startswith('<img src="data:image/png;base64,')
    assert still.picture is not None and still.fit.fits.n_obs == 180
