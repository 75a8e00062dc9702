"""Write the README's gallery section from a `shrink batch` index.

Run by `make gallery` after `shrink batch scenarios/*.toml --out-dir docs/gallery`.
It also draws the EXPLAINED animations (``shrink run`` with the explaining layout
and the story) and adds them after the scenarios.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- gallery:start -->", "<!-- gallery:end -->"
ORDER = ["baseline", "more_subject_variance", "more_slope_variance", "fewer_obs", "more_obs",
         "unbalanced"]  # fmt: skip
# (file name, title, flags of `shrink run`, what it shows)
EXPLAINED = [
    (
        "unbalanced_explained",
        "Unbalanced clusters, explained (--layout explain --story)",
        ["--balanced", "0.5", "--sd-int", "0.5", "--sd-slope", "0.5", "--sigma", "0.25",
         "--layout", "explain", "--story", "--frames", "40", "--hold", "40",
         "--title", "Unbalanced clusters, explained"],
        "Complete pooling (one line for all), no pooling (each cluster its own line), then "
        "partial pooling. Beside the plane: the data of three clusters (the one that moves "
        "most, the smallest, the largest) with their lines changing as their estimates "
        "move, and how far each cluster has been pulled, against its size: the clusters of "
        "two rows are pulled hardest, as the model predicts (hollow marks; the lines are a "
        "typical cluster's prediction).",
    ),
]  # fmt: skip


def section(index: dict) -> str:
    rows = {r["name"]: r for r in index["scenarios"]}
    parts = [START, ""]
    for name in ORDER + sorted(set(rows) - set(ORDER)):
        row = rows.get(name)
        if row is None or row["status"] != "ok":
            continue
        scenario = tomllib.loads((ROOT / "scenarios" / f"{name}.toml").read_text())
        fit, rmse = row["fit"], row["truth_rmse"]
        gif = (ROOT / row["outputs"]["animation"]).resolve().relative_to(ROOT)
        parts += [
            f"#### {scenario.get('title', name)}",
            "",
            f"![{name}]({gif.as_posix()})",
            "",
            scenario.get("lesson", ""),
            "",
            f"Fitted SDs: intercept {fit['var_intercept'] ** 0.5:.3f}, "
            f"slope {fit['var_slope'] ** 0.5:.3f}, residual {fit['var_residual'] ** 0.5:.3f}"
            f" (corr {fit['corr']:.2f}). RMSE against the true cluster effects, OLS -> mixed: "
            f"intercept {rmse['ols']['intercept']:.3f} -> {rmse['mixed']['intercept']:.3f}, "
            f"slope {rmse['ols']['slope']:.3f} -> {rmse['mixed']['slope']:.3f}.",
            "",
        ]
    for name, title, flags, lesson in EXPLAINED:
        gif = ROOT / "docs" / "gallery" / f"{name}.gif"
        if gif.exists():
            command = " ".join(["shrink run", *flags[:-2], f"--title '{flags[-1]}'"])
            parts += [f"#### {title}", "", f"![{name}]({gif.relative_to(ROOT).as_posix()})", "",
                      lesson, "", f"Made by `{command} -o {name}.gif`.", ""]  # fmt: skip
    parts.append(END)
    return "\n".join(parts)


def draw_explained() -> None:
    """The EXPLAINED animations, with the shrink of this checkout."""
    for name, _, flags, _ in EXPLAINED:
        out = ROOT / "docs" / "gallery" / f"{name}.gif"
        cmd = [sys.executable, "-m", "shrinkcli", "run", *flags, "-o", str(out), "-q"]
        subprocess.run(cmd, check=True)


def main() -> None:
    index = json.loads((ROOT / "docs" / "gallery" / "index.json").read_text())
    draw_explained()
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text:
        sys.exit("README.md has no gallery markers")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    readme.write_text(pattern.sub(lambda _: section(index), text))


if __name__ == "__main__":
    main()
