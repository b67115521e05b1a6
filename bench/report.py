"""Figures as one human-readable line each, with `TARGET MISSED` beside those that miss."""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Sequence

MISSED = "TARGET MISSED"


def note(message: str) -> None:
    """Progress, on stderr: the figures on stdout stay one line each."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


def figure(line: str, *, met: bool | None = None) -> None:
    """Print one figure; `met=False` marks it as missing its target."""
    print(f"{line}  {MISSED}" if met is False else line, flush=True)


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def rates(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)
