"""The model registry: the single source of truth for every model's parameters.

Each model is a frozen :class:`ModelSpec` holding its parameters (:class:`ParamSpec`, in the
order every simulator, likelihood and network uses), its choices, the simulator kind that
generates it and, for diffusions, its boundary and drift functions.

Example
-------
>>> from simulators import get_model
>>> spec = get_model("ddm")
>>> spec.param_names
('v', 'a', 'z', 't')
>>> spec.choices
(-1, 1)
"""

from __future__ import annotations

import difflib
import importlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from simulators.boundaries import BOUNDARIES
from simulators.drifts import DRIFTS

__all__ = [
    "SIMULATOR_KINDS",
    "ModelSpec",
    "ParamSpec",
    "get_model",
    "import_model_modules",
    "list_models",
    "register_model",
    "unregister_model",
]

#: Simulator kinds and what they generate (see docs/models.md for each model's scheme).
SIMULATOR_KINDS: dict[str, str] = {
    "ddm": "single-accumulator Wiener diffusion with boundary/drift functions and optional "
    "trial-to-trial variability (sv, sz, st)",
    "levy": "single-accumulator diffusion driven by alpha-stable (Levy) noise",
    "ornstein": "single-accumulator Ornstein-Uhlenbeck diffusion (leak/self-excitation g)",
    "race": "independent racing diffusions, one per choice, first to reach the boundary wins",
    "lca": "leaky competing accumulators (leak g, lateral inhibition b), first to the boundary",
    "lba": "linear ballistic accumulator (closed-form sampling)",
    "racing_diffusion": "racing Wiener diffusions with uniform start points (closed-form sampling)",
    "poisson_race": "race of two Poisson counters (gamma-distributed finishing times)",
    "seq2": "two sequential binary diffusion decisions (high-level then low-level)",
    "par2": "two parallel binary diffusion decisions (rt = slower of the two)",
    "mic2": "two binary decisions with the low-level drift gated by the high-level state",
    "softmax": "choice-only softmax over option values (no response times)",
}


@dataclass(frozen=True)
class ParamSpec:
    """One model parameter.

    Parameters
    ----------
    name:
        The parameter's name (e.g. ``"v"``).
    lower, upper:
        The simulation / training box (the range networks are trained on and the default
        range the simulators accept without ``allow_out_of_bounds``).
    default:
        A typical value, inside ``[lower, upper]``.
    support:
        The mathematical support ``(lo, hi)`` used by analytical likelihoods and priors;
        defaults to ``(lower, upper)`` when not given.
    optional:
        Optional parameters stand at the end of the order and may be left out of ``theta``;
        ``default`` is then used (e.g. the LBA's non-decision time ``t``).
    description:
        One line saying what the parameter means.

    Example
    -------
    >>> ParamSpec("a", 0.3, 2.5, 1.0, support=(0.0, float("inf"))).support
    (0.0, inf)
    """

    name: str
    lower: float
    upper: float
    default: float
    support: tuple[float, float] | None = None
    optional: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.support is None:
            object.__setattr__(self, "support", (float(self.lower), float(self.upper)))

    @property
    def bounds(self) -> tuple[float, float]:
        """``(lower, upper)``: the simulation / training box."""
        return (self.lower, self.upper)


