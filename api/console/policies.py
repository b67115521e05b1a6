"""Policies in the console: each ladder as a table, an edit stored as a new version (through the
API's own validation), and the difference between any two versions."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.console.web import ConsoleUser, User, checked_form, render
from api.deps import Policies, StoreDep
from api.problems import Problem
from api.routes import policies as api
from workflows.policy import Policy, StepAction, Tone

router = APIRouter(prefix="/console/policies", include_in_schema=False)
STEP_FIELDS = ("name", "offset", "tone", "channels", "template", "action")


@router.get("", response_class=HTMLResponse)
async def policy_list(request: Request, user: ConsoleUser, store: StoreDep) -> Response:
    """Every policy at its current version."""
    found = await run_in_threadpool(store.list_policies)
    return render(request, "policies.html", user, policies=found)


@router.get("/{name}", response_class=HTMLResponse)
async def policy_page(
    name: str,
    request: Request,
    user: ConsoleUser,
    store: StoreDep,
    version: int | None = Query(None, ge=1),
) -> Response:
    """One policy's ladder as a table, its other settings, and its versions."""
    policy = await _version(store, name, version)
    if policy is None:
        return render(request, "notice.html", user, status_code=404, message="not_found")
    versions = await run_in_threadpool(store.policy_versions, name)
    return render(
        request,
        "policy.html",
        user,
        policy=policy,
        steps=[_step_row(s) for s in policy.model_dump(mode="json")["steps"]],
        settings=_settings_json(policy),
        versions=versions,
    )


async def _version(store: Any, name: str, version: int | None) -> Policy | None:
    if version is None:
        found: Policy | None = await run_in_threadpool(store.get_policy, name)
        return found
    found = await run_in_threadpool(store.policy_version, name, version)
    return found


def _step_row(step: dict[str, Any]) -> dict[str, str]:
    return {
        "name": step.get("name") or "",
        "offset": step.get("offset") or "",
        "tone": step.get("tone") or "",
        "channels": ", ".join(step.get("channels") or []),
        "template": step.get("template") or "",
        "action": step.get("action") or "",
    }


def _settings_json(policy: Policy) -> str:
    document = policy.model_dump(mode="json", exclude={"name", "version", "steps", "description"})
    return json.dumps(document, indent=2, ensure_ascii=False)


@router.get("/{name}/edit", response_class=HTMLResponse)
async def edit_page(name: str, request: Request, user: ConsoleUser, store: StoreDep) -> Response:
    """The current version as a form: change the ladder or the settings, save a new version."""
    policy = await _version(store, name, None)
    if policy is None:
        return render(request, "notice.html", user, status_code=404, message="not_found")
    steps = [_step_row(s) for s in policy.model_dump(mode="json")["steps"]]
    return _edit(request, user, policy.name, policy.description, steps, _settings_json(policy))


def _edit(
    request: Request,
    user: User,
    name: str,
    description: str,
    steps: list[dict[str, str]],
    settings: str,
    errors: list[str] | None = None,
    invalid: set[str] | None = None,
) -> Response:
    """The edit form; `invalid` names the ladder's fields to mark, as `<field>-<row>`."""
    refused = _admin_only(request, user)
    if refused:
        return refused
    return render(
        request,
        "policy_edit.html",
        user,
        status_code=422 if errors else 200,
        name=name,
        description=description,
        steps=[*steps, dict.fromkeys(STEP_FIELDS, "")],  # one empty row adds a step
        settings=settings,
        errors=errors or [],
        invalid=invalid or set(),
        tones=[t.value for t in Tone],
        actions=[a.value for a in StepAction],
    )


def _admin_only(request: Request, user: User) -> Response | None:
    if user.is_admin:
        return None
    role = user.actor.role.value
    return render(request, "notice.html", user, status_code=403, message="needs_admin", role=role)


def _steps_from(form: dict[str, Any]) -> list[dict[str, str]]:
    columns = {f: form.get(f"{f}[]", []) for f in STEP_FIELDS}
    columns = {f: [v] if isinstance(v, str) else list(v) for f, v in columns.items()}
    count = max((len(v) for v in columns.values()), default=0)
    rows = []
    for i in range(count):
        row = {f: str(columns[f][i]).strip() if i < len(columns[f]) else "" for f in STEP_FIELDS}
        if any(row.values()):
            rows.append(row)
    return rows


