"""`shrink fit`: the article's printed numbers, the JSON contract and the estimates table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import REFERENCE


def test_default_fit_prints_the_articles_summary(cli):
    res = cli("fit")
    assert res.code == 0, res.err
    out = res.out
    assert "REML criterion at convergence: 3012.2\n" in out
    resid = out.split("Scaled residuals:")[1].splitlines()[2].split()
    assert resid[0] == "-2.9392" and resid[1] in ("-0.6352", "-0.6353")
    assert resid[2:] == ["-0.0061", "0.6156", "2.8721"]
    assert " cluster  (Intercept) 0.29138  0.5398" in out
    assert "          x           0.05986  0.2447   0.30" in out
    assert " Residual             0.99244  0.9962" in out
    assert "Number of obs: 1000, groups:  cluster, 100" in out
    assert "(Intercept)  0.93647    0.06282   14.91" in out
    assert "x            0.54405    0.04270   12.74" in out
    assert "What shrinkage bought" in out


def test_json_has_the_documented_names(cli):
    res = cli("fit", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["method"] == "REML" and abs(doc["criterion"] - 3012.1895) < 1e-3
    assert set(doc["fixed"]) == {"intercept", "slope"}
    assert set(doc["fixed"]["slope"]) == {"estimate", "se", "t"}
    assert abs(doc["fixed"]["intercept"]["estimate"] - 0.936469985914004) < 1e-6
    assert set(doc["random"]) == {"intercept", "slope", "corr", "residual"}
    assert abs(doc["random"]["slope"]["var"] - 0.0598607) < 1e-5
    assert doc["singular"] is False and doc["converged"] is True
    assert doc["n_obs"] == 1000 and doc["n_clusters"] == 100 and doc["warnings"] == []
    rm = doc["truth_rmse"]
    assert (
        rm["mixed"]["slope"] < rm["ols"]["slope"]
        and rm["mixed"]["intercept"] < rm["ols"]["intercept"]
    )


def test_ml_json_matches_lme4_deviance(cli):
    doc = json.loads(cli("fit", "--ml", "--json").out)
    ref = pd.read_csv(REFERENCE / "baseline" / "summary_ml.csv").iloc[0]
    assert doc["method"] == "ML"
    assert doc["criterion"] <= ref["deviance"] + 1e-6
    assert abs(doc["fixed"]["slope"]["estimate"] - ref["fixef_x"]) < 1e-5


def test_estimates_csv_from_a_data_file_with_text_labels(cli, tmp_path):
    ref = pd.read_csv(REFERENCE / "baseline" / "data.csv")
    ref = ref.rename(columns={"y": "score", "x": "hours", "cluster": "school"})
    ref["school"] = "s" + ref["school"].astype(str)
    ref.to_csv(tmp_path / "d.csv", index=False)
    res = cli("fit", "--data", tmp_path / "d.csv", "--y", "score", "--x", "hours",
              "--cluster", "school", "--estimates", tmp_path / "e.csv", "--json")  # fmt: skip
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert "truth_rmse" not in doc and doc["n_clusters"] == 100
    est = pd.read_csv(tmp_path / "e.csv")
    assert list(est.columns) == [
        "cluster", "n", "ols_intercept", "ols_slope", "mixed_intercept", "mixed_slope",
    ]  # fmt: skip
    blup = pd.read_csv(REFERENCE / "baseline" / "blup_coef.csv")
    blup["cluster"] = "s" + blup["cluster"].astype(str)
    m = est.merge(blup, on="cluster")
    assert len(m) == 100
    assert np.max(np.abs(m["mixed_slope"] - m["x"])) < 1e-4


def test_simulated_estimates_carry_the_truth(cli, tmp_path):
    res = cli("fit", "--obs-per-cluster", 3, "--estimates", tmp_path / "e.csv")
    assert res.code == 0, res.err
    est = pd.read_csv(tmp_path / "e.csv")
    assert {"true_intercept", "true_slope"} <= set(est.columns) and (est["n"] == 3).all()


def test_design_lme4_refuses_fits_with_a_warning(cli):
    res = cli("fit", "--obs-per-cluster", 2, "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["warnings"] and "shrink: warning:" in res.err
    assert np.isfinite(doc["criterion"])


def test_single_observation_clusters_are_counted(cli):
    res = cli("fit", "--obs-per-cluster", 2, "--balanced", 0.6, "--json")
    doc = json.loads(res.out)
    assert res.code == 0 and doc["n_without_ols_slope"] > 0


@pytest.mark.parametrize("args,message", [
    (["--engine", "lme5"], "--engine"),
])  # fmt: skip
def test_bad_fit_flags(cli, args, message):
    res = cli("fit", *args)
    assert res.code == 2 and message in res.err and len(res.err.splitlines()) == 1


def _strict_json(text: str):
    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_json_stays_valid_when_no_cluster_has_an_ols_line(cli):
    res = cli("fit", "--obs-per-cluster", 1, "--json")
    assert res.code == 0
    doc = _strict_json(res.out)  # no bare NaN anywhere
    assert "truth_rmse" not in doc and doc["converged"] is False and doc["warnings"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--sd-int", "1e200"], "--sd-int"),
        (["--intercept", "1e308"], "--intercept"),
        (["--sigma", "1e300"], "--sigma"),
    ],
)
def test_huge_values_are_refused(cli, args, message):
    res = cli("fit", *args)
    assert res.code == 2 and message in res.err and len(res.err.splitlines()) == 1


def test_outputs_that_cannot_be_written(cli, tmp_path):
    folder = tmp_path / "d.csv"
    folder.mkdir()
    for args in (["simulate", "-o", folder], ["fit", "--estimates", folder]):
        res = cli(*args)
        assert res.code == 2 and "is a folder" in res.err and len(res.err.splitlines()) == 1
    res = cli("simulate", "--effects", tmp_path / "e.csv", "-o", tmp_path / "no" / "x.csv")
    assert res.code == 2 and not (tmp_path / "e.csv").exists()


def test_huge_integer_labels_and_huge_values_in_a_file(cli, tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("y,x,cluster\n1,2,99999999999999999999\n2,3,99999999999999999999\n"
                 "3,1,1\n4,5,1\n5,0,1\n")  # fmt: skip
    assert cli("fit", "--data", p).code == 0
    p.write_text("y,x,cluster\n1e200,2,a\n2,3,a\n3,1,b\n4,5,b\n")
    res = cli("fit", "--data", p)
    assert res.code == 2 and "rescale" in res.err
