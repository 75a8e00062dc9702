"""lme4's formula grammar: the three models accepted in lme4's spellings, everything else
refused with one line that quotes the part and shows the nearest supported formula;
and --formula through `shrink fit`, `shrink run` and scenario files."""

from __future__ import annotations

import json

import pytest
from conftest import DATA

from shrinkcli.errors import UsageError
from shrinkcli.formula import MODELS, Formula, FormulaError, parse_formula, quote_name

SLEEP = DATA / "lme4" / "sleepstudy" / "data.csv"


@pytest.mark.parametrize(
    ("text", "columns", "canonical"),
    [
        ("Reaction ~ Days + (Days | Subject)", ("Reaction", "Days", "Subject", True),
         "Reaction ~ Days + (Days | Subject)"),
        ("y~x+(1+x|g)", ("y", "x", "g", True), "y ~ x + (x | g)"),
        ("y ~ 1 + x + (x | g)", ("y", "x", "g", True), "y ~ x + (x | g)"),
        ("y ~ (x | g) + x", ("y", "x", "g", True), "y ~ x + (x | g)"),
        ("y ~ x + (1 + x | g)", ("y", "x", "g", True), "y ~ x + (x | g)"),
        ("  y ~\tx +\n(x|g) ", ("y", "x", "g", True), "y ~ x + (x | g)"),
        ("y ~ x + (1 | g)", ("y", "x", "g", False), "y ~ x + (1 | g)"),
        ("y ~ (1|g) + 1 + x", ("y", "x", "g", False), "y ~ x + (1 | g)"),
        ("y ~ x + x + (1 | g)", ("y", "x", "g", False), "y ~ x + (1 | g)"),
        ("y ~ (x) + (1 | g)", ("y", "x", "g", False), "y ~ x + (1 | g)"),
        ("y ~ 1 + (1 | g)", ("y", None, "g", False), "y ~ 1 + (1 | g)"),
        ("y ~ (1 | g)", ("y", None, "g", False), "y ~ 1 + (1 | g)"),
        ("`reaction time` ~ Days + (1 | `subject id`)",
         ("reaction time", "Days", "subject id", False),
         "`reaction time` ~ Days + (1 | `subject id`)"),
        ("weight.kg ~ `2nd dose` + (`2nd dose` | .id)", ("weight.kg", "2nd dose", ".id", True),
         "weight.kg ~ `2nd dose` + (`2nd dose` | .id)"),
        ("`if` ~ x_1 + (1 | g)", ("if", "x_1", "g", False), "`if` ~ x_1 + (1 | g)"),
    ],
)  # fmt: skip
def test_accepted(text, columns, canonical):
    f = parse_formula(text)
    assert (f.y, f.x, f.cluster, f.random_slope) == columns
    assert str(f) == canonical
    assert parse_formula(canonical) == f  # the canonical text reads back the same
    assert f.model == MODELS[0 if f.random_slope else 1 if f.x else 2]
    assert f.columns() == {"y": columns[0], "x": columns[1], "cluster": columns[2]}


