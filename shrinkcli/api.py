"""shrink from Python and notebooks: a pandas DataFrame and lme4's formula in, a fit or
an animation out.

    import shrinkcli
    fit = shrinkcli.fit(df, formula="Reaction ~ Days + (1 | Subject)")
    print(fit.summary())        # lme4's summary, as `shrink fit` prints it
    fit.to_dict()               # the JSON of `shrink fit --json`
    fit.estimates()             # one row per cluster, as `shrink fit --estimates`

    anim = shrinkcli.animate(df, formula="Reaction ~ Days + (Days | Subject)", output="x.gif")
    anim                        # in Jupyter: the GIF, inline

``data`` is a DataFrame (or anything pandas.DataFrame() takes) or the path of a CSV
file. The DataFrame goes through the same checks, cluster-label rules and messages
as a CSV file (shrinkcli.data.read_frame), so both give the same numbers. Every
problem is a ShrinkError with one plain line. Instead of a formula, ``y=``, ``x=``
and ``cluster=`` name the columns of y ~ x + (x | cluster).
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shrinkcli.errors import UsageError
from shrinkcli.formula import Formula, as_formula

API_OPTIONS = {"y": "y=", "x": "x=", "cluster": "cluster="}  # how messages name the columns
FORMULA_WORDS = {"y": "formula=", "x": "formula=", "cluster": "formula="}
MIME = {".gif": "image/gif", ".png": "image/png", ".mp4": "video/mp4", ".html": "text/html"}


@dataclass(frozen=True, repr=False)
class FitResult:
    """A fitted model with its data: ``fits`` is fit.Fits (y ~ x + (x | g)) or
    fit.InterceptFits (the random-intercept models); ``data`` is ClusteredData."""

    data: Any
    fits: Any
    formula: Formula

    def summary(self) -> str:
        """lme4's summary text, exactly what `shrink fit` prints."""
        from shrinkcli.summary import to_text

        return to_text(self.fits, truth=self.data.truth, source=self.data.source)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of `shrink fit --json` (with "model" and "formula")."""
        from shrinkcli.summary import to_json

        return to_json(self.fits, truth=self.data.truth, source=self.data.source)

    def estimates(self):
        """A DataFrame, one row per cluster: the table of `shrink fit --estimates`."""
        import pandas as pd

        from shrinkcli.summary import estimates_columns

        return pd.DataFrame(estimates_columns(self.fits, self.data.labels, self.data.truth))

    def __repr__(self) -> str:
        return self.summary()


@dataclass(frozen=True, repr=False)
class Animation:
    """A drawn animation (or still): the file's bytes, where it was written (None when
    no ``output`` was given), the fit and what the picture shows. A notebook displays
    it inline through _repr_html_ (the GIF, MP4 or PNG embedded as base64, the HTML
    page in a frame) or _repr_png_."""

    content: bytes
    suffix: str
    path: Path | None
    fit: FitResult
    picture: dict | None
    seconds: float

    @property
    def mime(self) -> str:
        return MIME[self.suffix]

    def _repr_html_(self) -> str:
        if self.suffix == ".html":
            page = html.escape(self.content.decode("utf-8"), quote=True)
            return f'<iframe srcdoc="{page}" style="width:100%;height:640px;border:0"></iframe>'
        data = base64.b64encode(self.content).decode("ascii")
        src = f"data:{self.mime};base64,{data}"
        if self.suffix == ".mp4":
            return f'<video src="{src}" controls autoplay loop muted playsinline></video>'
        alt = html.escape(str(self.fit.formula), quote=True)
        return f'<img src="{src}" alt="shrinkage: {alt}"/>'

    def _repr_png_(self) -> bytes | None:
        """The still, or a GIF's last frame (every cluster at its mixed estimate), as PNG;
        None for MP4 and HTML, which have no still here."""
        if self.suffix == ".png":
            return self.content
        if self.suffix != ".gif":
            return None
        import io

        from PIL import Image

        with Image.open(io.BytesIO(self.content)) as image:
            image.seek(image.n_frames - 1)
            out = io.BytesIO()
            image.convert("RGB").save(out, format="PNG")
        return out.getvalue()

    def __repr__(self) -> str:
        where = self.path if self.path is not None else f"in memory ({self.suffix})"
        return f"<shrink animation of {self.fit.formula}: {where}, {len(self.content)} bytes>"


def fit(
    data,
    formula: str | Formula | None = None,
    *,
    y: str | None = None,
    x: str | None = None,
    cluster: str | None = None,
    reml: bool = True,
    engine: str = "shrink",
) -> FitResult:
    """Fit ``formula`` (y ~ x + (x | g), y ~ x + (1 | g) or y ~ 1 + (1 | g), lme4's
    words) to ``data`` by REML (``reml=False``: maximum likelihood)."""
    from shrinkcli.pipeline import fit_data

    loaded, model = _load(data, formula, y, x, cluster)
    fits = fit_data(loaded, reml=reml, engine=engine, formula=model)
    return FitResult(loaded, fits, model)


def animate(
    data,
    formula: str | Formula | None = None,
    *,
    output: str | os.PathLike | None = None,
    y: str | None = None,
    x: str | None = None,
    cluster: str | None = None,
    reml: bool = True,
    engine: str = "shrink",
    title: str = "",
    **picture: Any,
) -> Animation:
    """Fit and animate each cluster's OLS estimate moving to its mixed estimate.

    ``output`` (.gif, .mp4, .png, or .html where supported) is written; without it a
    GIF is made in memory only. ``picture`` takes the settings of `shrink run`
    (frames, hold, fps, width, height, ease, ellipses, truth, zoom, path).
    """
    from shrinkcli.pipeline import run
    from shrinkcli.settings import RenderSettings

    settings = RenderSettings(**picture)  # an unknown or wrong setting, before any work
    loaded, model = _load(data, formula, y, x, cluster)
    with tempfile.TemporaryDirectory(prefix="shrink-") as tmp:
        target = Path(output) if output is not None else Path(tmp) / "shrinkage.gif"
        start = time.perf_counter()
        result = run(
            data=loaded,
            output=target,
            settings=settings,
            reml=reml,
            engine=engine,
            title=title,
            formula=model,
        )
        content = Path(result.output).read_bytes()
    return Animation(
        content=content,
        suffix=Path(result.output).suffix.lower(),
        path=None if output is None else Path(result.output),
        fit=FitResult(loaded, result.fits, model),
        picture=result.picture,
        seconds=time.perf_counter() - start,
    )


def _load(data, formula, y, x, cluster):
    """ClusteredData from a DataFrame or a CSV path, and the model's Formula."""
    from shrinkcli.data import read_csv, read_frame
    from shrinkcli.formula import full_model

    model = as_formula(formula)
    named = {k: v for k, v in (("y", y), ("x", x), ("cluster", cluster)) if v is not None}
    if model is not None and named:
        raise UsageError(
            f"formula= names the columns, and {next(iter(named))}= names one too; give the "
            "formula alone"
        )
    if model is None:
        model = full_model(**named)
        options = API_OPTIONS
    else:
        options = FORMULA_WORDS
    cols = {**model.columns(), "options": options}
    if isinstance(data, str | os.PathLike):
        return read_csv(data, **cols), model
    if data is None:
        raise UsageError("no data: pass a pandas DataFrame or the path of a CSV file")
    return read_frame(data, **cols), model
