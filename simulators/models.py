"""Built-in models of the registry.

Names, parameter order, bounds, defaults and choices follow ssm-simulators 0.15
(``ssms.config.model_config``) and HSSM 0.5's default model configurations. Where the
two disagree, or where a source entry is inconsistent, the entry's ``notes`` say which
we follow and why; :data:`DEPARTURES` lists the same in machine-readable form for the
tests that compare the registry against both sources.
"""

from __future__ import annotations

import math

from simulators.registry import ModelSpec, ParamSpec, register_model

__all__ = ["DEPARTURES", "register_builtin_models"]

INF = math.inf
HALF_PI = math.pi / 2

#: (model, source, field) -> why we depart from that source.  source is "ssm" or "hssm".
DEPARTURES: dict[tuple[str, str, str], str] = {
    ("racing_diffusion_3", "ssm", "order"): (
        "parameter order follows HSSM (A, b, v0, v1, v2, t), the order of its analytical "
        "likelihood that fits use; ssm-simulators orders v0, v1, v2, A, b, t"
    ),
    ("ddm", "hssm", "bounds"): (
        "z box [0.1, 0.9] follows ssm-simulators (the box HSSM's ddm network was trained on); "
        "HSSM's approx_differentiable config says [0, 1]"
    ),
    ("ddm_sdv", "hssm", "bounds"): (
        "t and sv boxes start at 0.001 as in ssm-simulators; HSSM's network config says 0"
    ),
    ("full_ddm", "hssm", "support"): (
        "sz is a relative width, so its support is (0, 1); HSSM's blackbox config says [0, inf)"
    ),
    ("ddm_par2_weibull_no_bias", "ssm", "default"): (
        "ssm-simulators' default alpha = 0.0 lies outside its own bounds [0.31, 4.99]; "
        "we use 2.5 as in the seq2/mic2 weibull variants"
    ),
    ("lba2", "ssm", "params"): "adds an optional trailing non-decision time t (default 0)",
    ("lba3", "ssm", "params"): "adds an optional trailing non-decision time t (default 0)",
    ("lba4", "ssm", "params"): "adds an optional trailing non-decision time t (default 0)",
}

REF_DDM = (
    "Ratcliff (1978) Psychol. Rev. 85:59; density: Navarro & Fuss (2009) J. Math. Psychol. 53:222"
)
REF_LAN = "Fengler, Govindarajan, Chen & Frank (2021) eLife 10:e65074"
REF_HDDM2 = "Fengler, Bera, Pedersen & Frank (2022) J. Cogn. Neurosci. 34:1780"


def P(name, lower, upper, default, support=None, optional=False, description=""):  # noqa: N802
    return ParamSpec(
        name, float(lower), float(upper), float(default), support, optional, description
    )


# Parameter factories with their supports and meanings.
def _v(lo=-3.0, hi=3.0, d=0.0, name="v"):
    return P(name, lo, hi, d, (-INF, INF), description="drift rate")


def _a(lo=0.3, hi=2.5, d=1.0):
    return P("a", lo, hi, d, (0.0, INF), description="half the boundary separation")


def _z(lo=0.1, hi=0.9, d=0.5, name="z"):
    return P(name, lo, hi, d, (0.0, 1.0), description="relative starting point")


def _t(lo=0.0, hi=2.0, d=0.001, optional=False):
    return P("t", lo, hi, d, (0.0, INF), optional, "non-decision time (s)")


def _theta(lo=-0.1, hi=1.3, d=0.0):
    return P("theta", lo, hi, d, (-HALF_PI, HALF_PI), description="boundary collapse angle (rad)")


def _weibull(alpha_d=3.0, beta_d=3.0):
    return (
        P("alpha", 0.31, 4.99, alpha_d, (0.0, INF), description="Weibull collapse shape"),
        P("beta", 0.31, 6.99, beta_d, (0.0, INF), description="Weibull collapse scale"),
    )


def _vs(n, lo=0.0, hi=2.5, d=0.0, support=(0.0, INF)):
    return tuple(
        P(f"v{i}", lo, hi, d, support, description=f"drift of accumulator {i}") for i in range(n)
    )


def _zs(n):
    return tuple(
        P(f"z{i}", 0.0, 0.9, 0.5, (0.0, 1.0), description=f"relative start of accumulator {i}")
        for i in range(n)
    )


