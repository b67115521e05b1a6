"""When a journey's steps happen: due moments, send windows, public holidays, catch-up and pauses.

Pure, deterministic functions used by the journey workflow (so they replay identically): no clock,
no randomness, no I/O beyond time-zone lookups (zoneinfo) and the `holidays` data tables. Every
datetime returned is timezone-aware UTC; "local" means the debtor's own time zone.

- `due_moment`: the instant an invoice falls due (`due_at`, or `due_on` at the window's start).
- `step_time`: due moment + step offset (whole days on the debtor's calendar) + time spent
  paused, moved to the next open send window.
- `next_open`: the first instant at or after a moment that lies inside the send window, on an open
  weekday that is not a public holiday of the debtor's country.
- `spread_offset`: an invoice's own fixed place in the first part of the window, so that
  thousands of reminders due at the window's opening do not all go out in the same second.
- `catch_up`: which step to perform after a late start or an outage (at most one catch-up message).
- `describe_wait`: one line for Temporal UI timers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo

import holidays

from workflows.policy import SendWindow

DEFAULT_START = time(9, 0)
"""The time of day an invoice falls due when the policy has no send window."""

LOOKAHEAD_DAYS = 400
"""How far `next_open` searches for an open day before giving up."""

_DAY = timedelta(days=1)


@lru_cache(maxsize=512)
def time_zone(tz: str) -> ZoneInfo:
    """The time zone `tz` from the `tzdata` package (pinned in pyproject.toml and uv.lock), never
    the machine's own database: every worker computes the same step times, whatever its system
    has, so a journey replays the same on any of them. Upgrading `tzdata` is a deliberate change
    (README, "Upgrading time zones and holidays")."""
    with resources.files("tzdata.zoneinfo").joinpath(*tz.split("/")).open("rb") as data:
        return ZoneInfo.from_file(data, key=tz)


def utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken to be UTC already."""
    return _utc(moment)


def local_date(moment: datetime, tz: str) -> date:
    """The debtor's calendar day at `moment`."""
    return _utc(moment).astimezone(time_zone(tz)).date()


