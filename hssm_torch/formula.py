"""Regression formulas with group (random-effects) terms, and their design matrices.

The fixed part of a formula goes through formulaic (numeric columns, ``C(...)``,
interactions, transforms, ``0 +``); formulaic has no ``(x | g)`` grammar, so group terms are
parsed here and built as an expression matrix (formulaic again) plus an integer code per
trial for the group level (no dummy matrices). Nothing here knows about Pyro.

Supported group terms (lme4/Bambi semantics: an intercept is implied unless ``0 +``)::

    (1|g)          group intercepts
    (1 + x|g)      intercepts and slopes, independent standard deviations
    (x|g)          the same as (1 + x|g)
    (0 + x|g)      slopes only
    (1|g1:g2)      one level per observed (g1, g2) combination (nested factors)
    (1|g1/g2)      shorthand for (1|g1) + (1|g1:g2)
    (1|g1) + (1|g2) crossed factors

Variable names follow Bambi/HSSM: ``v_Intercept``, ``v_x``, ``v_1|participant_id``,
``v_x|participant_id`` (and ``_sigma``/``_offset`` suffixes added by the model).

Example
-------
>>> import pandas as pd
>>> f = parse_formula("v ~ 1 + x + (1|participant_id)", param="v")
>>> f.fixed, [g.label for g in f.groups]
('1 + x', ['1|participant_id'])
>>> df = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "participant_id": [0, 0, 1, 1]})
>>> design = build_design(f, df)
>>> [t.name for t in design.fixed_terms], [g.name for g in design.groups]
(['v_Intercept', 'v_x'], ['v_1|participant_id'])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from formulaic import Formula
from formulaic.errors import FormulaicError

__all__ = [
    "FixedTerm",
    "GroupDesign",
    "GroupTerm",
    "ParamDesign",
    "ParsedFormula",
    "build_design",
    "parse_formula",
]

_FACTOR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class GroupTerm:
    """One ``(expr | factor)`` term of a formula.

    Attributes
    ----------
    expr : str
        The expression left of ``|`` (e.g. ``"1"``, ``"1 + x"``, ``"0 + x"``).
    factor : str
        The grouping factor right of ``|``; ``"g1:g2"`` for an interaction of columns.
    """

    expr: str
    factor: str

    @property
    def factors(self) -> tuple[str, ...]:
        """The data columns that define the groups."""
        return tuple(self.factor.split(":"))

    @property
    def label(self) -> str:
        """``"expr|factor"`` as written (whitespace removed)."""
        return f"{self.expr.replace(' ', '')}|{self.factor}"


@dataclass(frozen=True)
class ParsedFormula:
    """A formula split into its fixed part (for formulaic) and its group terms."""

    param: str
    fixed: str
    groups: tuple[GroupTerm, ...]
    source: str


def _split_top(text: str, sep: str) -> list[str]:
    """Split ``text`` on ``sep`` outside parentheses/brackets."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise ValueError(f"formula: unbalanced ')' in {text!r}")
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise ValueError(f"formula: unbalanced '(' in {text!r}")
    parts.append("".join(cur))
    return parts


def _wrapped(piece: str) -> bool:
    """True when ``piece`` is one parenthesised group ``( ... )``."""
    if not (piece.startswith("(") and piece.endswith(")")):
        return False
    depth = 0
    for i, ch in enumerate(piece):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(piece) - 1:
            return False
    return True


