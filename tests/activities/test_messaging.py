"""The delivery activity against the fake providers: one send per message, whatever happens to an
attempt (a worker that dies mid-send, a retry that finds a send in progress, a refused key)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import activities.messaging as messaging
from activities.channels import Sender, SendReceipt, TwilioSender
from activities.messaging import MessagingActivities
from activities.rendering import RenderedMessage
from db.session import make_engine, make_sessionmaker, migrate
from db.store import Store
from fake_providers import FakeProviders
from tests.activities.test_channels import sendgrid, twilio
from workflows.models import Customer, Invoice, MessageRequest, MessageResult, Snapshot, Stage
from workflows.policy import Channel, Tone


class Killed(BaseException):
    """The worker died: nothing after this line of the attempt runs."""


class DiesAfterSending:
    """A sender whose worker is killed right after the provider accepted the message."""

    def __init__(self, inner: Sender) -> None:
        self._inner = inner

    def send(self, channel: Channel, to: str, message: RenderedMessage, key: str) -> SendReceipt:
        self._inner.send(channel, to, message, key)
        raise Killed

    def find_sent(
        self, channel: Channel, to: str, message: RenderedMessage, since: datetime, key: str
    ) -> SendReceipt | None:
        return self._inner.find_sent(channel, to, message, since, key)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    url = f"sqlite:///{tmp_path / 'dunwell.db'}"
    migrate(url)
    return Store(make_sessionmaker(make_engine(url)))


def request(store: Store, channel: Channel) -> MessageRequest:
    invoice_id = f"INV-{uuid.uuid4().hex[:8]}"
    invoice = Invoice(
        invoice_id=invoice_id,
        amount=Decimal("1250.00"),
        currency="EUR",
        issued_on=date(2026, 11, 1),
        due_on=date(2026, 11, 20),
        payment_url=f"https://pay.example.com/{invoice_id}",
        customer=Customer(
            id="C-17",
            name="Bakkerij de Vries",
            email=f"ap-{invoice_id.lower()}@devries.example",
            phone="+316" + str(uuid.uuid4().int)[:8],
        ),
    )
    store.ensure_invoice(invoice, "fp", "standard", 1)
    return MessageRequest(
        key_prefix=f"invoice-{invoice_id}:overdue_1",
        invoice=invoice,
        outstanding=invoice.amount,
        template="overdue_1",
        tone=Tone.friendly,
        channels=[channel],
        snapshot=Snapshot(
            invoice_id=invoice_id,
            customer_id="C-17",
            stage=Stage.reminding,
            outstanding=invoice.amount,
        ),
        at=datetime.now(UTC),
    )


def attempt(activities: MessagingActivities, req: MessageRequest, n: int) -> MessageResult:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=n)
    result: MessageResult = env.run(activities.deliver_message, req)
    return result


def to(req: MessageRequest, channel: Channel) -> str:
    customer = req.invoice.customer
    return str(customer.email if channel == Channel.email else customer.phone)


def arrived(fake: FakeProviders, address: str) -> list[dict[str, Any]]:
    return [m for m in fake.received if m["to"] == address]


def notes(store: Store, req: MessageRequest) -> list[str]:
    return [str(e.detail.get("note", "")) for e in store.timeline(req.invoice.invoice_id)]


def test_a_text_whose_worker_died_after_twilio_took_it_is_not_sent_again(
    store: Store, fake_providers: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(messaging, "LEASE", timedelta(0))  # the dead attempt's lease runs out now
    req = request(store, Channel.sms)
    dying = MessagingActivities({Channel.sms: DiesAfterSending(twilio(fake_providers))}, store)
    with pytest.raises(Killed):
        attempt(dying, req, 1)

    result = attempt(MessagingActivities({Channel.sms: twilio(fake_providers)}, store), req, 2)

    assert [o.status for o in result.outcomes] == ["sent"]
    [text] = arrived(fake_providers, to(req, Channel.sms))  # asked Twilio: it had it already
    message = store.get_message(f"{req.key_prefix}:sms")
    assert message is not None and message.provider_message_id == text["id"]
    assert notes(store, req) == [messaging._FOUND]


def test_an_email_whose_worker_died_after_sendgrid_took_it_is_found_not_sent_again(
    store: Store, fake_providers: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(messaging, "LEASE", timedelta(0))
    fake_providers.activity_lag_s = 60  # Email Activity lists an email a minute after Mail Send
    req = request(store, Channel.email)
    dying = MessagingActivities(
        {Channel.email: DiesAfterSending(sendgrid(fake_providers, activity_lag_s=90))}, store
    )
    with pytest.raises(Killed):
        attempt(dying, req, 1)
    taker = MessagingActivities({Channel.email: sendgrid(fake_providers, activity_lag_s=90)}, store)

    # Email Activity does not list it yet, and it may be behind: the attempt waits, sends nothing.
    with pytest.raises(ApplicationError) as waiting:
        attempt(taker, req, 2)
    assert waiting.value.type == "ProviderUnavailable" and not waiting.value.non_retryable
    assert "Email Activity" in waiting.value.message
    assert waiting.value.next_retry_delay is not None
    assert waiting.value.next_retry_delay > timedelta(seconds=60)
    assert len(arrived(fake_providers, to(req, Channel.email))) == 1

    fake_providers.activity_lag_s = 0  # the feed has caught up
    result = attempt(taker, req, 3)

    assert [o.status for o in result.outcomes] == ["sent"]
    [email] = arrived(fake_providers, to(req, Channel.email))
    message = store.get_message(f"{req.key_prefix}:email")
    assert message is not None and str(message.provider_message_id).startswith(email["id"])
    assert notes(store, req) == [messaging._FOUND]


def test_an_email_whose_dead_attempt_sendgrid_never_took_goes_out_once_the_feed_is_old_enough(
    store: Store, fake_providers: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(messaging, "LEASE", timedelta(0))
    req = request(store, Channel.email)
    key = f"{req.key_prefix}:email"
    invoice = req.invoice
    store.claim_message(  # an attempt claimed it and died before SendGrid heard of it
        key,
        invoice.invoice_id,
        "email",
        "overdue_1",
        "friendly",
        "en",
        "x",
        holder="dead-one",
        lease=timedelta(0),
    )
    taker = MessagingActivities({Channel.email: sendgrid(fake_providers, activity_lag_s=2)}, store)
    time.sleep(1.2)
    with pytest.raises(ApplicationError) as waiting:  # not listed, but the feed may be behind
        attempt(taker, req, 2)
    assert waiting.value.type == "ProviderUnavailable"
    time.sleep(1.2)

    # 2.4 s after the dead attempt's claim (1.2 s after the waiting taker's own): believed.
    result = attempt(taker, req, 3)

    assert [o.status for o in result.outcomes] == ["sent"]
    assert len(arrived(fake_providers, to(req, Channel.email))) == 1
    assert notes(store, req) == [""]


def test_without_email_activity_an_email_whose_worker_died_is_sent_again_and_says_so(
    store: Store, fake_providers: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(messaging, "LEASE", timedelta(0))
    fake_providers.activity_feed = False  # a key without the paid add-on: 403
    req = request(store, Channel.email)
    dying = MessagingActivities({Channel.email: DiesAfterSending(sendgrid(fake_providers))}, store)
    with pytest.raises(Killed):
        attempt(dying, req, 1)

    attempt(MessagingActivities({Channel.email: sendgrid(fake_providers)}, store), req, 2)

    # SendGrid cannot be asked: the one window left, logged and shown to the agent.
    assert len(arrived(fake_providers, to(req, Channel.email))) == 2
    assert notes(store, req) == [
        "sent again after a worker stopped mid-send: the debtor may have received it twice"
    ]


def test_an_unanswered_question_keeps_the_claim_so_the_next_attempt_asks_again(
    store: Store, fake_providers: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(messaging, "LEASE", timedelta(0))
    req = request(store, Channel.sms)
    dying = MessagingActivities({Channel.sms: DiesAfterSending(twilio(fake_providers))}, store)
    with pytest.raises(Killed):
        attempt(dying, req, 1)
    activities = MessagingActivities({Channel.sms: twilio(fake_providers)}, store)
    fake_providers.fail_next("twilio", 503)  # Twilio's list is down when the taker asks

    with pytest.raises(ApplicationError) as unavailable:
        attempt(activities, req, 2)
    assert unavailable.value.type == "ProviderUnavailable"
    result = attempt(activities, req, 3)

    assert [o.status for o in result.outcomes] == ["sent"]
    assert len(arrived(fake_providers, to(req, Channel.sms))) == 1  # asked again, not resent
    assert notes(store, req) == [messaging._FOUND]


def test_a_retry_waits_while_another_attempt_is_still_sending(
    store: Store, fake_providers: FakeProviders
) -> None:
    req = request(store, Channel.email)
    key = f"{req.key_prefix}:email"
    invoice = req.invoice
    store.claim_message(
        key, invoice.invoice_id, "email", "overdue_1", "friendly", "en", "x", holder="slow-one"
    )
    activities = MessagingActivities({Channel.email: sendgrid(fake_providers)}, store)

    with pytest.raises(ApplicationError) as refused:
        attempt(activities, req, 2)

    assert refused.value.type == "SendInProgress" and not refused.value.non_retryable
    assert "slow-one" in refused.value.message
    assert arrived(fake_providers, to(req, Channel.email)) == []


def test_a_refused_key_asks_an_admin_and_the_message_goes_out_once_fixed(
    store: Store, fake_providers: FakeProviders
) -> None:
    req = request(store, Channel.email)
    revoked = MessagingActivities(
        {Channel.email: sendgrid(fake_providers, api_key="SG.revoked")}, store
    )
    for n in (1, 2):
        with pytest.raises(ApplicationError) as refused:
            attempt(revoked, req, n)
        assert refused.value.type == "ProviderMisconfigured"
        assert refused.value.next_retry_delay == messaging.MISCONFIGURED_RETRY
        assert "DUNWELL_SENDGRID_API_KEY" in refused.value.message
    [task] = store.list_tasks(kind="provider_misconfigured")
    assert "DUNWELL_SENDGRID_API_KEY" in task.title
    assert [(s.provider, s.state) for s in store.provider_states()] == [
        ("sendgrid", "misconfigured")
    ]

    fixed = MessagingActivities({Channel.email: sendgrid(fake_providers)}, store)
    result = attempt(fixed, req, 3)

    assert [o.status for o in result.outcomes] == ["sent"]
    assert len(arrived(fake_providers, to(req, Channel.email))) == 1
    assert store.list_tasks(kind="provider_misconfigured") == []
    assert [s.state for s in store.provider_states()] == ["ok"]


def test_a_provider_outage_frees_the_message_for_the_next_attempt_at_once(
    store: Store, fake_providers: FakeProviders
) -> None:
    req = request(store, Channel.sms)
    activities = MessagingActivities({Channel.sms: twilio(fake_providers)}, store)
    fake_providers.fail_next("twilio", 503)
    with pytest.raises(ApplicationError) as unavailable:
        attempt(activities, req, 1)
    assert unavailable.value.type == "ProviderUnavailable"

    result = attempt(activities, req, 2)  # no lease to wait out: Twilio surely had nothing

    assert [o.status for o in result.outcomes] == ["sent"]
    assert len(arrived(fake_providers, to(req, Channel.sms))) == 1
    assert notes(store, req) == [""]


def test_twilio_sender_finds_a_text_it_sent(fake_providers: FakeProviders) -> None:
    sender: TwilioSender = twilio(fake_providers)
    text = RenderedMessage(text=f"Invoice {uuid.uuid4().hex}: please pay")
    since = datetime.now(UTC)
    assert sender.find_sent(Channel.sms, "+31612345678", text, since, "k") is None
    receipt = sender.send(Channel.sms, "+31612345678", text, "k")
    found = sender.find_sent(Channel.sms, "+31612345678", text, since, "k")
    assert found is not None and found.message_id == receipt.message_id