@dataclass(frozen=True)
class ModelSpec:
    """A sequential sampling model.

    Parameters
    ----------
    name:
        Registry name.
    params:
        Parameters in the canonical order (simulators, likelihoods, network inputs).
    choices:
        Response codes: ``(-1, 1)`` for two-choice diffusions, ``(0, ..., n-1)`` otherwise.
    simulator:
        One of :data:`SIMULATOR_KINDS`.
    description, reference:
        One-line description and literature reference.
    boundary, boundary_params:
        Boundary function name in :data:`simulators.boundaries.BOUNDARIES` or a callable
        ``fn(t, a, *extra)``; ``boundary_params`` names the model parameters passed as
        ``extra`` (taken from the registry entry when a name is given).
    drift, drift_params:
        Drift function name in :data:`simulators.drifts.DRIFTS` or a callable
        ``fn(t, v, *extra)``; likewise.
    n_accumulators:
        Number of accumulators (particles) the simulator runs.
    notes:
        Where and why this entry departs from HSSM or ssm-simulators.

    Example
    -------
    >>> from simulators import get_model
    >>> get_model("angle").boundary_params
    ('theta',)
    """

    name: str
    params: tuple[ParamSpec, ...]
    choices: tuple[int, ...]
    simulator: str
    description: str
    reference: str
    boundary: str | Callable = "constant"
    boundary_params: tuple[str, ...] | None = None
    drift: str | Callable = "constant"
    drift_params: tuple[str, ...] | None = None
    n_accumulators: int = 1
    notes: str = ""
    _index: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "choices", tuple(int(c) for c in self.choices))
        if self.boundary_params is None:
            extra = BOUNDARIES[self.boundary][1] if isinstance(self.boundary, str) else ()
            object.__setattr__(self, "boundary_params", tuple(extra))
        if self.drift_params is None:
            extra = DRIFTS[self.drift][1] if isinstance(self.drift, str) else ()
            object.__setattr__(self, "drift_params", tuple(extra))
        self._index.update({p.name: i for i, p in enumerate(self.params)})

    @property
    def param_names(self) -> tuple[str, ...]:
        """All parameter names in canonical order (optional ones last)."""
        return tuple(p.name for p in self.params)

    @property
    def required_param_names(self) -> tuple[str, ...]:
        """Names of the parameters ``theta`` must contain."""
        return tuple(p.name for p in self.params if not p.optional)

    @property
    def n_params(self) -> int:
        """Number of parameters, optional ones included."""
        return len(self.params)

    @property
    def n_choices(self) -> int:
        """Number of possible responses."""
        return len(self.choices)

    @property
    def bounds(self) -> dict[str, tuple[float, float]]:
        """``{name: (lower, upper)}`` training / simulation box."""
        return {p.name: p.bounds for p in self.params}

    @property
    def defaults(self) -> dict[str, float]:
        """``{name: default}``."""
        return {p.name: p.default for p in self.params}

    def param(self, name: str) -> ParamSpec:
        """The :class:`ParamSpec` called ``name`` (``KeyError`` naming the model if absent)."""
        if name not in self._index:
            raise KeyError(
                f"model {self.name!r} has no parameter {name!r}; its parameters are "
                f"{list(self.param_names)}"
            )
        return self.params[self._index[name]]

    def index(self, name: str) -> int:
        """Position of parameter ``name`` in the canonical order."""
        self.param(name)
        return self._index[name]

    def boundary_fn(self) -> Callable:
        """The boundary callable ``fn(t, a, *extra)``."""
        return BOUNDARIES[self.boundary][0] if isinstance(self.boundary, str) else self.boundary

    def drift_fn(self) -> Callable:
        """The drift callable ``fn(t, v, *extra)``."""
        return DRIFTS[self.drift][0] if isinstance(self.drift, str) else self.drift


_REGISTRY: dict[str, ModelSpec] = {}


def _validate(spec: ModelSpec) -> None:
    def bad(field_name: str, msg: str) -> ValueError:
        return ValueError(f"model {spec.name!r}: {field_name}: {msg}")

    if not isinstance(spec.name, str) or not spec.name.isidentifier():
        raise bad("name", f"expected a Python identifier, got {spec.name!r}")
    if not spec.params:
        raise bad("params", "expected at least one ParamSpec")
    seen: set[str] = set()
    optional_seen = False
    for p in spec.params:
        if not isinstance(p, ParamSpec):
            raise bad("params", f"expected ParamSpec objects, got {type(p).__name__}")
        where = f"params[{p.name!r}]"
        if p.name in seen:
            raise bad(where, "duplicate parameter name")
        seen.add(p.name)
        for attr in ("lower", "upper", "default"):
            val = getattr(p, attr)
            if not isinstance(val, (int, float)) or not math.isfinite(val):
                raise bad(f"{where}.{attr}", f"expected a finite number, got {val!r}")
        if not p.lower < p.upper:
            raise bad(where, f"lower ({p.lower}) must be < upper ({p.upper})")
        if not p.lower <= p.default <= p.upper:
            raise bad(
                f"{where}.default", f"{p.default} is outside the bounds [{p.lower}, {p.upper}]"
            )
        lo, hi = p.support  # type: ignore[misc]
        if not (lo <= p.lower and p.upper <= hi):
            raise bad(
                f"{where}.support",
                f"({lo}, {hi}) must contain the bounds [{p.lower}, {p.upper}]",
            )
        if optional_seen and not p.optional:
            raise bad(where, "optional parameters must come after all required ones")
        optional_seen = optional_seen or p.optional
    if spec.simulator not in SIMULATOR_KINDS and not callable(spec.simulator):
        raise bad(
            "simulator",
            f"unknown simulator kind {spec.simulator!r}; expected one of {sorted(SIMULATOR_KINDS)}",
        )
    if len(spec.choices) < 1 or len(set(spec.choices)) != len(spec.choices):
        raise bad("choices", f"expected distinct response codes, got {spec.choices}")
    for kind, table, fn, extra in (
        ("boundary", BOUNDARIES, spec.boundary, spec.boundary_params),
        ("drift", DRIFTS, spec.drift, spec.drift_params),
    ):
        if isinstance(fn, str):
            if fn not in table:
                raise bad(kind, f"unknown {kind} function {fn!r}; expected one of {sorted(table)}")
        elif not callable(fn):
            raise bad(kind, f"expected a name or a callable, got {fn!r}")
        for name in extra or ():
            if name not in seen:
                raise bad(f"{kind}_params", f"{name!r} is not a parameter of the model")
    if not isinstance(spec.n_accumulators, int) or spec.n_accumulators < 1:
        raise bad("n_accumulators", f"expected an integer >= 1, got {spec.n_accumulators!r}")
    if not spec.description:
        raise bad("description", "expected a one-line description")


