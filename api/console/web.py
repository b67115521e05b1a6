"""The console's footing: who is signed in (a session cookie from an agent or admin key), the form
tokens bound to that session, the language, and rendering a page with all of it.

The cookie holds only a random session id; the database keeps its hash, who it belongs to and when
it was last used, so signing out, an idle timeout and a revoked key end it on every API process.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api.auth import Actor, ApiKey
from api.console.texts import EVENTS, LABELS, LANGUAGES, PHRASES, TEXTS, VALUES
from api.portal.security import is_https
from api.problems import on_validation
from db.keys import Role
from db.store import Store

HERE = Path(__file__).parent
SESSION_COOKIE = "dunwell_console"
SIGN_IN_COOKIE = "dunwell_console_signin"
LANGUAGE_COOKIE = "dunwell_console_lang"
PATH = "/console"
FLASHES = {
    "task_taken", "task_completed", "task_gone", "note_added", "revoked", "revoked_none",
    "links_off", "policy_saved", "signed_out",
}  # fmt: skip

templates = Jinja2Templates(directory=HERE / "templates")


@dataclass(frozen=True)
class User:
    """The signed-in credit controller (or admin) and the token their forms carry."""

    actor: Actor
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.actor.role == Role.admin


class SignInFirst(Exception):
    """No live session: the browser goes to the sign-in page."""


class FormExpired(Exception):
    """A form came without its session's token (or an old one): refused, nothing changed."""


def _hash(sid: str) -> str:
    return hashlib.sha256(b"console-session\x00" + sid.encode()).hexdigest()


def form_token(secret: str, purpose: str) -> str:
    """A form's token, derived from a value only this browser's cookie holds."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()[:40]


def token_ok(expected: str, presented: object) -> bool:
    if not isinstance(presented, str):
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def idle_timeout(request: Request) -> timedelta:
    return timedelta(minutes=request.app.state.settings.console_idle_minutes)


async def current_user(request: Request) -> User | None:
    sid = request.cookies.get(SESSION_COOKIE)
    if not sid:
        return None
    store: Store = request.app.state.store
    found = await run_in_threadpool(store.console_session, _hash(sid), idle_timeout(request))
    if found is None:
        return None
    role = Role(found.role)
    if not found.stored_key:
        # A key from DUNWELL_API_KEYS that was taken out (or changed role) ends its sessions.
        keys: list[ApiKey] = request.app.state.api_keys
        if not any(k.name == found.actor and k.role == role for k in keys):
            return None
    return User(Actor(role, found.actor, stored=found.stored_key), form_token(sid, "csrf"))


async def _signed_in(request: Request) -> User:
    user = await current_user(request)
    if user is None:
        raise SignInFirst
    return user


ConsoleUser = Annotated[User, Depends(_signed_in)]


async def checked_form(request: Request, user: User) -> dict[str, Any]:
    """The posted form, once its token matches the session's; else `FormExpired`."""
    form = await request.form()
    if not token_ok(user.csrf, form.get("csrf")):
        raise FormExpired
    values: dict[str, Any] = {}
    for key in form:
        items = form.getlist(key)
        values[key] = items if len(items) > 1 or key.endswith("[]") else items[0]
    return values


async def start_session(request: Request, actor: Actor, response: Response) -> None:
    sid = secrets.token_urlsafe(32)
    store: Store = request.app.state.store
    await run_in_threadpool(
        store.start_console_session, _hash(sid), actor.name, actor.role.value, actor.stored
    )
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=PATH)


async def end_session(request: Request, response: Response) -> None:
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        store: Store = request.app.state.store
        await run_in_threadpool(store.end_console_session, _hash(sid))
    response.delete_cookie(SESSION_COOKIE, path=PATH)


def language(request: Request) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    accepted = request.headers.get("accept-language", "").lower()
    return "nl" if accepted.startswith("nl") else "en"


# The fields of an event whose values are words the page translates (never free text).
IN_WORDS = frozenset(
    {"tone", "channel", "channels", "status", "outcome", "actor", "unreachable", "task"}
)


def _patterns(phrases: dict[str, str]) -> list[tuple[re.Pattern[str], str]]:
    """The phrases with `{name}` parts, each as a pattern that finds those parts."""
    found = []
    for phrase, said in phrases.items():
        if "{" in phrase:
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>.+)", re.escape(phrase))
            found.append((re.compile(pattern), said))
    return found


_PATTERNS = {lang: _patterns(phrases) for lang, phrases in PHRASES.items()}


