"""lme4 formulas for the three models shrink fits, read by a small parser of R's grammar.

    parse_formula("Reaction ~ Days + (Days | Subject)")
    Formula(y='Reaction', x='Days', cluster='Subject', random_slope=True)

Accepted, in lme4's spellings (terms in any order, any spacing):

* ``y ~ x + (x | g)``: random intercept and slope; ``(1 + x | g)`` is the same, and
  ``1 +`` may stand before the fixed part too;
* ``y ~ x + (1 | g)``: random intercept, fixed slope;
* ``y ~ 1 + (1 | g)``: random intercept only; ``y ~ (1 | g)`` is the same.

Column names that are not R names are written in backquotes, as in R:
``\\`reaction time\\` ~ Days + (1 | \\`subject id\\`)``.

Everything else is refused with one line that quotes the part that cannot be fitted
and shows the nearest supported formula: no fixed intercept (``0 +``, ``- 1``), a
random slope without a random intercept (``(0 + x | g)``), two predictors, two
grouping factors or random terms, uncorrelated terms (``||``), interactions
(``x:z``, ``x * z``), nested or crossed groups (``g/h``, ``g:h``), functions of
columns (``log(x)``, ``I(x^2)``, ``poly(x, 2)``, ``offset(z)``), ``.`` and
numbers other than 0 and 1. formulaic and patsy cannot read lme4's bar terms, so
this is a hand-written recursive-descent parser with R's precedence (``|`` binds
more loosely than ``+``, so ``(1 + x | g)`` is ``((1 + x) | g)``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from shrinkcli.errors import UsageError

# the three models, by the names the JSON and the lme4 references use
MODELS = ("y ~ x + (x | g)", "y ~ x + (1 | g)", "y ~ 1 + (1 | g)")
SHOWN = 60  # characters of the user's formula that a message quotes

_R_NAME = re.compile(r"(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9._]*\Z")
_RESERVED = {
    "if", "else", "repeat", "while", "function", "for", "next", "break", "TRUE", "FALSE",
    "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_", "in",
}  # fmt: skip


class FormulaError(UsageError):
    """A formula that is not one of the three models shrink fits (exit code 2)."""


@dataclass(frozen=True)
class Formula:
    """One of the three models, with the user's column names (x is None for y ~ 1)."""

    y: str
    x: str | None
    cluster: str
    random_slope: bool = True

    def __post_init__(self) -> None:
        if self.random_slope and self.x is None:
            raise ValueError("a random slope needs a predictor")

    @property
    def model(self) -> str:
        """The model in the words y, x and g: one of MODELS."""
        if self.random_slope:
            return MODELS[0]
        return MODELS[1] if self.x is not None else MODELS[2]

    def columns(self) -> dict[str, str | None]:
        """The columns to read: y, x (None for y ~ 1 + (1 | g)) and cluster."""
        return {"y": self.y, "x": self.x, "cluster": self.cluster}

    def __str__(self) -> str:
        """The formula as R deparses it (non-syntactic names in backquotes)."""
        y, g = quote_name(self.y), quote_name(self.cluster)
        if self.x is None:
            return f"{y} ~ 1 + (1 | {g})"
        x = quote_name(self.x)
        return f"{y} ~ {x} + ({x if self.random_slope else 1} | {g})"


def quote_name(name: str) -> str:
    """A column name as R writes it in a formula: bare if syntactic, else in backquotes."""
    if _R_NAME.match(name) and name not in _RESERVED:
        return name
    return f"`{name}`"


def full_model(y: str = "y", x: str = "x", cluster: str = "cluster") -> Formula:
    """y ~ x + (x | cluster) with these column names."""
    return Formula(y, x, cluster, True)


# --------------------------------------------------------------------------------------
# Tokens and syntax tree


@dataclass(frozen=True)
class _Tok:
    kind: str  # name, num, op, end
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class _Node:
    kind: str  # name, num, call, op (binary), neg, pos, paren, bar, dot
    start: int
    end: int
    text: str = ""  # a name, a number, a call's function or an operator
    kids: tuple = ()


