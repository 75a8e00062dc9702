"""Write the README's gallery section from a `shrink batch` index.

Run by `make gallery` after `shrink batch scenarios/*.toml --out-dir docs/gallery`.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- gallery:start -->", "<!-- gallery:end -->"
ORDER = ["baseline", "more_subject_variance", "more_slope_variance", "fewer_obs", "more_obs",
         "unbalanced"]  # fmt: skip


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
    parts.append(END)
    return "\n".join(parts)


def main() -> None:
    index = json.loads((ROOT / "docs" / "gallery" / "index.json").read_text())
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text:
        sys.exit("README.md has no gallery markers")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    readme.write_text(pattern.sub(lambda _: section(index), text))


if __name__ == "__main__":
    main()