def _builtin() -> list[ModelSpec]:
    two = (-1, 1)
    specs: list[ModelSpec] = []
    add = specs.append

    # ---- single-accumulator Wiener diffusions -------------------------------------------
    add(
        ModelSpec(
            "ddm",
            (_v(), _a(), _z(), _t()),
            two,
            "ddm",
            "Drift diffusion model (Wiener first passage, constant bounds)",
            REF_DDM,
            notes=DEPARTURES[("ddm", "hssm", "bounds")],
        )
    )
    add(
        ModelSpec(
            "ddm_sdv",
            (
                _v(),
                _a(),
                _z(),
                _t(0.001),
                P("sv", 0.001, 2.5, 0.001, (0.0, INF), description="sd of the drift across trials"),
            ),
            two,
            "ddm",
            "DDM with normally distributed drift across trials (sv)",
            "Ratcliff & Rouder (1998) Psychol. Sci. 9:347",
            notes=DEPARTURES[("ddm_sdv", "hssm", "bounds")],
        )
    )
    add(
        ModelSpec(
            "full_ddm",
            (
                _v(),
                _a(),
                _z(0.3, 0.7),
                _t(0.25, 2.25, 0.25),
                P(
                    "sz",
                    0.001,
                    0.2,
                    0.001,
                    (0.0, 1.0),
                    description="width of the uniform start-point range (relative)",
                ),
                P("sv", 0.001, 2.0, 0.001, (0.0, INF), description="sd of the drift across trials"),
                P(
                    "st",
                    0.001,
                    0.25,
                    0.001,
                    (0.0, INF),
                    description="width of the uniform non-decision-time range (s)",
                ),
            ),
            two,
            "ddm",
            "DDM with across-trial variability in drift, start point and non-decision time",
            "Ratcliff & Tuerlinckx (2002) Psychon. Bull. Rev. 9:438",
            notes=DEPARTURES[("full_ddm", "hssm", "support")],
        )
    )
    add(
        ModelSpec(
            "ddm_st",
            (
                _v(),
                _a(),
                _z(0.3, 0.7),
                _t(0.25, 2.25, 0.25),
                P(
                    "st",
                    0.001,
                    0.25,
                    0.001,
                    (0.0, INF),
                    description="width of the uniform non-decision-time range (s)",
                ),
            ),
            two,
            "ddm",
            "DDM with uniform variability of the non-decision time (st)",
            "Ratcliff & Tuerlinckx (2002) Psychon. Bull. Rev. 9:438",
        )
    )
    add(
        ModelSpec(
            "angle",
            (_v(), _a(0.3, 3.0), _z(), _t(0.001), _theta()),
            two,
            "ddm",
            "DDM with linearly collapsing bounds b(t) = a - t tan(theta)",
            REF_LAN,
            boundary="angle",
        )
    )
    for name in ("weibull", "weibull_cdf"):
        add(
            ModelSpec(
                name,
                (_v(-2.5, 2.5), _a(), _z(0.2, 0.8), _t(0.001), *_weibull()),
                two,
                "ddm",
                "DDM with Weibull-shaped collapsing bounds b(t) = a exp(-(t/beta)^alpha)",
                f"{REF_LAN}; Hawkins et al. (2015) J. Neurosci. 35:2476",
                boundary="weibull_cdf",
                notes="" if name == "weibull" else "alias of weibull kept for ssm-simulators users",
            )
        )
    gamma = (
        P("shape", 2.0, 10.0, 5.0, (1.0, INF), description="gamma pulse shape"),
        P("scale", 0.01, 1.0, 0.5, (0.0, INF), description="gamma pulse scale (s)"),
        P("c", -3.0, 3.0, 1.0, (-INF, INF), description="peak height of the drift pulse"),
    )
    add(
        ModelSpec(
            "gamma_drift",
            (_v(), _a(0.3, 3.0), _z(), _t(0.001, 2.0, 0.25), *gamma),
            two,
            "ddm",
            "DDM whose drift has a transient gamma-shaped pulse v(t) = v + c g(t)",
            REF_HDDM2,
            drift="gamma_drift",
        )
    )
    add(
        ModelSpec(
            "gamma_drift_angle",
            (_v(), _a(0.3, 3.0), _z(), _t(0.001, 2.0, 0.25), _theta(), *gamma),
            two,
            "ddm",
            "gamma_drift with linearly collapsing bounds",
            REF_HDDM2,
            boundary="angle",
            drift="gamma_drift",
        )
    )

    # ---- Levy flights and Ornstein-Uhlenbeck ---------------------------------------------
    alpha = P(
        "alpha",
        1.0,
        2.0,
        1.5,
        (0.0, 2.0),
        description="stability index of the noise (2 = Gaussian)",
    )
    add(
        ModelSpec(
            "levy",
            (_v(), _a(0.3, 3.0), _z(), alpha, _t(0.001, 2.0, 0.1)),
            two,
            "levy",
            "Levy-flight diffusion: alpha-stable noise, constant bounds",
            "Voss, Lerche, Mertens & Voss (2019) Psychon. Bull. Rev. 26:813",
        )
    )
    add(
        ModelSpec(
            "levy_angle",
            (_v(), _a(0.3, 3.0), _z(), alpha, _t(0.001, 2.0, 0.1), _theta(d=0.01)),
            two,
            "levy",
            "Levy-flight diffusion with linearly collapsing bounds",
            "Voss, Lerche, Mertens & Voss (2019) Psychon. Bull. Rev. 26:813",
            boundary="angle",
        )
    )
    g = P(
        "g",
        -1.0,
        1.0,
        0.0,
        (-INF, INF),
        description="leak (>0) or self-excitation (<0): dx = (v - g x) dt + dW",
    )
    add(
        ModelSpec(
            "ornstein",
            (_v(-2.0, 2.0), _a(0.3, 3.0), _z(), g, _t(0.001)),
            two,
            "ornstein",
            "Ornstein-Uhlenbeck diffusion dx = (v - g x) dt + dW, constant bounds",
            "Busemeyer & Townsend (1993) Psychol. Rev. 100:432",
        )
    )
    add(
        ModelSpec(
            "ornstein_angle",
            (_v(-2.0, 2.0), _a(0.3, 3.0), _z(), g, _t(0.001), _theta(d=0.1)),
            two,
            "ornstein",
            "Ornstein-Uhlenbeck diffusion with linearly collapsing bounds",
            "Busemeyer & Townsend (1993) Psychol. Rev. 100:432",
            boundary="angle",
        )
    )

    # ---- races and LCA -------------------------------------------------------------------
    race_a = P("a", 1.0, 3.0, 2.0, (0.0, INF), description="boundary height of every accumulator")
    race_z = P("z", 0.0, 0.9, 0.5, (0.0, 1.0), description="relative start of every accumulator")
    race_t = _t(0.0, 2.0, 0.001)
    race_theta = _theta(-0.1, 1.45, 0.0)
    ref_race = f"{REF_LAN}; Usher & McClelland (2001) Psychol. Rev. 108:550"
    for n in (2, 3, 4):
        ch = tuple(range(n))
        add(
            ModelSpec(
                f"race_no_bias_{n}",
                (*_vs(n), race_a, race_z, race_t),
                ch,
                "race",
                f"Race of {n} Wiener diffusions with a shared start point",
                ref_race,
                n_accumulators=n,
            )
        )
        add(
            ModelSpec(
                f"race_no_bias_angle_{n}",
                (*_vs(n), race_a, race_z, race_t, race_theta),
                ch,
                "race",
                f"Race of {n} diffusions, shared start point, linearly collapsing bounds",
                ref_race,
                boundary="angle",
                n_accumulators=n,
            )
        )
        add(
            ModelSpec(
                f"race_{n}",
                (*_vs(n), race_a, *_zs(n), race_t),
                ch,
                "race",
                f"Race of {n} Wiener diffusions with their own start points",
                ref_race,
                n_accumulators=n,
            )
        )
    lca_g = P(
        "g",
        -1.0,
        1.0,
        0.0,
        (-INF, INF),
        description="leak (>0) / self-excitation (<0) of each accumulator",
    )
    lca_b = P(
        "b", -1.0, 1.0, 0.0, (-INF, INF), description="lateral inhibition between accumulators"
    )
    ref_lca = "Usher & McClelland (2001) Psychol. Rev. 108:550"
    for n in (3, 4):
        ch = tuple(range(n))
        add(
            ModelSpec(
                f"lca_no_bias_{n}",
                (*_vs(n), race_a, race_z, lca_g, lca_b, race_t),
                ch,
                "lca",
                f"Leaky competing accumulators ({n}), shared start point",
                ref_lca,
                n_accumulators=n,
            )
        )
        theta = _theta(-1.0 if n == 3 else -0.1, 1.45, 0.0)
        add(
            ModelSpec(
                f"lca_no_bias_angle_{n}",
                (*_vs(n), race_a, race_z, lca_g, lca_b, race_t, theta),
                ch,
                "lca",
                f"Leaky competing accumulators ({n}), shared start point, collapsing bounds",
                ref_lca,
                boundary="angle",
                n_accumulators=n,
            )
        )
        add(
            ModelSpec(
                f"lca_{n}",
                (*_vs(n), race_a, *_zs(n), lca_g, lca_b, race_t),
                ch,
                "lca",
                f"Leaky competing accumulators ({n}) with their own start points",
                ref_lca,
                n_accumulators=n,
            )
        )

    # ---- ballistic / closed-form races ---------------------------------------------------
    ref_lba = "Brown & Heathcote (2008) Cogn. Psychol. 57:153"
    lba_v_bounds = (
        [(0.0, 1.0, 0.5), (0.1, 1.1, 0.5)],
        [(0.0, 1.0, 0.25), (0.1, 1.1, 0.5), (0.1, 0.5, 0.25)],
        [(0.0, 1.0, 0.25), (0.1, 1.1, 0.25), (0.1, 0.5, 0.25), (0.1, 0.5, 0.25)],
    )
    for n, vb in zip((2, 3, 4), lba_v_bounds):
        vs = tuple(
            P(f"v{i}", lo, hi, d, (0.0, INF), description=f"mean drift of accumulator {i}")
            for i, (lo, hi, d) in enumerate(vb)
        )
        add(
            ModelSpec(
                f"lba{n}",
                (
                    P(
                        "A",
                        0.0,
                        1.0,
                        0.3,
                        (0.0, INF),
                        description="upper end of the uniform start-point range",
                    ),
                    P("b", 0.0, 1.0, 0.5, (0.0, INF), description="threshold"),
                    *vs,
                    _t(0.0, 2.0, 0.0, optional=True),
                ),
                tuple(range(n)),
                "lba",
                f"Linear ballistic accumulator, {n} choices (drift sd s = 0.1; optional t)",
                ref_lba,
                n_accumulators=n,
                notes=DEPARTURES[(f"lba{n}", "ssm", "params")],
            )
        )
    add(
        ModelSpec(
            "racing_diffusion_3",
            (
                P(
                    "A",
                    0.0,
                    1.0,
                    0.5,
                    (0.0, INF),
                    description="upper end of the uniform start-point range",
                ),
                P(
                    "b",
                    0.5,
                    3.0,
                    1.5,
                    (0.0, INF),
                    description="threshold (absolute; each accumulator starts at U(0, A))",
                ),
                *_vs(3, d=1.0),
                _t(0.0, 2.0, 0.001),
            ),
            (0, 1, 2),
            "racing_diffusion",
            "Racing diffusion model, 3 accumulators (Wald first passages, uniform start)",
            "Tillman, Van Zandt & Logan (2020) Psychon. Bull. Rev. 27:911",
            n_accumulators=3,
            notes=DEPARTURES[("racing_diffusion_3", "ssm", "order")],
        )
    )
    add(
        ModelSpec(
            "poisson_race",
            (
                P(
                    "r1",
                    0.001,
                    20.0,
                    1.0,
                    (0.0, INF),
                    description="rate of counter 1 (response -1)",
                ),
                P("r2", 0.001, 20.0, 1.0, (0.0, INF), description="rate of counter 2 (response 1)"),
                P("k1", 1.0, 20.0, 2.0, (0.0, INF), description="events counter 1 needs"),
                P("k2", 1.0, 20.0, 2.0, (0.0, INF), description="events counter 2 needs"),
                _t(0.0, 2.0, 0.001),
            ),
            two,
            "poisson_race",
            "Race of two Poisson counters (gamma finishing times)",
            "Townsend & Ashby (1983) Stochastic modeling of elementary psychological processes",
            n_accumulators=2,
        )
    )

    # ---- two-stage models ----------------------------------------------------------------
    vh = tuple(
        P(n, -4.0, 4.0, 0.0, (-INF, INF), description=d)
        for n, d in (
            ("vh", "high-level drift"),
            ("vl1", "low-level drift after high choice 0"),
            ("vl2", "low-level drift after high choice 1"),
        )
    )
    zs2 = tuple(
        P(n, 0.2, 0.8, 0.5, (0.0, 1.0), description=f"relative start of the {w} decision")
        for n, w in (("zh", "high-level"), ("zl1", "first low-level"), ("zl2", "second low-level"))
    )
    d = P(
        "d",
        0.0,
        1.0,
        0.5,
        (0.0, 1.0),
        description="damping of the low-level drift while the high-level decision is pending",
    )
    four = (0, 1, 2, 3)
    t1 = _t(0.0, 2.0, 1.0)
    for kind, label in (("seq2", "sequential"), ("par2", "parallel"), ("mic2", "mixed (gated)")):
        base = "ddm_mic2_adj" if kind == "mic2" else f"ddm_{kind}"
        extra = (d,) if kind == "mic2" else ()
        add(
            ModelSpec(
                f"{base}_no_bias",
                (*vh, _a(), *extra, t1),
                four,
                kind,
                f"Two {label} binary diffusion decisions, unbiased starts",
                REF_HDDM2,
            )
        )
        add(
            ModelSpec(
                base,
                (*vh, _a(), *zs2, *extra, _t(0.0, 2.0, 0.5 if kind == "mic2" else 1.0)),
                four,
                kind,
                f"Two {label} binary diffusion decisions with start-point biases",
                REF_HDDM2,
            )
        )
        add(
            ModelSpec(
                f"{base}_angle_no_bias",
                (*vh, _a(), *extra, t1, _theta(-0.1, 1.0, 0.0)),
                four,
                kind,
                f"Two {label} binary diffusion decisions, collapsing bounds",
                REF_HDDM2,
                boundary="angle",
            )
        )
        add(
            ModelSpec(
                f"{base}_weibull_no_bias",
                (*vh, _a(), *extra, t1, *_weibull(2.5, 3.5 if kind != "par2" else 3.0)),
                four,
                kind,
                f"Two {label} binary diffusion decisions, Weibull bounds",
                REF_HDDM2,
                boundary="weibull_cdf",
                notes=DEPARTURES.get((f"{base}_weibull_no_bias", "ssm", "default"), ""),
            )
        )

    # ---- choice-only ---------------------------------------------------------------------
    beta = P("beta", 0.0, 10.0, 1.0, (0.0, INF), description="inverse temperature")
    ref_softmax = (
        "Luce (1959) Individual choice behavior; Sutton & Barto (2018) Reinforcement learning"
    )
    add(
        ModelSpec(
            "softmax_inv_temperature_2",
            (
                beta,
                P(
                    "logit1",
                    -5.0,
                    5.0,
                    0.0,
                    (-INF, INF),
                    description="value of option 1 relative to option 0",
                ),
            ),
            two,
            "softmax",
            "Softmax choice between 2 options (HSSM parameterization)",
            ref_softmax,
            notes="box of logit1 ([-5, 5]) is ours: neither source gives one",
        )
    )
    add(
        ModelSpec(
            "softmax_inv_temperature_3",
            (
                beta,
                *(
                    P(
                        f"logit{i}",
                        -5.0,
                        5.0,
                        0.0,
                        (-INF, INF),
                        description=f"value of option {i} relative to option 0",
                    )
                    for i in (1, 2)
                ),
            ),
            (0, 1, 2),
            "softmax",
            "Softmax choice between 3 options (HSSM parameterization)",
            ref_softmax,
            notes="box of the logits ([-5, 5]) is ours: neither source gives one",
        )
    )
    for n in (2, 3, 4):
        add(
            ModelSpec(
                f"inv_temp_softmax_{n}",
                (
                    beta,
                    *(
                        P(f"q{i}", 0.0, 1.0, 0.5, (-INF, INF), description=f"value of option {i}")
                        for i in range(n)
                    ),
                ),
                tuple(range(n)),
                "softmax",
                f"Softmax choice between {n} options with values q "
                "(ssm-simulators parameterization)",
                ref_softmax,
            )
        )
    return specs


def register_builtin_models() -> None:
    """Register every built-in model (called once when ``simulators`` is imported)."""
    for spec in _builtin():
        register_model(spec, overwrite=True)
