"""The simulator's clock: instants are ticks (.NET's 100 ns) since the Unix epoch, UTC; conversions
to and from `datetime`, truncation to the precision EM shows, and the forms EM writes instants in
(ISO date-times in fields and filters, local forms in names and job schedules).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

T = 10_000_000  # ticks per second
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# An EM filter's date-time: UTC, ending in Z, with 0-7 fraction digits
ISO_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?Z$")


def to_ticks(dt: datetime) -> int:
    """Ticks of an aware `datetime` (microsecond precision)."""
    d = dt - EPOCH
    return (d.days * 86400 + d.seconds) * T + d.microseconds * 10


def span(delta: timedelta) -> int:
    """Ticks in a `timedelta`."""
    return to_ticks(EPOCH + delta)


def from_ticks(ticks: int) -> datetime:
    """The UTC `datetime` of `ticks` (truncated to whole microseconds)."""
    return EPOCH + timedelta(microseconds=ticks // 10)


def from_ticks_or_none(ticks: int | None) -> datetime | None:
    return None if ticks is None else from_ticks(ticks)


def trunc(ticks: int, prec: int) -> int:
    """`ticks` truncated to `prec` (0-7) fractional digits of a second."""
    unit = 10 ** (7 - prec)
    return ticks - ticks % unit


def fmt_ts(ticks: int, prec: int) -> str:
    """ISO instant ending in Z with `prec` (0-7) fractional digits, as EM writes `…UTC` fields."""
    secs, frac = divmod(ticks, T)
    tm = time.gmtime(secs)
    base = (
        f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}T{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
    )
    return base + "Z" if prec == 0 else f"{base}.{frac:07d}"[: len(base) + 1 + prec] + "Z"


def fmt_ts_or_none(ticks: int | None, prec: int) -> str | None:
    return None if ticks is None else fmt_ts(ticks, prec)


def parse_ts(text: str) -> int:
    """Ticks of an ISO instant as EM filters take it (`2025-08-15T06:00:00Z`, 0-7 fraction digits).
    Raises ValueError naming the text."""
    m = ISO_RE.match(text)
    if not m:
        raise ValueError(f"Invalid date-time {text!r}: expected UTC like 2025-08-15T06:00:00Z")
    y, mo, d, h, mi, s, frac = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
    except ValueError as e:
        raise ValueError(f"Invalid date-time {text!r}: {e}") from None
    return to_ticks(dt) + (int(frac.ljust(7, "0")) if frac else 0)


def name_ts(ticks: int, frac: bool) -> str:
    """The instant in a session or point name: `2025-08-15 06:00:31`, with `.123456` when `frac`."""
    secs, rem = divmod(ticks, T)
    tm = time.gmtime(secs)
    s = f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
    return f"{s}.{rem // 10:06d}" if frac else s


def sql_name(ticks: int) -> str:
    """SQL-Server-style restore point name, e.g. `Jun  5 2025  1:01AM` (UTC)."""
    tm = time.gmtime(ticks // T)
    h12 = tm.tm_hour % 12 or 12
    return (
        f"{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:>2} {tm.tm_year} {h12:>2}:{tm.tm_min:02d}"
        f"{'AM' if tm.tm_hour < 12 else 'PM'}"
    )


def file_stamp(ticks: int, tz_hours: int) -> str:
    """The VBR server's local time as backup file names carry it: `2025-06-16T060031`."""
    tm = time.gmtime(ticks // T + tz_hours * 3600)
    return f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}T{tm.tm_hour:02d}{tm.tm_min:02d}{tm.tm_sec:02d}"


def local_time_of_day(ticks: int, tz_hours: int) -> str:
    """A job schedule's daily time as EM writes it: `06:30:00.0000000+02:00` (whole minutes)."""
    tm = time.gmtime(ticks // T + tz_hours * 3600)
    sign = "+" if tz_hours >= 0 else "-"
    return f"{tm.tm_hour:02d}:{tm.tm_min:02d}:00.0000000{sign}{abs(tz_hours):02d}:00"
