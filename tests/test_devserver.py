"""`dunwell dev`: its own secrets (made once, kept in DUNWELL_HOME, readable by their owner only),
and how it stops its children."""

from __future__ import annotations

import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from devserver import Supervisor, dev_api_key, dev_secret
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


def test_a_second_ctrl_c_while_stopping_stops_every_child_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Children slow to stop (they ignore SIGTERM): the first Ctrl-C waits for each in turn.
    supervisor = Supervisor(dict(os.environ))
    children = []
    for name in ("worker", "api"):
        ready = tmp_path / name
        slow = [sys.executable, "-c", "import pathlib, signal, sys, time; signal.signal("
                "signal.SIGTERM, signal.SIG_IGN); pathlib.Path(sys.argv[1]).touch(); "
                "time.sleep(120)", str(ready)]  # fmt: skip
        children.append(supervisor.start(name, slow))
        for _ in range(200):
            if ready.exists():
                break
            time.sleep(0.05)
        assert ready.exists(), f"{name} never started"
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, as in `dunwell dev`
    second = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    try:
        second.start()  # the user presses Ctrl-C again while we wait for the first child
        supervisor.stop()
    except KeyboardInterrupt:
        pytest.fail("the second Ctrl-C escaped as a traceback instead of stopping the children")
    finally:
        second.cancel()
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()

    assert [child.returncode for child in children] == [-signal.SIGKILL] * 2
    err = capsys.readouterr().err
    assert "stopping at once" in err and "did not stop in 15 s" not in err  # no traceback, no wait
