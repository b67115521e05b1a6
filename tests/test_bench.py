"""`python -m bench --quick` runs end to end and prints its three kinds of figures.

This checks that the bench works, never what it measures: timings on a shared machine vary.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMBER = r"\d+(?:\.\d+)?"


def test_quick_bench_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{out}\n{done.stderr[-3000:]}"
    for pattern in (
        rf"start via API: {NUMBER} journeys/s",
        rf"start via raw client: {NUMBER} journeys/s",
        rf"start ratio[^\n]*?: {NUMBER}",
        rf"dispute p50 ratio[^\n]*?: {NUMBER}",
        rf"dispute p99 ratio[^\n]*?: {NUMBER}",
        rf"history events: \d+ for \d+ steps \({NUMBER} per step",
        rf"due-date surge: {NUMBER} reminders/s through the pipeline \(40 journeys",
        rf"surge CPU per reminder: pipeline {NUMBER} ms \(worker {NUMBER} \+ dev server "
        rf"{NUMBER}\), bare {NUMBER} ms",
        rf"plain SDK loop: {NUMBER} messages/s",
        rf"bare timer -> activity pipeline: {NUMBER} reminders/s",
        rf"surge ratio \(pipeline/bare\): {NUMBER} \(target >= 0.7\)  (met|MISSED)",
        rf"burst: 40 journeys posted in {NUMBER} s; all readable {NUMBER} s",
        rf"worker memory: {NUMBER} MB",
        rf"worker CPU per journey start: {NUMBER} ms",
        rf"console work list page \(1000 invoices, \d+ open tasks on PostgreSQL[^\n]*"
        rf"oldest first, page 1 {NUMBER}/{NUMBER}",
        rf"console invoice list page \(1000 invoices[^\n]*by number {NUMBER}/{NUMBER}",
    ):
        assert re.search(pattern, out), f"no line matching {pattern!r} in:\n{out}"
