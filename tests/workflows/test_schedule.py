"""When reminders go out: due moments, send windows, DST, public holidays, catch-up and pauses."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from workflows.policy import STANDARD_POLICY, SendWindow
from workflows.schedule import (
    catch_up,
    describe_wait,
    due_moment,
    is_supported_country,
    next_open,
    spread_offset,
    step_time,
)

AMS = "Europe/Amsterdam"
WINDOW = SendWindow()  # mon-fri 09:00-17:00, skipping public holidays
EVERY_DAY = SendWindow(days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(moment: datetime, tz: str = AMS) -> datetime:
    return moment.astimezone(ZoneInfo(tz))


def days(n: int) -> timedelta:
    return timedelta(days=n)


# ---- due moment --------------------------------------------------------------------------------


def test_due_moment_is_window_start_in_debtor_time_zone() -> None:
    late_start = SendWindow(start=time(10, 30))
    # 1 July 2026 is summer time in Amsterdam (UTC+2).
    assert due_moment(date(2026, 7, 1), None, AMS, late_start) == utc(2026, 7, 1, 8, 30)
    assert due_moment(date(2026, 7, 1), None, AMS, WINDOW) == utc(2026, 7, 1, 7, 0)


def test_due_moment_without_window_is_nine_local() -> None:
    assert due_moment(date(2026, 7, 1), None, AMS, None) == utc(2026, 7, 1, 7, 0)
    assert due_moment(date(2026, 1, 15), None, AMS, None) == utc(2026, 1, 15, 8, 0)  # winter
    assert due_moment(date(2026, 1, 15), None, "UTC", None) == utc(2026, 1, 15, 9, 0)
    ny = due_moment(date(2026, 1, 15), None, "America/New_York", None)
    assert ny == utc(2026, 1, 15, 14, 0)


def test_due_at_wins_and_is_returned_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    got = due_moment(date(2026, 1, 1), datetime(2026, 5, 4, 15, 0, tzinfo=plus_two), AMS, WINDOW)
    assert got == utc(2026, 5, 4, 13, 0)
    assert got.utcoffset() == timedelta(0)


def test_naive_due_at_is_taken_as_utc() -> None:
    got = due_moment(date(2026, 1, 1), datetime(2026, 5, 4, 15, 0), AMS, None)
    assert got == utc(2026, 5, 4, 15, 0)
    assert got.tzinfo is not None


# ---- send window -------------------------------------------------------------------------------


def test_saturday_moves_to_monday_nine_local() -> None:
    saturday_noon = utc(2026, 6, 13, 10, 0)  # 12:00 in Amsterdam
    got = next_open(saturday_noon, WINDOW, AMS, None)
    assert got == utc(2026, 6, 15, 7, 0)
    assert local(got).strftime("%a %H:%M") == "Mon 09:00"


def test_after_end_moves_to_next_day_start() -> None:
    wednesday_1730 = utc(2026, 6, 10, 15, 30)
    assert next_open(wednesday_1730, WINDOW, AMS, None) == utc(2026, 6, 11, 7, 0)
    friday_1700 = utc(2026, 6, 12, 15, 0)  # the end is exclusive, and the weekend is closed
    assert next_open(friday_1700, WINDOW, AMS, None) == utc(2026, 6, 15, 7, 0)


def test_before_start_moves_to_same_day_start() -> None:
    wednesday_0700 = utc(2026, 6, 10, 5, 0)
    assert next_open(wednesday_0700, WINDOW, AMS, None) == utc(2026, 6, 10, 7, 0)


def test_inside_window_unchanged() -> None:
    wednesday_1015 = utc(2026, 6, 10, 8, 15)
    assert next_open(wednesday_1015, WINDOW, AMS, None) == wednesday_1015
    assert next_open(utc(2026, 6, 10, 7, 0), WINDOW, AMS, None) == utc(2026, 6, 10, 7, 0)


def test_window_uses_debtor_local_date() -> None:
    # Monday 02:00 UTC is still Sunday 22:00 in New York: wait for Monday 09:00 there.
    got = next_open(utc(2026, 6, 15, 2, 0), WINDOW, "America/New_York", None)
    assert got == utc(2026, 6, 15, 13, 0)


def test_no_window_returns_moment_in_utc() -> None:
    saturday_night = datetime(2026, 6, 13, 23, 0, tzinfo=ZoneInfo(AMS))
    got = next_open(saturday_night, None, AMS, "NL")
    assert got == utc(2026, 6, 13, 21, 0)
    assert got.utcoffset() == timedelta(0)


def test_no_open_day_raises_instead_of_looping() -> None:
    never = SendWindow.model_construct(days=[], start=time(9), end=time(17))
    with pytest.raises(ValueError, match="no open send window"):
        next_open(utc(2026, 6, 10, 8, 0), never, AMS, None)


# ---- negative offsets and the ladder -----------------------------------------------------------


def test_before_due_step_falls_three_days_earlier() -> None:
    due = due_moment(date(2026, 10, 8), None, AMS, WINDOW)  # Thursday
    assert step_time(due, days(-3), timedelta(0), WINDOW, AMS, "NL") == utc(2026, 10, 5, 7, 0)


def test_before_due_on_a_sunday_moves_to_monday() -> None:
    due = due_moment(date(2026, 12, 23), None, AMS, WINDOW)  # Wednesday
    got = step_time(due, days(-3), timedelta(0), WINDOW, AMS, "NL")  # Sunday 20 Dec
    assert got == utc(2026, 12, 21, 8, 0)
    assert local(got).strftime("%a %d %b %H:%M") == "Mon 21 Dec 09:00"


def test_negative_sub_day_offset_is_elapsed_time() -> None:
    due = utc(2026, 6, 10, 12, 0, 0)
    got = step_time(due, timedelta(seconds=-30), timedelta(0), None, AMS, None)
    assert got == utc(2026, 6, 10, 11, 59, 30)


def test_standard_ladder_for_invoice_due_23_december() -> None:
    policy = STANDARD_POLICY
    due = due_moment(date(2026, 12, 23), None, AMS, policy.send_window)
    got = {
        s.name: local(step_time(due, s.offset, timedelta(0), policy.send_window, AMS, "NL"))
        for s in policy.steps
    }
    assert {name: f"{t:%a %Y-%m-%d %H:%M}" for name, t in got.items()} == {
        "before_due": "Mon 2026-12-21 09:00",  # Sunday 20th -> Monday
        "overdue_1": "Thu 2026-12-24 09:00",
        "overdue_2": "Wed 2026-12-30 09:00",
        "overdue_3": "Wed 2027-01-06 09:00",
        "final_notice": "Fri 2027-01-22 09:00",
        "call_debtor": "Mon 2027-02-08 09:00",  # Saturday 6th -> Monday
        "hand_over": "Mon 2027-02-22 09:00",  # Sunday 21st -> Monday
    }


# ---- daylight saving time ----------------------------------------------------------------------


def test_nine_local_across_march_dst_change() -> None:
    # Clocks go forward on Sunday 29 March 2026: 09:00 is 08:00Z before, 07:00Z after.
    due = due_moment(date(2026, 3, 27), None, AMS, WINDOW)  # Friday
    assert due == utc(2026, 3, 27, 8, 0)
    week_later = step_time(due, days(7), timedelta(0), WINDOW, AMS, None)
    assert week_later == utc(2026, 4, 3, 7, 0)
    assert local(week_later).time() == time(9, 0)
    friday_evening = utc(2026, 3, 27, 17, 0)  # 18:00 CET
    monday = next_open(friday_evening, WINDOW, AMS, None)
    assert monday == utc(2026, 3, 30, 7, 0)
    assert local(monday).time() == time(9, 0)


def test_nine_local_across_october_dst_change() -> None:
    # Clocks go back on Sunday 25 October 2026: 09:00 is 07:00Z before, 08:00Z after.
    due = due_moment(date(2026, 10, 23), None, AMS, WINDOW)  # Friday
    assert due == utc(2026, 10, 23, 7, 0)
    week_later = step_time(due, days(7), timedelta(0), WINDOW, AMS, None)
    assert week_later == utc(2026, 10, 30, 8, 0)
    assert local(week_later).time() == time(9, 0)
    monday = next_open(utc(2026, 10, 23, 16, 0), WINDOW, AMS, None)
    assert monday == utc(2026, 10, 26, 8, 0)
    assert local(monday).time() == time(9, 0)


def test_window_start_in_dst_gap_moves_to_first_valid_instant() -> None:
    # 02:30 does not exist on 29 March 2026 in Amsterdam: clocks jump from 02:00 to 03:00.
    night = SendWindow(days=EVERY_DAY.days, start=time(2, 30), end=time(17, 0))
    got = next_open(utc(2026, 3, 28, 20, 0), night, AMS, None)
    assert got == utc(2026, 3, 29, 1, 0)
    assert local(got).time() == time(3, 0)
    # The day after, 02:30 exists again.
    assert next_open(utc(2026, 3, 29, 20, 0), night, AMS, None) == utc(2026, 3, 30, 0, 30)


def test_window_start_in_repeated_hour_is_first_occurrence() -> None:
    # 02:30 happens twice on 25 October 2026: first at 00:30Z (CEST), again at 01:30Z (CET).
    night = SendWindow(days=EVERY_DAY.days, start=time(2, 30), end=time(17, 0))
    assert next_open(utc(2026, 10, 24, 20, 0), night, AMS, None) == utc(2026, 10, 25, 0, 30)


# ---- public holidays ---------------------------------------------------------------------------


def test_christmas_skipped_for_nl() -> None:
    # 25 Dec 2026 is a Friday, 26 Dec (second day of Christmas) a Saturday.
    due = due_moment(date(2026, 12, 24), None, AMS, WINDOW)
    got = step_time(due, days(1), timedelta(0), WINDOW, AMS, "NL")
    assert got == utc(2026, 12, 28, 8, 0)
    assert local(got).strftime("%a %d %b %H:%M") == "Mon 28 Dec 09:00"


def test_christmas_not_skipped_without_country() -> None:
    due = due_moment(date(2026, 12, 24), None, AMS, WINDOW)
    assert step_time(due, days(1), timedelta(0), WINDOW, AMS, None) == utc(2026, 12, 25, 8, 0)


def test_christmas_not_skipped_when_window_allows_holidays() -> None:
    window = SendWindow(skip_public_holidays=False)
    due = due_moment(date(2026, 12, 24), None, AMS, window)
    assert step_time(due, days(1), timedelta(0), window, AMS, "NL") == utc(2026, 12, 25, 8, 0)


def test_kings_day_skipped_for_nl() -> None:
    kings_day = utc(2027, 4, 27, 7, 0)  # Tuesday 09:00 CEST
    assert next_open(kings_day, WINDOW, AMS, "NL") == utc(2027, 4, 28, 7, 0)
    assert next_open(kings_day, WINDOW, AMS, "nl") == utc(2027, 4, 28, 7, 0)
    assert next_open(kings_day, WINDOW, AMS, None) == kings_day
    assert next_open(kings_day, WINDOW, AMS, "DE") == kings_day  # not a German holiday


def test_easter_weekend_skipped_for_nl() -> None:
    # Good Friday 3 April and Easter Monday 6 April 2026.
    assert next_open(utc(2026, 4, 3, 7, 0), WINDOW, AMS, "NL") == utc(2026, 4, 7, 7, 0)


def test_unknown_country_means_no_holidays() -> None:
    christmas = utc(2026, 12, 25, 8, 0)
    assert next_open(christmas, WINDOW, AMS, "XX") == christmas
    assert next_open(christmas, WINDOW, AMS, "") == christmas


def test_supported_countries() -> None:
    assert is_supported_country("NL")
    assert is_supported_country("nl")
    assert is_supported_country("GB")
    assert not is_supported_country("XX")
    assert not is_supported_country("")


# ---- catch-up ----------------------------------------------------------------------------------

TIMES = [utc(2026, 6, d, 7, 0) for d in (1, 5, 10, 15, 20)]


def test_several_steps_due_only_latest_is_performed() -> None:
    assert catch_up(TIMES, 0, utc(2026, 6, 12, 0, 0)) == 2


def test_catch_up_from_a_later_start() -> None:
    assert catch_up(TIMES, 1, utc(2026, 6, 16, 0, 0)) == 3
    # Nothing from step 3 on is due yet: carry on with step 3.
    assert catch_up(TIMES, 3, utc(2026, 6, 12, 0, 0)) == 3


def test_none_due_returns_start() -> None:
    assert catch_up(TIMES, 0, utc(2026, 5, 1, 0, 0)) == 0
    assert catch_up(TIMES, 2, utc(2026, 6, 10, 6, 59)) == 2


def test_all_due_performs_only_the_last() -> None:
    assert catch_up(TIMES, 0, utc(2026, 7, 1, 0, 0)) == 4


def test_step_due_exactly_now_counts_as_due() -> None:
    assert catch_up(TIMES, 0, utc(2026, 6, 10, 7, 0)) == 2


def test_equal_times_take_the_latest() -> None:
    same = [utc(2026, 6, 1, 7, 0)] * 3
    assert catch_up(same, 0, utc(2026, 6, 1, 7, 0)) == 2


def test_catch_up_past_the_end() -> None:
    assert catch_up(TIMES, 5, utc(2026, 7, 1, 0, 0)) == 5
    assert catch_up([], 0, utc(2026, 7, 1, 0, 0)) == 0


# ---- pauses ------------------------------------------------------------------------------------


def test_pause_shifts_step_by_paused_time() -> None:
    due = due_moment(date(2026, 6, 8), None, AMS, WINDOW)  # Monday
    # overdue_1 was Tuesday 09:00; paused for 1 day 2 hours: Wednesday 11:00 is inside the window.
    got = step_time(due, days(1), timedelta(days=1, hours=2), WINDOW, AMS, "NL")
    assert got == utc(2026, 6, 10, 9, 0)
    assert local(got).strftime("%a %H:%M") == "Wed 11:00"


def test_pause_shift_then_moves_to_window() -> None:
    due = due_moment(date(2026, 12, 23), None, AMS, WINDOW)  # Wednesday
    # overdue_1 was Thursday 24 Dec 09:00; paused 1 day 3 hours: Christmas Day 12:00.
    shift = timedelta(days=1, hours=3)
    assert step_time(due, days(1), shift, WINDOW, AMS, "NL") == utc(2026, 12, 28, 8, 0)
    assert step_time(due, days(1), shift, WINDOW, AMS, None) == utc(2026, 12, 25, 11, 0)
    # Paused 9 hours: Thursday 18:00, after the window: Monday 28th (Christmas, weekend).
    late = step_time(due, days(1), timedelta(hours=9), WINDOW, AMS, "NL")
    assert late == utc(2026, 12, 28, 8, 0)


# ---- timer summaries ---------------------------------------------------------------------------


def test_describe_wait_in_debtor_local_time() -> None:
    assert (
        describe_wait(utc(2026, 12, 23, 8, 0, 45), AMS, "overdue_1")
        == "wait until 2026-12-23 09:00 Europe/Amsterdam for overdue_1"
    )
    assert (
        describe_wait(utc(2026, 7, 1, 7, 30), AMS, "before_due")
        == "wait until 2026-07-01 09:30 Europe/Amsterdam for before_due"
    )


# ---- spreading a due-date surge ----------------------------------------------------------------


def test_spread_offset_is_fixed_per_invoice_and_spreads_invoices_over_the_hour() -> None:
    hour = timedelta(hours=1)
    offsets = [spread_offset(f"INV-{n}", hour) for n in range(2000)]
    # Pinned: open journeys replay with these offsets, so the hash may never change (not even to
    # Python's own `hash()`, which differs between processes).
    assert offsets[7] == timedelta(seconds=1426) and offsets[1] == timedelta(seconds=3054)
    assert spread_offset("INV-7", timedelta(minutes=30)) == timedelta(minutes=23, seconds=46)
    assert all(timedelta(0) <= o < hour and o.microseconds == 0 for o in offsets)
    per_quarter = [
        sum(1 for o in offsets if q * 900 <= o.total_seconds() < (q + 1) * 900) for q in range(4)
    ]
    # 2,000 invoices due at 09:00: each quarter of an hour gets about 500, none gets them all.
    assert all(400 <= n <= 600 for n in per_quarter), per_quarter
    assert spread_offset("INV-1", timedelta(0)) == timedelta(0)


def test_step_at_the_window_opening_moves_by_the_spread() -> None:
    due = due_moment(date(2026, 12, 23), None, AMS, WINDOW)
    plain = step_time(due, days(1), timedelta(0), WINDOW, AMS, "NL")
    spread = step_time(due, days(1), timedelta(0), WINDOW, AMS, "NL", timedelta(minutes=37))
    assert local(plain).time() == time(9, 0)
    assert spread - plain == timedelta(minutes=37)


def test_step_inside_the_window_is_not_spread() -> None:
    due = utc(2026, 12, 23, 13, 15)  # a due_at in the afternoon, Amsterdam 14:15
    spread = step_time(due, days(1), timedelta(0), WINDOW, AMS, "NL", timedelta(minutes=37))
    assert local(spread).time() == time(14, 15)


def test_spread_never_takes_more_than_half_the_window() -> None:
    short = SendWindow(start=time(9, 0), end=time(10, 0))
    due = due_moment(date(2026, 12, 23), None, AMS, short)
    at = step_time(due, days(1), timedelta(0), short, AMS, "NL", timedelta(hours=3))
    assert local(at).time() == time(9, 30)


def test_negative_spread_is_refused() -> None:
    with pytest.raises(ValueError, match="spread must not be negative"):
        SendWindow(spread=timedelta(minutes=-5))


def test_step_times_ignore_the_machines_own_time_zone_database(tmp_path: Path) -> None:
    """A worker whose system tz database differs computes the same moments (replay-safe)."""
    import zoneinfo

    from workflows import schedule

    # A "system" database where Amsterdam is UTC: the schedule must not read it.
    fake = tmp_path / "Europe"
    fake.mkdir()
    utc_file = resources.files("tzdata.zoneinfo").joinpath("UTC").read_bytes()
    (fake / "Amsterdam").write_bytes(utc_file)
    schedule.time_zone.cache_clear()
    zoneinfo.reset_tzpath(to=[str(tmp_path)])
    try:
        assert zoneinfo.ZoneInfo.no_cache("Europe/Amsterdam").utcoffset(None) == timedelta(0)
        moment = schedule.due_moment(date(2026, 12, 22), None, "Europe/Amsterdam", None)
        assert moment == datetime(2026, 12, 22, 8, 0, tzinfo=UTC)  # 09:00 CET
    finally:
        zoneinfo.reset_tzpath()
        schedule.time_zone.cache_clear()


def test_the_calendar_packages_are_pinned_to_what_is_installed() -> None:
    """Step times depend on tzdata and holidays: an upgrade is a deliberate, reviewed change."""
    import tomllib
    from importlib.metadata import version

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    pins = dict(d.split("==") for d in pyproject["project"]["dependencies"] if "==" in d)
    assert pins.get("tzdata") == version("tzdata")
    assert pins.get("holidays") == version("holidays")
