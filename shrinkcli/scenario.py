"""Scenario: the ten arguments of the article's create_data(), validated once."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from shrinkcli.errors import UsageError

MAX_OBS = 50_000_000  # beyond this the arrays alone outgrow a laptop's memory
MAX_SCALE = 1e6  # larger intercepts, slopes or SDs overflow the squares the fit needs


@dataclass(frozen=True)
class Scenario:
    """A simulation design, with create_data's defaults.

    ``cor`` is the *correlation* of the random intercepts and slopes (the
    article's wording); the R code writes its ``cor`` straight into the
    covariance matrix, so R's ``cor = c`` is ``cor = c / (sd_int * sd_slope)`` here.
    """

    obs_per_cluster: int = 10
    n_cluster: int = 100
    intercept: float = 1.0
    beta: float = 0.5
    sigma: float = 1.0
    sd_int: float = 0.5
    sd_slope: float = 0.25
    cor: float = 0.0
    balanced: float = 1.0
    seed: int = 888

    def __post_init__(self) -> None:
        _check_int("obs_per_cluster", self.obs_per_cluster, low=1)
        _check_int("n_cluster", self.n_cluster, low=2)
        _check_int("seed", self.seed, low=-(2**31) + 1, high=2**31 - 1)
        for name in ("intercept", "beta"):
            value = _check_float(
                name, getattr(self, name), f"a number in [-{MAX_SCALE:g}, {MAX_SCALE:g}]"
            )
            if abs(value) > MAX_SCALE:
                raise _bad(name, value, f"a number in [-{MAX_SCALE:g}, {MAX_SCALE:g}]")
        for name in ("sigma", "sd_int", "sd_slope"):
            value = _check_float(name, getattr(self, name), f"a number in [0, {MAX_SCALE:g}]")
            if not 0 <= value <= MAX_SCALE:
                raise _bad(name, value, f"a number in [0, {MAX_SCALE:g}]")
        cor = _check_float("cor", self.cor, "a correlation between -1 and 1")
        if abs(cor) > 1:
            raise _bad("cor", cor, "a correlation between -1 and 1")
        bal = _check_float("balanced", self.balanced, "a fraction in (0, 1]")
        if not 0 < bal <= 1:
            raise _bad("balanced", bal, "a fraction in (0, 1]")
        if self.n_obs > MAX_OBS:
            raise UsageError(
                f"--obs-per-cluster x --n-cluster = {self.n_obs:,} observations is more "
                f"than shrink handles ({MAX_OBS:,}); use fewer clusters or observations"
            )
        if self.n_sampled < 2:
            raise UsageError(
                f"--balanced {bal:g} keeps {self.n_sampled} of {self.n_obs} rows; "
                "at least two are needed for two clusters: use a larger fraction"
            )

    @property
    def n_obs(self) -> int:
        """Rows before sampling: n_cluster * obs_per_cluster."""
        return self.n_cluster * self.obs_per_cluster

    @property
    def n_sampled(self) -> int:
        """Rows that dplyr::sample_frac keeps: round(n * f), halves to even as R does."""
        return round(self.n_obs * float(self.balanced))

    @property
    def covariance(self) -> float:
        """Covariance of the random effects implied by the correlation ``cor``."""
        return self.cor * self.sd_int * self.sd_slope

    def with_changes(self, **changes: object) -> Scenario:
        """A copy with some values changed, validated again."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def differences(self) -> dict[str, object]:
        """The values that differ from create_data's defaults, in field order."""
        default = Scenario()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }


def flag(name: str) -> str:
    """The command-line flag for a field: sd_int -> --sd-int."""
    return "--" + name.replace("_", "-")


def _bad(name: str, value: object, allowed: str) -> UsageError:
    return UsageError(f"{flag(name)} {value!r} is not allowed: use {allowed}")


def _check_float(name: str, value: object, allowed: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(name, value, allowed)
    if not math.isfinite(value):
        raise _bad(name, value, allowed)
    return float(value)


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    allowed = f"a whole number >= {low}" if high is None else f"a whole number in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, value, allowed)
    if value < low or (high is not None and value > high):
        raise _bad(name, value, allowed)
    return value
