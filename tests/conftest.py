"""Shared helpers: run the CLI in-process and load the lme4 reference files."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "lme4"

# The article's six scenarios, as arguments of create_data.
SCENARIOS = {
    "baseline": {},
    "more_subject_variance": {"sd_int": 1.0, "sd_slope": 1.0},
    "more_slope_variance": {"sd_int": 0.25, "sd_slope": 1.0},
    "fewer_obs": {"obs_per_cluster": 3},
    "more_obs": {"obs_per_cluster": 100},
    "unbalanced": {"balanced": 0.5, "sd_int": 0.5, "sd_slope": 0.5, "sigma": 0.25},
}


def reference_picture(scenario: str):
    """A draw.Picture from lme4's own numbers for one of the article's scenarios."""
    import numpy as np
    import pandas as pd

    from shrinkcli.draw import Picture

    d = REFERENCE / scenario
    ols = pd.read_csv(d / "ols_coef.csv")
    blup = pd.read_csv(d / "blup_coef.csv").set_index("cluster")
    summ = pd.read_csv(d / "summary.csv").iloc[0]
    sizes = pd.read_csv(d / "data.csv").groupby("cluster").size()
    order = ols["cluster"].to_numpy()
    cov = summ["corr"] * np.sqrt(summ["var_int"] * summ["var_x"])
    return Picture(
        ols=ols[["(Intercept)", "x"]].to_numpy(),
        mixed=blup.loc[order, ["(Intercept)", "x"]].to_numpy(),
        fixed=np.array([summ["fixef_int"], summ["fixef_x"]]),
        re_cov=np.array([[summ["var_int"], cov], [cov, summ["var_x"]]]),
        sizes=sizes.reindex(order).to_numpy(),
        balanced=sizes.nunique() == 1,
        title=f"{scenario}: lme4 reference",
        caption=("REML variance components", "second caption line"),
    )


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(capsys):
    """Run `shrink ARGS` in-process; returns exit code, stdout and stderr."""
    from shrinkcli.cli import main

    def run(*args: str) -> CliResult:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
