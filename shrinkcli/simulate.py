"""The article's create_data(), number for number, as ClusteredData."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shrinkcli.errors import UsageError
from shrinkcli.rng import RRandom
from shrinkcli.scenario import Scenario, flag


@dataclass(frozen=True)
class ClusteredData:
    """Observations with their cluster, in file (or R) row order.

    ``codes`` index ``labels`` (0..G-1, in order of first appearance of the
    sorted labels); ``truth`` holds each cluster's true (intercept, slope) when
    the data were simulated, else None. ``names`` are the user's column names,
    which the picture's axes and the summary speak in.
    """

    y: np.ndarray
    x: np.ndarray
    cluster: np.ndarray
    codes: np.ndarray
    labels: np.ndarray
    truth: np.ndarray | None = None
    source: str = "simulated (create_data)"
    names: tuple[str, str, str] = ("y", "x", "cluster")  # the columns y, x and cluster came from

    @property
    def n_obs(self) -> int:
        return len(self.y)

    @property
    def n_clusters(self) -> int:
        return len(self.labels)

    def sizes(self) -> np.ndarray:
        """Observations per cluster, in label order."""
        return np.bincount(self.codes, minlength=self.n_clusters)


def random_effects(rng: RRandom, scenario: Scenario) -> np.ndarray:
    """mvtnorm::rmvnorm(n_cluster, sigma) with its default eigen square root."""
    s = scenario
    varmat = np.array([[s.sd_int**2, s.covariance], [s.covariance, s.sd_slope**2]])
    values, vectors = np.linalg.eigh(varmat)
    root = (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T
    z = rng.norm_rand(2 * s.n_cluster).reshape(s.n_cluster, 2)  # filled by row
    return z @ root


def simulate(scenario: Scenario) -> ClusteredData:
    """Draw x, the random effects, the noise and the row sample in R's order."""
    s = scenario
    rng = RRandom(s.seed)
    cluster = np.repeat(np.arange(1, s.n_cluster + 1), s.obs_per_cluster)
    x = rng.rnorm(s.n_obs)
    re = random_effects(rng, s)
    idx = cluster - 1
    # same operation order as R: (a + re0) + (b + re1) * x + noise
    y = (s.intercept + re[idx, 0]) + (s.beta + re[idx, 1]) * x + rng.rnorm(s.n_obs, sd=s.sigma)
    rows = rng.sample_int(s.n_obs, s.n_sampled) - 1
    y, x, cluster = y[rows], x[rows], cluster[rows]
    present = np.bincount(cluster, minlength=s.n_cluster + 1) > 0
    labels = np.flatnonzero(present)  # labels are 1..n_cluster: no sort needed
    codes = (np.cumsum(present) - 1)[cluster]
    if len(labels) < 2:
        raise UsageError(
            f"{flag('balanced')} {s.balanced:g} leaves {len(labels)} cluster; "
            "at least two are needed: use a larger fraction or more rows"
        )
    truth = np.column_stack((s.intercept + re[labels - 1, 0], s.beta + re[labels - 1, 1]))
    return ClusteredData(y=y, x=x, cluster=cluster, codes=codes, labels=labels, truth=truth)