def _step_document(row: dict[str, str]) -> dict[str, Any]:
    step: dict[str, Any] = {"name": row["name"], "offset": row["offset"]}
    channels = [c.strip() for c in row["channels"].split(",") if c.strip()]
    if channels:
        step["channels"] = channels
    for key in ("tone", "template", "action"):
        if row[key]:
            step[key] = row[key]
    return step


@router.post("/{name}", response_class=HTMLResponse)
async def save(
    name: str, request: Request, user: ConsoleUser, policies: Policies, store: StoreDep
) -> Response:
    """Store the edited policy as its next version, or show what to correct."""
    refused = _admin_only(request, user)
    if refused:
        return refused
    form = await checked_form(request, user)
    steps = _steps_from(form)
    description = str(form.get("description", ""))
    settings = str(form.get("settings", "{}"))
    try:
        extra = json.loads(settings or "{}")
        if not isinstance(extra, dict):
            raise ValueError("the settings must be a JSON object")
    except ValueError as exc:
        return _edit(request, user, name, description, steps, settings, [f"settings: {exc}"])
    document = {
        **extra,
        "name": name,
        "description": description,
        "steps": [_step_document(r) for r in steps],
    }
    try:
        stored = await api.put_policy(name, Policy.model_validate(document), user.actor, policies)
    except ValidationError as exc:
        errors = [
            _where(e["loc"], steps) + str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        ]
        invalid = {
            f"{e['loc'][2]}-{e['loc'][1]}"
            for e in exc.errors()
            if len(e["loc"]) > 2 and e["loc"][0] == "steps" and isinstance(e["loc"][1], int)
        }
        return _edit(request, user, name, description, steps, settings, errors, invalid)
    except Problem as problem:
        return _edit(request, user, name, description, steps, settings, [problem.detail])
    return RedirectResponse(
        f"/console/policies/{name}?done=policy_saved&saved={stored.version}", status_code=303
    )


def _where(loc: tuple[Any, ...], steps: list[dict[str, str]]) -> str:
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        name = steps[loc[1]]["name"] if loc[1] < len(steps) else ""
        field = f" {loc[2]}" if len(loc) > 2 else ""
        return f"step {loc[1] + 1} ({name}){field}: "
    return f"{'.'.join(str(p) for p in loc)}: " if loc else ""


@router.get("/{name}/diff", response_class=HTMLResponse)
async def diff(
    name: str,
    request: Request,
    user: ConsoleUser,
    store: StoreDep,
    a: int = Query(ge=1),
    b: int = Query(ge=1),
) -> Response:
    """What changed from version `a` to version `b`, setting by setting."""
    first = await _version(store, name, a)
    second = await _version(store, name, b)
    if first is None or second is None:
        return render(request, "notice.html", user, status_code=404, message="not_found")
    before = _flat(first.model_dump(mode="json", exclude={"version"}))
    after = _flat(second.model_dump(mode="json", exclude={"version"}))
    changes = [
        (key, before.get(key, "–"), after.get(key, "–"))
        for key in sorted(set(before) | set(after), key=_order)
        if before.get(key) != after.get(key)
    ]
    return render(request, "diff.html", user, name=name, a=a, b=b, changes=changes)


def _flat(value: Any, prefix: str = "") -> dict[str, str]:
    """`{"steps[2].offset": "P7D", ...}`: one line per setting."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
        out = {}
        for index, item in enumerate(value, start=1):
            label = f"{prefix}[{index}]"
            if isinstance(item, dict) and item.get("name"):
                label = f"{prefix}[{index}: {item['name']}]"
            out.update(_flat(item, label))
        return out
    if isinstance(value, list):
        return {prefix: ", ".join(str(v) for v in value)}
    return {prefix: "" if value is None else str(value)}


def _order(key: str) -> tuple[int, str]:
    return (0 if key.startswith("steps") else 1, key)
