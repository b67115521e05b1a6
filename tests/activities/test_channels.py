"""Channel senders: the real SendGrid and Twilio SDKs against the fake providers on loopback."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import fake_providers as fake
from activities.channels import (
    DeliveryError,
    OutboxSender,
    SendGridSender,
    TwilioSender,
    build_senders,
)
from activities.rendering import RenderedMessage
from fake_providers import FakeProviders
from settings import Settings
from workflows.policy import Channel

EMAIL = RenderedMessage(
    subject="Invoice INV-1: we have not received your payment yet",
    text="Dear Bakkerij de Vries,\n\nPlease pay.\n",
    html="<p>Dear Bakkerij de Vries,</p>\n<p>Please pay.</p>",
)
SHORT = RenderedMessage(
    text="Invoice INV-1 was due on 22 December 2026. Pay at https://pay.example"
)
SMS_FROM = "+15005550006"
WHATSAPP_FROM = "+14155238886"
DEBTOR = "+31612345678"


def sendgrid(fake: FakeProviders, **kwargs: Any) -> SendGridSender:
    options: dict[str, Any] = {
        "api_key": fake.sendgrid_api_key,
        "email_from": "Accounts receivable <billing@dunwell.example>",
        "reply_to": "ar@dunwell.example",
        "base_url": fake.base_url,
    }
    return SendGridSender(**(options | kwargs))


def twilio(fake: FakeProviders, **kwargs: Any) -> TwilioSender:
    options: dict[str, Any] = {
        "account_sid": fake.twilio_account_sid,
        "auth_token": fake.twilio_auth_token,
        "sms_from": SMS_FROM,
        "whatsapp_from": WHATSAPP_FROM,
        "base_url": fake.base_url,
    }
    return TwilioSender(**(options | kwargs))


def settings(**values: Any) -> Settings:
    """Settings with every provider variable unset unless given (the environment is ignored)."""
    unset = {
        "sendgrid_api_key": None,
        "sendgrid_base_url": None,
        "email_reply_to": None,
        "twilio_account_sid": None,
        "twilio_auth_token": None,
        "twilio_from": None,
        "twilio_whatsapp_from": None,
        "twilio_base_url": None,
    }
    return Settings(**(unset | values))


# ---- delivered -------------------------------------------------------------------------------


def test_an_email_reaches_sendgrid_with_its_key(fake_providers: FakeProviders) -> None:
    receipt = sendgrid(fake_providers).send(
        Channel.email, "ap@devries.example", EMAIL, "invoice-INV-1:overdue_1:email"
    )

    [sent] = fake_providers.received
    assert receipt.provider == "sendgrid" and receipt.delivered
    assert receipt.message_id == sent["id"] and receipt.message_id
    assert sent["to"] == "ap@devries.example"
    assert sent["from"] == "billing@dunwell.example"
    assert sent["from_name"] == "Accounts receivable"
    assert sent["reply_to"] == "ar@dunwell.example"
    assert sent["subject"] == EMAIL.subject
    assert sent["text"] == EMAIL.text and sent["html"] == EMAIL.html
    assert sent["categories"] == ["dunwell"]
    assert sent["custom_args"] == {"dunwell_key": "invoice-INV-1:overdue_1:email"}


def test_an_sms_reaches_twilio(fake_providers: FakeProviders) -> None:
    receipt = twilio(fake_providers).send(Channel.sms, DEBTOR, SHORT, "k:sms")

    [sent] = fake_providers.received
    assert receipt.provider == "twilio" and receipt.delivered
    assert receipt.message_id == sent["id"] and receipt.message_id.startswith("SM")
    assert (sent["to"], sent["from"], sent["body"]) == (DEBTOR, SMS_FROM, SHORT.text)


@pytest.mark.parametrize("to", [DEBTOR, f"whatsapp:{DEBTOR}"])
def test_a_whatsapp_message_goes_between_whatsapp_addresses(
    fake_providers: FakeProviders, to: str
) -> None:
    twilio(fake_providers).send(Channel.whatsapp, to, SHORT, "k:whatsapp")

    [sent] = fake_providers.received
    assert sent["to"] == f"whatsapp:{DEBTOR}"
    assert sent["from"] == f"whatsapp:{WHATSAPP_FROM}"


def test_twilio_is_told_where_to_report_delivery(fake_providers: FakeProviders) -> None:
    sender = twilio(fake_providers, status_callback="https://dunwell.example/hooks/twilio")
    sender.send(Channel.sms, DEBTOR, SHORT, "k")
    assert fake_providers.received[0]["status_callback"] == "https://dunwell.example/hooks/twilio"


def test_the_outbox_delivers_nothing_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="dunwell.channels"):
        receipt = OutboxSender().send(Channel.email, "ap@devries.example", EMAIL, "k:email")
        OutboxSender().send(Channel.sms, DEBTOR, SHORT, "k:sms")

    assert (receipt.provider, receipt.message_id, receipt.delivered) == ("outbox", "k:email", False)
    # The log says where it would have gone, masked: logs are no place for debtors' addresses.
    assert (
        f"OUTBOX (not delivered) email to a***@devries.example: {EMAIL.subject} [k:email]"
        in caplog.text
    )
    assert f"OUTBOX (not delivered) sms to ***678: {SHORT.text} [k:sms]" in caplog.text
    assert "ap@devries.example" not in caplog.text and DEBTOR not in caplog.text


# ---- refused: our configuration ----------------------------------------------------------------


def test_a_wrong_sendgrid_key_is_permanent_and_names_the_setting(
    fake_providers: FakeProviders,
) -> None:
    with pytest.raises(DeliveryError) as raised:
        sendgrid(fake_providers, api_key="SG.wrong").send(Channel.email, "a@b.example", EMAIL, "k")
    error = raised.value
    assert not error.retryable and not error.recipient_problem
    assert "DUNWELL_SENDGRID_API_KEY" in error.reason
    assert fake_providers.received == []


def test_a_wrong_twilio_token_is_permanent_and_names_the_settings(
    fake_providers: FakeProviders,
) -> None:
    with pytest.raises(DeliveryError) as raised:
        twilio(fake_providers, auth_token="wrong").send(Channel.sms, DEBTOR, SHORT, "k")
    error = raised.value
    assert not error.retryable and not error.recipient_problem
    assert "DUNWELL_TWILIO_AUTH_TOKEN" in error.reason and "20003" in error.reason


def test_a_sendgrid_403_points_at_key_permissions_and_sender(
    fake_providers: FakeProviders,
) -> None:
    fake_providers.fail_next("sendgrid", 403)
    with pytest.raises(DeliveryError) as raised:
        sendgrid(fake_providers).send(Channel.email, "a@b.example", EMAIL, "k")
    assert not raised.value.retryable and not raised.value.recipient_problem
    assert "DUNWELL_EMAIL_FROM" in raised.value.reason


def test_whatsapp_without_a_whatsapp_sender_is_a_configuration_error(
    fake_providers: FakeProviders,
) -> None:
    with pytest.raises(DeliveryError) as raised:
        twilio(fake_providers, whatsapp_from=None).send(Channel.whatsapp, DEBTOR, SHORT, "k")
    assert not raised.value.retryable and not raised.value.recipient_problem
    assert "DUNWELL_TWILIO_WHATSAPP_FROM" in raised.value.reason


# ---- refused: the recipient ------------------------------------------------------------------


@pytest.mark.parametrize("to", ["bounce@devries.example", "ap@devries", "not an address"])
def test_an_invalid_email_address_makes_the_channel_unusable(
    fake_providers: FakeProviders, to: str
) -> None:
    with pytest.raises(DeliveryError) as raised:
        sendgrid(fake_providers).send(Channel.email, to, EMAIL, "k")
    assert raised.value.recipient_problem and not raised.value.retryable
    assert fake_providers.received == []


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", "21211"),
        ("+15005550002", "21612"),
        ("+15005550004", "21610"),
        ("+15005550009", "21614"),
        ("0612345678", "21211"),
    ],
)
@pytest.mark.parametrize("channel", [Channel.sms, Channel.whatsapp])
def test_an_unusable_phone_number_makes_the_channel_unusable(
    fake_providers: FakeProviders, to: str, code: str, channel: Channel
) -> None:
    with pytest.raises(DeliveryError) as raised:
        twilio(fake_providers).send(channel, to, SHORT, "k")
    assert raised.value.recipient_problem and not raised.value.retryable
    assert code in raised.value.reason


# ---- worth retrying ----------------------------------------------------------------------------


def test_sendgrid_rate_limiting_is_retried_after_the_time_it_asks(
    fake_providers: FakeProviders,
) -> None:
    with pytest.raises(DeliveryError) as raised:
        sendgrid(fake_providers).send(Channel.email, "ratelimit@devries.example", EMAIL, "k")
    assert raised.value.retryable and not raised.value.recipient_problem
    assert raised.value.retry_after == 1


def test_twilio_rate_limiting_is_retried_after_the_time_it_asks(
    fake_providers: FakeProviders,
) -> None:
    with pytest.raises(DeliveryError) as raised:
        twilio(fake_providers).send(Channel.sms, "+15005550429", SHORT, "k")
    assert raised.value.retryable and raised.value.retry_after == 1


def test_provider_server_errors_are_retryable(fake_providers: FakeProviders) -> None:
    with pytest.raises(DeliveryError) as email_error:
        sendgrid(fake_providers).send(Channel.email, "servererror@devries.example", EMAIL, "k")
    with pytest.raises(DeliveryError) as sms_error:
        twilio(fake_providers).send(Channel.sms, "+15005550500", SHORT, "k")
    for error in (email_error.value, sms_error.value):
        assert error.retryable and not error.recipient_problem and error.retry_after is None


@pytest.mark.parametrize("provider", ["sendgrid", "twilio"])
def test_an_outage_passes_and_the_next_attempt_is_delivered(
    fake_providers: FakeProviders, provider: str
) -> None:
    fake_providers.fail_next(provider, 503, count=2)

    def attempt() -> None:
        if provider == "sendgrid":
            sendgrid(fake_providers).send(Channel.email, "ap@devries.example", EMAIL, "k")
        else:
            twilio(fake_providers).send(Channel.sms, DEBTOR, SHORT, "k")

    for _ in range(2):
        with pytest.raises(DeliveryError) as raised:
            attempt()
        assert raised.value.retryable
    attempt()
    assert [m["provider"] for m in fake_providers.received] == [provider]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_timeouts_and_refused_connections_are_retryable(
    fake_providers: FakeProviders, silent_port: int, closed_port: int
) -> None:
    for port in (silent_port, closed_port):
        url = f"http://127.0.0.1:{port}"
        with pytest.raises(DeliveryError) as email_error:
            sendgrid(fake_providers, base_url=url, timeout=0.3).send(
                Channel.email, "ap@devries.example", EMAIL, "k"
            )
        with pytest.raises(DeliveryError) as sms_error:
            twilio(fake_providers, base_url=url, timeout=0.3).send(Channel.sms, DEBTOR, SHORT, "k")
        for error in (email_error.value, sms_error.value):
            assert error.retryable and not error.recipient_problem
            assert "could not be reached" in error.reason


# ---- the fake itself refuses what the real services refuse -------------------------------------


def test_the_fake_sendgrid_refuses_an_incomplete_payload(fake_providers: FakeProviders) -> None:
    response = httpx.post(
        f"{fake_providers.base_url}/v3/mail/send",
        headers={"Authorization": f"Bearer {fake_providers.sendgrid_api_key}"},
        json={
            "personalizations": [{"to": [{"email": "a@b.example"}]}],
            "from": {"email": "billing@dunwell.example"},
            "content": [{"type": "text/plain", "value": "hi"}],
        },
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "subject"


def test_the_fake_twilio_refuses_a_message_without_a_body(fake_providers: FakeProviders) -> None:
    response = httpx.post(
        f"{fake_providers.base_url}/2010-04-01/Accounts/{fake_providers.twilio_account_sid}"
        "/Messages.json",
        auth=(fake_providers.twilio_account_sid, fake_providers.twilio_auth_token),
        data={"To": DEBTOR, "From": SMS_FROM},
    )
    assert response.status_code == 400
    assert response.json()["code"] == 21602


# ---- wiring from settings ----------------------------------------------------------------------


def test_without_credentials_every_channel_goes_to_the_outbox() -> None:
    senders = build_senders(settings())
    assert set(senders) == set(Channel)
    assert all(isinstance(sender, OutboxSender) for sender in senders.values())


def test_configured_providers_replace_the_outbox_channel_by_channel(
    fake_providers: FakeProviders,
) -> None:
    senders = build_senders(
        settings(
            sendgrid_api_key=fake_providers.sendgrid_api_key,
            sendgrid_base_url=fake_providers.base_url,
            twilio_account_sid=fake_providers.twilio_account_sid,
            twilio_auth_token=fake_providers.twilio_auth_token,
            twilio_from=SMS_FROM,
            twilio_base_url=fake_providers.base_url,
        )
    )
    assert isinstance(senders[Channel.email], SendGridSender)
    assert isinstance(senders[Channel.sms], TwilioSender)
    assert isinstance(senders[Channel.whatsapp], OutboxSender), "no WhatsApp sender configured"

    senders[Channel.email].send(Channel.email, "ap@devries.example", EMAIL, "k:email")
    senders[Channel.sms].send(Channel.sms, DEBTOR, SHORT, "k:sms")
    assert [m["provider"] for m in fake_providers.received] == ["sendgrid", "twilio"]


def test_whatsapp_alone_can_be_configured() -> None:
    senders = build_senders(
        settings(
            twilio_account_sid="AC123", twilio_auth_token="t", twilio_whatsapp_from=WHATSAPP_FROM
        )
    )
    assert isinstance(senders[Channel.whatsapp], TwilioSender)
    assert isinstance(senders[Channel.sms], OutboxSender)
    assert isinstance(senders[Channel.email], OutboxSender)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"twilio_account_sid": "AC123", "twilio_from": SMS_FROM}, "DUNWELL_TWILIO_AUTH_TOKEN"),
        ({"twilio_auth_token": "t", "twilio_from": SMS_FROM}, "DUNWELL_TWILIO_ACCOUNT_SID"),
        ({"twilio_from": SMS_FROM}, "DUNWELL_TWILIO_ACCOUNT_SID and DUNWELL_TWILIO_AUTH_TOKEN"),
        ({"twilio_account_sid": "AC123", "twilio_auth_token": "t"}, "DUNWELL_TWILIO_FROM"),
    ],
)
def test_a_half_configured_twilio_stops_the_worker_and_names_what_is_missing(
    values: dict[str, str], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        build_senders(settings(**values))


# ---- the per-provider rate limit ---------------------------------------------------------------


def test_a_messaging_service_sends_in_place_of_a_from_number(
    fake_providers: FakeProviders,
) -> None:
    service = "MG" + "0" * 32
    sender = TwilioSender(
        fake.TWILIO_ACCOUNT_SID, fake.TWILIO_AUTH_TOKEN, service, None,
        base_url=fake_providers.base_url,
    )  # fmt: skip
    sender.send(Channel.sms, DEBTOR, SHORT, "k")
    arrived = fake_providers.received[-1]
    assert arrived["to"] == DEBTOR and arrived["from"] is None


def test_addresses_are_masked_in_what_reaches_logs() -> None:
    from activities.channels import masked, redacted

    assert masked("ap@devries.example") == "a***@devries.example"
    assert masked("+31612345678") == "***678"
    said = "The 'To' number +31612345678 is not valid; ap@devries.example bounced"
    assert redacted(said, "+31612345678", "ap@devries.example") == (
        "The 'To' number ***678 is not valid; a***@devries.example bounced"
    )
