"""What the console says, in English and Dutch. `{name}` fields are filled by the page.

Both languages have the same keys (a test checks), so a page never shows a key instead of words.
"""

from __future__ import annotations

from api.console import texts_en, texts_nl

LANGUAGES = {"en": "English", "nl": "Nederlands"}

TEXTS: dict[str, dict[str, str]] = {"en": texts_en.TEXTS, "nl": texts_nl.TEXTS}
EVENTS: dict[str, dict[str, str]] = {"en": texts_en.EVENTS, "nl": texts_nl.EVENTS}
"""The timeline in words: one sentence per kind of event; `{actor}` is who did it."""
VALUES: dict[str, dict[str, str]] = {"en": texts_en.VALUES, "nl": texts_nl.VALUES}
"""Tones, channels, statuses, outcomes and actors in words."""
LABELS: dict[str, dict[str, str]] = {"en": texts_en.LABELS, "nl": texts_nl.LABELS}
"""The names of an event's other fields."""
PHRASES: dict[str, dict[str, str]] = {"en": texts_en.PHRASES, "nl": texts_nl.PHRASES}
"""The system's own reasons and notes (exactly as the workflows and activities write them)."""
