"""One settings object for every dunwell process, read from `DUNWELL_*` environment variables.

Workflow code never reads settings: what a journey needs arrives in its input.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable, with embedded defaults that run on a laptop."""

    model_config = SettingsConfigDict(env_prefix="DUNWELL_", extra="ignore")

    home: Path = Field(Path(".dunwell"), description="State directory for `dunwell dev`.")
    database_url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL (it may hold a password); SQLite in DUNWELL_HOME when unset.",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_keys: SecretStr = Field(
        SecretStr(""),
        description="Comma-separated `role:key` pairs, each key at least 24 characters.",
    )
    api_access_log: bool = Field(
        False, description="Log every request (off: a fifth of the API's cost per journey start)."
    )
    api_max_body_bytes: int = Field(
        262_144, description="Larger request bodies are refused with 413 before they are read."
    )
    webhook_max_body_bytes: int = Field(
        8 * 1024 * 1024,
        description="Body limit of SendGrid's event webhook, which posts large batches.",
    )
    encryption_keys: SecretStr | None = Field(
        None,
        description="`id:base64key,...` (AES-256): the first encrypts every Temporal payload, "
        "all decrypt. `dunwell dev` makes one in DUNWELL_HOME; `dunwell encryption-key` "
        "prints one.",
    )
    codec_token: SecretStr | None = Field(
        None,
        description="Secret path segment of the codec server for a Temporal UI that cannot send "
        "an API key (`/codec/<token>/decode`); `dunwell dev` makes one.",
    )
    codec_ui_origins: str = Field(
        "",
        description="Comma-separated browser origins allowed to call the codec server "
        "(the Temporal UI's); the dev UI's own origins when empty.",
    )
    temporal_address: str | None = Field(
        None, description="host:port of Temporal; 127.0.0.1:DUNWELL_TEMPORAL_PORT when unset."
    )
    temporal_namespace: str = "default"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_ui_url: str | None = Field(
        None,
        description="The Temporal UI's address (https://temporal.example.com): invoice views link "
        "each journey there; `dunwell dev` sets its own UI's.",
    )
    task_queue: str = "dunwell-journeys"
    log_level: str = "INFO"

    email_from: str = "Accounts receivable <billing@dunwell.example>"
    email_reply_to: str | None = None
    sendgrid_api_key: SecretStr | None = None
    sendgrid_base_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_whatsapp_from: str | None = None
    twilio_base_url: str | None = None

    sendgrid_rate_per_s: float = Field(
        100,
        description="Most SendGrid sends per second, all workers together: Temporal enforces "
        "it on the SendGrid task queue (0: no limit).",
    )
    sendgrid_activity_lag_s: float = Field(
        300,
        ge=0,
        description="Seconds SendGrid's Email Activity may run behind Mail Send. A worker that "
        "takes over an email whose sender died asks Email Activity whether it went out, and "
        "believes 'not there' only once the earlier attempt is this old.",
    )
    twilio_rate_per_s: float = Field(
        25,
        description="Most Twilio sends per second, all workers together: Temporal enforces it "
        "on the Twilio task queue (0: no limit).",
    )
    provider_timeout_s: float = Field(
        45,
        description="Seconds to wait for SendGrid or Twilio to answer one send (at most 60: an "
        "attempt has 90 s in all).",
        gt=0,
        le=60,
    )
    worker_cached_journeys: int = Field(
        500,
        description="Journeys a worker keeps in memory between their workflow tasks (Temporal's "
        "sticky cache); one evicted is replayed from its history when it next wakes. About "
        "130 KB each: 500 keep a worker near 230 MB.",
        ge=1,
    )

    public_url: str | None = Field(
        None,
        description="The API's address as providers see it (https://collections.example.com): "
        "Twilio's status callbacks go there, and Twilio's signatures are checked against it.",
    )
    sendgrid_webhook_public_key: str | None = Field(
        None, description="SendGrid's signed event webhook verification key (base64, as shown)."
    )
    webhook_max_age_s: int = Field(
        600, description="SendGrid events signed longer ago than this are refused (replays)."
    )

    company_name: str = Field(
        "Dunwell Demo B.V.", description="The creditor: heads the debtor's page, signs messages."
    )
    company_address: str = Field(
        "Keizersgracht 1, 1015 CJ Amsterdam", description="The creditor's postal address."
    )
    company_email: str = Field("billing@dunwell.example", description="Where debtors write to.")
    company_phone: str = Field("+31 20 123 4567", description="Where debtors call.")
    portal_secret: SecretStr | None = Field(
        None,
        description="Secret the debtors' personal links are derived from (at least 32 "
        "characters); `dunwell dev` makes one. Without it messages carry the payment link only.",
    )
    mollie_api_key: SecretStr | None = Field(
        None,
        description="Mollie API key (`live_…` or `test_…`): the debtor's page takes payments "
        "(iDEAL and the account's other methods). Without it, Pay opens the invoice's payment_url.",
    )
    mollie_base_url: str | None = Field(
        None, description="Mollie's API address, for a fake (`dunwell fake-providers`)."
    )
    inbound_email_domain: str | None = Field(
        None,
        description="Domain whose mail SendGrid's Inbound Parse receives (reply.example.com): "
        "each journey's emails carry reply+<token>@ it as Reply-To, so a reply finds its invoice.",
    )
    inbound_secret: SecretStr | None = Field(
        None,
        description="Secret path segment of the Inbound Parse webhook "
        "(/v1/webhooks/sendgrid/inbound/<secret>).",
    )
    inbound_basic_auth: SecretStr | None = Field(
        None, description="`user:password` SendGrid sends with Inbound Parse posts."
    )
    portal_requests_per_minute: int = Field(
        30,
        description="Most portal requests per minute per link, and ten times that per "
        "client address.",
    )
    api_url: str | None = Field(
        None, description="Where `dunwell import` finds the API; default this machine's."
    )
    api_key: SecretStr | None = Field(
        None,
        description="The key `dunwell import` sends (an integration or admin key); default the "
        "development key `dunwell dev` made.",
    )
    console_idle_minutes: int = Field(
        30, ge=1, le=24 * 60, description="A console session ends after this long unused."
    )

    @property
    def portal_base_url(self) -> str:
        """Where debtors open their page: DUNWELL_PUBLIC_URL, else this machine's API."""
        return (self.public_url or f"http://127.0.0.1:{self.api_port}").rstrip("/")

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def encryption_key_value(self) -> str | None:
        return self.encryption_keys.get_secret_value() if self.encryption_keys else None

    @property
    def ui_origins(self) -> list[str]:
        """Browser origins allowed to call the API (the codec server): the Temporal UI's."""
        given = [o.strip().rstrip("/") for o in self.codec_ui_origins.split(",") if o.strip()]
        port = self.temporal_ui_port
        return given or [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]

    @property
    def database(self) -> str:
        if self.database_url and self.database_url.get_secret_value():
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.home / 'dunwell.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