def _utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock `day` `at` in `zone`.

    An ambiguous wall time (clocks going back) means its first occurrence. A wall time that does
    not exist (clocks going forward) moves to the first valid instant after it: the change itself.
    """
    wall = datetime.combine(day, at.replace(tzinfo=None, fold=0))
    first = wall.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap: fold=0 reads the wall time with the offset before the change (the later instant),
    # fold=1 with the offset after it (the earlier one). The change lies between; find the first
    # second whose local wall time is past `wall`.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first
    if low > high:
        low, high = high, low
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(zone).replace(tzinfo=None) > wall:
            high = mid
        else:
            low = mid
    return high


def _country_code(country: str | None) -> str | None:
    code = (country or "").strip().upper()
    return code or None


@lru_cache(maxsize=512)
def _holidays(country: str, year: int) -> frozenset[date]:
    """Public holidays of `country` (ISO 3166-1 alpha-2, upper case) in `year`; none if unknown."""
    try:
        table = holidays.country_holidays(country, years=year)
    except NotImplementedError:
        return frozenset()
    return frozenset(table.keys())


@lru_cache(maxsize=512)
def is_supported_country(country: str) -> bool:
    """Whether public holidays are known for this country code (e.g. "NL"; case-insensitive)."""
    code = _country_code(country)
    if code is None:
        return False
    try:
        holidays.country_holidays(code)
    except NotImplementedError:
        return False
    return True


def _is_open_day(day: date, window: SendWindow, country: str | None) -> bool:
    if day.weekday() not in window.weekday_numbers:
        return False
    code = _country_code(country)
    if window.skip_public_holidays and code is not None:
        return day not in _holidays(code, day.year)
    return True


def due_moment(
    due_on: date, due_at: datetime | None, tz: str, window: SendWindow | None
) -> datetime:
    """The instant the invoice falls due, in UTC.

    `due_at` when given (naive means UTC); else `due_on` at the send window's start in the debtor's
    time zone, or at 09:00 local without a window.
    """
    if due_at is not None:
        return _utc(due_at)
    start = window.start if window is not None else DEFAULT_START
    return _local_instant(due_on, start, time_zone(tz))


def next_open(
    moment: datetime, window: SendWindow | None, tz: str, country: str | None
) -> datetime:
    """The first instant at or after `moment` inside the send window, in UTC.

    Open days are the window's weekdays, less the public holidays of `country` when the window
    skips them (an unknown country has none). Without a window every moment is open.
    """
    moment = _utc(moment)
    if window is None:
        return moment
    zone = time_zone(tz)
    day = moment.astimezone(zone).date()
    if _is_open_day(day, window, country):
        start = _local_instant(day, window.start, zone)
        if moment < start:
            return start
        if moment < _local_instant(day, window.end, zone):
            return moment
    for _ in range(LOOKAHEAD_DAYS):
        day += timedelta(days=1)
        if _is_open_day(day, window, country):
            return _local_instant(day, window.start, zone)
    raise ValueError(
        f"no open send window within {LOOKAHEAD_DAYS} days after {moment.isoformat()} "
        f"(days={window.days}, country={country})"
    )


def step_time(
    due: datetime,
    offset: timedelta,
    shift: timedelta,
    window: SendWindow | None,
    tz: str,
    country: str | None,
    spread: timedelta = timedelta(0),
) -> datetime:
    """When a step is performed: due moment + offset + time paused, moved to an open window.

    The offset's whole days count on the debtor's calendar, so a step due at 09:00 local is still
    at 09:00 local after a daylight-saving change; the rest of the offset and the `shift` (time
    spent paused) are elapsed time. A step that lands on the window's opening moves `spread`
    later (the invoice's `spread_offset`; at most half the window).
    """
    zone = time_zone(tz)
    # Whole days, rounded towards zero: -PT30S is no days and -30 seconds.
    days = offset // _DAY if offset >= timedelta(0) else -(-offset // _DAY)
    wall = _utc(due).astimezone(zone).replace(tzinfo=None) + timedelta(days=days)
    moved = _local_instant(wall.date(), wall.time(), zone)
    at = next_open(moved + (offset - days * _DAY) + shift, window, tz, country)
    if spread > timedelta(0) and window is not None:
        local = at.astimezone(zone)
        if local.time() == window.start:
            length = datetime.combine(local.date(), window.end) - datetime.combine(
                local.date(), window.start
            )
            at += min(spread, length / 2)
    return at


def spread_offset(invoice_id: str, spread: timedelta) -> timedelta:
    """A fixed offset in [0, spread) for one invoice, whole seconds, the same on every replay.

    Taken from a hash of the invoice id, so the invoices due at one window's opening are spread
    evenly over its first `spread`, and one invoice's reminders always go out at the same minute.
    """
    seconds = int(spread.total_seconds())
    if seconds <= 0:
        return timedelta(0)
    digest = hashlib.sha256(invoice_id.encode("utf-8")).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % seconds)


def catch_up(times: Sequence[datetime], start: int, now: datetime) -> int:
    """The index of the step to perform next.

    `times` are the steps' fall-due times (non-decreasing), `start` the first step not yet
    performed. Of the steps from `start` on that have already fallen due, only the latest is
    performed (the earlier ones are skipped); when none has, the answer is `start`.
    """
    for index in range(len(times) - 1, start - 1, -1):
        if times[index] <= now:
            return index
    return start


def describe_wait(at: datetime, tz: str, what: str) -> str:
    """One line for a Temporal UI timer: `wait until 2026-12-23 09:00 Europe/Amsterdam for x`."""
    local = _utc(at).astimezone(time_zone(tz))
    return f"wait until {local:%Y-%m-%d %H:%M} {tz} for {what}"
