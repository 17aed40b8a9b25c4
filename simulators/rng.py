"""Counter-based random numbers for reproducible, chunk-independent simulation.

Every random number a simulator draws is a pure function of ``(seed, set index, trial
index, stream, counter)``, computed with 32-bit integer hashing in torch ops (the
``lowbias32`` mixer of C. Wellons' hash-prospector).  Nothing depends on how trials are
grouped into chunks or on which other parameter sets are simulated in the same call, so the
same seed on the same device gives the same draws whatever the chunking.

Each trial owns a 64-bit key ``(k1, k2)``; a draw for counter ``c`` is
``mix((c * G ^ k1) + k2)`` with ``G`` the 32-bit golden-ratio constant (one round of the
mixer per draw: a second round doubles the cost of the noise, the dominant cost of the
Euler schemes).  Uniforms keep the top 23 bits (values ``(i + 1/2) / 2**23``, strictly inside
``(0, 1)``), normals come from the Box-Muller transform of two uniforms (one pair of uniforms
gives two normals: counters ``2j`` and ``2j + 1``).

Example
-------
>>> import torch
>>> from simulators.rng import trial_keys, normal_block
>>> k1, k2 = trial_keys(1, torch.tensor([0, 0]), torch.tensor([0, 1]))
>>> normal_block(k1, k2, torch.zeros(2, dtype=torch.int32), 4).shape
torch.Size([2, 4])
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "new_seed",
    "normal",
    "normal_block",
    "normal_block_pure",
    "stream_keys",
    "trial_keys",
    "uniform",
    "uniform_block",
    "uniform_pairs_pure",
    "uniform_pure",
]

_GOLDEN = 0x9E3779B9 - (1 << 32)  # as signed int32
_M1 = 0x7FEB352D
_M2 = 0x846CA68B - (1 << 32)
_TWO_PI = 2.0 * math.pi
_INV_2_23 = 1.0 / 8388608.0


def _i32(x: int) -> int:
    """An int reduced to the signed 32-bit range (the value torch int32 arithmetic wraps to)."""
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >= (1 << 31) else x


_CONSTS: dict[torch.device, dict[int, torch.Tensor]] = {}


def _c(x: torch.Tensor, value: int) -> torch.Tensor:
    """``value`` as a cached 0-d int32 tensor on ``x``'s device.

    A Python int operand of an int32 op is wrapped in a new int64 tensor and cast on every
    call, which costs as much as the op itself on the engines' block sizes.
    """
    consts = _CONSTS.setdefault(x.device, {})
    t = consts.get(value)
    if t is None:
        t = consts[value] = torch.tensor(value, dtype=torch.int32, device=x.device)
    return t


def _mix(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 integer hash on int32 tensors (logical shifts emulated with masks).

    Works in place on ``x`` (callers pass a temporary).
    """
    x ^= torch.bitwise_right_shift(x, _c(x, 16)).bitwise_and_(_c(x, 0xFFFF))
    x *= _c(x, _M1)
    x ^= torch.bitwise_right_shift(x, _c(x, 15)).bitwise_and_(_c(x, 0x1FFFF))
    x *= _c(x, _M2)
    x ^= torch.bitwise_right_shift(x, _c(x, 16)).bitwise_and_(_c(x, 0xFFFF))
    return x


def new_seed() -> int:
    """A fresh random seed (non-negative, < 2**63) from the operating system."""
    import secrets

    return secrets.randbits(63)