@pytest.mark.parametrize(
    ("text", "part", "nearest"),
    [
        ("y ~ 0 + x + (x | g)", "'0'", "y ~ x + (x | g)"),
        ("y ~ x - 1 + (x | g)", "'- 1'", "y ~ x + (x | g)"),
        ("y ~ -1 + x + (1 | g)", "'- 1'", "y ~ x + (1 | g)"),
        ("y ~ x + (1 | g) + 0", "'0'", "y ~ x + (1 | g)"),
        ("y ~ x + (0 + x | g)", "'0'", "y ~ x + (x | g)"),
        ("y ~ x + (x - 1 | g)", "'- 1'", "y ~ x + (x | g)"),
        ("y ~ x + z + (1 | g)", "'z'", "y ~ x + (1 | g)"),
        ("y ~ x + (x + z | g)", "'z'", "y ~ x + (x | g)"),
        ("y ~ x + (z | g)", "'(z | g)'", "y ~ x + (x | g)"),
        ("y ~ 1 + (x | g)", "'(x | g)'", "y ~ x + (x | g)"),
        ("y ~ x + (1 | g) + (1 | h)", "'(1 | h)'", "y ~ x + (1 | g)"),
        ("y ~ x + (x | g) + (1 | g)", "'(1 | g)'", "y ~ x + (x | g)"),
        ("y ~ x + (x || g)", "'(x || g)'", "y ~ x + (x | g)"),
        ("y ~ x * z + (1 | g)", "'x * z'", "y ~ x + (1 | g)"),
        ("y ~ x:z + (1 | g)", "'x:z'", "y ~ x + (1 | g)"),
        ("y ~ x %in% z + (1 | g)", "'x %in% z'", "y ~ x + (1 | g)"),
        ("y ~ log(x) + (x | g)", "'log(x)'", "y ~ x + (x | g)"),
        ("y ~ I(x^2) + (1 | g)", "'I(x^2)'", "y ~ x + (1 | g)"),
        ("y ~ poly(x, 2) + (1 | g)", "'poly(x, 2)'", "y ~ x + (1 | g)"),
        ("y ~ x + offset(z) + (1 | g)", "'offset(z)'", "y ~ x + (1 | g)"),
        ("log(y) ~ x + (1 | g)", "'log(y)'", "y ~ x + (1 | g)"),
        ("y ~ x + (1 | g/h)", "'g/h'", "y ~ x + (1 | g)"),
        ("y ~ x + (1 | g:h)", "'g:h'", "y ~ x + (1 | g)"),
        ("y ~ 2 + x + (1 | g)", "'2'", "y ~ x + (1 | g)"),
        ("y ~ . + (1 | g)", "'.'", "y ~ 1 + (1 | g)"),
        ("y ~ x + (1 | g) - x", "'x'", "y ~ x + (1 | g)"),
    ],
)
def test_refused_with_the_part_and_the_nearest_formula(text, part, nearest):
    with pytest.raises(FormulaError) as err:
        parse_formula(text)
    message = str(err.value)
    assert f"cannot fit {part}:" in message
    assert message.endswith(f"nearest supported formula: {nearest}")
    assert "\n" not in message and isinstance(err.value, UsageError)
    parse_formula(nearest)  # the suggestion is itself accepted


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "the formula is empty"),
        ("   ", "the formula is empty"),
        ("~ x + (1 | g)", "has no response"),
        ("y ~ x", "has no random-effect term"),
        ("y ~ x + 1 | g", "needs parentheses"),
        ("y ~ x + (1 | g", "expected ')'"),
        ("y ~ x + (1 | g) ~ z", "two '~'"),
        ("'y' ~ x + (1 | g)", "backquotes"),
        ("y ~ x + (1 | `g", "not closed"),
        ("y ~ x + (1 | g) ;", "';' has no meaning"),
        ("y ~ y + (1 | g)", "the response 'y' is also the predictor"),
        ("y ~ x + (1 | x)", "the grouping factor 'x' is also the predictor"),
        ("y ~ x + (x | y)", "the grouping factor 'y' is also the response"),
    ],
)
def test_other_refusals(text, words):
    with pytest.raises(FormulaError, match=None) as err:
        parse_formula(text)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_suggestions_keep_the_users_names():
    with pytest.raises(FormulaError) as err:
        parse_formula("Reaction ~ Days * Sex + (Days || Subject)")
    assert str(err.value).endswith("nearest supported formula: Reaction ~ Days + (Days | Subject)")
    with pytest.raises(FormulaError) as err:
        parse_formula("`reaction time` ~ log(Days) + (1 | `subject id`)")
    assert "cannot fit 'log(Days)'" in str(err.value)
    assert str(err.value).endswith("`reaction time` ~ Days + (1 | `subject id`)")


def test_quote_name_and_formula_object():
    assert quote_name("Days") == "Days" and quote_name(".x1") == ".x1"
    for name in ("a b", "2x", "if", "TRUE", "x-y", ".2", "é"):
        assert quote_name(name) == f"`{name}`"
    assert str(Formula("y", None, "g", False)) == "y ~ 1 + (1 | g)"
    with pytest.raises(ValueError):
        Formula("y", None, "g", True)


# --------------------------------------------------------------------------------------
# --formula on the command line


def test_fit_prints_lme4s_summary_for_the_formulas_model(cli):
    ref = json.loads((DATA / "lme4" / "sleepstudy" / "random_intercept.json").read_text())
    res = cli("fit", "--data", SLEEP, "--formula", "Reaction ~ Days + (1 | Subject)")
    assert res.code == 0, res.err
    skip = ("   Data:", "Control:")  # the names of R's variables
    printed = [x.rstrip() for x in ref["printed"]["y ~ x + (1 | g)"]["REML"]]
    ours = [x.rstrip() for x in res.out.splitlines()]
    assert [x for x in ours if not x.startswith(skip)] == [
        x for x in printed if not x.startswith(skip)
    ]
    assert f"   Data: {SLEEP}" in ours
    assert res.err == ""


