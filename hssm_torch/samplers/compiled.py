"""Potential-and-gradient functions for the batched sampler, eager or ``torch.compile``-d.

:func:`value_and_grad_fn` turns a batched potential ``x (C, D) -> U (C,)`` into
``x -> (U, dU/dx)``. Eager, the gradient comes from one backward pass of ``U.sum()``. With
``compile=True`` value and gradient are **one** compiled inference graph:
:func:`fused_value_and_grad` (``torch.func.grad`` with the values as auxiliary output) is
handed to ``torch.compile``, which traces the forward and the backward together into one
TorchInductor graph (fused C++ loops on the CPU, Triton kernels on a GPU). Compared with
autograd over a compiled forward (the earlier scheme) this removes AOTAutograd's runtime
wrapper and the separate backward call: on the 500-trial ddm one 2-chain call went from
0.83-1.27 ms to 0.62-0.73 ms. (``torch.func.grad`` does not run eagerly on the analytical
DDM, whose custom ``autograd.Function`` lacks ``setup_context``; Dynamo traces it anyway,
and the compiled function is checked against the eager one.)

Compilation happens here, before sampling: the compiled function is called once for every
batch size it will see (``batch_sizes``), so the sampler never recompiles, and the time is
returned separately. If compiling (or the check that the compiled function agrees with the
eager one) fails, a warning is logged and the eager function is returned.

Example
-------
>>> import torch
>>> pot = lambda x: 0.5 * (x * x).sum(-1)
>>> vg, info = value_and_grad_fn(pot, torch.zeros(2, 3, dtype=torch.float64), compile=False)
>>> u, g = vg(torch.ones(2, 3, dtype=torch.float64))
>>> u.tolist(), info["compiled"]
([1.5, 1.5], False)
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable

import torch

__all__ = [
    "compile_checked",
    "compile_warnings_filtered",
    "eager_value_and_grad",
    "fused_value_and_grad",
    "value_and_grad_fn",
]

logger = logging.getLogger(__name__)

ValueAndGrad = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

#: TorchInductor options of every compile here, by device type. On the CPU the graph's
#: wrapper (argument checks, buffer allocation, kernel calls) is generated as C++ instead of
#: Python (``cpp_wrapper``): on the 500-trial ddm one compiled leaf call went from 0.90-1.06
#: to 0.71-0.83 ms (guards evaluated) and the sampler from 0.93-1.06 to 0.84-0.94 ms per
#: call, for about 1 s more of warm compile (5 s cold). Other devices keep the defaults
#: (not measured here).
COMPILE_OPTIONS: dict[str, dict[str, object]] = {"cpu": {"cpp_wrapper": True}}


def _options(example: object) -> dict[str, object]:
    """Inductor options for the device of the first tensor in ``example``."""
    items = example if isinstance(example, (tuple, list)) else (example,)
    dev = next((t.device.type for t in items if isinstance(t, torch.Tensor)), "cpu")
    return dict(COMPILE_OPTIONS.get(dev, {}))


#: Warnings that tracing our likelihoods emits and that are known to be harmless:
#: Dynamo traces through ``functools.lru_cache`` wrappers (the cached helpers in
#: :mod:`hssm_torch.likelihoods.wfpt` build per-dtype/device constants, identical on every
#: call), Inductor's import of TorchScript helpers announces their deprecation, and Dynamo
#: instantiates ``torch.autograd.Function`` classes while tracing them (we never do).
_KNOWN_COMPILE_WARNINGS = (
    (r"Dynamo detected a call to a `functools.lru_cache`-wrapped function", UserWarning),
    (r"`torch.jit.script_method` is deprecated", DeprecationWarning),
    (r"`torch.jit.script` is deprecated", DeprecationWarning),
    (r".*should not be instantiated\. Methods on autograd functions", DeprecationWarning),
)


class compile_warnings_filtered(warnings.catch_warnings):  # noqa: N801 (context manager)
    """Context manager that silences only the known harmless compile warnings above."""

    def __enter__(self):
        out = super().__enter__()
        for message, category in _KNOWN_COMPILE_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        return out


def eager_value_and_grad(potential_fn: Callable[[torch.Tensor], torch.Tensor]) -> ValueAndGrad:
    """``x -> (U(x), grad)`` with one backward pass of ``U(x).sum()`` (chains independent).

    Example
    -------
    >>> import torch
    >>> vg = eager_value_and_grad(lambda x: (x ** 2).sum(-1))
    >>> vg(torch.ones(1, 2))[1].tolist()
    [[2.0, 2.0]]
    """

    def value_and_grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            u = potential_fn(xg)
            (g,) = torch.autograd.grad(u.sum(), xg)
        return u.detach(), g

    return value_and_grad


def fused_value_and_grad(potential_fn: Callable[[torch.Tensor], torch.Tensor]) -> ValueAndGrad:
    """``x -> (U(x), grad)`` through ``torch.func.grad``: one function, for ``torch.compile``.

    Compiled, forward and backward become one inference graph. Not meant to run eagerly:
    ``torch.func`` rejects custom ``autograd.Function`` classes without ``setup_context``
    (the analytical DDM's), which Dynamo traces without complaint.

    Example
    -------
    >>> import torch
    >>> vg = fused_value_and_grad(lambda x: (x ** 2).sum(-1))
    >>> vg(torch.ones(1, 2))[1].tolist()
    [[2.0, 2.0]]
    """

    def total(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = potential_fn(x)
        return u.sum(), u

    grad = torch.func.grad(total, has_aux=True)

    def value_and_grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g, u = grad(x)
        return u, g

    return value_and_grad


def _agree(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> bool:
    """Compiled and eager ``(U, grad)`` agree (up to reassociation) where both are finite."""
    for x, y in zip(a, b):
        fx, fy = torch.isfinite(x), torch.isfinite(y)
        if not bool(torch.equal(fx, fy)):
            return False
        if bool(fx.any()) and not torch.allclose(x[fx], y[fy], rtol=1e-6, atol=1e-6):
            return False
    return True


def _fell_back(what: str, err: BaseException) -> str:
    """Log that compiling ``what`` failed (eager from here on); returns the short reason."""
    reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    logger.warning("torch.compile of the %s failed (%s); running eagerly", what, reason)
    return reason


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype.is_floating_point:
        return _agree((a,), (b,))
    return bool(torch.equal(a, b))


def compile_checked(
    fn: Callable[..., tuple[torch.Tensor, ...]],
    example_args: tuple,
    *,
    what: str,
    reference: Callable[..., tuple[torch.Tensor, ...]] | None = None,
) -> tuple[Callable[..., tuple[torch.Tensor, ...]], float, bool]:
    """``torch.compile`` a pure tensor function, compile it now and check it, or fall back.

    Parameters
    ----------
    fn : callable
        Tensors in, a tuple of tensors out, fixed shapes.
    example_args : tuple
        Arguments of the shapes, dtypes and device ``fn`` will be called with.
    what : str
        Name used in the log messages.
    reference : callable, optional
        Eager function the compiled one must agree with (default: ``fn``), and the one
        returned when compiling fails (for an ``fn`` that only runs compiled).

    Returns
    -------
    fn : callable
        The compiled function, or ``reference`` (default ``fn``) when compiling failed
        (warning logged).
    seconds : float
        Time spent compiling and checking.
    compiled : bool

    Example
    -------
    >>> import torch
    >>> f, secs, ok = compile_checked(  # doctest: +SKIP
    ...     lambda x: (x + 1,), (torch.zeros(2),), what="demo"
    ... )
    >>> f(torch.ones(2))[0].tolist()  # doctest: +SKIP
    [2.0, 2.0]
    """
    eager = fn if reference is None else reference
    t0 = time.perf_counter()
    try:
        cfn = torch.compile(fn, fullgraph=True, dynamic=False, options=_options(example_args))
        with compile_warnings_filtered():
            got = cfn(*example_args)
        want = eager(*example_args)
        if len(got) != len(want) or not all(_same(a, b) for a, b in zip(got, want)):
            raise RuntimeError(f"the compiled {what} differs from the eager one")
    except Exception as err:  # noqa: BLE001 - any compiler failure falls back to eager
        _fell_back(what, err)
        return eager, time.perf_counter() - t0, False
    return cfn, time.perf_counter() - t0, True


def value_and_grad_fn(
    potential_fn: Callable[[torch.Tensor], torch.Tensor],
    example: torch.Tensor,
    *,
    compile: bool = False,
    batch_sizes: Iterable[int] | None = None,
) -> tuple[ValueAndGrad, dict[str, float | bool | str]]:
    """A ``(U, grad)`` function for ``potential_fn``, compiled (and warmed up) or eager.

    Parameters
    ----------
    potential_fn : callable
        ``x (C, D) -> U (C,)``, differentiable, rows independent.
    example : torch.Tensor
        ``(C, D)`` point (dtype, device, typical values) used to compile and to check the
        compiled function against the eager one.
    compile : bool
        Compile value and gradient as one graph (:func:`fused_value_and_grad`) with
        ``torch.compile(fullgraph=True, dynamic=False)``.
    batch_sizes : iterable of int, optional
        Row counts the function will be called with (default: ``example``'s). One graph is
        compiled per size, before this returns.

    Returns
    -------
    value_and_grad : callable
        ``x -> (U (C,), grad (C, D))``.
    info : dict
        ``compiled`` (bool: False also when compiling failed), ``compile_time`` (seconds,
        0.0 when eager), ``fallback_reason`` (the error, when compiling failed).

    Example
    -------
    >>> import torch
    >>> pot = lambda x: (x * x).sum(-1)
    >>> vg, info = value_and_grad_fn(pot, torch.ones(2, 2), compile=False)
    >>> info["compile_time"]
    0.0
    """
    eager = eager_value_and_grad(potential_fn)
    info: dict[str, float | bool | str] = {"compiled": False, "compile_time": 0.0}
    if not compile:
        return eager, info
    sizes = sorted(set(batch_sizes or [example.shape[0]]))
    if not sizes or sizes[0] < 1:
        raise ValueError(f"batch_sizes: expected positive integers, got {sizes}")
    t0 = time.perf_counter()
    try:
        compiled = torch.compile(
            fused_value_and_grad(potential_fn),
            fullgraph=True,
            dynamic=False,
            options=_options(example),
        )
        with compile_warnings_filtered():
            for c in sizes:
                reps = math.ceil(c / example.shape[0])
                x = example.repeat(reps, 1)[:c].contiguous()
                got = compiled(x)
                if not _agree(got, eager(x)):
                    raise RuntimeError(
                        f"the compiled potential differs from the eager one at {c} chain(s)"
                    )
    except Exception as err:  # noqa: BLE001 - any compiler failure falls back to eager
        reason = _fell_back("potential", err)
        info.update(compile_time=time.perf_counter() - t0, fallback_reason=reason)
        return eager, info
    info.update(compiled=True, compile_time=time.perf_counter() - t0)
    logger.info("potential compiled in %.1f s for batch sizes %s", info["compile_time"], sizes)
    # Called with another shape, dtype or device, the function recompiles (and emits the
    # known warnings again): callers that may do so wrap the calls in
    # compile_warnings_filtered() (a context manager costs ~40 us, too much per call).
    return compiled, info
