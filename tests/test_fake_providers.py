"""The fake SendGrid and Twilio report back as the real ones do, signed so dunwell's checks pass."""

from __future__ import annotations

import json
import queue
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator

import fake_providers as fake
from activities.channels import DeliveryError, SendGridSender, TwilioSender
from activities.rendering import RenderedMessage
from fake_providers import FakeProviders
from workflows.policy import Channel

EMAIL = RenderedMessage(subject="Herinnering", text="Betaal via https://pay.example.com/1")
TEXT = RenderedMessage(subject=None, text="Herinnering: betaal via https://pay.example.com/1")


class Receiver:
    """A stand-in for dunwell's webhooks: records what arrives."""

    def __init__(self) -> None:
        self.requests: queue.Queue[tuple[str, dict[str, str], bytes]] = queue.Queue()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.put((self.path, dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, n: int) -> list[tuple[str, dict[str, str], bytes]]:
        return [self.requests.get(timeout=10) for _ in range(n)]


@pytest.fixture
def wired() -> Iterator[tuple[FakeProviders, Receiver]]:
    receiver = Receiver()
    provider = FakeProviders(
        events_url=f"{receiver.url}/v1/webhooks/sendgrid",
        inbound_url=f"{receiver.url}/v1/webhooks/twilio/inbound",
        callback_delay=0.05,
        hold_s=2,
    )
    with provider:
        yield provider, receiver
    receiver.server.shutdown()


def test_sendgrid_events_are_signed_and_carry_our_key(
    wired: tuple[FakeProviders, Receiver],
) -> None:
    provider, receiver = wired
    sender = SendGridSender(
        fake.SENDGRID_API_KEY, "Billing <billing@dunwell.example>", base_url=provider.base_url
    )
    sender.send(
        Channel.email, "bouncelater@devries.example", EMAIL, "invoice-INV-1:overdue_1:email"
    )
    path, headers, body = receiver.take(1)[0]
    assert path == "/v1/webhooks/sendgrid"
    verifier = EventWebhook(provider.sendgrid_webhook_public_key)
    assert verifier.verify_signature(
        body.decode(),
        headers["X-Twilio-Email-Event-Webhook-Signature"],
        headers["X-Twilio-Email-Event-Webhook-Timestamp"],
    )
    events = json.loads(body)
    assert [e["event"] for e in events] == ["processed", "bounce"]
    assert {e["dunwell_key"] for e in events} == {"invoice-INV-1:overdue_1:email"}
    assert all(e["sg_event_id"] for e in events) and "does not exist" in events[1]["reason"]
    # Tampering breaks the signature, as with SendGrid.
    assert not verifier.verify_signature(
        body.decode().replace("bounce", "delivered"),
        headers["X-Twilio-Email-Event-Webhook-Signature"],
        headers["X-Twilio-Email-Event-Webhook-Timestamp"],
    )


def test_twilio_callbacks_and_inbound_texts_are_signed(
    wired: tuple[FakeProviders, Receiver],
) -> None:
    provider, receiver = wired
    callback = f"{receiver.url}/v1/webhooks/twilio/status"
    sender = TwilioSender(
        fake.TWILIO_ACCOUNT_SID, fake.TWILIO_AUTH_TOKEN, "+15005550006", None,
        base_url=provider.base_url, status_callback=callback,
    )  # fmt: skip
    sender.send(Channel.sms, "+15005550030", TEXT, "k")  # accepted, then undeliverable
    validator = RequestValidator(fake.TWILIO_AUTH_TOKEN)
    statuses = []
    for path, headers, body in receiver.take(2):
        params = dict(parse_qsl(body.decode()))
        assert validator.validate(receiver.url + path, params, headers["X-Twilio-Signature"])
        assert headers["I-Twilio-Idempotency-Token"]
        statuses.append((params["MessageStatus"], params.get("ErrorCode")))
    assert statuses == [("sent", None), ("undelivered", "30005")]

    request = urllib.request.Request(
        f"{provider.base_url}/_fake/twilio/inbound",
        data=json.dumps({"from": "+31612345678", "body": "STOP"}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 204
    path, headers, body = receiver.take(1)[0]
    params = dict(parse_qsl(body.decode()))
    assert path == "/v1/webhooks/twilio/inbound" and params["Body"] == "STOP"
    assert validator.validate(receiver.url + path, params, headers["X-Twilio-Signature"])


def test_what_arrived_can_be_listed_and_forgotten_over_http(
    wired: tuple[FakeProviders, Receiver],
) -> None:
    provider, _ = wired
    sender = SendGridSender(
        fake.SENDGRID_API_KEY, "billing@dunwell.example", base_url=provider.base_url
    )
    sender.send(Channel.email, "ap@devries.example", EMAIL, "key-1")
    with urllib.request.urlopen(f"{provider.base_url}/_fake/messages", timeout=10) as answer:
        listed = json.loads(answer.read())
    assert [(m["to"], m["key"]) for m in listed] == [("ap@devries.example", "key-1")]
    forget = urllib.request.Request(f"{provider.base_url}/_fake/messages", method="DELETE")
    with urllib.request.urlopen(forget, timeout=10) as answer:
        assert answer.status == 204
    assert provider.received == []


def test_a_provider_that_does_not_answer_in_time_is_retried_later(
    wired: tuple[FakeProviders, Receiver],
) -> None:
    provider, _ = wired
    email = SendGridSender(
        fake.SENDGRID_API_KEY, "billing@dunwell.example", base_url=provider.base_url, timeout=0.3
    )
    text = TwilioSender(
        fake.TWILIO_ACCOUNT_SID, fake.TWILIO_AUTH_TOKEN, "+15005550006", None,
        base_url=provider.base_url, timeout=0.3,
    )  # fmt: skip
    for send in (
        lambda: email.send(Channel.email, "timeout@devries.example", EMAIL, "k"),
        lambda: text.send(Channel.sms, "+15005550408", TEXT, "k"),
    ):
        with pytest.raises(DeliveryError) as error:
            send()
        assert error.value.retryable and "could not be reached" in error.value.reason
