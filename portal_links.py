"""Debtors' personal links: `/p/<token>`, one live token per customer, never stored.

A token is derived from the server's portal secret, the customer and the link's generation
(HMAC-SHA256, 256 bits), so every message can carry it while the database keeps only its hash.
Revoking a link moves the customer to the next generation: the old token no longer resolves and
the next message carries the new one. Workers (which write messages) and the API (which opens the
page) derive the same tokens from the same secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import urlencode

from db.store import Store
from settings import Settings

MIN_SECRET_LENGTH = 32
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class PortalLinks:
    def __init__(
        self, store: Store, secret: str, base_url: str, inbound_domain: str | None = None
    ) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"DUNWELL_PORTAL_SECRET must be at least {MIN_SECRET_LENGTH} characters "
                "(make one with `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        self._store = store
        self._secret = secret.encode()
        self.base_url = base_url.rstrip("/")
        self.inbound_domain = inbound_domain
        self._remembered: set[str] = set()
        """Reply tokens this process has stored: each is written once, not on every email."""

    def token(self, customer_id: str, generation: int) -> str:
        mac = hmac.new(self._secret, f"{customer_id}\x00{generation}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")

    def url_for(self, customer_id: str, invoice_id: str | None = None) -> str:
        """The customer's live link (made on first use); with an invoice, the page shows that
        invoice first (the one the message was about)."""
        generation = self._store.portal_generation(
            customer_id, lambda g: token_hash(self.token(customer_id, g))
        )
        url = f"{self.base_url}/p/{self.token(customer_id, generation)}"
        return f"{url}?{urlencode({'invoice': invoice_id})}" if invoice_id else url

    def reply_address(self, invoice_id: str, customer_id: str) -> str | None:
        """The journey's own reply address (`reply+<token>@<inbound domain>`), remembered so that
        a reply finds its invoice; None without an inbound domain."""
        if not self.inbound_domain:
            return None
        mac = hmac.new(self._secret, f"reply\x00{invoice_id}".encode(), hashlib.sha256)
        token = base64.b32encode(mac.digest()[:10]).decode().lower()
        if token not in self._remembered:
            self._store.remember_reply_address(token, invoice_id, customer_id)
            if len(self._remembered) > 100_000:
                self._remembered.clear()
            self._remembered.add(token)
        return f"reply+{token}@{self.inbound_domain}"

    def customer_of(self, token: str) -> str | None:
        """The customer a live token belongs to; None for anything else (same answer for all)."""
        if not _TOKEN.match(token):
            return None
        found = self._store.portal_link(token_hash(token))
        if found is None:
            return None
        customer_id, generation = found
        # The hash matched; the derivation must too (a row copied between customers does not).
        expected = self.token(customer_id, generation)
        return customer_id if hmac.compare_digest(expected.encode(), token.encode()) else None


def links_from(settings: Settings, store: Store) -> PortalLinks | None:
    """The deployment's links, or None when no portal secret is set (messages then carry the
    payment link only)."""
    if settings.portal_secret is None or not settings.portal_secret.get_secret_value():
        return None
    return PortalLinks(
        store,
        settings.portal_secret.get_secret_value(),
        settings.portal_base_url,
        settings.inbound_email_domain,
    )
