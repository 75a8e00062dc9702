"""Simulation studies: when does shrinkage help? A grid of designs, many replications.

    from shrinkcli.study import run_study
    summary = run_study("studies/small_clusters.toml", out_dir="out/small")

``run_study`` returns the summary (one row per cell) as a pandas DataFrame; see
runner.run_study for its arguments and the README's "Simulation studies".
"""

from __future__ import annotations

from shrinkcli.study.runner import run_study
from shrinkcli.study.spec import Cell, Study, read_study, replication_seed

__all__ = ["Cell", "Study", "read_study", "replication_seed", "run_study"]
