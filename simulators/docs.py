"""Render the model registry as Markdown (``docs/models.md``).

Run ``python -m simulators.docs > docs/models.md``; a test keeps the file in sync.

Example
-------
>>> from simulators.docs import render_models_markdown
>>> "## ddm" in render_models_markdown()
True
"""

from __future__ import annotations

import math

from simulators.registry import SIMULATOR_KINDS, get_model, list_models

__all__ = ["render_models_markdown"]


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:g}"


def render_models_markdown() -> str:
    """The registry as one Markdown document, one section per model."""
    names = list_models()
    out = [
        "# Models",
        "",
        "Generated from the model registry by `python -m simulators.docs > docs/models.md`",
        "(`make docs-models`); a test fails when this file and the registry disagree.",
        "",
        "Conventions: `a` is half the boundary separation (boundaries at ±b(t), b(0) = a),",
        "start point y0 = (2z − 1)·a, noise s = 1, rt includes the non-decision time `t`.",
        "*Box* is the simulation / network-training range; *support* is where the model is",
        "defined (used by analytical likelihoods and priors).",
        "",
        f"{len(names)} models. Simulator kinds:",
        "",
    ]
    out += [f"- `{k}`: {v}" for k, v in SIMULATOR_KINDS.items()]
    out += ["", "| model | kind | parameters | choices |", "|---|---|---|---|"]
    for n in names:
        s = get_model(n)
        out.append(
            f"| [{n}](#{n}) | {s.simulator} | {', '.join(s.param_names)} | "
            f"{', '.join(map(str, s.choices))} |"
        )
    for n in names:
        s = get_model(n)
        out += ["", f"## {n}", "", f"{s.description}.", "", f"Reference: {s.reference}.", ""]
        bound = (
            s.boundary if isinstance(s.boundary, str) else getattr(s.boundary, "__name__", "custom")
        )
        drift = s.drift if isinstance(s.drift, str) else getattr(s.drift, "__name__", "custom")
        out.append(
            f"Simulator `{s.simulator}`, boundary `{bound}`, drift `{drift}`, "
            f"{s.n_accumulators} accumulator(s), choices {list(s.choices)}."
        )
        out += ["", "| parameter | box | default | support | meaning |", "|---|---|---|---|---|"]
        for p in s.params:
            lo, hi = p.support  # type: ignore[misc]
            opt = " (optional)" if p.optional else ""
            out.append(
                f"| `{p.name}`{opt} | [{_fmt(p.lower)}, {_fmt(p.upper)}] | {_fmt(p.default)} | "
                f"({_fmt(lo)}, {_fmt(hi)}) | {p.description} |"
            )
        if s.notes:
            out += ["", f"Note: {s.notes}."]
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(render_models_markdown(), end="")