def trial_keys(
    seed: int, set_idx: torch.Tensor, trial_idx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The 64-bit key ``(k1, k2)`` (two int32 tensors) of each ``(set, trial)`` pair."""
    lo, hi = _i32(seed), _i32(seed >> 32)
    s = set_idx.to(torch.int32)
    n = trial_idx.to(torch.int32)
    base = _mix(_mix(s * _GOLDEN + hi) ^ lo)
    k1 = _mix(base + n * _i32(0x85EBCA6B))
    k2 = _mix(_mix(n ^ _i32(0x27D4EB2F) ^ hi) + s * _i32(0xC2B2AE35) + lo)
    return k1, k2


def stream_keys(
    k1: torch.Tensor, k2: torch.Tensor, stream: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys of an independent stream (e.g. the second stage of a two-stage model)."""
    if stream == 0:
        return k1, k2
    return _mix(k1 + _i32(stream * 0x632BE5AB)), _mix(k2 ^ _i32(stream * 0x1B873593))


def _bits(k1: torch.Tensor, k2: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    x = torch.mul(counter, _c(counter, _GOLDEN)) ^ k1
    x += k2
    return _mix(x)


def _to_unit(bits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    bits = torch.bitwise_right_shift(bits, _c(bits, 9)).bitwise_and_(_c(bits, 0x7FFFFF))
    u = bits.to(dtype)
    u += 0.5
    u *= _INV_2_23
    return u


def uniform(
    k1: torch.Tensor, k2: torch.Tensor, counter: int | torch.Tensor, dtype=torch.float32
) -> torch.Tensor:
    """One uniform in (0, 1) per key for ``counter`` (broadcasts key against counter)."""
    c = torch.as_tensor(counter, dtype=torch.int32, device=k1.device)
    return _to_unit(_bits(k1, k2, c), dtype)


def normal(k1: torch.Tensor, k2: torch.Tensor, counter: int, dtype=torch.float32) -> torch.Tensor:
    """One standard normal per key (Box-Muller of the uniforms at ``2c`` and ``2c + 1``)."""
    u1 = uniform(k1, k2, 2 * counter, dtype)
    u2 = uniform(k1, k2, 2 * counter + 1, dtype)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(_TWO_PI * u2)


def uniform_block(
    k1: torch.Tensor, k2: torch.Tensor, start: torch.Tensor, k: int, dtype=torch.float32
) -> torch.Tensor:
    """``(M, k)`` uniforms for counters ``start + 0 .. start + k - 1`` of each of M keys."""
    c = start.to(torch.int32).unsqueeze(-1) + torch.arange(k, dtype=torch.int32, device=k1.device)
    return _to_unit(_bits(k1.unsqueeze(-1), k2.unsqueeze(-1), c), dtype)


def normal_block(
    k1: torch.Tensor, k2: torch.Tensor, start: torch.Tensor, k: int, dtype=torch.float32
) -> torch.Tensor:
    """``(M, k)`` standard normals for steps ``start .. start + k - 1`` (``start``, ``k`` even).

    The normals of steps ``2j`` and ``2j + 1`` are the two Box-Muller outputs of pair ``j``, so
    a step's normal does not depend on the block it is drawn in.
    """
    if k % 2:
        raise ValueError(f"k: expected an even block length, got {k}")
    half = k // 2
    m = start.shape[0]
    ctr = (start.to(torch.int32).unsqueeze(-1) // 2) * 2 + 2 * torch.arange(
        half, dtype=torch.int32, device=k1.device
    )
    a1, a2 = k1.unsqueeze(-1), k2.unsqueeze(-1)
    r = _to_unit(_bits(a1, a2, ctr), dtype).log_().mul_(-2.0).sqrt_()
    ang = _to_unit(_bits(a1, a2, ctr + 1), dtype).mul_(_TWO_PI)
    out = torch.empty((m, half, 2), dtype=dtype, device=k1.device)
    torch.cos(ang, out=out[:, :, 0])
    torch.sin(ang, out=out[:, :, 1])
    out *= r.unsqueeze(-1)
    return out.reshape(m, k)


# --------------------------------------------------------------------------------------------
# Functional forms for torch.compile'd blocks (simulators.engine, ``compile=True``): the same
# mapping from (key, counter) to bits and uniforms as above, written without in-place ops or
# cached constant tensors so that dynamo traces them into one graph.  The integer part is
# bitwise identical to the eager functions; log/sqrt/cos/sin may differ from eager torch in
# the last ulp once vectorized.


def _mix_pure(x: torch.Tensor) -> torch.Tensor:
    x = x ^ (torch.bitwise_right_shift(x, 16) & 0xFFFF)
    x = x * _M1
    x = x ^ (torch.bitwise_right_shift(x, 15) & 0x1FFFF)
    x = x * _M2
    return x ^ (torch.bitwise_right_shift(x, 16) & 0xFFFF)


def uniform_pure(
    k1: torch.Tensor, k2: torch.Tensor, counter: torch.Tensor, dtype=torch.float32
) -> torch.Tensor:
    """:func:`uniform` (bitwise the same values) for use inside compiled blocks."""
    bits = _mix_pure(((counter * _GOLDEN) ^ k1) + k2)
    return ((torch.bitwise_right_shift(bits, 9) & 0x7FFFFF).to(dtype) + 0.5) * _INV_2_23


def normal_block_pure(
    k1: torch.Tensor, k2: torch.Tensor, start: torch.Tensor, k: int, dtype=torch.float32
) -> torch.Tensor:
    """:func:`normal_block` for keys of any shape ``(...)``: ``(..., k)`` normals.

    ``start`` (even, int) broadcasts against the keys.  Same draws as :func:`normal_block`
    (up to the last ulp of log/cos/sin once compiled); used inside compiled blocks.
    """
    half = k // 2
    j = torch.arange(half, dtype=torch.int32, device=k1.device)
    ctr = start.to(torch.int32).unsqueeze(-1) + 2 * j
    a1, a2 = k1.unsqueeze(-1), k2.unsqueeze(-1)
    r = torch.sqrt(-2.0 * torch.log(uniform_pure(a1, a2, ctr, dtype)))
    ang = uniform_pure(a1, a2, ctr + 1, dtype) * _TWO_PI
    # (..., k/2, 2) -> (..., k): steps 2j and 2j + 1 are the cos and sin outputs of pair j
    out = torch.stack([torch.cos(ang) * r, torch.sin(ang) * r], dim=-1)
    return out.reshape(*out.shape[:-2], k)


def uniform_pairs_pure(
    k1: torch.Tensor, k2: torch.Tensor, start: torch.Tensor, k: int, dtype=torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """The uniforms of counters ``2 s`` and ``2 s + 1`` for steps ``s = start .. start + k - 1``:
    two ``(M, k)`` tensors, equal to ``uniform_block(k1, k2, 2 * start, 2 * k)`` split by
    parity (the layout of :func:`simulators.engine.levy_block`)."""
    j = torch.arange(k, dtype=torch.int32, device=k1.device)
    ctr = 2 * (start.to(torch.int32).unsqueeze(-1) + j)
    a1, a2 = k1.unsqueeze(-1), k2.unsqueeze(-1)
    return uniform_pure(a1, a2, ctr, dtype), uniform_pure(a1, a2, ctr + 1, dtype)
