"""`dunwell dev`'s own secrets: made once, kept in DUNWELL_HOME, readable by their owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from devserver import dev_api_key, dev_secret
from encryption import new_key


def test_dev_secrets_are_made_once_with_mode_0600_even_under_a_permissive_umask(
    tmp_path: Path,
) -> None:
    previous = os.umask(0)  # a umask that would leave a plain new file world-readable
    try:
        key = dev_api_key(tmp_path)
        encryption = dev_secret(tmp_path, "encryption-keys", new_key)
    finally:
        os.umask(previous)
    for name in ("dev-api-key", "encryption-keys"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {mode:o}"
    # The next `dunwell dev` reads the same values back: journeys stay readable, the key works.
    assert dev_api_key(tmp_path) == key and len(key) >= 32
    assert dev_secret(tmp_path, "encryption-keys", new_key) == encryption
