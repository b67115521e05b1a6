"""The FastAPI application: clients are created once, in the lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from api import docs, problems
from api.auth import parse_keys
from api.console import imports as console_imports
from api.console import invoice as console_invoice
from api.console import pages as console_pages
from api.console import policies as console_policies
from api.console import web as console_web
from api.limits import BodySizeLimit
from api.policy_cache import PolicyCache
from api.portal import actions as portal_actions
from api.portal import payments as portal_payments
from api.portal import routes as portal_routes
from api.portal.routes import HERE as PORTAL_HERE
from api.portal.routes import Portal, checkout_origins
from api.portal.security import PortalHeaders, hide_links_in_logs
from api.routes import (
    actions,
    codec,
    customers,
    health,
    invoices,
    policies,
    replies,
    tasks,
    webhooks,
)
from db.keys import KeyStore
from db.session import make_engine, make_sessionmaker
from db.store import Store
from encryption import EncryptionCodec, Keyring
from portal_links import links_from
from settings import Settings, get_settings
from temporal_client import connect, keyring_from

log = logging.getLogger("dunwell.api")
PORTAL_STATIC = PORTAL_HERE / "static"


async def _connect_with_patience(
    settings: Settings, keyring: Keyring, attempts: int = 30
) -> Client:
    """Temporal may still be starting next to us; wait for it rather than crash."""
    for attempt in range(1, attempts + 1):
        try:
            return await connect(settings.temporal_target, settings.temporal_namespace, keyring)
        except RuntimeError:
            if attempt == attempts:
                raise
            log.info("waiting for Temporal at %s", settings.temporal_target)
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


def create_app(
    settings: Settings | None = None, *, temporal: Client | None = None, store: Store | None = None
) -> FastAPI:
    """Build the API. Tests pass their own client and store; production builds both here."""
    settings = settings or get_settings()
    api_keys = parse_keys(settings.api_keys.get_secret_value())
    # No keys, no start: the API writes journeys' inputs and commands to Temporal.
    keyring = None if temporal is not None else keyring_from(settings.encryption_key_value)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.api_keys = api_keys
        app.state.store = store or Store(make_sessionmaker(make_engine(settings.database)))
        app.state.keys = KeyStore(app.state.store.sessions)
        app.state.policies = PolicyCache(app.state.store)
        app.state.portal = Portal.build(
            settings,
            app.state.store,
            app.state.policies,
            links_from(settings, app.state.store),
        )
        hide_links_in_logs()
        if temporal is not None:
            client = temporal
        else:
            assert keyring is not None
            client = await _connect_with_patience(settings, keyring)
        app.state.temporal = client
        # The codec server decrypts with exactly the keys the client encrypts with.
        codec = client.data_converter.payload_codec
        app.state.codec = codec if isinstance(codec, EncryptionCodec) else None
        if not api_keys:
            log.info("DUNWELL_API_KEYS is empty: only keys made with `dunwell keys create` work")
        yield

    app = FastAPI(
        title="dunwell",
        version="0.1.0",
        summary="Every unpaid invoice as its own durable collection journey.",
        lifespan=lifespan,
        docs_url=None,  # served by api.docs, without a CDN
        redoc_url=None,
    )
    problems.install(app)
    docs.install(app)
    # SendGrid posts its events in batches far larger than any API request.
    webhook_limit = (settings.webhook_max_body_bytes, "DUNWELL_WEBHOOK_MAX_BODY_BYTES")
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.api_max_body_bytes,
        per_path={
            "/v1/webhooks/sendgrid": webhook_limit,
            "/v1/webhooks/sendgrid/inbound/": webhook_limit,  # replies with attachments
            # A CSV of many thousand invoices; the page itself says when a file is too large.
            "/console/import": (console_imports.BODY_LIMIT, "the console's import limit"),
        },
    )
    # Only the Temporal UI's pages may call us from a browser (for the codec server).
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.ui_origins,
        allow_methods=["POST"],
        allow_headers=["Content-Type", "X-Namespace", "Authorization"],
    )
    app.add_middleware(PortalHeaders, form_targets=checkout_origins(settings))
    routers = (health, invoices, actions, customers, policies, tasks, codec, webhooks, replies)
    for module in routers:
        app.include_router(module.router)
    app.include_router(portal_routes.router)
    app.include_router(portal_actions.router)
    app.include_router(portal_payments.router)
    app.include_router(portal_payments.webhook)
    app.mount("/static/portal", StaticFiles(directory=PORTAL_STATIC), name="portal-static")
    for console in (console_pages, console_invoice, console_imports, console_policies):
        app.include_router(console.router)
    console_web.install(app)
    app.mount(
        "/static/console",
        StaticFiles(directory=console_web.HERE / "static"),
        name="console-static",
    )
    return app
