"""The one clock: moments are stored in UTC; days people see are Beijing (Asia/Shanghai) dates.

Every "now" and "today" in huiqi comes from here, so a deadline, a daily cap and a registry date
all agree on when a day starts (Beijing midnight, not the server's). Tests that need a fixed day
pass it explicitly (`on=`/`today=` arguments) rather than patching this module.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

# China has one time zone and no daylight saving, so a fixed offset is exact (and needs no tzdata).
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def now() -> datetime:
    """The current moment, timezone-aware in UTC (what the database stores)."""
    return datetime.now(UTC)


def beijing_now() -> datetime:
    """The current moment on Beijing wall-clock time."""
    return datetime.now(BEIJING)


def today() -> date:
    """Today's date in Beijing."""
    return beijing_now().date()


def aware(moment: datetime) -> datetime:
    """A stored moment as aware UTC (SQLite returns naive datetimes; they were stored as UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def in_beijing(moment: datetime) -> datetime:
    """A stored moment on Beijing wall-clock time."""
    return aware(moment).astimezone(BEIJING)


def beijing_day(moment: datetime) -> date:
    """The Beijing calendar date of a moment."""
    return in_beijing(moment).date()


def day_start(day: date) -> datetime:
    """The UTC moment a Beijing day begins (its midnight)."""
    return datetime.combine(day, time(0), BEIJING).astimezone(UTC)


def day_end(day: date) -> datetime:
    """The last UTC moment of a Beijing day."""
    return datetime.combine(day, time.max, BEIJING).astimezone(UTC)
