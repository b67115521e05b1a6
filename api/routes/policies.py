"""Escalation policies: read by anyone, edited by administrators. Running journeys keep the
snapshot they started with."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from activities.rendering import available_templates
from api.deps import Admin, AnyRole, Policies, StoreDep
from api.problems import COMMON_PROBLEMS, Problem
from workflows.policy import Policy

router = APIRouter(prefix="/v1/policies", tags=["policies"], responses=COMMON_PROBLEMS)


@router.get("", response_model=list[Policy])
async def list_policies(actor: AnyRole, store: StoreDep) -> list[Policy]:
    """Every policy, at its current version."""
    return await run_in_threadpool(store.list_policies)


@router.get("/{name}", response_model=Policy)
async def get_policy(name: str, actor: AnyRole, store: StoreDep) -> Policy:
    """One policy at its current version."""
    policy = await run_in_threadpool(store.get_policy, name)
    if policy is None:
        raise Problem(404, f"There is no policy {name!r}; GET /v1/policies lists them.")
    return policy


@router.put("/{name}", response_model=Policy)
async def put_policy(name: str, body: Policy, actor: Admin, policies: Policies) -> Policy:
    """Create or replace a policy; it is stored as the next version."""
    if body.name != name:
        raise Problem(422, f"The body names policy {body.name!r} but the path says {name!r}.")
    templates = available_templates()
    for step in body.steps:
        missing = [
            loc for loc, keys in templates.items() if step.template and step.template not in keys
        ]
        if missing:
            raise Problem(
                422,
                f"Step {step.name!r} uses template {step.template!r}, which does not exist "
                f"in {', '.join(sorted(missing))}; "
                f"use one of {', '.join(sorted(templates['en']))}.",
            )
    return await policies.put(body, actor.name)
