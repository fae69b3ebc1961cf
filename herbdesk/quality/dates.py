"""Dates as herbarium labels and models write them: ISO 8601 checked, verbatim forms normalised.

Two-digit years are read as the latest year not after today ("20/06/47" is 1947); day and
month are told apart by value where one of them is above 12, else read month first (the
form of North American labels) and the finding says the reading was ambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

MIN_YEAR = 1700

_ISO = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$")
_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4,
    "april": 4, "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8,
    "sep": 9, "sept": 9, "september": 9, "oct": 10, "october": 10, "nov": 11, "november": 11,
    "dec": 12, "december": 12,
    "i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9,
    "x": 10, "xi": 11, "xii": 12,
}  # fmt: skip
_MON = r"([A-Za-z]{3,9}|[IVXivx]{1,4})\.?"
_NUMERIC = re.compile(r"^(\d{1,4})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{1,4})$")
_MDY = re.compile(rf"^{_MON}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{2,4}})$")
_DMY = re.compile(rf"^(\d{{1,2}})(?:st|nd|rd|th)?[\s\-./]+{_MON}[\s\-./,]+(\d{{2,4}})$")
_MY = re.compile(rf"^{_MON}[\s,]+(\d{{4}})$")


@dataclass(frozen=True)
class DateReading:
    """What a date value is: `iso` if it already is ISO 8601, `normalised` if a verbatim form
    was read, `problem` (a check name) if it is no usable date."""

    iso: bool
    normalised: str | None = None
    problem: str | None = None
    ambiguous: bool = False


def read_date(value: str, today: date | None = None) -> DateReading:
    """Judge one eventDate/dateIdentified value."""
    today = today or date.today()
    text = value.strip()
    if "/" in text and _ISO.match(text.split("/", 1)[0].strip()):  # an ISO range a/b
        parts = [p.strip() for p in text.split("/", 1)]
        readings = [_iso(p, today) for p in parts if p]
        bad = next((r for r in readings if r.problem), None)
        return bad or DateReading(iso=True, normalised=text)
    if _ISO.match(text):
        return _iso(text, today)
    parsed = _verbatim(text, today)
    if parsed is None:
        return DateReading(iso=False, problem="date_invalid")
    (y, m, d), ambiguous = parsed
    problem = _plausible(y, m, d, today)
    if problem:
        return DateReading(iso=False, problem=problem)
    iso = f"{y:04d}" + (f"-{m:02d}" if m else "") + (f"-{d:02d}" if d else "")
    return DateReading(iso=False, normalised=iso, ambiguous=ambiguous)


def normalise_date(value: str) -> str | None:
    """The ISO form of a date value, or None (used to compare dates by value)."""
    r = read_date(value)
    if r.problem:
        return None
    return r.normalised if not r.iso else value.strip()[:10]


def _iso(text: str, today: date) -> DateReading:
    m = _ISO.match(text)
    if not m:
        return DateReading(iso=False, problem="date_invalid")
    y, mo, d = int(m[1]), int(m[2] or 0), int(m[3] or 0)
    problem = _plausible(y, mo, d, today)
    return DateReading(iso=True, normalised=text, problem=problem)


def _plausible(y: int, m: int, d: int, today: date) -> str | None:
    if y < MIN_YEAR:
        return "date_year_range"
    if y > today.year:
        return "date_future"
    if m and not 1 <= m <= 12:
        return "date_invalid"
    if d:
        try:
            when = date(y, m or 1, d)
        except ValueError:
            return "date_invalid"
        if when > today:
            return "date_future"
    elif m and (y, m) > (today.year, today.month):
        return "date_future"
    return None


def _year(text: str, today: date) -> int:
    y = int(text)
    if len(text) <= 2:
        century = today.year // 100 * 100
        y = century + y if century + y <= today.year else century - 100 + y
    return y


def _month(text: str) -> int | None:
    return _MONTHS.get(text.lower().rstrip("."))


def _verbatim(text: str, today: date) -> tuple[tuple[int, int, int], bool] | None:
    """(year, month, day) of a verbatim label date and whether day/month was a guess."""
    if m := _NUMERIC.match(text):
        a, b, c = m[1], m[2], m[3]
        if len(a) == 4:  # 1961.06.08, 1961/6/8
            return (int(a), int(b), int(c)), False
        if len(c) not in (2, 4):
            return None
        first, second = int(a), int(b)
        if first > 12 >= second:
            return (_year(c, today), second, first), False
        if second > 12 >= first:
            return (_year(c, today), first, second), False
        if first > 12 and second > 12:
            return None
        return (_year(c, today), first, second), first != second
    if m := _MDY.match(text):
        mon = _month(m[1])
        return ((_year(m[3], today), mon, int(m[2])), False) if mon else None
    if m := _DMY.match(text):
        mon = _month(m[2])
        return ((_year(m[3], today), mon, int(m[1])), False) if mon else None
    if m := _MY.match(text):
        mon = _month(m[1])
        return ((int(m[2]), mon, 0), False) if mon else None
    return None
