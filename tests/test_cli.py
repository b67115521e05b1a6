"""The command line: production API keys, and the payload encryption key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.environ import without_dunwell_settings

ROOT = Path(__file__).parent.parent


def test_the_keys_command_shows_a_key_once_and_revokes_it(tmp_path: Path) -> None:
    env = without_dunwell_settings(DUNWELL_HOME=str(tmp_path))  # SQLite in there

    def dunwell(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "cli.py", "keys", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    created = dunwell("create", "--role", "agent", "--name", "anna")
    assert created.returncode == 0, created.stderr
    key = created.stdout.split()[-1]
    assert key.startswith("dw_") and "shown only this once" in created.stdout
    listed = dunwell("list")
    assert "anna" in listed.stdout and "live" in listed.stdout and key not in listed.stdout
    again = dunwell("create", "--role", "agent", "--name", "anna")
    assert again.returncode != 0 and "already a key named 'anna'" in again.stderr
    assert dunwell("revoke", "anna").returncode == 0
    assert "revoked" in dunwell("list").stdout
    assert key not in (tmp_path / "dunwell.db").read_bytes().decode(errors="ignore")


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "cli.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_encryption_key_is_made_on_request_and_required_to_start(tmp_path: Path) -> None:
    env = without_dunwell_settings(DUNWELL_HOME=str(tmp_path))
    made = _run(["encryption-key"], env)
    assert made.returncode == 0, made.stderr
    key_id, _, key = made.stdout.strip().partition(":")
    assert key_id and len(key) == 44  # 32 bytes in base64
    assert _run(["encryption-key"], env).stdout != made.stdout

    for part in ("worker", "api"):
        refused = _run([part], env)
        assert refused.returncode != 0
        assert "DUNWELL_ENCRYPTION_KEYS is not set" in refused.stderr
        assert "dunwell encryption-key" in refused.stderr
    broken = _run(["worker"], {**env, "DUNWELL_ENCRYPTION_KEYS": "k1:dG9vc2hvcnQ="})
    assert "AES-256 needs 32" in broken.stderr
