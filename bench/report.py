"""Figures as one human-readable line each; those with a target end in `met` or `MISSED`."""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Sequence

MISSED = "MISSED"
MET = "met"


def note(message: str) -> None:
    """Progress, on stderr: the figures on stdout stay one line each."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


def figure(line: str, *, met: bool | None = None) -> None:
    """Print one figure; a figure with a target ends in `met` or `MISSED`."""
    mark = "" if met is None else f"  {MET if met else MISSED}"
    print(line + mark, flush=True)


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def rates(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)
