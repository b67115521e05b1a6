"""`pip install .` gives a working `dunwell`: the wheel carries every module the command line and
the services import (a module missing from the wheel's list fails here, not on a user's machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UV = ROOT / ".uv" / "bin" / "uv"


def _uv() -> str:
    found = subprocess.run(["sh", "-c", "command -v uv"], capture_output=True, text=True)
    if found.stdout.strip():
        return found.stdout.strip()
    assert UV.exists(), "uv is missing: run `make test`, which installs it into .uv/"
    return str(UV)


def test_the_wheel_installs_a_working_dunwell(tmp_path: Path) -> None:
    uv = _uv()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUNWELL_", "VIRTUAL_ENV"))}
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
        env=env,
    )
    wheel = next((tmp_path / "dist").glob("dunwell-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--python", sys.executable, str(venv)], check=True, env=env)
    subprocess.run(
        [uv, "pip", "install", "--python", str(venv / "bin" / "python"), str(wheel)],
        check=True,
        capture_output=True,
        env=env,
    )
    # Outside the source tree, so only what the wheel installed can be imported.
    help_text = subprocess.run(
        [str(venv / "bin" / "dunwell"), "--help"],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    ).stdout
    for command in ("dev", "worker", "api", "migrate", "keys", "fake-providers"):
        assert command in help_text
    modules = (
        "cli, worker, devserver, encryption, fake_providers, settings, temporal_client, "
        "api.app, db.store, activities.messaging, workflows.journey, workflows.plan, bench.run"
    )
    subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"import {modules}"],
        check=True,
        cwd=tmp_path,
        env=env,
    )
