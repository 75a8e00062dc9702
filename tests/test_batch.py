"""`shrink batch`: six scenarios in parallel, an index, overrides and failures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.toml"))
QUICK = ["--frames", "3", "--hold", "1", "--width", "200", "--height", "150"]


@pytest.fixture(scope="module")
def six(tmp_path_factory):
    """The six article scenarios, run once for the module (two processes)."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("batch")
    proc = subprocess.run(
        [sys.executable, "-m", "shrinkcli", "batch", *map(str, SCENARIOS), "--out-dir", str(out),
         "--jobs", "2", "--json", *QUICK],
        capture_output=True, text=True,
    )  # fmt: skip
    return out, proc


def test_batch_writes_every_output_and_index_row(six):
    out, proc = six
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    names = [r["name"] for r in doc["scenarios"]]
    assert names == [f.stem for f in SCENARIOS]
    index = json.loads((out / "index.json").read_text())["scenarios"]
    rows = list(csv.DictReader((out / "index.csv").open()))
    assert [r["name"] for r in rows] == names and len(index) == 6
    for row, entry in zip(rows, index, strict=True):
        assert row["status"] == "ok" and entry["status"] == "ok"
        gif = Image.open(row["animation"])
        assert gif.size == (200, 150) and gif.n_frames == 4
        est = list(csv.DictReader(Path(row["estimates"]).read_text().splitlines()))
        fit = json.loads(Path(row["summary"]).read_text())
        assert len(est) == fit["n_clusters"] == int(row["n_clusters"])
        assert float(row["criterion"]) == pytest.approx(fit["criterion"])
        # the lesson of the article: mixed estimates are closer to the truth than OLS
        assert float(row["rmse_mixed_slope"]) < float(row["rmse_ols_slope"])
        assert float(row["seconds"]) > 0
    by_name = {r["name"]: r for r in rows}
    assert by_name["fewer_obs"]["obs_per_cluster"] == "3"
    assert by_name["unbalanced"]["balanced"] == "0.5" and by_name["unbalanced"]["n_obs"] == "500"
    assert by_name["more_obs"]["n_obs"] == "10000"


def test_batch_fits_match_lme4_references(six):
    import pandas as pd
    from conftest import REFERENCE

    out, _ = six
    rows = {r["name"]: r for r in csv.DictReader((out / "index.csv").open())}
    for name, row in rows.items():
        ref = pd.read_csv(REFERENCE / name / "summary.csv").iloc[0]
        assert float(row["criterion"]) <= ref["reml"] + 1e-6
        assert float(row["fixed_slope"]) == pytest.approx(ref["fixef_x"], rel=1e-5)


def test_one_failure_does_not_stop_the_rest(cli, tmp_path):
    # a data file that is there but cannot be fitted: found only when the scenario runs
    (tmp_path / "flat.csv").write_text("y,x,cluster\n1,2,a\n2,2,a\n3,2,b\n4,2,b\n")
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "broken"\ndata = "flat.csv"\n')
    res = cli("batch", SCENARIOS[0], bad, SCENARIOS[3], "--out-dir", tmp_path / "o",
              "--jobs", "2", "--format", "png", "--width", "200", "--height", "150")  # fmt: skip
    assert res.code == 1
    assert "broken" in res.err and "flat.csv" in res.err and "Traceback" not in res.err
    rows = {r["name"]: r for r in csv.DictReader((tmp_path / "o" / "index.csv").open())}
    assert rows["broken"]["status"] == "failed" and "constant" in rows["broken"]["error"]
    for name in (SCENARIOS[0].stem, SCENARIOS[3].stem):
        assert rows[name]["status"] == "ok"
        png = Image.open(rows[name]["animation"])
        assert png.format == "PNG" and png.size == (200, 150)  # flags override the files
    assert not (tmp_path / "o" / "broken.png").exists()


def test_data_flags_override_every_file(cli, tmp_path):
    res = cli("batch", SCENARIOS[0], SCENARIOS[3], "--out-dir", tmp_path, "--sd-slope", "0.4",
              "--obs-per-cluster", "4", "--format", "png", "--json")  # fmt: skip
    assert res.code == 0, res.err
    rows = json.loads(res.out)["scenarios"]
    assert all(r["parameters"]["sd_slope"] == 0.4 for r in rows)
    assert all(r["parameters"]["obs_per_cluster"] == 4 for r in rows)  # fewer_obs had 3
    assert all(r["fit"]["n_obs"] == 400 for r in rows)


@pytest.mark.parametrize(
    "text,message",
    [
        ("sd-int = -1\n", "--sd-int"),
        ("frames = 'many'\n", "key 'frames'"),
        ("bogus = 1\n", "bogus"),
        ('data = "no_such.csv"\n', "does not exist"),
        ('name = "../escape"\n', "key 'name'"),
        ('engine = "lme5"\n', "--engine"),
        ('y = "resp"\n', "--data"),
        ("fps = 60\n", "--fps"),
    ],
)
def test_bad_scenarios_stop_the_batch_before_any_work(cli, tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    res = cli("batch", SCENARIOS[0], bad, "--out-dir", tmp_path / "o")
    assert res.code == 2 and str(bad) in res.err and message in res.err
    assert len(res.err.splitlines()) == 1 and not (tmp_path / "o").exists()


def test_an_odd_size_is_refused_for_mp4_only(cli, tmp_path):
    res = cli("batch", SCENARIOS[0], "--out-dir", tmp_path / "o", "--width", "301",
              "--format", "mp4")  # fmt: skip
    assert res.code == 2 and "--width" in res.err


def test_usage_errors(cli, tmp_path):
    assert cli("batch", SCENARIOS[0], "--format", "avi", "--out-dir", tmp_path).code == 2
    assert cli("batch", SCENARIOS[0], "--jobs", "0", "--out-dir", tmp_path).code == 2
    res = cli("batch", "--out-dir", tmp_path)
    assert res.code == 2 and len(res.err.splitlines()) == 1
