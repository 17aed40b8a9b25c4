"""Likelihoods by model name, and the contract for user-supplied likelihood callables.

Contract (what the fitting code relies on). A likelihood is a callable

    fn(rt, response, theta) -> log_prob

- ``rt``: tensor of response times in seconds (non-decision time included), shape ``(...)``;
- ``response``: tensor of response codes, shape ``(...)`` (``-1/1`` or ``0..n-1``, as the
  model's ``choices``);
- ``theta``: tensor ``(..., P)``, parameters in the model's registry order
  (``simulators.get_model(name).param_names``);
- returns the log-likelihood per trial with the broadcast shape of ``rt``, ``response`` and
  ``theta[..., 0]``, on ``theta``'s device and dtype, differentiable in ``theta``;
- never NaN: impossible data under valid parameters (``rt <= t``) give a finite floor
  (:data:`LOG_FLOOR` for the built-ins), parameters outside the support give ``-inf``;
- it may take a keyword ``validate`` (bool): when true, raise ``ValueError`` naming the bad
  parameter/response instead of returning ``-inf``.

Built-in names: ddm, ddm_sdv, full_ddm, lba2, lba3, lba4, racing_diffusion_3, poisson_race,
softmax_inv_temperature_2, softmax_inv_temperature_3, inv_temp_softmax_2, inv_temp_softmax_3.
Each built-in declares its own column order; :func:`get_likelihood` permutes ``theta`` from the
registry order when the two differ (by parameter name), so callers always pass registry order.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch

from hssm_torch.likelihoods.full_ddm import full_ddm_log_likelihood
from hssm_torch.likelihoods.lba import make_lba_likelihood
from hssm_torch.likelihoods.poisson_race import poisson_race_log_likelihood
from hssm_torch.likelihoods.racing_diffusion import racing_diffusion_3_log_likelihood
from hssm_torch.likelihoods.softmax import make_inv_temp_softmax, make_softmax_inv_temperature
from hssm_torch.likelihoods.wfpt import ddm_log_likelihood, ddm_sdv_log_likelihood

__all__ = [
    "LikelihoodFn",
    "get_likelihood",
    "list_likelihoods",
    "log_likelihood",
    "register_likelihood",
    "unregister_likelihood",
]

#: ``(rt, response, theta) -> log_prob``; see the module docstring for the full contract.
LikelihoodFn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class _Entry:
    name: str
    fn: LikelihoodFn
    param_names: tuple[str, ...] | None
    accepts_validate: bool
    builtin: bool


_REGISTRY: dict[str, _Entry] = {}


def _accepts_validate(fn: Callable) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "validate" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def register_likelihood(
    name: str,
    fn: LikelihoodFn,
    *,
    param_names: tuple[str, ...] | list[str] | None = None,
    overwrite: bool = False,
) -> LikelihoodFn:
    """Register ``fn`` as the likelihood of model ``name``.

    Parameters
    ----------
    name:
        Model name (normally a ``simulators`` registry name, so theta's order is known).
    fn:
        A callable following the contract in this module's docstring.
    param_names:
        The column order ``fn`` expects. When given and the model is in the ``simulators``
        registry with the same names in another order, :func:`get_likelihood` permutes theta
        from registry order. Default: ``fn`` takes registry order.
    overwrite:
        Replace an existing registration (otherwise ``ValueError``).

    Returns
    -------
    The registered callable (so this works as a decorator helper).

    Example
    -------
    >>> import torch
    >>> def my_ll(rt, response, theta):
    ...     return -rt * theta[..., 0]
    >>> _ = register_likelihood("my_exponential", my_ll)
    >>> "my_exponential" in list_likelihoods()
    True
    >>> unregister_likelihood("my_exponential")
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise TypeError(f"fn for likelihood {name!r} must be callable, got {type(fn).__name__}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(
            f"a likelihood named {name!r} is already registered; pass overwrite=True to replace it"
        )
    _REGISTRY[name] = _Entry(
        name,
        fn,
        None if param_names is None else tuple(param_names),
        _accepts_validate(fn),
        builtin=False,
    )
    return fn


def unregister_likelihood(name: str) -> None:
    """Remove a registration (``KeyError`` naming the model if absent)."""
    if name not in _REGISTRY:
        raise KeyError(f"no likelihood registered for {name!r}")
    del _REGISTRY[name]


def list_likelihoods() -> list[str]:
    """Sorted names of all registered likelihoods.

    Example
    -------
    >>> "ddm" in list_likelihoods()
    True
    """
    return sorted(_REGISTRY)


def _registry_order(name: str) -> tuple[str, ...] | None:
    try:
        from simulators import get_model
    except ImportError:  # pragma: no cover - simulators ships with this distribution
        return None
    try:
        return tuple(get_model(name).param_names)
    except (KeyError, ValueError):
        return None


def _permutation(entry: _Entry) -> list[int] | None:
    if entry.param_names is None:
        return None
    order = _registry_order(entry.name)
    if order is None or tuple(order) == entry.param_names:
        return None
    if sorted(order) != sorted(entry.param_names):
        raise ValueError(
            f"likelihood {entry.name!r} takes parameters {list(entry.param_names)} but the model "
            f"registry lists {list(order)}"
        )
    return [order.index(p) for p in entry.param_names]


def get_likelihood(name: str) -> LikelihoodFn:
    """The likelihood of model ``name``, taking ``theta`` in registry order.

    The returned callable is ``fn(rt, response, theta, *, validate=False)``.

    Example
    -------
    >>> import torch
    >>> fn = get_likelihood("ddm")
    >>> th = torch.tensor([1.0, 1.0, 0.5, 0.2], dtype=torch.float64)
    >>> fn(torch.tensor([0.6]), torch.tensor([1]), th).shape
    torch.Size([1])
    """
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {close}?" if close else ""
        raise ValueError(
            f"no analytical likelihood for model {name!r}{hint} (available: {list_likelihoods()})"
        )
    entry = _REGISTRY[name]
    perm = _permutation(entry)
    fn = entry.fn

    def call(
        rt: torch.Tensor, response: torch.Tensor, theta: torch.Tensor, *, validate: bool = False
    ) -> torch.Tensor:
        theta = torch.as_tensor(theta)
        if perm is not None:
            if theta.shape[-1] < len(perm):
                # A trailing optional parameter (lba's t) may be left out.
                p = [i for i in perm if i < theta.shape[-1]]
            else:
                p = perm
            theta = theta[..., p]
        if entry.accepts_validate:
            return fn(rt, response, theta, validate=validate)
        return fn(rt, response, theta)

    call.__name__ = getattr(fn, "__name__", name)
    call.__doc__ = fn.__doc__
    return call


def log_likelihood(
    model: str,
    rt: torch.Tensor,
    response: torch.Tensor,
    theta: torch.Tensor,
    *,
    validate: bool = False,
) -> torch.Tensor:
    """Analytical log-likelihood of registry model ``model``.

    Parameters
    ----------
    model:
        A name from :func:`list_likelihoods`.
    rt, response:
        Tensors of response times (s) and response codes.
    theta:
        ``(..., P)`` parameters in registry order (``simulators.get_model(model).param_names``).
    validate:
        Raise ``ValueError`` naming the parameter/response that is out of range instead of
        returning ``-inf``.

    Returns
    -------
    torch.Tensor
        Log-likelihood per trial (broadcast batch shape).

    Example
    -------
    >>> import torch
    >>> th = torch.tensor([[1.0, 1.0, 0.5, 0.2]], dtype=torch.float64)
    >>> log_likelihood("ddm", torch.tensor([0.5, 0.9]), torch.tensor([1, -1]), th).shape
    torch.Size([2])
    """
    return get_likelihood(model)(rt, response, theta, validate=validate)


def _register_builtins() -> None:
    def add(name: str, fn: LikelihoodFn, params: tuple[str, ...]) -> None:
        _REGISTRY[name] = _Entry(name, fn, params, True, builtin=True)

    add("ddm", ddm_log_likelihood, ("v", "a", "z", "t"))
    add("ddm_sdv", ddm_sdv_log_likelihood, ("v", "a", "z", "t", "sv"))
    add("full_ddm", full_ddm_log_likelihood, ("v", "a", "z", "t", "sz", "sv", "st"))
    for n in (2, 3, 4):
        vs = tuple(f"v{i}" for i in range(n))
        add(f"lba{n}", make_lba_likelihood(n), ("A", "b", *vs, "t"))
    add(
        "racing_diffusion_3",
        racing_diffusion_3_log_likelihood,
        ("A", "b", "v0", "v1", "v2", "t"),
    )
    add("poisson_race", poisson_race_log_likelihood, ("r1", "r2", "k1", "k2", "t"))
    for n in (2, 3):
        add(
            f"softmax_inv_temperature_{n}",
            make_softmax_inv_temperature(n),
            ("beta", *(f"logit{i}" for i in range(1, n))),
        )
        add(
            f"inv_temp_softmax_{n}",
            make_inv_temp_softmax(n),
            ("beta", *(f"q{i}" for i in range(n))),
        )


_register_builtins()
