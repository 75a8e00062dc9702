"""Simulation studies: the file, R-exact batches, the vectorised fit, engines, resuming."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shrinkcli.errors import UsageError
from shrinkcli.fit import fit_mixed
from shrinkcli.rng import r_seed_state
from shrinkcli.scenario import Scenario
from shrinkcli.simulate import simulate
from shrinkcli.study import Study, read_study, replication_seed, run_study
from shrinkcli.study.runner import chunk_files, plan
from shrinkcli.study.simbatch import seed_states, simulate_batch

ROOT = Path(__file__).resolve().parent.parent
SHRINK = [sys.executable, "-m", "shrinkcli"]
SAME_FILES = ("replications.csv", "summary.csv", "summary.json", "study.png")
WAIT = 60.0  # seconds: the bound on every wait for a process or a file


def small_study(**changes) -> Study:
    values = {
        "reps": 24,
        "seed": 11,
        "grid": {"obs-per-cluster": [3, 8], "sd-slope": [0.1, 0.5]},
        "fixed": {"n-cluster": 12},
        "chunk": 6,
        "name": "small",
    }
    values.update(changes)
    return Study(**values)


def write_study(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


SMALL_TOML = """
name = "small"
reps = 24
seed = 11
chunk = 6
[grid]
obs-per-cluster = [3, 8]
sd-slope = [0.1, 0.5]
[fixed]
n-cluster = 12
"""


def same_bytes(a: Path, b: Path, names=SAME_FILES) -> None:
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


# ----------------------------------------------------------------------------- the file


def test_example_study_file():
    study = read_study(ROOT / "studies" / "small_clusters.toml")
    assert study.reps == 500 and study.seed == 1 and study.name == "small-clusters"
    assert list(study.grid) == ["obs-per-cluster", "sd-slope"]
    cells = study.cells
    assert len(cells) == 15
    assert cells[0].values == {"obs-per-cluster": 3, "sd-slope": 0.1}
    assert cells[-1].values == {"obs-per-cluster": 50, "sd-slope": 0.5}
    assert all(c.scenario.n_cluster == 50 for c in cells)
    assert study.chunk_size == 100
    assert len(plan(study).tasks) == 75


BAD = {
    "unknown top key": ("reps = 5\nseed = 1\nframes = 3\n", "'frames'"),
    "data key at the top": ("reps = 5\nseed = 1\nsigma = 2\n", "'sigma'"),
    "grid value not a list": ("reps = 5\nseed = 1\n[grid]\nsigma = 2\n", "'sigma'"),
    "empty list": ("reps = 5\nseed = 1\n[grid]\nsigma = []\n", "'sigma'"),
    "repeated value": ("reps = 5\nseed = 1\n[grid]\nsigma = [1, 1.0]\n", "'sigma'"),
    "wrong type": ("reps = 5\nseed = 1\n[grid]\nobs-per-cluster = [3, 'x']\n", "'obs-per-cluster'"),
    "out of range": ("reps = 5\nseed = 1\n[grid]\nsd-slope = [0.1, -1]\n", "'sd-slope'"),
    "not finite": ("reps = 5\nseed = 1\n[fixed]\nsigma = inf\n", "'sigma'"),
    "seed in a cell": ("reps = 5\nseed = 1\n[fixed]\nseed = 3\n", "'seed'"),
    "picture key": ("reps = 5\nseed = 1\n[fixed]\nframes = 3\n", "'frames'"),
    "unknown cell key": ("reps = 5\nseed = 1\n[grid]\nsdslope = [1]\n", "'sdslope'"),
    "in both": ("reps = 5\nseed = 1\n[grid]\nsigma = [1]\n[fixed]\nsigma = 2\n", "'sigma'"),
    "reps missing": ("seed = 1\n", "'reps'"),
    "reps zero": ("reps = 0\nseed = 1\n", "'reps'"),
    "seed too big": ("reps = 5\nseed = 4294967296\n", "'seed'"),
    "chunk text": ("reps = 5\nseed = 1\nchunk = 'big'\n", "'chunk'"),
    "grid not a table": ("reps = 5\nseed = 1\ngrid = 3\n", "'grid'"),
    "bad name": ("name = 'a b'\nreps = 5\nseed = 1\n", "'name'"),
    "toml syntax": ("reps = 5\nseed = \n", "TOML syntax error"),
    "cell that cannot be": (
        "reps = 5\nseed = 1\n[grid]\nbalanced = [0.1, 1]\n[fixed]\nn-cluster = 2\n"
        "obs-per-cluster = 1\n",
        "balanced=0.1",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_malformed_study_is_refused_up_front(tmp_path, cli, case):
    text, key = BAD[case]
    path = write_study(tmp_path / "bad.toml", text)
    out = tmp_path / "out"
    result = cli("study", str(path), "--out-dir", str(out))
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert str(path) in lines[0] and key in lines[0], lines[0]
    assert not out.exists()  # nothing done


def test_missing_study_file(tmp_path, cli):
    result = cli("study", str(tmp_path / "none.toml"), "--out-dir", str(tmp_path / "o"))
    assert result.code == 2 and "no such study file" in result.err


def test_replication_seed_is_the_documented_hash_of_the_design():
    study = small_study()
    cell = study.cells[1]
    text = f"shrink-study|11|{cell.key}|7".encode()
    want = int.from_bytes(hashlib.blake2b(text, digest_size=4).digest(), "big") & 0x7FFFFFFF
    assert replication_seed(11, cell, 7) == want
    assert 0 <= want < 2**31
    # the same design in another grid, at another place, gets the same seeds
    other = Study(reps=3, seed=11, grid={"sd-slope": [0.5, 0.1]}, fixed={"n-cluster": 12,
                  "obs-per-cluster": 3})  # fmt: skip
    twin = next(c for c in other.cells if c.values == {"sd-slope": 0.1})
    assert (twin.index, study.cells[0].index) == (1, 0) and twin.key == study.cells[0].key
    assert [replication_seed(11, twin, r) for r in (1, 2)] == [
        replication_seed(11, study.cells[0], r) for r in (1, 2)
    ]
    # and a different study seed gives different ones
    assert replication_seed(12, cell, 7) != want
    # sigma = 1 and sigma = 1.0 are one design
    one, one_f = (Study(reps=1, seed=1, fixed={"sigma": v}).cells[0] for v in (1, 1.0))
    assert one.key == one_f.key and "sigma=1.0;" in one.key


# ----------------------------------------------------------------------------- simulation


@pytest.mark.parametrize("seed", [0, 1, 888, -5, 2**31 - 1])
def test_seed_states_are_r_set_seed(seed):
    assert np.array_equal(seed_states(np.array([seed]))[0], r_seed_state(seed))


DESIGNS = [
    {"n_cluster": 50},
    {"n_cluster": 20, "obs_per_cluster": 3, "balanced": 0.5, "sd_slope": 0.1, "cor": 0.4},
    {"n_cluster": 7, "obs_per_cluster": 1, "balanced": 0.6},
    {"n_cluster": 4, "obs_per_cluster": 9000},  # a pool above 2**15 rows: drawn one by one
]


@pytest.mark.parametrize("design", DESIGNS)
def test_batches_are_create_data_bit_for_bit(design):
    scenario = Scenario(**design)
    seeds = np.array([3, 77, 1234567, 2**31 - 1])
    batch = simulate_batch(scenario, seeds)
    for r, seed in enumerate(seeds):
        data = simulate(scenario.with_changes(seed=int(seed)))
        assert np.array_equal(batch.y[r], data.y)
        assert np.array_equal(batch.x[r], data.x)
        assert np.array_equal(batch.cluster[r], data.cluster)
        assert np.array_equal(batch.truth[r][batch.present[r]], data.truth)


def test_batch_that_outruns_its_budget_is_drawn_one_by_one():
    scenario = Scenario(n_cluster=30)
    batch = simulate_batch(scenario, [5, 6], budget=10)  # far too few words
    for r, seed in enumerate([5, 6]):
        assert np.array_equal(batch.y[r], simulate(scenario.with_changes(seed=seed)).y)


# ----------------------------------------------------------------------------- the fit


@pytest.mark.parametrize("reml", [True, False])
def test_exact_hessian_matches_differences_of_the_gradient(reml):
    from shrinkcli.fit import _Core, _value_grad
    from shrinkcli.study.fitbatch import _derivatives, _rows, batch_core, batch_stats

    scenario = Scenario(n_cluster=15, obs_per_cluster=4, balanced=0.8)
    batch = simulate_batch(scenario, np.arange(3))
    core, bad = batch_core(batch_stats(batch.y, batch.x, batch.cluster - 1, 15))
    assert not bad.any()
    phi = np.array([[0.7, -0.3, 0.4], [1.5, 0.2, 0.05], [0.2, 0.9, 1.1]])
    value, grad, hess = _derivatives(core, phi, reml)
    for r in range(3):
        one = _rows(core, np.array([r]))
        scalar = _Core(
            one.l11[0], one.l21[0], one.l22[0], one.z1[0], one.z2[0], float(one.rss[0]),
            int(one.n_obs[0]), float(one.shift[0]), float(one.scale[0]),
            float(one.y_shift[0]), float(one.y_scale[0]), int(one.x_exp[0]), int(one.y_exp[0]),
        )  # fmt: skip
        v, g = _value_grad(scalar, phi[r], reml)
        assert v == pytest.approx(value[r], rel=1e-12)
        np.testing.assert_allclose(grad[r], g, rtol=1e-9, atol=1e-9)
        numeric = np.empty((3, 3))
        for k in range(3):
            e = np.zeros(3)
            e[k] = 1e-5
            up, down = (
                _value_grad(scalar, phi[r] + e, reml)[1],
                _value_grad(scalar, phi[r] - e, reml)[1],
            )
            numeric[:, k] = (up - down) / 2e-5
        assert np.max(np.abs(hess[r] - numeric)) <= 1e-6 * np.max(np.abs(numeric))


@pytest.mark.parametrize(
    "design, ml",
    [
        ({"obs-per-cluster": 3, "sd-slope": 0.1, "n-cluster": 30}, False),  # many singular fits
        ({"obs-per-cluster": 6, "balanced": 0.7, "cor": -0.5, "n-cluster": 25}, False),
        ({"obs-per-cluster": 10, "n-cluster": 20, "sigma": 0.05, "sd-int": 2.0}, True),
    ],
)
def test_one_cell_matches_simulate_and_fit_mixed(design, ml):
    study = Study(reps=30, seed=4, fixed={**design, "ml": ml}, chunk=30)
    summary = run_study(study, jobs=1, plot=False)
    from shrinkcli.study.report import replications_table
    from shrinkcli.study.runner import ChunkStore, execute

    store = ChunkStore(None)
    execute(plan(study).tasks, store.save, jobs=1)
    reps = replications_table(study, list(store.results.values()))
    cell = study.cells[0]
    singular = 0
    for r in range(30):
        seed = int(reps["seed"][r])
        assert seed == replication_seed(4, cell, r + 1)
        data = simulate(cell.scenario.with_changes(seed=seed))
        fits = fit_mixed(data, reml=not ml)
        assert reps["status"][r] == "ok"
        assert reps["fixed_slope"][r] == pytest.approx(fits.fixed[1], abs=1e-9)
        assert reps["se_slope"][r] == pytest.approx(fits.fixed_se[1], abs=1e-9)
        assert reps["est_sd_intercept"][r] == pytest.approx(fits.re_sd[0], abs=1e-8)
        assert reps["est_sd_slope"][r] == pytest.approx(fits.re_sd[1], abs=1e-8)
        assert reps["est_sigma"][r] == pytest.approx(np.sqrt(fits.sigma2), abs=1e-9)
        assert reps["singular"][r] == int(fits.singular)
        assert reps["converged"][r] == int(fits.converged)
        ok = np.isfinite(fits.ols).all(axis=1)
        for k, part in enumerate(("intercept", "slope")):
            for name, est in (("ols", fits.ols), ("mixed", fits.mixed)):
                want = np.sqrt(np.mean((est[ok, k] - data.truth[ok, k]) ** 2))
                assert reps[f"rmse_{name}_{part}"][r] == pytest.approx(want, rel=1e-8)
        d_ols = np.hypot(*(fits.ols[ok] - data.truth[ok]).T)
        d_mixed = np.hypot(*(fits.mixed[ok] - data.truth[ok]).T)
        assert reps["closer"][r] == pytest.approx(np.mean(d_mixed < d_ols))
        covers = abs(fits.fixed[1] - cell.scenario.beta) <= 1.959963984540054 * fits.fixed_se[1]
        assert reps["covers"][r] == int(covers)
        singular += fits.singular
    row = summary.iloc[0]
    assert row["singular_mean"] == pytest.approx(singular / 30)
    gains = 1 - reps["rmse_mixed_slope"] / reps["rmse_ols_slope"]
    assert row["gain_slope_mean"] == pytest.approx(np.mean(gains))
    assert row["gain_slope_se"] == pytest.approx(np.std(gains, ddof=1) / np.sqrt(30))


def test_failed_replications_are_recorded_with_their_reason(tmp_path, cli):
    # two clusters of one row: two observations, and the fit needs three
    path = write_study(
        tmp_path / "fails.toml",
        "reps = 4\nseed = 2\n[grid]\nobs-per-cluster = [1, 5]\n[fixed]\nn-cluster = 2\n",
    )
    result = cli("study", str(path), "--out-dir", str(tmp_path / "o"), "--jobs", "1")
    assert result.code == 0, result.err
    assert "4 of 8 replications failed" in result.err
    import pandas as pd

    reps = pd.read_csv(tmp_path / "o" / "replications.csv", keep_default_na=False)
    failed = reps[reps["obs_per_cluster"] == 1]
    assert list(failed["status"]) == ["failed"] * 4
    assert all("at least three are needed" in n for n in failed["note"])
    assert list(failed["n_obs"]) == [2] * 4 and list(failed["n_clusters"]) == [2] * 4
    assert list(reps[reps["obs_per_cluster"] == 5]["status"]) == ["ok"] * 4
    summary = pd.read_csv(tmp_path / "o" / "summary.csv")
    assert list(summary["failed"]) == [4, 0] and list(summary["ok"]) == [0, 4]


# ----------------------------------------------------------------------------- engines


def test_python_api_returns_the_summary(tmp_path):
    seen = []
    summary = run_study(small_study(), jobs=1, progress=lambda d, t: seen.append((d, t)))
    assert list(summary["obs_per_cluster"]) == [3, 3, 8, 8]
    assert list(summary["sd_slope"]) == [0.1, 0.5, 0.1, 0.5]
    assert list(summary["reps"]) == [24] * 4 and list(summary["failed"]) == [0] * 4
    for name in ("gain_intercept_mean", "gain_slope_se", "singular_mean", "covers_mean"):
        assert summary[name].notna().all()
    # shrinkage helps most with few observations a cluster
    gain = summary.set_index(["obs_per_cluster", "sd_slope"])["gain_slope_mean"]
    assert gain[(3, 0.1)] > gain[(8, 0.1)] > 0
    assert seen[0] == (0, 96) and seen[-1] == (96, 96)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert list(tmp_path.iterdir()) == []  # no out_dir: nothing written


def test_same_bytes_on_one_process_all_cores_and_any_chunking(tmp_path):
    run_study(small_study(), out_dir=tmp_path / "one", jobs=1)
    run_study(small_study(), out_dir=tmp_path / "two", jobs=2)
    same_bytes(tmp_path / "one", tmp_path / "two")
    # a replication's numbers do not depend on the chunk it was computed in
    run_study(small_study(chunk=5), out_dir=tmp_path / "five", jobs=1, plot=False)
    same_bytes(tmp_path / "one", tmp_path / "five", ("replications.csv", "summary.csv"))
    timing = (tmp_path / "two" / "timing.csv").read_text().splitlines()
    assert timing[0] == "cell,first_rep,reps,seconds,cpu_seconds,worker" and len(timing) == 1 + 16


def test_interrupted_study_resumes_to_the_same_files(tmp_path):
    whole = tmp_path / "whole"
    run_study(small_study(), out_dir=whole, jobs=1)
    part = tmp_path / "part"
    calls = []

    def stop_after_three(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 4:  # the first call reports 0, then one per chunk
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(small_study(), out_dir=part, jobs=1, progress=stop_after_three)
    assert len(list(chunk_files(part))) == 3
    assert not (part / "summary.csv").exists()
    again = []
    run_study(small_study(), out_dir=part, jobs=1, progress=lambda d, t: again.append(d))
    assert again[0] == 18  # three chunks of six were not computed again
    same_bytes(whole, part)


def test_damaged_chunk_file_is_computed_again(tmp_path):
    whole = tmp_path / "whole"
    run_study(small_study(), out_dir=whole, jobs=1)
    files = list(chunk_files(whole))
    files[0].write_text("{not json")
    doc = json.loads(files[1].read_text())
    doc["columns"]["seed"][0] += 1  # a file that is not this chunk's
    files[1].write_text(json.dumps(doc))
    before = (whole / "summary.csv").read_bytes()
    seen = []
    run_study(small_study(), out_dir=whole, jobs=1, progress=lambda d, t: seen.append(d))
    assert seen[0] == 96 - 12
    assert (whole / "summary.csv").read_bytes() == before


def test_ctrl_c_keeps_chunks_and_the_command_resumes(tmp_path):
    path = write_study(
        tmp_path / "long.toml",
        "name = 'long'\nreps = 90\nseed = 8\nchunk = 3\n[grid]\nobs-per-cluster = [4, 6]\n"
        "[fixed]\nn-cluster = 10\n",
    )
    out = tmp_path / "out"
    cmd = [*SHRINK, "study", str(path), "--out-dir", str(out), "--jobs", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + WAIT
        while not list(chunk_files(out)):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no chunk was saved"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=WAIT)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again to resume" in err
    kept = len(list(chunk_files(out)))
    assert 1 <= kept < 60
    assert not (out / "summary.csv").exists()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT * 3)
    assert done.returncode == 0, done.stderr
    fresh = tmp_path / "fresh"
    run_study(path, out_dir=fresh, jobs=2)
    same_bytes(out, fresh)


def test_outputs_may_not_overwrite_the_study_file(tmp_path, cli):
    out = tmp_path / "out"
    out.mkdir()
    path = write_study(out / "summary.json", SMALL_TOML)
    result = cli("study", str(path), "--out-dir", str(out))
    assert result.code == 2 and "summary.json" in result.err
    assert path.read_text() == SMALL_TOML


def test_engine_flags_are_checked(tmp_path, cli):
    path = write_study(tmp_path / "s.toml", SMALL_TOML)
    out = str(tmp_path / "o")
    result = cli("study", str(path), "--out-dir", out, "--jobs", "0")
    assert result.code == 2 and "--jobs" in result.err
    result = cli("study", str(path), "--out-dir", out, "--jobs", "2", "--scheduler", "tcp://x:1")
    assert result.code == 2 and "--jobs" in result.err


def test_help_imports_neither_the_study_nor_dask():
    code = (
        "import sys; from shrinkcli.cli import app; "
        "print(any(m.startswith(('shrinkcli.study', 'distributed', 'dask', 'numpy')) "
        "for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT)
    assert out.stdout.strip() == "False", out.stderr


def test_the_cli_prints_a_table_and_draws_the_plot(tmp_path, cli):
    path = write_study(tmp_path / "s.toml", SMALL_TOML)
    result = cli("study", str(path), "--out-dir", str(tmp_path / "o"), "--jobs", "1")
    assert result.code == 0, result.err
    lines = result.out.strip().splitlines()
    assert lines[0].split()[:2] == ["obs_per_cluster", "sd_slope"]
    assert len(lines) == 5 and "%" in lines[1]
    from PIL import Image

    with Image.open(tmp_path / "o" / "study.png") as im:
        assert im.size == (1200, 420)
        colours = im.convert("RGB").getcolors(1 << 20)
    assert len(colours) > 50  # lines and text, not a blank canvas
    doc = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert doc["study"]["reps"] == 24 and len(doc["cells"]) == 4
    assert set(doc["cells"][0]["metrics"]["gain_slope"]) == {"mean", "se"}


# ----------------------------------------------------------------------------- Dask


def _scheduler_info(file: Path) -> dict:
    """The scheduler file's contents, or {} while it is missing or not yet complete."""
    try:
        return json.loads(file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


class DaskCluster:
    """A scheduler and workers on 127.0.0.1 as subprocesses (no nanny: killing a worker
    kills it); every wait is bounded and everything is stopped at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen] = []
        self.address = ""

    def _start(self, args: list[str]) -> subprocess.Popen:
        log = open(self.folder / f"dask-{len(self.procs)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "dask", *args], stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        self.procs.append(proc)
        return proc

    def start(self, workers: int) -> str:
        file = self.folder / "scheduler.json"
        self._start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(file)])  # fmt: skip
        deadline = time.monotonic() + WAIT
        while not (info := _scheduler_info(file)):  # the file can be seen half-written
            assert time.monotonic() < deadline, "the Dask scheduler did not start"
            time.sleep(0.05)
        self.address = info["address"]
        assert self.address.startswith("tcp://127.0.0.1:")
        for _ in range(workers):
            self.add_worker()
        self.wait_for(workers)
        return self.address

    def add_worker(self) -> subprocess.Popen:
        return self._start(["worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
                            "--no-nanny", "--no-dashboard", "--death-timeout", "60",
                            "--local-directory", str(self.folder)])  # fmt: skip

    def wait_for(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=WAIT) as client:
            client.wait_for_workers(n, timeout=WAIT)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=WAIT)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    pytest.importorskip("distributed")
    cluster = DaskCluster(tmp_path_factory.mktemp("dask"))
    try:
        cluster.start(2)
        yield cluster
    finally:
        cluster.stop()


def test_same_summary_on_a_dask_cluster(tmp_path, dask_cluster):
    path = write_study(tmp_path / "s.toml", SMALL_TOML)
    local, remote = tmp_path / "local", tmp_path / "remote"
    run_study(path, out_dir=local, jobs=2)
    done = subprocess.run(
        [
            *SHRINK,
            "study",
            str(path),
            "--out-dir",
            str(remote),
            "--scheduler",
            dask_cluster.address,
        ],
        capture_output=True,
        text=True,
        timeout=WAIT * 3,
    )
    assert done.returncode == 0, done.stderr
    assert "Dask at tcp://127.0.0.1" in done.stderr
    same_bytes(local, remote)
    workers = {
        line.rsplit(",", 1)[1] for line in (remote / "timing.csv").read_text().splitlines()[1:]
    }
    assert len(workers) == 2  # both workers computed chunks


KILL_TOML = """
name = "kill"
reps = 40
seed = 21
chunk = 5
[grid]
obs-per-cluster = [3, 6, 9]
sd-slope = [0.1, 0.5]
[fixed]
n-cluster = 12
"""


def test_a_killed_worker_changes_nothing(tmp_path, dask_cluster):
    from distributed import Client

    path = write_study(tmp_path / "kill.toml", KILL_TOML)
    local, remote = tmp_path / "local", tmp_path / "remote"
    run_study(path, out_dir=local, jobs=1)
    victim = dask_cluster.add_worker()
    dask_cluster.wait_for(3)
    cmd = [*SHRINK, "study", str(path), "--out-dir", str(remote), "--scheduler"]
    with Client(dask_cluster.address, timeout=WAIT) as watcher:
        address = next(a for a, pid in watcher.run(os.getpid).items() if pid == victim.pid)
        proc = subprocess.Popen([*cmd, dask_cluster.address], stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + WAIT
            # once chunks flow, kill the victim while it is computing one
            while not (list(chunk_files(remote)) and watcher.processing([address]).get(address)):
                assert proc.poll() is None, "the study ended before the worker could be killed"
                assert time.monotonic() < deadline, "the victim never got a chunk"
                time.sleep(0.005)
            os.kill(victim.pid, signal.SIGKILL)
            _, err = proc.communicate(timeout=WAIT * 3)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=WAIT)
    assert victim.wait(timeout=WAIT) == -signal.SIGKILL
    assert proc.returncode == 0, err
    assert len(list(chunk_files(remote))) == 6 * 8
    same_bytes(local, remote)


def test_unreachable_scheduler_is_one_line(tmp_path, cli, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr("shrinkcli.study.runner.CONNECT_TIMEOUT", 1.0)
    path = write_study(tmp_path / "s.toml", SMALL_TOML)
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli("study", str(path), "--out-dir", str(tmp_path / "o"), "--scheduler",
                 f"tcp://127.0.0.1:{port}")  # fmt: skip
    assert result.code == 2, result.err
    assert "cannot reach a Dask scheduler" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_study_errors_are_usage_errors():
    with pytest.raises(UsageError, match="'reps'"):
        Study(reps=0, seed=1)
