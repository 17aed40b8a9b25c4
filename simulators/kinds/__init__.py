"""Samplers, one module per family of simulator kinds.

Every sampler has the signature ``fn(spec, params, keys, *, n_steps, dt, method) ->
(rt, response, finished)`` over ``M`` rows (trials): ``params`` maps each parameter name to an
``(M,)`` tensor, ``keys`` holds the rows' RNG keys ``k1``, ``k2``; ``rt`` includes the
non-decision time; rows with ``finished == False`` made no decision within ``n_steps * dt``.
:data:`SAMPLERS` maps simulator kinds to samplers and :data:`METHODS` to the methods each
supports (the first is what ``method="auto"`` picks).
"""

from simulators.kinds.closed_form import lba, poisson_race, racing_diffusion, softmax
from simulators.kinds.diffusion import ddm, levy, ornstein
from simulators.kinds.race import lca, race
from simulators.kinds.two_stage import mic2, par2, seq2

__all__ = ["METHODS", "SAMPLERS", "methods_for"]

SAMPLERS = {
    "ddm": ddm,
    "levy": levy,
    "ornstein": ornstein,
    "race": race,
    "lca": lca,
    "lba": lba,
    "racing_diffusion": racing_diffusion,
    "poisson_race": poisson_race,
    "seq2": seq2,
    "par2": par2,
    "mic2": mic2,
    "softmax": softmax,
}

#: kind -> supported methods; the first one is the ``"auto"`` choice.
METHODS = {
    "ddm": ("exact", "bridge", "euler"),
    "levy": ("euler",),
    "ornstein": ("bridge", "euler"),
    "race": ("euler",),
    "lca": ("euler",),
    "lba": ("exact",),
    "racing_diffusion": ("exact",),
    "poisson_race": ("exact",),
    "seq2": ("bridge", "euler"),
    "par2": ("bridge", "euler"),
    "mic2": ("euler",),
    "softmax": ("exact",),
}


def methods_for(spec) -> tuple[str, ...]:
    """Methods available for a registry model (the first is what ``"auto"`` picks).

    The grid-free ``"exact"`` sampler of the ddm kind needs constant bounds and drift.
    """
    methods = METHODS[spec.simulator]
    if spec.simulator == "ddm" and not (spec.boundary == "constant" and spec.drift == "constant"):
        methods = tuple(m for m in methods if m != "exact")
    return methods
