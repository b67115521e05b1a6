"""Replies reach a person: a debtor's email (SendGrid Inbound Parse) or text (Twilio) becomes a
`debtor_reply` on the journey it is about, a `reply` task, and a hold on the automatic reminders.

An email finds its journey by the reply address its messages carried (`reply+<token>@<inbound
domain>`), else by the sender's address; a text by the sender's number. A reply that matches no
journey is still a task for an agent: nothing is lost. Inbound Parse posts are not signed, so the
route sits behind a secret path segment and basic auth (both settings).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from email.utils import parseaddr
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from temporalio.client import Client

from api import journeys
from api.deps import SettingsDep, StoreDep, TemporalClient
from api.problems import COMMON_PROBLEMS, Problem
from db.store import Store
from workflows.models import DebtorReplied
from workflows.policy import Channel

log = logging.getLogger("dunwell.api")
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=COMMON_PROBLEMS)
MAX_TEXT = 10_000
"""Characters of a reply kept on the timeline; the rest is cut (and says so)."""
_TOKEN = re.compile(r"reply\+([a-z2-7]{16})@", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")


@router.post("/sendgrid/inbound/{secret}", status_code=200, response_class=PlainTextResponse)
async def sendgrid_inbound(
    secret: str,
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    client: TemporalClient,
) -> PlainTextResponse:
    """SendGrid Inbound Parse: a debtor's email reply."""
    expected = settings.inbound_secret.get_secret_value() if settings.inbound_secret else ""
    if not expected:
        raise Problem(
            503, "Set DUNWELL_INBOUND_SECRET (and DUNWELL_INBOUND_BASIC_AUTH) to take replies."
        )
    if not hmac.compare_digest(secret.encode(), expected.encode()):
        raise Problem(404, "Not found.")
    _check_basic_auth(request, settings.inbound_basic_auth.get_secret_value()
                      if settings.inbound_basic_auth else "")  # fmt: skip
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    sender = parseaddr(fields.get("from", ""))[1]
    text = fields.get("text") or _TAGS.sub(" ", fields.get("html", ""))
    reference = _message_id(fields.get("headers", "")) or _digest(sender, fields)
    reply = DebtorReplied(
        channel=Channel.email,
        text=capped(text),
        subject=fields.get("subject", "")[:300],
        sender=sender,
        attachments=_attachments(fields, form),
        reference=f"email:{reference}",
    )
    invoice_id = await _email_invoice(store, fields, sender)
    await deliver(client, store, invoice_id, reply)
    return PlainTextResponse("ok")


async def deliver(
    client: Client, store: Store, invoice_id: str | None, reply: DebtorReplied
) -> None:
    """To the journey; when there is none (or it has closed), to an agent as a task."""
    row = None
    if invoice_id is not None:
        not_taken = await journeys.signal_if_open(
            client, store, invoice_id, "debtor_replied", reply
        )
        if not_taken is None:
            return
        row = not_taken.row  # closed: a person still reads it
    about = f"about invoice {invoice_id} (its journey has closed)" if row else "matching no invoice"
    first_line = " ".join(reply.text.split())[:120]
    await run_in_threadpool(
        store.open_task,
        f"reply:{reply.reference}",
        row.invoice_id if row else "",
        row.customer_id if row else "",
        "reply",
        f"A {reply.channel.value} reply {about}, from {reply.sender or 'unknown'}: {first_line}",
        sender=reply.sender,
        subject=reply.subject,
        text=reply.text,
        attachments=", ".join(reply.attachments),
    )


async def _email_invoice(store: Store, fields: dict[str, str], sender: str) -> str | None:
    """The invoice a reply is about: its reply address, else the sender's newest open invoice."""
    try:
        envelope = json.loads(fields.get("envelope") or "{}")
    except ValueError:
        envelope = {}
    recipients = " ".join([*(envelope.get("to") or []), fields.get("to", "")])
    for token in _TOKEN.findall(recipients):
        found = await run_in_threadpool(store.reply_address, token.lower())
        if found is not None:
            return found[0]
    if sender:
        invoices = await run_in_threadpool(store.open_invoices_of_email, sender)
        if invoices:
            return invoices[0]
    return None


def _check_basic_auth(request: Request, expected: str) -> None:
    if not expected:
        return
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    try:
        decoded = base64.b64decode(value).decode() if scheme.lower() == "basic" else ""
    except ValueError:
        decoded = ""
    if not hmac.compare_digest(decoded.encode(), expected.encode()):
        raise Problem(401, "Inbound Parse must send the basic auth of DUNWELL_INBOUND_BASIC_AUTH.")


def capped(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " […]"


def _attachments(fields: dict[str, str], form: Any) -> list[str]:
    """`name (type, size)` of each attachment; the files are not kept."""
    try:
        info = json.loads(fields.get("attachment-info") or "{}")
    except ValueError:
        info = {}
    listed = []
    for name, meta in sorted(info.items()):
        upload = form.get(name)
        size = f", {upload.size} bytes" if isinstance(upload, UploadFile) and upload.size else ""
        listed.append(f"{meta.get('filename', name)} ({meta.get('type', 'unknown')}{size})")
    return listed[:20]


def _message_id(headers: str) -> str:
    found = re.search(r"^message-id:\s*(\S+)", headers, re.IGNORECASE | re.MULTILINE)
    return found.group(1).strip("<>")[:200] if found else ""


def _digest(sender: str, fields: dict[str, str]) -> str:
    body = "\x00".join((sender, fields.get("subject", ""), fields.get("text", "")))
    return hashlib.sha256(body.encode()).hexdigest()[:32]