class Words:
    """The page's texts: `t("key", name=value)`."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._texts = TEXTS[lang]
        self._events = EVENTS[lang]
        self._values = VALUES[lang]
        self._labels = LABELS[lang]
        self._phrases = PHRASES[lang]

    def __call__(self, key: str, **values: object) -> str:
        text = self._texts[key]
        return text.format(**values) if values else text

    def event(self, kind: str, **values: object) -> str:
        """The event's sentence; the tone, channel, status, outcome and actor in words."""
        template = self._events.get(kind, self._events["other"])
        said = {k: self.value(v) if k in IN_WORDS else v for k, v in values.items()}
        sentence = template.format_map(_Blank({"kind": kind, **said}))
        if template.startswith("{actor}") and str(values.get("actor")) in self._values:
            sentence = sentence[:1].upper() + sentence[1:]  # "the debtor" opens a sentence
        return sentence

    def value(self, value: object) -> str:
        """A tone, channel, status or outcome in words (`handed_over` → "handed over")."""
        text = str(value)
        return self._values.get(text, text)

    def kind(self, kind: str) -> str:
        """A task's kind in words (`review_dispute` → "review dispute")."""
        return self._values.get(kind, kind.replace("_", " "))

    def phrase(self, text: str, kind: str = "") -> str:
        """A reason or note in words where the system wrote it (a message withdrawn names the
        journey's stage or the plan's outcome); what a person wrote, as it was written."""
        if kind == "message_withdrawn":
            if f"stage_{text}" in self._texts:
                return self._texts[f"stage_{text}"]
            if text in self._values:
                return self._values[text]
        if text in self._phrases:
            return self._phrases[text]
        for pattern, said in _PATTERNS[self.lang]:
            found = pattern.fullmatch(text)
            if found:
                return said.format(**found.groupdict())
        return text

    def label(self, key: str) -> str:
        """The name of an event's field (`policy_version` → "policy version")."""
        return self._labels.get(key, key.replace("_", " "))

    def flash(self, key: str, **values: object) -> str:
        """What a finished action says (`?done=key`); any other key: "Done."."""
        text = self._texts.get(key) if key in FLASHES else None
        return (text or self._texts["done"]).format_map(_Blank(values))

    def stage(self, stage: str) -> str:
        return self._texts.get(f"stage_{stage}", stage)


class _Blank(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "…"


def render(
    request: Request,
    template: str,
    user: User | None,
    /,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    lang = language(request)
    words = Words(lang)
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    base = request.url.path + "?" + urlencode(query)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "t": words,
            "lang": lang,
            "languages": LANGUAGES,
            "switch_url": base + ("&" if query else ""),
            "user": user,
            "csrf": user.csrf if user else "",
            "flash": request.query_params.get("done"),
            "section": _section(request.url.path),
            **context,
        },
        status_code=status_code,
    )
    response.headers["cache-control"] = "no-store"
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE, lang, path=PATH, samesite="strict", secure=is_https(request)
        )
    return response


def _section(path: str) -> str:
    for prefix, section in (
        ("/console/invoices", "invoices"),
        ("/console/customers", "invoices"),
        ("/console/import", "import"),
        ("/console/policies", "policies"),
    ):
        if path.startswith(prefix):
            return section
    return "work"


def install(app: FastAPI) -> None:
    """What the console needs beyond its routes: where a missing session or token leads."""

    async def sign_in_first(request: Request, exc: Exception) -> Response:
        if request.method == "GET":
            return RedirectResponse(f"{PATH}/sign-in?next={request.url.path}", status_code=303)
        return RedirectResponse(f"{PATH}/sign-in?expired=1", status_code=303)

    async def form_expired(request: Request, exc: Exception) -> Response:
        user = await current_user(request)
        return render(request, "notice.html", user, status_code=403, message="form_expired")

    async def unreadable(request: Request, exc: Exception) -> Response:
        """A hand-edited console address (page=abc): a page saying so; the API keeps its JSON."""
        if not request.url.path.startswith(PATH):
            return await on_validation(request, exc)
        assert isinstance(exc, RequestValidationError)
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        )
        user = await current_user(request)
        return render(
            request, "notice.html", user, status_code=422, message="bad_address", detail=detail
        )

    app.add_exception_handler(RequestValidationError, unreadable)
    app.add_exception_handler(SignInFirst, sign_in_first)
    app.add_exception_handler(FormExpired, form_expired)
