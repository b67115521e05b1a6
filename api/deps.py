"""Typed dependencies: the store, the Temporal client, settings and the caller's role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.auth import Actor, ApiKey, Role, authenticate
from api.policy_cache import PolicyCache
from api.problems import Problem
from db.keys import PREFIX, KeyStore
from db.store import Store
from settings import Settings


# Dependencies are `async def` on purpose: FastAPI runs sync ones in a thread, a hop per request
# that costs more than the work they do.
async def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def _temporal(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _policies(request: Request) -> PolicyCache:
    policies: PolicyCache = request.app.state.policies
    return policies


StoreDep = Annotated[Store, Depends(_store)]
Policies = Annotated[PolicyCache, Depends(_policies)]
TemporalClient = Annotated[Client, Depends(_temporal)]
SettingsDep = Annotated[Settings, Depends(_settings)]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `dunwell keys create` (or DUNWELL_API_KEYS in development)",
)


async def identify(request: Request, presented: str) -> Actor | None:
    """Who holds this key (`actor.stored`: a key from `dunwell keys create`), or None."""
    if presented.startswith(PREFIX):
        # A key from `dunwell keys create`: looked up every time, so a revocation holds at once.
        key_store: KeyStore = request.app.state.keys
        found = await run_in_threadpool(key_store.authenticate, presented)
        return Actor(Role(found.role), found.name, stored=True) if found else None
    keys: list[ApiKey] = request.app.state.api_keys
    return authenticate(keys, presented)


def require(*roles: Role) -> Callable[..., Awaitable[Actor]]:
    """A dependency admitting a valid key of one of `roles` (admin always; none listed: any key)."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Actor:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Problem(401, "Send your API key as `Authorization: Bearer <key>`.")
        actor = await identify(request, credentials.credentials)
        if actor is None:
            raise Problem(
                401,
                "That API key is not valid or has been revoked; check the key "
                "(`dunwell keys list` shows the live ones).",
            )
        if not actor.may(*roles):
            allowed = " or ".join(r.value for r in roles)
            raise Problem(
                403, f"This needs a key with role {allowed}; yours is {actor.role.value}."
            )
        return actor

    return dependency


AnyRole = Annotated[Actor, Depends(require())]
Integration = Annotated[Actor, Depends(require(Role.integration))]
Agent = Annotated[Actor, Depends(require(Role.agent))]
Admin = Annotated[Actor, Depends(require(Role.admin))]