_OPS = ("||", "~", "+", "-", "*", "/", ":", "^", "|", "(", ")", ",", ".", "=", "$", "@", "!")


def _tokens(src: str) -> list[_Tok]:
    out: list[_Tok] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c.isspace():
            i += 1
            continue
        if c == "`":
            j = src.find("`", i + 1)
            if j < 0:
                raise _syntax(src, "a backquote (`) is not closed")
            if j == i + 1:
                raise _syntax(src, "`` is an empty name")
            out.append(_Tok("name", src[i + 1 : j], i, j + 1))
            i = j + 1
            continue
        if c in "\"'":
            raise _syntax(
                src,
                f"quotes ({c}) do not name a column; put names with spaces in backquotes, "
                "e.g. `reaction time`",
            )
        m = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?").match(src, i)
        if m:
            out.append(_Tok("num", m.group(0), i, m.end()))
            i = m.end()
            continue
        if c.isalpha() or (c == "." and i + 1 < n and (src[i + 1].isalpha() or src[i + 1] in "._")):
            j = i + 1
            while j < n and (src[j].isalnum() or src[j] in "._"):
                j += 1
            out.append(_Tok("name", src[i:j], i, j))
            i = j
            continue
        if c == "%":
            j = src.find("%", i + 1)
            if j < 0:
                raise _syntax(src, "a % operator is not closed")
            out.append(_Tok("op", src[i : j + 1], i, j + 1))
            i = j + 1
            continue
        op = next((o for o in _OPS if src.startswith(o, i)), None)
        if op is None:
            raise _syntax(src, f"{c!r} has no meaning in an lme4 formula")
        out.append(_Tok("op", op, i, i + len(op)))
        i += len(op)
    out.append(_Tok("end", "", n, n))
    return out