def parse_formula(
    formula: str, param: str | None = None, *, check_lhs: bool = True
) -> ParsedFormula:
    """Split ``"v ~ 1 + x + (1|g)"`` into a fixed part and group terms.

    Parameters
    ----------
    formula : str
        ``"<param> ~ <rhs>"`` (or just ``"<rhs>"`` when ``param`` is given).
    param : str, optional
        The parameter the formula is for; the left-hand side must name it when
        ``check_lhs`` (``global_formula`` passes ``check_lhs=False``).

    Returns
    -------
    ParsedFormula

    Examples
    --------
    >>> p = parse_formula("a ~ 0 + C(cond) + (0 + x|g1:g2)", param="a")
    >>> p.fixed, p.groups[0].expr, p.groups[0].factors
    ('0 + C(cond)', '0 + x', ('g1', 'g2'))
    """
    if not isinstance(formula, str) or not formula.strip():
        raise ValueError(f"formula: expected a non-empty string, got {formula!r}")
    lhs, sep, rhs = formula.partition("~")
    if not sep:
        if param is None:
            raise ValueError(f"formula {formula!r}: expected '<parameter> ~ <terms>'")
        lhs, rhs = param, formula
    lhs, rhs = lhs.strip(), rhs.strip()
    if param is not None and check_lhs and lhs != param:
        raise ValueError(
            f"formula {formula!r}: the left-hand side names {lhs!r} but the formula is given "
            f"for parameter {param!r}"
        )
    if not rhs:
        raise ValueError(f"formula {formula!r}: empty right-hand side")
    fixed: list[str] = []
    groups: list[GroupTerm] = []
    for raw in _split_top(rhs, "+"):
        piece = raw.strip()
        if not piece:
            raise ValueError(f"formula {formula!r}: empty term (check the '+' signs)")
        if _wrapped(piece) and len(_split_top(piece[1:-1], "|")) > 1:
            parts = _split_top(piece[1:-1], "|")
            if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
                raise ValueError(
                    f"formula {formula!r}: group term {piece!r} must read '(expr | factor)'"
                )
            expr, factor = parts[0].strip(), parts[1].replace(" ", "")
            nested = factor.split("/")
            for name in ":".join(nested).split(":"):
                if not _FACTOR_RE.match(name):
                    raise ValueError(
                        f"formula {formula!r}: group factor {factor!r} must be column names "
                        "joined by ':' (nested) or '/' (g1/g2 = g1 + g1:g2)"
                    )
            for i in range(len(nested)):
                groups.append(GroupTerm(expr, ":".join(nested[: i + 1])))
        else:
            fixed.append(piece)
    labels = [g.label for g in groups]
    if len(set(labels)) != len(labels):
        raise ValueError(f"formula {formula!r}: a group term is repeated ({labels})")
    return ParsedFormula(
        param=param if param is not None else lhs,
        fixed=" + ".join(fixed) if fixed else "1",
        groups=tuple(groups),
        source=formula,
    )


@dataclass(frozen=True)
class FixedTerm:
    """One fixed-effect term: its variable name and its columns in the design matrix."""

    name: str
    label: str
    columns: tuple[str, ...]
    start: int
    stop: int

    @property
    def is_intercept(self) -> bool:
        return self.label == "Intercept"

    @property
    def dim(self) -> str | None:
        """Name of the vector dimension for multi-column terms (``None`` when scalar)."""
        return f"{self.name}_dim" if len(self.columns) > 1 else None


@dataclass
class GroupDesign:
    """One group variable: expression columns ``Z`` and a level code per trial."""

    name: str
    label: str
    factor: str
    columns: tuple[str, ...]
    levels: tuple[str, ...]
    codes: np.ndarray
    Z: np.ndarray
    expr_spec: Any = field(repr=False)
    term_slice: slice = field(default_factory=lambda: slice(0, 1))
    new_levels: tuple[str, ...] = ()

    @property
    def factor_dim(self) -> str:
        return f"{self.factor}__factor_dim"

    @property
    def expr_dim(self) -> str | None:
        return f"{self.label.split('|')[0]}__expr_dim" if len(self.columns) > 1 else None

    @property
    def is_intercept(self) -> bool:
        return self.label.split("|")[0] == "1"


