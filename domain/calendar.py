"""Working-day calendars (Danish public holidays, plain weekdays) and delays in either unit."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import isodate
from pydantic import BaseModel, ConfigDict, model_serializer, model_validator

CalendarName = Literal["dk", "dk-municipal", "weekdays"]
Clock = Literal["working_days", "calendar"]
#: A closure period as a calendar keeps it: first day, last day (both included), why.
ClosurePeriod = tuple[date, date, str]

#: What `dk-municipal` adds to `dk` (PRODUCT §8.4): days a Danish municipality's staff have off
#: although the `holidays` package's public category counts them as working days.
MUNICIPAL_DAYS_OFF: dict[tuple[int, int], str] = {
    (6, 5): "Constitution Day",
    (12, 24): "Christmas Eve",
    (12, 31): "New Year's Eve",
}

# A year of working days is ~250; a loop bound keeps a corrupt input from spinning forever.
_MAX_STEPS = 100_000


@functools.lru_cache(maxsize=256)
def parse_iso_duration(text: str) -> timedelta | isodate.Duration:
    """Parse an ISO 8601 duration (`PT30M`, `P2W`, `P6M`); raise ValueError on anything else."""
    try:
        value = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError, TypeError) as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT30M or P2W") from exc
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise ValueError(f"{text!r} must be a positive duration")
    elif value.years < 0 or value.months < 0 or value.tdelta < timedelta(0):
        raise ValueError(f"{text!r} must be a positive duration")
    return value


class Delay(BaseModel):
    """A delay in working days of the programme's calendar, or an ISO 8601 calendar duration.

    Written in a programme as an integer (working days), a string (ISO 8601, e.g. `PT30M`),
    or `{"working_days": n}` / `{"iso": "P2W"}`; stored in that last, explicit form.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    working_days: int | None = None
    iso: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a delay is a number of working days or an ISO 8601 duration")
        if isinstance(value, int):
            return {"working_days": value}
        if isinstance(value, str):
            return {"iso": value}
        if not isinstance(value, dict | Delay):
            raise ValueError(
                f"{value!r} is not a delay: give working days (an integer) or an ISO 8601 duration (a string)"
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Delay:
        if (self.working_days is None) == (self.iso is None):
            raise ValueError("a delay is either working days (an integer) or an ISO 8601 duration (a string)")
        if self.working_days is not None and self.working_days < 0:
            raise ValueError("working days must not be negative")
        if self.iso is not None:
            parse_iso_duration(self.iso)
        return self

    @model_serializer(mode="plain")
    def _serialise(self) -> dict[str, Any]:
        if self.working_days is not None:
            return {"working_days": self.working_days}
        return {"iso": self.iso}

    @property
    def clock(self) -> Clock:
        """Which clock the delay runs on: pausing shifts each kind in its own unit."""
        return "working_days" if self.working_days is not None else "calendar"

    def nominal_days(self) -> float:
        """Rough length in calendar days, only to compare delays of different units."""
        if self.working_days is not None:
            return self.working_days * 7 / 5
        value = parse_iso_duration(self.iso or "")
        if isinstance(value, timedelta):
            return value.total_seconds() / 86400
        # isodate keeps parsed years and months as Decimal, which does not mix with float.
        total: float = float(value.years) * 365.25 + float(value.months) * 30.44
        return total + float(value.tdelta.total_seconds()) / 86400

    def __str__(self) -> str:
        return f"{self.working_days} working days" if self.working_days is not None else str(self.iso)


#: Years computed up front; lookups outside them are computed on demand.
PRELOADED_YEARS = range(2000, 2061)


@functools.lru_cache(maxsize=1)
def danish_holidays() -> holidays.HolidayBase:
    """Danish public holidays (the `holidays` package, public category), one shared table.

    Building the table reads the process locale (for holiday names only, never the dates), which a
    Temporal workflow sandbox refuses: workers call this once at start-up, outside workflows.
    """
    return holidays.country_holidays("DK", categories=("public",), years=PRELOADED_YEARS)


class WorkingCalendar:
    """Working days in one time zone; working-day deadlines fall at `deadline_time` local time.

    Date arithmetic happens on local dates so that a deadline keeps its wall-clock time across
    daylight-saving changes. Immutable and cached: safe to share.

    `closures` are periods the programme's people are away (a school's winter break): no
    working-day deadline falls in one, and a working-day delay skips it like a weekend.
    """

    def __init__(
        self, name: CalendarName, tz: ZoneInfo, deadline_time: time, closures: tuple[ClosurePeriod, ...] = ()
    ) -> None:
        self.name = name
        self.tz = tz
        self.deadline_time = deadline_time
        self.closures = closures
        self._holidays: holidays.HolidayBase | None = danish_holidays() if name in ("dk", "dk-municipal") else None
        self._municipal = name == "dk-municipal"
        # One set of closed days: the working-day loops ask about every day they pass.
        self._closed: dict[date, str] = {}
        for first, last, reason in closures:
            day = first
            while day <= last:
                self._closed.setdefault(day, reason)
                day += timedelta(days=1)

    def is_working_day(self, day: date) -> bool:
        """Monday–Friday, less the calendar's public holidays (and days off) and its closures."""
        if day.weekday() >= 5:
            return False
        if self._holidays is not None and day in self._holidays:
            return False
        if self._municipal and (day.month, day.day) in MUNICIPAL_DAYS_OFF:
            return False
        return day not in self._closed

    def holiday_name(self, day: date) -> str | None:
        """The public holiday (or, in `dk-municipal`, the day off) on `day`, if any."""
        if self._holidays is None:
            return None
        name = self._holidays.get(day)
        if name is None and self._municipal:
            name = MUNICIPAL_DAYS_OFF.get((day.month, day.day))
        return str(name) if name is not None else None

    def closure_reason(self, day: date) -> str | None:
        """Why the programme is closed on `day` (a closure period), if it is."""
        return self._closed.get(day)

    def local(self, at: datetime) -> datetime:
        """`at` in the calendar's time zone."""
        if at.tzinfo is None:
            raise ValueError("calendar arithmetic needs an aware datetime")
        return at.astimezone(self.tz)

    def _at(self, day: date, wall: time) -> datetime:
        return datetime.combine(day, wall, tzinfo=self.tz)

    def add_working_day_steps(self, day: date, n: int) -> date:
        """The n-th working day after `day` (n = 0: `day` itself if it is a working day, else the next)."""
        steps = 0
        current = day
        if n == 0:
            while not self.is_working_day(current):
                current += timedelta(days=1)
                steps += 1
                if steps > _MAX_STEPS:
                    raise ValueError("no working day found")
            return current
        while n > 0:
            current += timedelta(days=1)
            if self.is_working_day(current):
                n -= 1
            steps += 1
            if steps > _MAX_STEPS:
                raise ValueError("no working day found")
        return current

    def add_working_days(self, at: datetime, n: int) -> datetime:
        """A deadline `n` working days after `at`, at the calendar's deadline time (never before `at`)."""
        local = self.local(at)
        due = self._at(self.add_working_day_steps(local.date(), n), self.deadline_time)
        if due < local:
            due = self._at(self.add_working_day_steps(local.date(), n + 1), self.deadline_time)
        return due

    def shift_working_days(self, at: datetime, n: int) -> datetime:
        """`at` moved forward by `n` working days, keeping its local wall-clock time."""
        if n <= 0:
            return at
        local = self.local(at)
        return self._at(self.add_working_day_steps(local.date(), n), local.timetz().replace(tzinfo=None))

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days whose local date is after `start`'s and on or before `end`'s."""
        first = self.local(start).date()
        last = self.local(end).date()
        if last <= first:
            return 0
        count = 0
        day = first + timedelta(days=1)
        while day <= last:
            if self.is_working_day(day):
                count += 1
            day += timedelta(days=1)
        return count

    def working_days_elapsed(self, start: datetime, end: datetime) -> int:
        """Working days whose deadline instant (the deadline time that day) lies after `start`,
        up to and including `end`: how many working-day deadlines a pause from `start` to `end`
        took away. A pause from Friday evening to Monday morning takes none (rules 3, §8.4)."""
        if end <= start:
            return 0
        count = 0
        day = self.local(start).date()
        last = self.local(end).date()
        while day <= last:
            if self.is_working_day(day) and start < self._at(day, self.deadline_time) <= end:
                count += 1
            day += timedelta(days=1)
        return count

    def add(self, at: datetime, delay: Delay) -> datetime:
        """`at` plus `delay`: working days land at the deadline time; ISO durations are exact.

        Years, months, weeks and days of an ISO duration move the local wall clock (P1D is the
        same time tomorrow, across a daylight-saving change); hours, minutes and seconds are
        elapsed time (PT30M is thirty real minutes, even in the night the clocks go back).
        """
        if delay.working_days is not None:
            return self.add_working_days(at, delay.working_days)
        value = parse_iso_duration(delay.iso or "")
        tdelta = value if isinstance(value, timedelta) else value.tdelta
        wall = timedelta(days=tdelta.days)
        elapsed = tdelta - wall
        local = self.local(at)
        if isinstance(value, isodate.Duration):
            local = local + isodate.Duration(years=value.years, months=value.months)
        return self._elapse(local + wall, elapsed)

    def _elapse(self, at: datetime, elapsed: timedelta) -> datetime:
        # Aware arithmetic in one tzinfo is wall-clock arithmetic: go through UTC for real time,
        # so the result is the same whether `at` carries the zone or a fixed offset from storage.
        return (at.astimezone(UTC) + elapsed).astimezone(self.tz)

    def shift(self, due: datetime, clock: Clock, paused_at: datetime, resumed_at: datetime) -> datetime:
        """Move an open deadline by a pause: by the paused working days, or by the paused time."""
        if resumed_at <= paused_at:
            return due
        if clock == "working_days":
            return self.shift_working_days(due, self.working_days_between(paused_at, resumed_at))
        return self._elapse(due, real_time_between(paused_at, resumed_at))

    def shift_by(self, due: datetime, clock: Clock, working_days: int, elapsed: timedelta) -> datetime:
        """Move an open deadline by a pause already measured: working days, or real time."""
        if clock == "working_days":
            return self.shift_working_days(due, working_days)
        return self._elapse(due, elapsed) if elapsed > timedelta(0) else due

    def next_working_day(self, at: datetime) -> datetime:
        """`at` if it falls on a working day, else the same wall-clock time on the next one."""
        local = self.local(at)
        day = self.add_working_day_steps(local.date(), 0)
        return local if day == local.date() else self._at(day, local.timetz().replace(tzinfo=None))


def real_time_between(start: datetime, end: datetime) -> timedelta:
    """Elapsed time from `start` to `end`; aware subtraction within one zone would count wall time."""
    return end.astimezone(UTC) - start.astimezone(UTC)


@functools.lru_cache(maxsize=64)
def get_calendar(
    name: CalendarName, timezone: str, deadline_time: time, closures: tuple[ClosurePeriod, ...] = ()
) -> WorkingCalendar:
    """A shared calendar for a programme's settings."""
    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {timezone!r}") from exc
    return WorkingCalendar(name, tz, deadline_time, closures)
