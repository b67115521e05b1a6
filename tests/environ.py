"""The environment for a `dunwell` child process: this one's, less any DUNWELL_ setting, so a
developer's own configuration never leaks into what a test runs."""

from __future__ import annotations

import os


def without_dunwell_settings(**extra: str) -> dict[str, str]:
    """`os.environ` without `DUNWELL_*`, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNWELL_")}
    return {**env, **extra}