@dataclass
class ParamDesign:
    """Design of one regression parameter: fixed matrix ``X`` and group designs."""

    param: str
    formula: ParsedFormula
    X: np.ndarray
    fixed_terms: tuple[FixedTerm, ...]
    groups: tuple[GroupDesign, ...]
    fixed_spec: Any = field(repr=False)

    @property
    def n_obs(self) -> int:
        return int(self.X.shape[0])

    @property
    def has_intercept(self) -> bool:
        return any(t.is_intercept for t in self.fixed_terms)

    def encode(self, data: pd.DataFrame, allow_new_levels: bool = False) -> ParamDesign:
        """Encode new data exactly like the training data (same columns, same levels).

        The fixed part and the group expressions go through the ModelSpecs kept from the
        training data (same categorical levels, contrasts and stateful transforms). A level of
        a categorical *fixed-effect* factor that was not seen when fitting raises
        ``ValueError`` naming the column and the level (formulaic would encode it as all
        zeros). Group levels absent from the training data are appended after the fitted
        ones: with ``allow_new_levels`` they get codes ``len(levels) + j`` in the order of
        ``GroupDesign.new_levels`` (the caller draws their effects from the group
        distribution); otherwise they raise ``ValueError``.

        Example
        -------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "g": ["a", "a", "b", "b"]})
        >>> d = build_design(parse_formula("v ~ x + (1|g)", "v"), df)
        >>> new = d.encode(pd.DataFrame({"x": [5.0], "g": ["c"]}), allow_new_levels=True)
        >>> new.groups[0].codes.tolist(), new.groups[0].new_levels
        ([2], ('c',))
        """
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
        _check_columns(self.formula, data)
        X = _as_array(_materialise_checked(self.fixed_spec, data, self.formula.source))
        groups = []
        for g in self.groups:
            for f in g.factor.split(":"):
                if data[f].isna().any():
                    raise ValueError(f"data: group column {f!r} has missing values")
            Z = _as_array(_materialise_checked(g.expr_spec, data, self.formula.source))
            Z = Z[:, g.term_slice]
            labels = _group_labels(data, g.factor.split(":"))
            index = {lvl: i for i, lvl in enumerate(g.levels)}
            unseen = [lbl for lbl in labels if lbl not in index]
            new_levels: tuple[str, ...] = ()
            if unseen:
                if not allow_new_levels:
                    shown = sorted(set(unseen))[:5]
                    raise ValueError(
                        f"data: column(s) {g.factor!r} hold levels not seen when fitting: {shown}"
                    )
                sub = data.loc[[lbl not in index for lbl in labels]]
                new_levels = _level_order(sub, g.factor.split(":"), unseen)
                for j, lvl in enumerate(new_levels):
                    index[lvl] = len(g.levels) + j
            codes = np.array([index[lbl] for lbl in labels], dtype=np.int64)
            groups.append(replace(g, codes=codes, Z=Z, new_levels=new_levels))
        return replace(self, X=X, groups=tuple(groups))


def _categorical_column(factor: str, data: pd.DataFrame) -> str | None:
    """The data column a categorical factor reads as is (``c`` or ``C(c, ...)``), if any."""
    if factor in data.columns:
        return factor
    m = re.match(r"^C\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(,.*)?\)$", factor)
    if m and m.group(1) in data.columns:
        return m.group(1)
    return None


def _check_categories(spec: Any, data: pd.DataFrame, source: str) -> None:
    """Raise ``ValueError`` for categorical levels the ModelSpec did not see when fitting."""
    for factor, (kind, state) in getattr(spec, "encoder_state", {}).items():
        if getattr(kind, "value", kind) != "categorical" or "categories" not in state:
            continue
        col = _categorical_column(str(factor), data)
        if col is None:
            continue
        known = list(state["categories"])
        values = data[col]
        inside = values.isin(known)
        if not inside.all():
            unknown = sorted({str(v) for v in values[~inside].tolist()})[:5]
            raise ValueError(
                f"formula {source!r}: column {col!r} has level(s) {unknown} not seen when "
                f"fitting (fitted levels: {[str(k) for k in known]}); a fixed-effect "
                "categorical cannot predict for an unseen level"
            )


