"""Small helpers shared by the tutorials: command-line options and saving figures.

Every tutorial accepts ``--out DIR`` (default ``runs/tutorials/<name>/``, ignored by git) and
``--docs-images`` (also write the PNGs into ``docs/images/tutorials/`` for the docs).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["Outputs", "parse_args"]

ROOT = Path(__file__).resolve().parents[2]
DOCS_IMAGES = ROOT / "docs" / "images" / "tutorials"
# ArviZ 0.23 calls a matplotlib helper deprecated in matplotlib 3.11 and announces its 1.0
# refactor on import; neither is actionable in a tutorial.
warnings.filterwarnings("ignore", message=".*alias_mapping.*", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")


class Outputs:
    """Where a tutorial writes its files (``out``) and, optionally, the docs' PNGs."""

    def __init__(self, name: str, out: Path | None, docs_images: bool) -> None:
        self.name = name
        self.out = Path(out) if out is not None else ROOT / "runs" / "tutorials" / name
        self.out.mkdir(parents=True, exist_ok=True)
        self.docs_images = docs_images
        self.written: list[Path] = []

    def path(self, filename: str) -> Path:
        """A path inside the output folder."""
        return self.out / filename

    def figure(self, fig: Any, filename: str, dpi: int = 90) -> Path:
        """Save a matplotlib figure (or an array of ArviZ axes) as PNG and close it."""
        if not hasattr(fig, "savefig"):  # ArviZ returns axes: lay out their figure
            fig = np.asarray(fig).ravel()[0].figure
            fig.tight_layout()
        targets = [self.out / filename]
        if self.docs_images:
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            targets.append(DOCS_IMAGES / f"{self.name}_{filename}")
        for target in targets:
            fig.savefig(target, dpi=dpi, bbox_inches="tight")
            print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        plt.close(fig)
        self.written.append(targets[0])
        return targets[0]

    def json(self, obj: Any, filename: str) -> Path:
        """Write a JSON file into the output folder."""
        path = self.out / filename
        path.write_text(json.dumps(obj, indent=2, default=float) + "\n")
        print(f"wrote {path}")
        return path


def parse_args(name: str, description: str, argv: list[str] | None = None) -> Outputs:
    """Parse ``--out`` / ``--docs-images`` and return the tutorial's :class:`Outputs`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument(
        "--docs-images", action="store_true", help="also write PNGs to docs/images/tutorials/"
    )
    args, _ = parser.parse_known_args(argv)
    return Outputs(name, args.out, args.docs_images)
