"""Formula parsing (fixed part + group terms) and design matrices."""

import numpy as np
import pandas as pd
import pytest

from hssm_torch.formula import build_design, parse_formula


@pytest.fixture
def df():
    rng = np.random.default_rng(0)
    n = 12
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": rng.uniform(1, 2, size=n),
            "cond": list("abc") * 4,
            "participant_id": np.repeat([3, 1, 2], 4),
            "session": [1, 2] * 6,
        }
    )


def test_parse_splits_fixed_and_group_terms():
    p = parse_formula("v ~ 1 + x + (1|participant_id) + (0 + x|g1:g2)", param="v")
    assert p.fixed == "1 + x"
    assert [(g.expr, g.factor) for g in p.groups] == [("1", "participant_id"), ("0 + x", "g1:g2")]
    assert p.groups[1].factors == ("g1", "g2")


def test_parse_group_only_formula_keeps_intercept_and_expands_nesting():
    p = parse_formula("v ~ (1|g1/g2)", param="v")
    assert p.fixed == "1"
    assert [g.label for g in p.groups] == ["1|g1", "1|g1:g2"]


@pytest.mark.parametrize(
    "formula, match",
    [
        ("a ~ 1 + x", "left-hand side names 'a'"),
        ("v ~ 1 + (1|g", "unbalanced"),
        ("v ~ 1 + (1|g-h)", "group factor"),
        ("v ~ 1 + (1|g) + (1|g)", "repeated"),
        ("v ~ ", "empty right-hand side"),
        ("v ~ 1 + + x", "empty term"),
    ],
)
def test_parse_errors(formula, match):
    with pytest.raises(ValueError, match=match):
        parse_formula(formula, param="v")


def test_fixed_design_names_and_columns(df):
    d = build_design(parse_formula("v ~ 1 + x + C(cond) + np.log(y)", "v"), df)
    assert [t.name for t in d.fixed_terms] == ["v_Intercept", "v_x", "v_C(cond)", "v_np.log(y)"]
    cond = d.fixed_terms[2]
    assert cond.columns == ("C(cond)[T.b]", "C(cond)[T.c]") and cond.dim == "v_C(cond)_dim"
    np.testing.assert_allclose(d.X[:, 1], df["x"])
    np.testing.assert_allclose(d.X[:, 4], np.log(df["y"]))
    np.testing.assert_array_equal(d.X[:, 2], (df["cond"] == "b").astype(float))


def test_no_intercept_full_dummy_coding(df):
    d = build_design(parse_formula("a ~ 0 + C(cond)", "a"), df)
    assert not d.has_intercept
    assert d.X.shape == (12, 3)
    np.testing.assert_array_equal(d.X.sum(1), np.ones(12))


def test_group_codes_are_integer_level_indices(df):
    d = build_design(parse_formula("v ~ 1 + (1|participant_id)", "v"), df)
    g = d.groups[0]
    assert g.name == "v_1|participant_id"
    assert g.levels == ("1", "2", "3")  # numeric order
    np.testing.assert_array_equal(g.codes, np.repeat([2, 0, 1], 4))
    np.testing.assert_array_equal(g.Z[:, 0], np.ones(12))


def test_slope_term_implies_intercept_like_lme4(df):
    d = build_design(parse_formula("v ~ x + (x|participant_id)", "v"), df)
    assert [g.name for g in d.groups] == ["v_1|participant_id", "v_x|participant_id"]
    np.testing.assert_allclose(d.groups[1].Z[:, 0], df["x"])
    d0 = build_design(parse_formula("v ~ x + (0 + x|participant_id)", "v"), df)
    assert [g.name for g in d0.groups] == ["v_x|participant_id"]


def test_nested_and_crossed_groups(df):
    d = build_design(parse_formula("v ~ 1 + (1|participant_id:session) + (1|session)", "v"), df)
    nested, crossed = d.groups
    assert nested.factor == "participant_id:session" and len(nested.levels) == 6
    pairs = df["participant_id"].astype(str) + ":" + df["session"].astype(str)
    assert [nested.levels[c] for c in nested.codes] == pairs.tolist()
    assert crossed.levels == ("1", "2")


def test_categorical_group_slope_has_expr_dim(df):
    d = build_design(parse_formula("v ~ 1 + (0 + C(cond)|participant_id)", "v"), df)
    g = d.groups[0]
    assert g.name == "v_C(cond)|participant_id"
    assert g.Z.shape == (12, 3) and g.expr_dim == "C(cond)__expr_dim"


def test_missing_column_is_named(df):
    with pytest.raises(ValueError, match=r"column\(s\) \['nope'\] not found"):
        build_design(parse_formula("v ~ 1 + nope", "v"), df)
    with pytest.raises(ValueError, match=r"\['subject'\] not found"):
        build_design(parse_formula("v ~ 1 + (1|subject)", "v"), df)


def test_single_level_group_is_rejected(df):
    df = df.assign(one=7)
    with pytest.raises(ValueError, match="group factor 'one' has a single level"):
        build_design(parse_formula("v ~ 1 + (1|one)", "v"), df)


def test_encode_new_data_like_training(df):
    d = build_design(parse_formula("v ~ 1 + C(cond) + (1|participant_id)", "v"), df)
    new = df.iloc[[5, 0]].reset_index(drop=True)
    e = d.encode(new)
    np.testing.assert_array_equal(e.X, d.X[[5, 0]])
    np.testing.assert_array_equal(e.groups[0].codes, d.groups[0].codes[[5, 0]])
    one_level = df.iloc[[0]]  # only level "a": still coded with all three levels
    assert d.encode(one_level).X.shape == (1, 3)
    unseen = new.assign(participant_id=99)
    with pytest.raises(ValueError, match="levels not seen"):
        d.encode(unseen)
    # unseen group levels are appended after the fitted ones (their effects are drawn)
    g = d.encode(unseen, allow_new_levels=True).groups[0]
    assert g.new_levels == ("99",) and (g.codes == len(g.levels)).all()
    with pytest.raises(ValueError, match=r"column 'cond' has level\(s\) \['zz'\]"):
        d.encode(new.assign(cond="zz"))


def test_encode_keeps_stateful_transforms(df):
    """center(x) uses the training mean on new data (formulaic's ModelSpec state)."""
    d = build_design(parse_formula("v ~ 1 + center(x)", "v"), df)
    new = pd.DataFrame({"x": [float(df["x"].mean()) + 1.0]})
    np.testing.assert_allclose(d.encode(new).X, [[1.0, 1.0]])