def _materialise_checked(spec: Any, data: pd.DataFrame, source: str):
    """``spec.get_model_matrix(data)`` refusing unseen categorical levels (never zeros)."""
    import warnings

    _check_categories(spec, data, source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mm = _materialise(spec, data, source)
    for w in caught:
        if w.category.__name__ == "DataMismatchWarning":
            raise ValueError(f"formula {source!r}: {w.message}")
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return mm


def _materialise(spec_or_formula: Any, data: pd.DataFrame, source: str):
    try:
        if isinstance(spec_or_formula, str):
            return Formula(spec_or_formula).get_model_matrix(data, na_action="raise")
        return spec_or_formula.get_model_matrix(data, na_action="raise")
    except FormulaicError as err:
        raise ValueError(f"formula {source!r}: {err}") from None


def _as_array(mm) -> np.ndarray:
    return np.asarray(mm, dtype=np.float64)


def _check_columns(parsed: ParsedFormula, data: pd.DataFrame) -> None:
    needed: set[str] = set()
    for expr in [parsed.fixed, *(g.expr for g in parsed.groups)]:
        try:
            needed |= set(Formula(expr).required_variables)
        except FormulaicError as err:
            raise ValueError(f"formula {parsed.source!r}: cannot parse {expr!r}: {err}") from None
    needed = {n for n in needed if n not in ("np", "pd", "C")}
    for g in parsed.groups:
        needed |= set(g.factors)
    missing = sorted(n for n in needed if n not in data.columns)
    if missing:
        raise ValueError(
            f"formula {parsed.source!r}: column(s) {missing} not found in data; data has "
            f"{list(data.columns)}"
        )


def _group_labels(data: pd.DataFrame, factors: list[str]) -> list[str]:
    cols = [data[f].astype(str).to_numpy() for f in factors]
    if len(cols) == 1:
        return list(cols[0])
    return [":".join(parts) for parts in zip(*cols)]


def _level_order(data: pd.DataFrame, factors: list[str], labels: list[str]) -> tuple[str, ...]:
    """Levels in sorted order of the underlying values (numbers sort numerically)."""
    sub = data[factors].drop_duplicates()
    try:
        sub = sub.sort_values(factors, kind="mergesort")
    except TypeError:
        sub = sub.astype(str).sort_values(factors, kind="mergesort")
    ordered = _group_labels(sub, factors)
    seen = set(labels)
    return tuple(lbl for lbl in ordered if lbl in seen)


def _term_label(term) -> str:
    text = str(term)
    return "Intercept" if text == "1" else text


def build_design(parsed: ParsedFormula, data: pd.DataFrame) -> ParamDesign:
    """Build the design matrices of a parsed formula on ``data``.

    Raises ``ValueError`` naming missing columns, missing values in used columns, or a group
    factor with fewer than two levels.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [0.1, 0.2, 0.3, 0.4], "g": ["a", "a", "b", "b"]})
    >>> d = build_design(parse_formula("v ~ x + (x|g)", "v"), df)
    >>> d.X.shape, [g.name for g in d.groups], d.groups[0].codes.tolist()
    ((4, 2), ['v_1|g', 'v_x|g'], [0, 0, 1, 1])
    """
    _check_columns(parsed, data)
    mm = _materialise(parsed.fixed, data, parsed.source)
    X = _as_array(mm)
    columns = list(mm.columns)
    terms = []
    for term, sl in mm.model_spec.term_slices.items():
        label = _term_label(term)
        terms.append(
            FixedTerm(f"{parsed.param}_{label}", label, tuple(columns[sl]), sl.start, sl.stop)
        )
    groups: list[GroupDesign] = []
    for g in parsed.groups:
        for f in g.factors:
            if data[f].isna().any():
                raise ValueError(f"data: group column {f!r} has missing values")
        labels = _group_labels(data, list(g.factors))
        levels = _level_order(data, list(g.factors), labels)
        if len(levels) < 2:
            raise ValueError(
                f"formula {parsed.source!r}: group factor {g.factor!r} has a single level "
                f"({levels[0] if levels else 'none'}); a group term needs at least 2 levels"
            )
        index = {lvl: i for i, lvl in enumerate(levels)}
        codes = np.array([index[lbl] for lbl in labels], dtype=np.int64)
        emm = _materialise(g.expr, data, parsed.source)
        E = _as_array(emm)
        ecols = list(emm.columns)
        for term, sl in emm.model_spec.term_slices.items():
            label = _term_label(term)
            expr_label = "1" if label == "Intercept" else label
            glabel = f"{expr_label}|{g.factor}"
            groups.append(
                GroupDesign(
                    name=f"{parsed.param}_{glabel}",
                    label=glabel,
                    factor=g.factor,
                    columns=tuple(ecols[sl]),
                    levels=levels,
                    codes=codes,
                    Z=E[:, sl],
                    expr_spec=emm.model_spec,
                    term_slice=sl,
                )
            )
    names = [t.name for t in terms] + [g.name for g in groups]
    if len(set(names)) != len(names):
        raise ValueError(f"formula {parsed.source!r}: duplicated terms {names}")
    return ParamDesign(parsed.param, parsed, X, tuple(terms), tuple(groups), mm.model_spec)
