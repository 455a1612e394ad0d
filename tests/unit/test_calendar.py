"""Working-day calendars: Danish public holidays, plain weekdays, ISO delays and pauses."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import isodate
import pytest
from pydantic import ValidationError

from domain.calendar import Delay, get_calendar, parse_iso_duration
from tests.support import CPH

DK = get_calendar("dk", "Europe/Copenhagen", time(16, 0))
WEEKDAYS = get_calendar("weekdays", "Europe/Copenhagen", time(16, 0))


def cph(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CPH)


def elapsed(start: datetime, end: datetime) -> timedelta:
    """Real time between two instants (aware arithmetic in one zone would be wall-clock time)."""
    return end.astimezone(UTC) - start.astimezone(UTC)


# -- working days --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2027, 3, 24), True),  # Wednesday before Easter
        (date(2027, 3, 25), False),  # Maundy Thursday
        (date(2027, 3, 26), False),  # Good Friday
        (date(2027, 3, 27), False),  # Saturday
        (date(2027, 3, 29), False),  # Easter Monday
        (date(2027, 3, 30), True),
        (date(2027, 5, 6), False),  # Ascension Day
        (date(2027, 5, 17), False),  # Whit Monday
        (date(2028, 12, 25), False),  # Christmas Day, a Monday
        (date(2028, 12, 26), False),  # Second Day of Christmas, a Tuesday
        (date(2027, 1, 1), False),  # New Year's Day
    ],
)
def test_the_danish_calendar_knows_weekends_and_public_holidays(day: date, expected: bool) -> None:
    assert DK.is_working_day(day) is expected


def test_christmas_eve_and_new_years_eve_are_working_days_in_the_public_holiday_category() -> None:
    # Most workplaces close on 24 and 31 December, but they are not public holidays in the
    # `holidays` package's public category, and the dk calendar counts exactly that category.
    assert DK.holiday_name(date(2027, 12, 24)) is None
    assert DK.is_working_day(date(2027, 12, 24))  # a Friday
    assert DK.is_working_day(date(2027, 12, 31))  # a Friday
    assert DK.add_working_day_steps(date(2027, 12, 23), 1) == date(2027, 12, 24)


def test_holiday_names_come_from_the_danish_calendar_and_weekdays_has_none() -> None:
    assert DK.holiday_name(date(2027, 3, 26)) == "Good Friday"
    assert DK.holiday_name(date(2027, 3, 24)) is None
    assert WEEKDAYS.holiday_name(date(2027, 3, 26)) is None


def test_a_deadline_that_crosses_easter_lands_on_the_first_working_day_after_it() -> None:
    # Wednesday 24 March 2027 + 1: Maundy Thursday, Good Friday, the weekend and Easter Monday skipped.
    due = DK.add_working_days(cph(2027, 3, 24), 1)

    assert due == cph(2027, 3, 30, 16)


def test_five_working_days_from_the_monday_before_easter_is_the_thursday_after_it() -> None:
    assert DK.add_working_day_steps(date(2027, 3, 22), 5) == date(2027, 4, 1)


def test_a_deadline_that_crosses_christmas_skips_both_christmas_days() -> None:
    # Friday 22 December 2028: the weekend, then Christmas Day (Mon) and the Second Day (Tue).
    assert DK.add_working_days(cph(2028, 12, 22), 1) == cph(2028, 12, 27, 16)


def test_christmas_day_skipped_but_christmas_eve_counted_in_2026() -> None:
    # Wed 23 Dec 2026 + 2: Thu 24 (a working day in this calendar), then Fri 25 and the weekend skipped.
    assert DK.add_working_day_steps(date(2026, 12, 23), 2) == date(2026, 12, 28)


def test_the_weekdays_calendar_ignores_public_holidays() -> None:
    assert WEEKDAYS.is_working_day(date(2027, 3, 25))
    assert WEEKDAYS.add_working_days(cph(2027, 3, 24), 1) == cph(2027, 3, 25, 16)
    assert not WEEKDAYS.is_working_day(date(2027, 3, 27))


def test_zero_working_days_is_the_same_day_at_the_deadline_time_if_not_yet_passed() -> None:
    assert DK.add_working_days(cph(2027, 3, 24, 9), 0) == cph(2027, 3, 24, 16)


def test_zero_working_days_after_the_deadline_time_is_the_next_working_day() -> None:
    assert DK.add_working_days(cph(2027, 3, 24, 17), 0) == cph(2027, 3, 30, 16)


def test_zero_working_days_from_a_holiday_is_the_next_working_day() -> None:
    assert DK.add_working_days(cph(2027, 3, 26, 9), 0) == cph(2027, 3, 30, 16)
    assert DK.add_working_day_steps(date(2027, 3, 27), 0) == date(2027, 3, 30)


def test_a_working_day_deadline_is_never_before_its_start() -> None:
    # Friday 17:00 + 0: not Friday 16:00 (already past) but Monday 16:00.
    start = cph(2027, 4, 9, 17)
    due = DK.add_working_days(start, 0)

    assert due == cph(2027, 4, 12, 16)
    assert due > start


def test_working_day_deadlines_keep_the_wall_clock_time_across_daylight_saving() -> None:
    # Clocks go forward on Sunday 28 March 2027: the deadline is still 16:00, now at +02:00.
    due = DK.add_working_days(cph(2027, 3, 24), 1)

    assert due.astimezone(CPH).hour == 16
    assert due.utcoffset() == timedelta(hours=2)
    assert cph(2027, 3, 24).utcoffset() == timedelta(hours=1)


def test_working_days_between_counts_days_after_the_start_up_to_and_including_the_end() -> None:
    assert DK.working_days_between(cph(2027, 3, 22), cph(2027, 4, 1)) == 5
    assert WEEKDAYS.working_days_between(cph(2027, 3, 22), cph(2027, 4, 1)) == 8


def test_working_days_between_the_same_day_or_backwards_is_zero() -> None:
    assert DK.working_days_between(cph(2027, 3, 22, 9), cph(2027, 3, 22, 15)) == 0
    assert DK.working_days_between(cph(2027, 4, 1), cph(2027, 3, 22)) == 0


def test_working_days_between_uses_local_dates_not_utc_dates() -> None:
    # 23:30 UTC on Monday is already Tuesday in Copenhagen.
    start = datetime(2027, 3, 22, 23, 30, tzinfo=UTC)
    assert DK.working_days_between(cph(2027, 3, 22, 9), start) == 1


def test_calendar_arithmetic_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        DK.add_working_days(datetime(2027, 3, 22, 10), 1)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        get_calendar("dk", "Mars/Olympus", time(16, 0))


def test_calendars_for_the_same_settings_are_shared() -> None:
    assert get_calendar("dk", "Europe/Copenhagen", time(16, 0)) is DK


# -- ISO 8601 durations and delays ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT30M", timedelta(minutes=30)),
        ("P2W", timedelta(weeks=2)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("P6M", isodate.Duration(months=6)),
    ],
)
def test_iso_durations_parse(text: str, expected: object) -> None:
    assert parse_iso_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not an ISO 8601 duration"),
        ("30 minutes", "not an ISO 8601 duration"),
        ("P", "not an ISO 8601 duration"),
        ("pt30m", "not an ISO 8601 duration"),
        ("10:00", "not an ISO 8601 duration"),
        ("P0D", "must be a positive duration"),
        ("PT0S", "must be a positive duration"),
        ("-P1D", "must be a positive duration"),
        ("-PT5M", "must be a positive duration"),
    ],
)
def test_bad_iso_durations_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_iso_duration(text)


def test_a_delay_is_written_as_working_days_or_an_iso_duration_and_stored_explicitly() -> None:
    assert Delay.model_validate(10).model_dump() == {"working_days": 10}
    assert Delay.model_validate("P2W").model_dump() == {"iso": "P2W"}
    assert Delay.model_validate({"iso": "PT30M"}) == Delay(iso="PT30M")
    assert Delay.model_validate(10).clock == "working_days"
    assert Delay.model_validate("PT30M").clock == "calendar"
    assert str(Delay(working_days=3)) == "3 working days"
    assert str(Delay(iso="P2W")) == "P2W"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "a delay is a number of working days or an ISO 8601 duration"),
        (1.5, "is not a delay"),
        ([3], "is not a delay"),
        (-1, "working days must not be negative"),
        ("forty", "'forty' is not an ISO 8601 duration"),
        ({"working_days": 2, "iso": "P1D"}, "either working days"),
        ({}, "either working days"),
    ],
)
def test_a_delay_that_is_neither_working_days_nor_an_iso_duration_is_refused(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Delay.model_validate(value)


def test_nominal_days_compare_delays_of_different_units() -> None:
    assert Delay(working_days=5).nominal_days() == pytest.approx(7)
    assert Delay(iso="P2W").nominal_days() == pytest.approx(14)
    assert Delay(iso="PT12H").nominal_days() == pytest.approx(0.5)
    assert Delay(iso="P6M").nominal_days() == pytest.approx(182.64)


def test_adding_working_days_through_add_lands_at_the_deadline_time() -> None:
    assert DK.add(cph(2027, 3, 24), Delay(working_days=1)) == cph(2027, 3, 30, 16)


def test_iso_minutes_are_added_exactly_and_ignore_working_days() -> None:
    start = cph(2027, 3, 26, 23, 50)  # Good Friday, late evening
    assert DK.add(start, Delay(iso="PT30M")) == cph(2027, 3, 27, 0, 20)


def test_iso_months_keep_the_wall_clock_time_across_daylight_saving() -> None:
    start = cph(2027, 1, 31, 16)
    due = DK.add(start, Delay(iso="P6M"))

    assert due == cph(2027, 7, 31, 16)
    assert due.utcoffset() == timedelta(hours=2)


def test_a_calendar_day_is_the_same_wall_time_tomorrow_even_when_the_clocks_go_forward() -> None:
    start = cph(2027, 3, 27, 12)
    due = DK.add(start, Delay(iso="P1D"))

    assert due == cph(2027, 3, 28, 12)
    assert elapsed(start, due) == timedelta(hours=23)


def test_iso_minutes_are_real_minutes_in_the_night_the_clocks_go_back() -> None:
    # 02:45 summer time on 31 October 2027; 30 minutes later the clocks read 02:15 winter time.
    start = datetime(2027, 10, 31, 2, 45, tzinfo=CPH)
    due = DK.add(start, Delay(iso="PT30M"))

    assert elapsed(start, due) == timedelta(minutes=30)
    assert due.utcoffset() == timedelta(hours=1)


def test_iso_hours_are_real_hours_in_the_night_the_clocks_go_forward() -> None:
    start = cph(2027, 3, 28, 1, 30)
    due = DK.add(start, Delay(iso="PT1H"))

    assert elapsed(start, due) == timedelta(hours=1)
    assert due == cph(2027, 3, 28, 3, 30)


def test_an_iso_deadline_is_the_same_whether_the_start_carries_the_zone_or_a_fixed_offset() -> None:
    # Times read back from storage carry a fixed offset; the arithmetic must not depend on it.
    start = datetime(2027, 10, 31, 1, 45, tzinfo=CPH)
    stored = start.astimezone(UTC)
    for delay in (Delay(iso="PT2H"), Delay(iso="P1D"), Delay(iso="P1M")):
        assert DK.add(start, delay) == DK.add(stored, delay)


# -- shifting deadlines by a pause ---------------------------------------------------------------


def test_a_working_day_deadline_shifts_by_the_working_days_paused_over_easter() -> None:
    # Paused Mon 22 March, resumed Thu 1 April 2027: Tue, Wed, Tue, Wed, Thu = 5 working days.
    shifted = DK.shift(cph(2027, 4, 8, 16), "working_days", cph(2027, 3, 22), cph(2027, 4, 1))

    assert shifted == cph(2027, 4, 15, 16)


def test_a_calendar_deadline_shifts_by_the_exact_paused_time() -> None:
    paused, resumed = cph(2027, 3, 1, 9), cph(2027, 3, 1, 9, 45)
    assert WEEKDAYS.shift(cph(2027, 3, 1, 10), "calendar", paused, resumed) == cph(2027, 3, 1, 10, 45)


def test_a_calendar_deadline_shifts_by_real_time_across_daylight_saving() -> None:
    paused, resumed = cph(2027, 3, 27, 12), cph(2027, 3, 28, 12)  # 23 real hours
    due = cph(2027, 4, 1, 12)

    shifted = DK.shift(due, "calendar", paused, resumed)

    assert elapsed(due, shifted) == timedelta(hours=23)
    assert DK.shift(due.astimezone(UTC), "calendar", paused, resumed) == shifted


def test_a_pause_within_one_day_does_not_move_a_working_day_deadline() -> None:
    due = cph(2027, 4, 8, 16)
    assert DK.shift(due, "working_days", cph(2027, 3, 22, 9), cph(2027, 3, 22, 15)) == due


def test_a_resume_before_the_pause_moves_nothing() -> None:
    due = cph(2027, 4, 8, 16)
    assert DK.shift(due, "working_days", cph(2027, 3, 30), cph(2027, 3, 22)) == due
    assert DK.shift(due, "calendar", cph(2027, 3, 30), cph(2027, 3, 22)) == due


def test_shifting_by_working_days_keeps_the_local_wall_clock_time() -> None:
    # Friday 29 October 2027 09:30 summer time + 1 working day: Monday 1 November 09:30 winter time.
    shifted = DK.shift_working_days(cph(2027, 10, 29, 9, 30), 1)

    assert shifted == cph(2027, 11, 1, 9, 30)
    assert shifted.utcoffset() == timedelta(hours=1)
