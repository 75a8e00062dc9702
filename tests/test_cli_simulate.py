"""`shrink simulate` and the plain answers it gives to bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REFERENCE
from test_simulate import read_exactly


def test_default_csv_equals_r_reference(cli, tmp_path):
    out = tmp_path / "d.csv"
    res = cli("simulate", "-o", out)
    assert res.code == 0, res.err
    ours, ref = read_exactly(out), read_exactly(REFERENCE / "baseline" / "data.csv")
    assert list(ours) == ["y", "x", "cluster"]
    # shortest repr round-trips, so the file holds R's doubles exactly
    assert np.array_equal(ours["y"], ref["y"])
    assert np.array_equal(ours["x"], ref["x"])
    assert np.array_equal(ours["cluster"], ref["cluster"])


def test_stdout_by_default_and_with_dash(cli):
    a, b = cli("simulate", "--n-cluster", 3, "--obs-per-cluster", 2), cli("simulate", "-o", "-")
    assert a.code == 0 and a.out.splitlines()[0] == "y,x,cluster" and len(a.out.splitlines()) == 7
    assert b.out.splitlines()[1].startswith("-0.13283684491205672,")


def test_effects_file_holds_truth_per_cluster(cli, tmp_path):
    res = cli("simulate", "--sigma", 0, "-o", tmp_path / "d.csv", "--effects", tmp_path / "e.csv")
    assert res.code == 0, res.err
    d, e = pd.read_csv(tmp_path / "d.csv"), pd.read_csv(tmp_path / "e.csv")
    assert list(e.columns) == ["cluster", "true_intercept", "true_slope"] and len(e) == 100
    m = d.merge(e, on="cluster")
    np.testing.assert_allclose(m.y, m.true_intercept + m.true_slope * m.x, atol=1e-12)


BAD = [
    (["--sd-int", "-0.5"], "--sd-int"),
    (["--sd-slope", "nan"], "--sd-slope"),
    (["--sigma", "inf"], "--sigma"),
    (["--sigma", "-1"], "--sigma"),
    (["--balanced", "0"], "--balanced"),
    (["--balanced", "1.5"], "--balanced"),
    (["--cor", "1.2"], "--cor"),
    (["--cor", "-1.01"], "--cor"),
    (["--n-cluster", "1"], "--n-cluster"),
    (["--obs-per-cluster", "0"], "--obs-per-cluster"),
    (["--balanced", "0.001"], "--balanced"),  # 1 of 1000 rows
    (["--n-cluster", "2", "--obs-per-cluster", "1", "--balanced", "0.6"], "--balanced"),
    (["--sd-int", "abc"], "--sd-int"),
    (["--n-cluster", "2.5"], "--n-cluster"),
    (["--seed", "x"], "--seed"),
    (["--no-such-flag"], "--no-such-flag"),
]


@pytest.mark.parametrize("args,flag", BAD)
def test_bad_values_give_one_line_exit_2_and_no_file(cli, tmp_path, args, flag):
    out = tmp_path / "d.csv"
    out.write_text("keep me\n")  # an existing file must not be truncated
    res = cli("simulate", *args, "-o", out)
    assert res.code == 2
    assert res.out == ""
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and "Traceback" not in res.err
    assert out.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_balanced_leaving_one_cluster_is_refused(cli, tmp_path):
    # 2 clusters x 2 rows, keep 2 rows: for some seeds both kept rows share a cluster
    from shrinkcli.errors import UsageError
    from shrinkcli.scenario import Scenario
    from shrinkcli.simulate import simulate

    def one_cluster(seed: int) -> bool:
        try:
            simulate(Scenario(n_cluster=2, obs_per_cluster=2, balanced=0.5, seed=seed))
        except UsageError:
            return True
        return False

    outcomes = [one_cluster(s) for s in range(1, 40)]
    assert any(outcomes) and not all(outcomes)  # about a third of seeds, by chance
    seed = 1 + outcomes.index(True)
    res = cli("simulate", "--n-cluster", 2, "--obs-per-cluster", 2, "--balanced", 0.5,
              "--seed", seed, "-o", tmp_path / "d.csv")  # fmt: skip
    assert res.code == 2 and "--balanced" in res.err and "1 cluster" in res.err
    assert not (tmp_path / "d.csv").exists()


def test_missing_output_folder_is_a_usage_error(cli, tmp_path):
    res = cli("simulate", "-o", tmp_path / "nope" / "d.csv")
    assert res.code == 2 and "does not exist" in res.err


def test_version_help_and_module_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "shrinkcli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("shrink ")
    helped = subprocess.run(
        [sys.executable, "-c", "import sys; from shrinkcli.cli import main\n"
         "try:\n main(['--help'])\nexcept SystemExit: pass\n"
         "print(sorted(m for m in ('numpy','pandas','matplotlib','scipy') if m in sys.modules))"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert "simulate" in helped.stdout
    assert helped.stdout.strip().endswith("[]"), "--help must not import heavy libraries"


def test_full_disk_on_stdout_is_one_line_exit_1():
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "shrinkcli", "simulate", "--n-cluster", "10"],
            stdout=full, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "shrink: error: cannot write to standard output: No space left on device"
    ]


def test_closed_pipe_stops_quietly():
    proc = subprocess.Popen(
        [sys.executable, "-m", "shrinkcli", "simulate", "--n-cluster", "3000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout.readline() == b"y,x,cluster\n"
    proc.stdout.close()
    assert proc.wait(timeout=60) == 141 and proc.stderr.read() == b""