class _Parser:
    """R's precedence, low to high: ~, | and ||, + and - (binary), * and /, %any%, :,
    unary + and -, ^."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.toks = _tokens(src)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def at(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def expect(self, op: str, what: str) -> _Tok:
        if not self.at(op):
            got = "the end" if self.tok.kind == "end" else repr(self.tok.text)
            raise _syntax(self.src, f"expected {what} but found {got}")
        return self.take()

    def formula(self) -> tuple[_Node | None, _Node]:
        lhs = None if self.at("~") else self.bar()
        self.expect("~", "'~' between the response and the model")
        rhs = self.bar()
        if self.at("~"):
            raise _syntax(self.src, "it has two '~'")
        if self.tok.kind != "end":
            raise _syntax(self.src, f"{self.tok.text!r} is not expected here")
        return lhs, rhs

    def _left(self, operand: Callable[[], _Node], more: Callable[[], bool], kind="op") -> _Node:
        """Operands joined by left-associative operators, while ``more()`` sees one."""
        node = operand()
        while more():
            op = self.take().text
            right = operand()
            node = _Node(kind, node.start, right.end, op, (node, right))
        return node

    def bar(self) -> _Node:
        return self._left(self.sum, lambda: self.at("|", "||"), "bar")

    def sum(self) -> _Node:
        return self._left(self.product, lambda: self.at("+", "-"))

    def product(self) -> _Node:
        return self._left(self.special, lambda: self.at("*", "/"))

    def special(self) -> _Node:
        return self._left(
            self.colon, lambda: self.tok.kind == "op" and self.tok.text.startswith("%")
        )

    def colon(self) -> _Node:
        return self._left(self.unary, lambda: self.at(":"))

    def unary(self) -> _Node:
        if self.at("+", "-"):
            t = self.take()
            inner = self.unary()
            return _Node("neg" if t.text == "-" else "pos", t.start, inner.end, t.text, (inner,))
        return self.power()

    def power(self) -> _Node:
        node = self.atom()
        if self.at("^"):
            self.take()
            right = self.unary()
            node = _Node("op", node.start, right.end, "^", (node, right))
        return node

    def atom(self) -> _Node:
        t = self.tok
        if t.kind == "name":
            self.take()
            if self.at("("):
                end, inner = self._skip_call()
                return _Node("call", t.start, end, t.text, inner)
            return _Node("name", t.start, t.end, t.text)
        if t.kind == "num":
            self.take()
            return _Node("num", t.start, t.end, t.text)
        if self.at("("):
            self.take()
            inner = self.bar()
            close = self.expect(")", "')'")
            return _Node("paren", t.start, close.end, "(", (inner,))
        if self.at("."):
            self.take()
            return _Node("dot", t.start, t.end, ".")
        if t.kind == "end":
            raise _syntax(self.src, "it ends where a term is expected")
        raise _syntax(self.src, f"{t.text!r} is not expected here")

    def _skip_call(self) -> tuple[int, tuple]:
        """A function call's arguments, skipped with their parentheses; returns the end
        and the first name among the arguments (as a node, for the nearest formula)."""
        depth = 0
        first: tuple = ()
        while True:
            t = self.take()
            if t.kind == "end":
                raise _syntax(self.src, "a '(' is not closed")
            if t.kind == "op" and t.text == "(":
                depth += 1
            elif t.kind == "op" and t.text == ")":
                depth -= 1
                if depth == 0:
                    return t.end, first
            elif t.kind == "name" and not first:
                first = (_Node("name", t.start, t.end, t.text),)


# --------------------------------------------------------------------------------------
# From the tree to one of the three models


@dataclass
class _Seen:
    """What a formula asks for, gathered term by term (for the model or the nearest one)."""

    y: str | None = None
    fixed: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    slopes: list[str] = field(default_factory=list)


def parse_formula(text: str) -> Formula:
    """One of the three models, or a FormulaError naming the part that cannot be fitted."""
    src = str(text)
    if not src.strip():
        raise FormulaError(
            "the formula is empty; write it as lme4 does, e.g. 'y ~ x + (x | cluster)'"
        )
    lhs, rhs = _Parser(src).formula()
    seen = _Seen()
    problems: list[tuple[_Node, str]] = []
    if lhs is None:
        raise FormulaError(
            f"formula {_show(src)} has no response before '~'; write it as 'y ~ x + (x | g)'"
        )
    lhs = _unwrap(lhs)
    if lhs.kind == "name":
        seen.y = lhs.text
    else:
        problems.append((lhs, _why(lhs, response=True)))
        seen.y = _first_name(lhs)
    if rhs.kind == "bar":
        raise FormulaError(
            f"formula {_show(src)}: the random-effect term {_part(src, rhs)} needs parentheses, "
            f"as lme4 requires; nearest supported formula: {_nearest(_gather(rhs, seen))}"
        )
    bars: list[_Node] = []
    for sign, node in _terms(rhs):
        if node.kind == "bar":
            if sign < 0:
                problems.append((node, "a random-effect term cannot be subtracted"))
            bars.append(node)
        elif node.kind == "num" and _number(node.text) in (0.0, 1.0):
            if sign < 0 or _number(node.text) == 0.0:
                why = "a model without a fixed intercept (0 + or - 1) is not fitted"
                problems.append((_signed(node, sign), why))
        elif node.kind == "name" and sign > 0:
            if node.text not in seen.fixed:
                seen.fixed.append(node.text)
                if len(seen.fixed) == 2:
                    problems.append(
                        (
                            node,
                            "a second predictor; shrink fits one predictor and one grouping factor",
                        )  # fmt: skip
                    )
        elif node.kind == "name":
            problems.append((node, "terms cannot be removed with '-'"))
        else:
            problems.append((node, _why(node)))
            name = _first_name(node)
            if name and name not in seen.fixed and name != seen.y:
                seen.fixed.append(name)
    for bar in bars:
        _bar_term(src, bar, seen, problems)
    if len(bars) > 1:
        problems.append((bars[1], "a second random-effect term; shrink fits one grouping factor"))
    if not bars and not problems:
        raise FormulaError(
            f"formula {_show(src)} has no random-effect term such as (1 | g), so it is no mixed "
            f"model; nearest supported formula: {_nearest(seen)}"
        )
    x = seen.fixed[0] if seen.fixed else None
    slope = seen.slopes[0] if seen.slopes else None
    if not problems and slope is not None and slope != x:
        where = next(b for b in bars)
        if x is None:
            why = f"a random slope for {slope!r} needs {slope!r} among the fixed effects too"
        else:
            why = f"a random slope for {slope!r} with a fixed slope for {x!r}: two predictors"
        problems.append((where, why))
    if problems:
        node, why = problems[0]
        raise FormulaError(
            f"formula {_show(src)}: cannot fit {_part(src, node)}: {why}; nearest supported "
            f"formula: {_nearest(seen)}"
        )
    formula = Formula(seen.y or "y", x, seen.groups[0], slope is not None)
    _check_roles(src, formula)
    return formula


def _bar_term(src: str, bar: _Node, seen: _Seen, problems: list) -> None:
    """(lhs | g): the random intercept (always) and at most one random slope."""
    left, right = bar.kids
    group = _unwrap(right)
    if group.kind == "name":
        if group.text not in seen.groups:
            seen.groups.append(group.text)
    else:
        name = _first_name(group)
        if name and name not in seen.groups:
            seen.groups.append(name)
        nested = group.kind == "op" and group.text in (":", "/", "%in%", "*")
        why = "nested or crossed grouping factors are not fitted" if nested else "not a column"
        problems.append((group, f"{why}; group by one column"))
    if bar.text == "||":
        problems.append(
            (
                bar,
                "uncorrelated random effects (||) are not fitted; shrink estimates the "
                "correlation: use |",
            )  # fmt: skip
        )
    intercept = True
    for sign, node in _terms(left):
        if node.kind == "num" and _number(node.text) in (0.0, 1.0):
            if sign < 0 or _number(node.text) == 0.0:
                intercept = False
                why = (
                    "a random slope without a random intercept (0 + x or x - 1 inside the bar) "
                    "is not fitted"
                )
                problems.append((_signed(node, sign), why))
        elif node.kind == "name" and sign > 0:
            if node.text not in seen.slopes:
                seen.slopes.append(node.text)
                if len(seen.slopes) == 2:
                    problems.append((node, "a second random slope; shrink fits one predictor"))
        else:
            problems.append((node, _why(node)))
    if not intercept and not seen.slopes:
        seen.slopes.append("x")


def _check_roles(src: str, f: Formula) -> None:
    """The response, the predictor and the grouping factor must be three columns."""
    if f.x is not None and f.x == f.y:
        why = f"the response {f.y!r} is also the predictor"
    elif f.cluster in (f.y, f.x):
        role = "response" if f.cluster == f.y else "predictor"
        why = f"the grouping factor {f.cluster!r} is also the {role}"
    else:
        return
    raise FormulaError(f"formula {_show(src)}: {why}; name three different columns")


def _gather(node: _Node, seen: _Seen) -> _Seen:
    """What an unparenthesised bar asks for, for the nearest formula."""
    left, right = node.kids
    for _, n in _terms(left):
        if n.kind == "name" and n.text not in seen.fixed:
            seen.fixed.append(n.text)
    name = _first_name(right)
    if name:
        seen.groups.append(name)
    return seen


def _terms(node: _Node, sign: int = 1):
    """The signed terms of a sum, parentheses around sums removed."""
    if node.kind == "op" and node.text in "+-":
        left, right = node.kids
        yield from _terms(left, sign)
        yield from _terms(right, sign if node.text == "+" else -sign)
    elif node.kind in ("neg", "pos"):
        yield from _terms(node.kids[0], -sign if node.kind == "neg" else sign)
    elif node.kind == "paren" and node.kids[0].kind != "bar":
        yield from _terms(node.kids[0], sign)
    elif node.kind == "paren":  # a bar term, quoted with its parentheses
        yield sign, _Node("bar", node.start, node.end, node.kids[0].text, node.kids[0].kids)
    else:
        yield sign, node


def _unwrap(node: _Node) -> _Node:
    while node.kind == "paren":
        node = node.kids[0]
    return node


def _first_name(node: _Node) -> str | None:
    if node.kind == "name":
        return node.text
    for kid in node.kids:
        name = _first_name(kid)
        if name:
            return name
    return None


def _why(node: _Node, *, response: bool = False) -> str:
    """Why a term is not fitted, and what to do instead."""
    if node.kind == "call":
        if node.text == "offset":
            return "offsets are not fitted"
        what = "the response" if response else "a column"
        return f"a function of {what} is not fitted; make it a column of its own and name that"
    if response:
        return "the response must be one column"
    if node.kind == "op":
        if node.text in ("*", ":", "^"):
            return "interactions are not fitted; shrink fits one predictor"
        if node.text == "/" or node.text == "%in%":
            return "nested terms are not fitted; shrink fits one predictor"
        return f"the operator {node.text} is not fitted"
    if node.kind == "num":
        return "numbers other than 1 (the intercept) and 0 are not terms"
    if node.kind == "dot":
        return "'.' (every other column) is not fitted; name one predictor"
    if node.kind == "paren":
        return "this term is not fitted"
    return "this term is not fitted"


def _nearest(seen: _Seen) -> str:
    """The supported formula closest to what was asked: its first response, predictor and
    grouping factor, with a random slope if one was asked for."""
    y = seen.y or "y"
    x = (seen.fixed or seen.slopes or [None])[0]
    g = (seen.groups or ["g"])[0]
    x = x if x not in (y, g) else None
    return str(Formula(y, x, g, bool(seen.slopes) and x is not None))


def _number(text: str) -> float:
    try:
        return float(text.rstrip("L"))
    except ValueError:
        return float("nan")


def _show(src: str) -> str:
    src = " ".join(src.split())
    return repr(src if len(src) <= SHOWN else src[: SHOWN - 1] + "…")


def _part(src: str, node: _Node | str) -> str:
    text = node if isinstance(node, str) else src[node.start : node.end]
    return repr(" ".join(text.split()))


def _signed(node: _Node, sign: int) -> str:
    """A number term as the user removed or added it: '- 1', '0'."""
    return f"- {node.text}" if sign < 0 else node.text


def _syntax(src: str, why: str) -> FormulaError:
    return FormulaError(
        f"formula {_show(src)} cannot be read: {why}; write it as lme4 does, "
        "e.g. 'y ~ x + (x | cluster)'"
    )


# --------------------------------------------------------------------------------------
# The formula among a run's other values (command-line flags and scenario keys)

FORMULA_OPTIONS = {"y": "--formula", "x": "--formula", "cluster": "--formula"}
SIMULATED = {"y": "y", "x": "x", "cluster": "cluster"}  # the simulated data's columns


def as_formula(formula: Formula | str | None) -> Formula | None:
    """A Formula from a Formula, the text of one, or None (the default full model)."""
    if formula is None or isinstance(formula, Formula):
        return formula
    return parse_formula(formula)


def check_formula_engine(formula: Formula | None, engine: str) -> None:
    """Only shrink's own engine fits the random-intercept models."""
    if formula is not None and not formula.random_slope and engine != "shrink":
        raise UsageError(
            f"--engine {engine} fits only y ~ x + (x | g); fit {formula} with --engine shrink"
        )


def check_model(values: dict, *, drawing: bool = True) -> Formula | None:
    """The run's formula (None without one), checked against its other values before
    any work: column flags that name the columns again, an engine that fits only the
    full model, names the simulated data do not have (``drawing``: kept for callers; the
    random-intercept picture is drawn, shrinkcli.strip checks what it cannot show)."""
    formula = as_formula(values.get("formula"))
    if formula is None:
        return None
    named = [k for k in ("y", "x", "cluster") if values.get(k) is not None]
    if named:
        raise UsageError(
            f"--formula names the columns, and --{named[0]} names one too; give the formula alone"
        )
    check_formula_engine(formula, values.get("engine") or "shrink")
    if values.get("data") is None:
        for role, name in formula.columns().items():
            if name is not None and name != SIMULATED[role]:
                raise UsageError(
                    f"--formula names column {name!r}, which the simulated data do not have "
                    "(their columns are y, x and cluster); give --data FILE.csv too"
                )
    return formula