def test_fit_json_carries_the_model(cli):
    res = cli("fit", "--data", SLEEP, "--formula", "Reaction ~ 1 + (1|Subject)", "--ml", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["model"] == "y ~ 1 + (1 | g)" and doc["formula"] == "Reaction ~ 1 + (1 | Subject)"
    ref = json.loads((DATA / "lme4" / "sleepstudy" / "random_intercept.json").read_text())
    best = ref["random_intercept"]["y ~ 1 + (1 | g)"]["ML"]["tight"]
    assert doc["criterion"] == pytest.approx(best["criterion"], abs=1e-6)
    assert doc["fixed"]["intercept"]["estimate"] == pytest.approx(best["fixed"][0], rel=1e-8)


def test_full_model_by_formula_is_the_full_model_in_the_users_words(cli):
    by_flags = cli("fit", "--data", SLEEP, "--y", "Reaction", "--x", "Days", "--cluster", "Subject",
                   "--json")  # fmt: skip
    by_formula = cli("fit", "--data", SLEEP, "--formula", "Reaction ~ Days + (Days | Subject)",
                     "--json")  # fmt: skip
    a, b = json.loads(by_flags.out), json.loads(by_formula.out)
    assert "model" not in a and "formula" not in a  # without --formula the JSON is as before
    assert b.pop("model") == "y ~ x + (x | g)"
    assert b.pop("formula") == "Reaction ~ Days + (Days | Subject)"
    assert a == b
    text = cli("fit", "--data", SLEEP, "--formula", "Reaction ~ Days + (Days | Subject)").out
    assert "Formula: Reaction ~ Days + (Days | Subject)\n" in text
    assert " Subject  (Intercept)" in text and "Number of obs: 180, groups:  Subject, 18" in text
    assert "\nDays   " in text


def test_formula_with_simulated_data(cli):
    res = cli("fit", "--formula", "y ~ x + (1 | cluster)", "--json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["n_obs"] == 1000 and doc["model"] == "y ~ x + (1 | g)"
    ref = json.loads((DATA / "lme4" / "baseline" / "random_intercept.json").read_text())
    best = ref["random_intercept"]["y ~ x + (1 | g)"]["REML"]["tight"]
    assert doc["criterion"] == pytest.approx(best["criterion"], abs=1e-6)
    res = cli("fit", "--formula", "Reaction ~ Days + (1 | Subject)")
    assert res.code == 2 and "simulated data do not have" in res.err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--formula", "Reaction ~ Days * Subject + (1 | Subject)"], "cannot fit 'Days * Subject'"),
        (["--formula", "Reaction ~ Days + (1 | Subject)", "--y", "Reaction"], "--y names one too"),
        (["--formula", "Reaction ~ Days + (1 | Subject)", "--engine", "statsmodels"],
         "--engine statsmodels fits only y ~ x + (x | g)"),
        (["--formula", "Reaction ~ Hours + (1 | Subject)"], "no column 'Hours'"),
        (["--formula", "Reaction ~ Days + (1 | Subject)", "--ml", "--ml"], None),
    ],
)  # fmt: skip
def test_fit_refusals_are_one_line_exit_2(cli, args, words):
    res = cli("fit", "--data", SLEEP, *args)
    if words is None:
        assert res.code == 0
        return
    assert res.code == 2 and words in res.err and len(res.err.splitlines()) == 1


def test_missing_column_names_the_formula(cli):
    res = cli("fit", "--data", SLEEP, "--formula", "Reaction ~ Hours + (1 | Subject)")
    assert res.err.rstrip().endswith("name the right one with --formula")


def test_run_draws_random_intercept_models(cli, tmp_path):
    out = tmp_path / "x.gif"
    res = cli("run", "--data", SLEEP, "--formula", "Reaction ~ Days + (1 | Subject)", "-o", out,
              "--frames", 3, "--hold", 0)  # fmt: skip
    assert res.code == 0 and out.exists() and res.err == ""
    toml = tmp_path / "s.toml"
    (tmp_path / "d.csv").write_bytes(SLEEP.read_bytes())
    toml.write_text(
        'data = "d.csv"\nformula = "Reaction ~ 1 + (1 | Subject)"\norder = "estimate"\n'
    )
    still = tmp_path / "x.png"
    res = cli("run", "--scenario", toml, "-o", still)
    assert res.code == 0 and still.exists()
    res = cli("run", "--scenario", toml, "-o", tmp_path / "x.gif", "--highlight", "308",
              "--layout", "explain")  # fmt: skip
    assert res.code == 2 and len(res.err.splitlines()) == 1 and "--highlight" in res.err


def test_run_draws_the_full_model_named_by_formula(cli, tmp_path):
    out = tmp_path / "x.png"
    res = cli("run", "--data", SLEEP, "--formula", "Reaction ~ Days + (Days | Subject)",
              "-o", out, "--json", "--frames", 3, "--hold", 0)  # fmt: skip
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert out.stat().st_size > 0 and doc["formula"] == "Reaction ~ Days + (Days | Subject)"
    assert doc["n_clusters"] == 18


def test_fit_with_formula_never_imports_matplotlib():
    import subprocess
    import sys

    code = (
        "import sys; from shrinkcli.cli import main\n"
        f"try:\n main(['fit', '--data', {str(SLEEP)!r}, '--formula', "
        "'Reaction ~ Days + (1 | Subject)'])\nexcept SystemExit: pass\n"
        "print('matplotlib' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Formula: Reaction ~ Days + (1 | Subject)" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "False"
