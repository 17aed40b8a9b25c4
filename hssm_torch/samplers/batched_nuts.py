"""NUTS vectorized over chains: every leapfrog step of every chain in one potential call.

The algorithm is Stan's / numpyro's NUTS: multinomial sampling of the proposal along the
trajectory, the generalized no-U-turn criterion (Betancourt 2017), trajectories grown by
iterative tree doubling in a random direction, divergence when the energy error exceeds
1000. The chains' trees are built in lockstep: at doubling ``j`` every chain still going
extends its trajectory by a subtree of ``2**j`` leapfrog steps, leaf by leaf, so all chains
take their ``n``-th leapfrog step together (one batched gradient) and the U-turn checks of
the subtree's sub-subtrees (kept as checkpoints of momentum and running momentum sums, as in
numpyro's iterative builder) happen at the same leaf index for every chain. A chain whose
trajectory has stopped (U-turn, divergence, maximum depth) is masked: its state no longer
changes, and on the CPU it is also left out of the potential calls. The batch moves on
until every chain has stopped.

Warm-up adapts, per chain, the step size (dual averaging towards ``target_accept``) and a
diagonal inverse mass matrix (Stan's windowed schedule, see
:mod:`hssm_torch.samplers.adaptation`).

Every random number comes from one ``torch.Generator`` on the potential's device, so a seed
reproduces the draws exactly on that device. The only host synchronisations are the loop
controls (does any chain still move?) and the progress bar.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from hssm_torch.samplers.adaptation import (
    DualAveraging,
    WelfordVariance,
    mass_windows,
    regularised_variance,
)
from hssm_torch.samplers.compiled import (
    ValueAndGrad,
    compile_checked,
    compile_warnings_filtered,
    eager_value_and_grad,
    fused_value_and_grad,
)
from hssm_torch.samplers.potential import BatchedPotential

if TYPE_CHECKING:  # pragma: no cover
    from hssm_torch.builder import ModelBuilder

__all__ = ["NUTSResult", "nuts_sample", "run_batched_nuts"]

logger = logging.getLogger(__name__)

#: Energy error (nats) above which a trajectory is declared divergent (as Stan).
MAX_ENERGY_ERROR = 1000.0

Potential = Callable[[torch.Tensor], torch.Tensor]

#: How the compiled sampler treats Dynamo's guards during the sampling loop. ``"skip"``
#: (default): ``torch.compiler.set_stance(skip_guard_eval_unsafe=True)`` -- the checks that
#: pick a compiled graph for each call (argument shapes, dtypes, strides, devices, global
#: state, and the Python attributes of the model the traced code read) cost 0.01-0.15 ms
#: (typically ~0.07) of a 0.55-1.0 ms call on the 500-trial ddm in repeated
#: micro-benchmarks. Skipping them is safe here because the
#: loop calls the leaf only with tensors the sampler itself makes, all of fixed shapes,
#: dtypes, devices and layouts, none aliasing another (the compile-time example is built
#: the same way), under the grad mode it was compiled in, and nothing in the model changes
#: during the loop; with several compiled graphs for the same code (other models compiled
#: earlier in the process), Dynamo still evaluates the guards that tell them apart.
#: ``"check"``: guards evaluated, and a recompile inside the loop raises (the tests run this
#: way to show that none happens).
GUARD_MODE = "skip"


@dataclass
class NUTSResult:
    """Output of :func:`nuts_sample` (tensors on the potential's device).

    Attributes
    ----------
    positions : torch.Tensor
        ``(C, draws, D)`` unconstrained draws.
    potential : torch.Tensor
        ``(C, draws)`` potential energy at each draw (``lp = -potential``).
    diverging, n_steps, tree_depth, acceptance_rate, step_size : torch.Tensor
        ``(C, draws)`` per-draw statistics.
    inv_mass : torch.Tensor
        ``(C, D)`` adapted diagonal inverse mass matrix.
    n_leapfrog_total : int
        Batched leapfrog steps (warm-up included); each is one potential call covering
        every chain still moving.
    n_chain_leapfrog_total : int
        Leapfrog steps summed over chains (warm-up included).
    n_potential_calls : int
        Every potential-and-gradient call (leapfrog steps, step-size searches, start).
    warmup_diverging : torch.Tensor
        ``(C,)`` divergent transitions during warm-up.
    compiled : bool
        Whether the potential ran compiled (``False`` also when compiling failed).
    compile_time : float
        Seconds spent compiling before the first iteration (0.0 when eager).
    """

    positions: torch.Tensor
    potential: torch.Tensor
    diverging: torch.Tensor
    n_steps: torch.Tensor
    tree_depth: torch.Tensor
    acceptance_rate: torch.Tensor
    step_size: torch.Tensor
    inv_mass: torch.Tensor
    n_leapfrog_total: int
    n_chain_leapfrog_total: int
    n_potential_calls: int
    warmup_diverging: torch.Tensor
    compiled: bool = False
    compile_time: float = 0.0


class _Evaluator:
    """Potential and gradient for a batch of chains, restricted to the moving ones."""

    def __init__(self, value_and_grad: ValueAndGrad, compact: bool) -> None:
        self.value_and_grad = value_and_grad
        self.compact = compact
        self.n_calls = 0
        self.n_chain_evals = 0

    def full(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.n_calls += 1
        self.n_chain_evals += x.shape[0]
        return self.value_and_grad(x)  # NaN potentials: see _leaf_update

    def __call__(
        self, x: torch.Tensor, mask: torch.Tensor, n_moving: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(U, grad)`` at ``x`` ``(C, D)``; rows outside ``mask`` are not meaningful."""
        if not self.compact or n_moving == x.shape[0]:
            return self.full(x)
        idx = mask.nonzero().squeeze(-1)
        u_sub, g_sub = self.full(x[idx])
        u = torch.full(x.shape[:1], math.inf, dtype=x.dtype, device=x.device)
        g = torch.zeros_like(x)
        u[idx] = u_sub
        g[idx] = g_sub
        return u, g


def _kinetic(p: torch.Tensor, inv_mass: torch.Tensor) -> torch.Tensor:
    return 0.5 * (inv_mass * p * p).sum(-1)


def _turning(
    p_left: torch.Tensor, p_right: torch.Tensor, rho: torch.Tensor, inv_mass: torch.Tensor
) -> torch.Tensor:
    """Generalized no-U-turn criterion: ``p#_end . rho' <= 0`` at either end.

    ``rho' = rho - (p_left + p_right) / 2`` (numpyro's form): the momentum sum with half
    of each end's momentum removed. Stan's form (``rho`` itself) misses U-turns across the
    two halves of a merged tree unless extra checks are added (stan-dev/stan#2800); on a
    5-D Gaussian it sent 30% of one chain's trajectories to the depth limit here, this
    form none.
    """
    rho = rho - 0.5 * (p_left + p_right)
    return ((inv_mass * p_left * rho).sum(-1) <= 0) | ((inv_mass * p_right * rho).sum(-1) <= 0)


def _ckpt_range(n: int) -> tuple[int, int]:
    """Checkpoints (inclusive range) to test at leaf ``n`` of a subtree (numpyro's scheme).

    Even leaves store their momentum and running momentum sum at checkpoint
    ``popcount(n >> 1)``; at leaf ``n`` the sub-subtrees that end there are those starting
    at the checkpoints ``idx_min .. idx_max`` (``n`` with ``k`` trailing one bits closes
    ``k`` of them).
    """
    idx_max = bin(n >> 1).count("1")
    trailing = 0
    while (n >> trailing) & 1:
        trailing += 1
    return idx_max - trailing + 1, idx_max


def _rand(n: int, gen: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(n, generator=gen, dtype=like.dtype, device=like.device)


def _leaf_update(
    x1, u1, g1, p_half, eps, inv_mass, h0, going, diverging, u_take, n_steps, sum_acc,
    sub_log_w, sub_x, sub_u, sub_g, sub_rho, xc, pc, gc, ckpt_p, ckpt_rho, store, check,
):  # fmt: skip
    """Everything a leaf does after its potential call, and the next leaf's leapfrog.

    The second half-step of the momentum, the energy error, divergence, acceptance
    statistic, progressive multinomial sampling within the subtree, the new trajectory end,
    the U-turn checks of the sub-subtrees ending at this leaf, then the first half of the
    next leapfrog step (``p_half``, ``x1``; unused after the subtree's last leaf). Pure
    tensor code of fixed shapes, the same for every leaf (the leaf's place in the subtree
    enters only through the masks ``store`` and ``check``, see :class:`_Checkpoints`), so
    ``torch.compile`` turns it into one graph. ``u_take`` is this leaf's uniform draw.
    """
    u1 = torch.where(torch.isnan(u1), torch.full_like(u1, math.inf), u1)
    p1 = p_half - 0.5 * eps * g1
    delta = u1 + _kinetic(p1, inv_mass) - h0  # energy error
    delta = torch.where(torch.isnan(delta), torch.full_like(delta, math.inf), delta)
    div = going & (delta > MAX_ENERGY_ERROR)
    n_steps = n_steps + going.long()
    sum_acc = sum_acc + torch.where(going, torch.exp(-delta).clamp(max=1.0), 0.0)
    new_log_w = torch.logaddexp(sub_log_w, -delta)
    take = going & (u_take < torch.exp(-delta - new_log_w))
    tk = take.unsqueeze(-1)
    sub_x = torch.where(tk, x1, sub_x)
    sub_u = torch.where(take, u1, sub_u)
    sub_g = torch.where(tk, g1, sub_g)
    gw = going.unsqueeze(-1)
    sub_log_w = torch.where(going, new_log_w, sub_log_w)
    sub_rho = torch.where(gw, sub_rho + p1, sub_rho)
    xc = torch.where(gw, x1, xc)
    pc = torch.where(gw, p1, pc)
    gc = torch.where(gw, g1, gc)
    # an even leaf stores its momentum and running sum at its checkpoint; an odd leaf tests
    # the sub-subtrees that start at the checked checkpoints and end here
    st = store.view(-1, 1, 1)
    ckpt_p = torch.where(st, p1, ckpt_p)
    ckpt_rho = torch.where(st, sub_rho, ckpt_rho)
    r = sub_rho - ckpt_rho + ckpt_p
    turn = (_turning(ckpt_p, p1, r, inv_mass) & check.unsqueeze(-1)).any(0)
    going = going & ~div & ~turn
    diverging = diverging | div
    p_half = pc - 0.5 * eps * gc
    x1 = xc + eps * inv_mass * p_half
    return (
        going, diverging, n_steps, sum_acc, sub_log_w, sub_x, sub_u, sub_g, sub_rho,
        xc, pc, gc, p_half, x1, ckpt_p, ckpt_rho,
    )  # fmt: skip


class _Checkpoints:
    """Per-leaf masks of numpyro's checkpoint scheme, built once per run.

    Leaf ``n`` of a subtree stores (``n`` even) its momentum and running momentum sum at
    checkpoint ``popcount(n >> 1)``, or tests (``n`` odd) the checkpoints
    :func:`_ckpt_range` gives. ``store[n]`` and ``check[n]`` are boolean ``(K,)`` masks over
    ``K = max(max_tree_depth - 1, 1)`` checkpoints (the most a subtree of depth
    ``max_tree_depth - 1`` uses), so every leaf calls the same fixed-shape function.
    """

    def __init__(self, max_tree_depth: int, device: torch.device) -> None:
        self.k = max(max_tree_depth - 1, 1)
        n_leaves = 2 ** (max_tree_depth - 1)
        store = torch.zeros((n_leaves, self.k), dtype=torch.bool)
        check = torch.zeros_like(store)
        for n in range(n_leaves):
            if n % 2 == 0:
                store[n, bin(n >> 1).count("1")] = True
            else:
                lo, hi = _ckpt_range(n)
                check[n, lo : hi + 1] = True
        # one separate tensor per leaf (not views): the compiled leaf sees fresh inputs
        self.store = [m.clone().to(device) for m in store]
        self.check = [m.clone().to(device) for m in check]


class _Stepper:
    """One leaf of the trajectory: the potential call and :func:`_leaf_update`.

    Eager: the potential goes through the :class:`_Evaluator` (only moving chains on the
    CPU). Compiled: ``fused`` is value, gradient and leaf update in one compiled call.
    """

    def __init__(self, evaluate: _Evaluator, fused=None) -> None:
        self.evaluate = evaluate
        self.fused = fused

    def __call__(self, x1: torch.Tensor, going: torch.Tensor, n_moving: int, *state):
        if self.fused is not None:
            self.evaluate.n_calls += 1
            self.evaluate.n_chain_evals += x1.shape[0]
            return self.fused(x1, *state)
        u1, g1 = self.evaluate(x1, going, n_moving)
        return _leaf_update(x1, u1, g1, *state)


def _fused_leaf(value_and_grad: ValueAndGrad):
    """``(x1, *state) -> _leaf_update(x1, *value_and_grad(x1), *state)`` (to be compiled)."""

    def leaf(x1, p_half, eps, inv_mass, h0, going, *rest):
        u1, g1 = value_and_grad(x1)
        return _leaf_update(x1, u1, g1, p_half, eps, inv_mass, h0, going, *rest)

    return leaf


def _leaf_example(x: torch.Tensor, u: torch.Tensor, g: torch.Tensor, k: int) -> tuple:
    """Arguments of :func:`_fused_leaf` (after ``x1``) with the sampler's shapes, as the
    sampler passes them: distinct tensors, none aliasing another (for compiling it)."""
    c = x.shape[0]
    going = torch.ones(c, dtype=torch.bool, device=x.device)
    steps = torch.zeros(c, dtype=torch.long, device=x.device)
    eps = torch.full((c, 1), 0.1, dtype=x.dtype, device=x.device)
    ckpt = torch.zeros((k,) + tuple(x.shape), dtype=x.dtype, device=x.device)
    store = torch.zeros(k, dtype=torch.bool, device=x.device)
    store[0] = True
    check = torch.zeros_like(store)

    def d(t: torch.Tensor, add: float = 0.0) -> torch.Tensor:
        return t + add

    return (
        d(g, 1.0), eps, torch.ones_like(x), d(u, 1.0), going, ~going,
        torch.full_like(u, 0.5), steps, torch.zeros_like(u), torch.full_like(u, -math.inf),
        d(x), d(u), d(g), torch.zeros_like(x), d(x), d(g, 1.0), d(g), ckpt, ckpt.clone(),
        store, check,
    )  # fmt: skip


def _nuts_transition(
    step: _Stepper,
    x: torch.Tensor,
    u: torch.Tensor,
    g: torch.Tensor,
    step_size: torch.Tensor,
    inv_mass: torch.Tensor,
    max_tree_depth: int,
    gen: torch.Generator,
    ckpts: _Checkpoints,
):
    """One NUTS transition for all chains; returns the new state and per-chain statistics."""
    c = x.shape[0]
    dev, dt = x.device, x.dtype
    p = torch.randn(x.shape, generator=gen, dtype=dt, device=dev) / inv_mass.sqrt()
    h0 = u + _kinetic(p, inv_mass)
    # trajectory ends (left = backward in time, right = forward)
    xl, pl, gl = x, p, g
    xr, pr, gr = x, p, g
    rho = p.clone()
    log_w = torch.zeros(c, dtype=dt, device=dev)  # log sum of the tree's leaf weights
    x_new, u_new, g_new = x, u, g
    active = torch.ones(c, dtype=torch.bool, device=dev)
    depth = torch.zeros(c, dtype=torch.long, device=dev)
    n_steps = torch.zeros(c, dtype=torch.long, device=dev)
    sum_acc = torch.zeros(c, dtype=dt, device=dev)
    diverging = torch.zeros(c, dtype=torch.bool, device=dev)
    ckpt_shape = (ckpts.k,) + tuple(p.shape)
    compact = step.fused is None and step.evaluate.compact
    n_batched = 0
    n_moving = c
    for j in range(max_tree_depth):
        if j > 0:
            n_moving = int(active.sum())
            if n_moving == 0:
                break
        forward = _rand(c, gen, x) < 0.5
        fw = forward.unsqueeze(-1)
        eps = torch.where(forward, step_size, -step_size).unsqueeze(-1)
        xc = torch.where(fw, xr, xl)
        pc = torch.where(fw, pr, pl)
        gc = torch.where(fw, gr, gl)
        depth = depth + active.long()
        # the subtree of 2**j leaves
        going = active.clone()
        sub_log_w = torch.full((c,), -math.inf, dtype=dt, device=dev)
        # copies: the compiled leaf update is specialised to arguments that do not alias
        sub_x, sub_u, sub_g = xc.clone(), u.clone(), gc.clone()
        sub_rho = torch.zeros_like(p)
        ckpt_p = torch.zeros(ckpt_shape, dtype=dt, device=dev)
        ckpt_rho = torch.zeros(ckpt_shape, dtype=dt, device=dev)
        sub_moving = n_moving
        # first leapfrog of the subtree (the later ones come out of the leaf update)
        p_half = pc - 0.5 * eps * gc
        x1 = xc + eps * inv_mass * p_half
        for n in range(2**j):
            if n > 0:
                if compact:
                    sub_moving = int(going.sum())
                    if sub_moving == 0:
                        break
                elif not bool(going.any()):
                    break
            (
                going, diverging, n_steps, sum_acc, sub_log_w, sub_x, sub_u, sub_g, sub_rho,
                xc, pc, gc, p_half, x1, ckpt_p, ckpt_rho,
            ) = step(
                x1, going, sub_moving, p_half, eps, inv_mass, h0, going, diverging,
                _rand(c, gen, x), n_steps, sum_acc, sub_log_w, sub_x, sub_u, sub_g, sub_rho,
                xc, pc, gc, ckpt_p, ckpt_rho, ckpts.store[n], ckpts.check[n],
            )  # fmt: skip
            n_batched += 1
        # chains whose subtree completed without a U-turn or divergence extend their tree
        ok = going
        accept = ok & (_rand(c, gen, x) < torch.exp(sub_log_w - log_w))
        ak = accept.unsqueeze(-1)
        x_new = torch.where(ak, sub_x, x_new)
        u_new = torch.where(accept, sub_u, u_new)
        g_new = torch.where(ak, sub_g, g_new)
        log_w = torch.where(ok, torch.logaddexp(log_w, sub_log_w), log_w)
        okf, okb = (ok & forward).unsqueeze(-1), (ok & ~forward).unsqueeze(-1)
        xr, pr, gr = torch.where(okf, xc, xr), torch.where(okf, pc, pr), torch.where(okf, gc, gr)
        xl, pl, gl = torch.where(okb, xc, xl), torch.where(okb, pc, pl), torch.where(okb, gc, gl)
        rho = torch.where(ok.unsqueeze(-1), rho + sub_rho, rho)
        active = ok & ~_turning(pl, pr, rho, inv_mass)
    accept_rate = sum_acc / n_steps.clamp(min=1).to(dt)
    return x_new, u_new, g_new, n_steps, depth, accept_rate, diverging, n_batched


def _initial_step_size(
    evaluate: _Evaluator,
    x: torch.Tensor,
    u: torch.Tensor,
    g: torch.Tensor,
    step_size: torch.Tensor,
    inv_mass: torch.Tensor,
    gen: torch.Generator,
    max_iter: int = 100,
) -> tuple[torch.Tensor, int]:
    """Stan's heuristic per chain: double or halve until one step's acceptance crosses 0.8."""
    c = x.shape[0]
    log08 = math.log(0.8)
    mask = torch.ones(c, dtype=torch.bool, device=x.device)

    def log_accept(eps):
        p = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
        p = p / inv_mass.sqrt()
        e = eps.unsqueeze(-1)
        p_half = p - 0.5 * e * g
        x1 = x + e * inv_mass * p_half
        u1, g1 = evaluate(x1, mask, c)
        p1 = p_half - 0.5 * e * g1
        h = u + _kinetic(p, inv_mass) - u1 - _kinetic(p1, inv_mass)
        return torch.where(torch.isfinite(h), h, torch.full_like(h, -math.inf))

    eps = step_size.clone()
    h = log_accept(eps)
    up = h > log08
    done = torch.zeros(c, dtype=torch.bool, device=x.device)
    n = 1
    for _ in range(max_iter):
        new = torch.where(up, 2.0 * eps, 0.5 * eps)
        eps = torch.where(done, eps, new)
        h = log_accept(eps)
        n += 1
        done = done | (up & ~(h > log08)) | (~up & ~(h < log08))
        done = done | (eps < 1e-10) | (eps > 1e7)
        if bool(done.all()):
            break
    return eps, n


def nuts_sample(
    potential_fn: Potential,
    init: torch.Tensor,
    *,
    draws: int,
    tune: int,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    inv_mass: torch.Tensor | None = None,
    step_size: float | torch.Tensor = 1.0,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    progress: bool = True,
    compact: bool | None = None,
    desc: str = "batched NUTS",
    compile: bool = False,
) -> NUTSResult:
    """Run NUTS on ``C`` chains at once.

    Parameters
    ----------
    potential_fn : callable
        ``x (C, D) -> U (C,)``, differentiable, chains independent (row ``c`` of the output
        depends on row ``c`` of the input only): gradients come from one backward pass of
        ``U.sum()``. May be called with fewer rows than ``C``.
    init : torch.Tensor
        ``(C, D)`` starting points (unconstrained); sets dtype and device.
    draws, tune : int
        Kept draws and warm-up iterations per chain.
    target_accept : float
        Target of the step-size adaptation (mean acceptance statistic).
    max_tree_depth : int
        At most ``2**max_tree_depth - 1`` leapfrog steps per iteration.
    inv_mass : torch.Tensor, optional
        ``(D,)`` or ``(C, D)`` initial diagonal inverse mass matrix (default: ones).
    step_size : float or tensor
        Starting guess for the step-size search (per chain or shared).
    generator : torch.Generator, optional
        Source of every random number (on ``init``'s device); built from ``seed`` if absent.
    seed : int, optional
        Seed for a new generator (``None``: drawn from torch's global generator).
    progress : bool
        tqdm progress bar over iterations.
    compact : bool, optional
        Evaluate only the chains still moving (default: eager on CPU, where the work saved
        is real; off on a GPU, where the batch costs about the same whatever its size).
        Not available with ``compile=True`` (one graph of all ``C`` rows serves every leaf;
        ``True`` is then an error).
    desc : str
        Progress bar label.
    compile : bool
        Compile each trajectory leaf -- ``potential_fn``'s value and gradient (one graph,
        :func:`hssm_torch.samplers.compiled.fused_value_and_grad`) and the leaf's NUTS
        update -- into one ``torch.compile`` call before the first iteration; the start and
        the step-size searches stay eager. Falls back to the eager sampler with a logged
        warning if compiling fails (or the compiled leaf disagrees with the eager one).
        Costs seconds to tens of seconds once (``NUTSResult.compile_time``).

    Returns
    -------
    NUTSResult

    Example
    -------
    >>> import torch
    >>> cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    >>> prec = torch.linalg.inv(cov)
    >>> pot = lambda x: 0.5 * ((x @ prec) * x).sum(-1)
    >>> res = nuts_sample(pot, torch.zeros(4, 2, dtype=torch.float64), draws=200, tune=200,
    ...                   seed=0, progress=False)
    >>> res.positions.shape
    torch.Size([4, 200, 2])
    """
    if init.dim() != 2:
        raise ValueError(f"init: expected shape (C, D), got {tuple(init.shape)}")
    from hssm_torch.inference import check_nuts_arguments

    check_nuts_arguments(
        tune=tune, target_accept=target_accept, draws=draws, max_tree_depth=max_tree_depth
    )
    c, d = init.shape
    dev, dt = init.device, init.dtype
    if generator is None:
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        generator = torch.Generator(device=dev).manual_seed(int(seed))
    if compile and compact:
        raise ValueError(
            "compact: the compiled sampler evaluates every chain at each leaf (one graph); "
            "pass compact=None or False with compile=True"
        )
    if compact is None:
        compact = dev.type == "cpu" and not compile
    evaluate = _Evaluator(eager_value_and_grad(potential_fn), compact)
    if inv_mass is None:
        inv_mass = torch.ones((c, d), dtype=dt, device=dev)
    else:
        inv_mass = torch.as_tensor(inv_mass, dtype=dt, device=dev).expand(c, d).clone()
        if not bool(torch.all(torch.isfinite(inv_mass) & (inv_mass > 0))):
            raise ValueError("inv_mass: expected finite positive values")
    x = init.detach().clone()
    u, g = evaluate.full(x)
    if not bool(torch.all(torch.isfinite(u) & torch.isfinite(g).all(-1))):
        bad = (~(torch.isfinite(u) & torch.isfinite(g).all(-1))).nonzero().squeeze(-1).tolist()
        raise ValueError(f"init: non-finite potential or gradient for chain(s) {bad}")
    ckpts = _Checkpoints(max_tree_depth, dev)
    step = _Stepper(evaluate)
    compile_time, compiled = 0.0, False
    if compile:
        # potential, gradient and leaf update: one compiled call per leaf; the few calls
        # outside trajectories (start, step-size searches) stay eager
        fused, compile_time, compiled = compile_checked(
            _fused_leaf(fused_value_and_grad(potential_fn)),
            (x + 0.0, *_leaf_example(x, u, g, ckpts.k)),
            what="potential and NUTS leaf",
            reference=_fused_leaf(eager_value_and_grad(potential_fn)),
        )
        if compiled:
            step = _Stepper(evaluate, fused)
        else:
            evaluate.compact = compact = dev.type == "cpu"
    eps = torch.as_tensor(step_size, dtype=dt, device=dev).expand(c).clone()
    windows = mass_windows(tune)
    if tune > 0:
        eps, _ = _initial_step_size(evaluate, x, u, g, eps, inv_mass, generator)
    adapt = DualAveraging(eps, target_accept)
    welford = WelfordVariance(x)
    out_x = torch.empty((draws, c, d), dtype=dt, device=dev)
    out = {
        k: torch.empty((draws, c), dtype=t, device=dev)
        for k, t in (
            ("potential", dt),
            ("diverging", torch.bool),
            ("n_steps", torch.long),
            ("tree_depth", torch.long),
            ("acceptance_rate", dt),
            ("step_size", dt),
        )
    }
    warm_div = torch.zeros(c, dtype=torch.long, device=dev)
    n_chain_lf = torch.zeros((), dtype=torch.long, device=dev)
    n_batched_total = 0
    bar = tqdm(total=tune + draws, disable=not progress, desc=desc, leave=False)
    # compiled: a recompilation (none is expected: shapes are fixed) keeps the known
    # harmless compile warnings out; eager: nothing is filtered
    quiet = compile_warnings_filtered() if compiled else contextlib.nullcontext()
    stance = contextlib.nullcontext()
    if compiled and GUARD_MODE == "skip":
        stance = torch.compiler.set_stance("default", skip_guard_eval_unsafe=True)
    elif compiled:
        stance = torch.compiler.set_stance("fail_on_recompile")
    with quiet, stance:
        for i in range(tune + draws):
            x, u, g, n_steps, depth, acc, div, nb = _nuts_transition(
                step, x, u, g, eps, inv_mass, max_tree_depth, generator, ckpts
            )
            n_batched_total += nb
            n_chain_lf = n_chain_lf + n_steps.sum()
            if i < tune:
                warm_div = warm_div + div.long()
                eps = adapt.update(acc)
                if any(start <= i < end for start, end in windows):
                    welford.update(x)
                    if any(i == end - 1 for _, end in windows):
                        inv_mass = regularised_variance(welford.variance(), welford.n)
                        inv_mass = inv_mass.contiguous()
                        welford.reset()
                        eps, _ = _initial_step_size(evaluate, x, u, g, eps, inv_mass, generator)
                        adapt.restart(eps)
                if i == tune - 1:
                    eps = adapt.final()
            else:
                s = i - tune
                out_x[s] = x
                out["potential"][s] = u
                out["diverging"][s] = div
                out["n_steps"][s] = n_steps
                out["tree_depth"][s] = depth
                out["acceptance_rate"][s] = acc
                out["step_size"][s] = eps
            bar.update(1)
            if progress and i % 50 == 0:
                bar.set_postfix(steps=int(n_steps.max()), eps=f"{float(eps.mean()):.3g}")
    bar.close()
    return NUTSResult(
        positions=out_x.transpose(0, 1).contiguous(),
        potential=out["potential"].T.contiguous(),
        diverging=out["diverging"].T.contiguous(),
        n_steps=out["n_steps"].T.contiguous(),
        tree_depth=out["tree_depth"].T.contiguous(),
        acceptance_rate=out["acceptance_rate"].T.contiguous(),
        step_size=out["step_size"].T.contiguous(),
        inv_mass=inv_mass,
        n_leapfrog_total=n_batched_total,
        n_chain_leapfrog_total=int(n_chain_lf),
        n_potential_calls=evaluate.n_calls,
        warmup_diverging=warm_div,
        compiled=compiled,
        compile_time=compile_time,
    )


def _starts(
    builder: ModelBuilder,
    pot: BatchedPotential,
    chains: int,
    init_mass: bool,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Starting points ``(C, D)`` and an initial inverse mass ``(D,)`` (or ``None``)."""
    from hssm_torch.inference import _laplace

    lap = _laplace(builder) if init_mass else None
    if lap is not None and list(lap.names) != [f.name for f in pot.sites]:
        logger.info("Laplace layout differs from the potential's; using the initial values")
        lap = None
    dt, dev = pot.dtype, pot.device
    if lap is not None:
        mode = lap.mode.to(dtype=dt, device=dev)
        inv = lap.inv_mass.to(dtype=dt, device=dev)
        if chains == 1:
            return mode.unsqueeze(0).clone(), inv
        noise = torch.randn((chains, pot.dim), generator=gen, dtype=dt).to(dev)
        return mode + inv.sqrt() * noise, inv
    if chains == 1:
        return pot.initial_point().unsqueeze(0), None
    vals = [builder.init_values(jitter=0.1, generator=gen) for _ in range(chains)]
    stacked = {k: torch.stack([v[k] for v in vals]) for k in vals[0]}
    return pot.flatten(stacked), None


def run_batched_nuts(
    builder: ModelBuilder,
    *,
    chains: int,
    draws: int,
    tune: int,
    target_accept: float = 0.8,
    seed: int | None = None,
    progress: bool = True,
    jit: bool = True,
    max_tree_depth: int = 10,
    init_mass: bool = True,
    compile: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, float]]:
    """Run ``chains`` NUTS chains together on a model (``HSSM.sample(sampler="nuts_batched")``).

    Same arguments and output as :func:`hssm_torch.inference.run_nuts`. With ``init_mass``
    the chains start around the posterior mode (L-BFGS), dispersed by one Laplace standard
    deviation, and warm-up starts from the inverse of the Hessian's diagonal there; otherwise
    from the model's initial values (jittered when ``chains > 1``) and a unit mass matrix.

    Parameters
    ----------
    builder : ModelBuilder
    chains, draws, tune : int
    target_accept : float
    seed : int, optional
        Seeds one ``torch.Generator`` on the model's device: the same seed gives the same
        draws (on the same device).
    progress : bool
        tqdm progress bar over iterations.
    jit : bool
        Accepted for compatibility with :func:`~hssm_torch.inference.run_nuts` (the
        TorchScript JIT is not used here; see ``compile``), so ``timing["jit_gap"]`` is 0.
    max_tree_depth : int
    init_mass : bool
    compile : bool
        Compile each trajectory leaf (potential value and gradient in one graph, and the
        leaf's NUTS update) with ``torch.compile`` before sampling (seconds to tens of
        seconds, reported as ``timing["compile_time"]`` and not counted in
        ``sampling_time``; falls back to eager with a logged warning if compiling fails).

    Returns
    -------
    samples : dict
        Site name -> array ``(chains, draws, *site_shape)`` (constrained values).
    stats : dict
        ``lp, diverging, step_size, n_steps, tree_depth, acceptance_rate`` -> ``(chains, draws)``.
    timing : dict
        ``sampling_time`` (seconds, warm-up and starting-point search included),
        ``n_leapfrog_total`` (leapfrog steps summed over chains), ``jit_gap`` (0.0),
        ``n_batched_steps`` (batched potential calls in trajectories),
        ``n_potential_calls`` (all batched potential calls), ``init_time`` (seconds spent
        finding the starting points and initial mass matrix, included in
        ``sampling_time``), ``compile_time`` (seconds, excluded from ``sampling_time``),
        ``compiled`` (1.0 if the potential ran compiled, else 0.0).

    Example
    -------
    >>> from hssm_torch import HSSM
    >>> from tests.hssm_torch.fit_data import ddm_data  # doctest: +SKIP
    >>> idata = HSSM(ddm_data(200), "ddm").sample(sampler="nuts_batched", chains=2,
    ...                                           draws=500, tune=500)  # doctest: +SKIP
    """
    del jit  # eager by design (see the docstring)
    if not isinstance(chains, int) or chains < 1:
        raise ValueError(f"chains: expected an integer >= 1, got {chains!r}")
    t0 = time.perf_counter()
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    pot = BatchedPotential(builder)
    init_gen = torch.Generator().manual_seed(int(seed))
    init, inv_mass = _starts(builder, pot, chains, init_mass, init_gen)
    init_time = time.perf_counter() - t0
    gen = torch.Generator(device=pot.device).manual_seed(int(seed) + 1)
    with torch.no_grad():
        u0 = pot(init)
    if not bool(torch.isfinite(u0).all()):
        bad = (~torch.isfinite(u0)).nonzero().squeeze(-1).tolist()
        raise ValueError(
            f"initial values: the log density is not finite for chain(s) {bad}; pass initval"
        )
    res = nuts_sample(
        pot,
        init,
        draws=draws,
        tune=tune,
        target_accept=target_accept,
        max_tree_depth=max_tree_depth,
        inv_mass=inv_mass,
        generator=gen,
        progress=progress,
        compile=compile,
    )
    sampling_time = time.perf_counter() - t0 - res.compile_time
    constrained = pot.constrain(res.positions.reshape(-1, pot.dim))
    samples = {
        name: v.reshape((chains, draws) + v.shape[1:]).detach().cpu().numpy()
        for name, v in constrained.items()
    }
    stats = {
        "lp": (-res.potential).cpu().numpy(),
        "diverging": res.diverging.cpu().numpy(),
        "step_size": res.step_size.cpu().numpy(),
        "n_steps": res.n_steps.cpu().numpy(),
        "tree_depth": res.tree_depth.cpu().numpy(),
        "acceptance_rate": res.acceptance_rate.cpu().numpy(),
    }
    timing = {
        "sampling_time": sampling_time,
        "n_leapfrog_total": res.n_chain_leapfrog_total,
        "jit_gap": 0.0,
        "n_batched_steps": res.n_leapfrog_total,
        "n_potential_calls": res.n_potential_calls,
        "init_time": init_time,
        "compile_time": res.compile_time,
        "compiled": float(res.compiled),
    }
    return samples, stats, timing