def register_model(spec: ModelSpec, *, overwrite: bool = False) -> ModelSpec:
    """Add a model to the registry after validating it.

    Raises ``ValueError`` naming the offending field for: a duplicate name (unless
    ``overwrite``), a default outside its bounds, ``lower >= upper``, an unknown simulator
    kind, boundary or drift function, or boundary/drift parameters the model lacks.

    Example
    -------
    >>> from simulators import ModelSpec, ParamSpec, register_model, unregister_model
    >>> spec = ModelSpec(
    ...     name="my_ddm", simulator="ddm", choices=(-1, 1),
    ...     params=(ParamSpec("v", -3, 3, 0), ParamSpec("a", 0.3, 2.5, 1.0),
    ...             ParamSpec("z", 0.1, 0.9, 0.5), ParamSpec("t", 0.0, 2.0, 0.2)),
    ...     description="my DDM", reference="Ratcliff (1978)")
    >>> register_model(spec).name
    'my_ddm'
    >>> unregister_model("my_ddm")
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"register_model expects a ModelSpec, got {type(spec).__name__}")
    if spec.name in _REGISTRY and not overwrite:
        raise ValueError(
            f"model {spec.name!r}: name: already registered (pass overwrite=True to replace it)"
        )
    _validate(spec)
    _REGISTRY[spec.name] = spec
    return spec


def unregister_model(name: str) -> None:
    """Remove a model from the registry (``KeyError`` if absent)."""
    get_model(name)
    del _REGISTRY[name]


def get_model(name: str | ModelSpec) -> ModelSpec:
    """Look a model up by name; a ``ModelSpec`` is returned unchanged.

    Raises ``ValueError`` with the closest registered names when ``name`` is unknown.

    Example
    -------
    >>> get_model("lba2").param_names
    ('A', 'b', 'v0', 'v1', 't')
    """
    if isinstance(name, ModelSpec):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown model {name!r}{hint} (simulators.list_models() lists all {len(_REGISTRY)})"
        ) from None


def import_model_modules(names: Iterable[str] | None) -> list[str]:
    """Import modules that register user models (``register_model`` at import time).

    What the apps' ``import_modules`` option does before a model is looked up by name.
    Raises ``ValueError`` naming ``import_modules`` and the module that cannot be imported.

    Example
    -------
    >>> import_model_modules(["simulators.boundaries"])
    ['simulators.boundaries']
    """
    if names is None:
        return []
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"import_modules: expected a list of module names, got {names!r}")
    out = list(names)
    for name in out:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ValueError(f"import_modules: cannot import {name!r} ({err})") from None
    return out


def list_models(simulator: str | Iterable[str] | None = None) -> list[str]:
    """Sorted names of the registered models, optionally only those of some simulator kinds.

    Example
    -------
    >>> "ddm" in list_models()
    True
    >>> list_models("lba")
    ['lba2', 'lba3', 'lba4']
    """
    kinds = {simulator} if isinstance(simulator, str) else simulator
    return sorted(n for n, s in _REGISTRY.items() if kinds is None or s.simulator in kinds)
