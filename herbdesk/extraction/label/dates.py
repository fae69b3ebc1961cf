"""Dates in the forms labels carry, found in running OCR text and read by quality.dates.

This module only finds where a date is and undoes OCR slips in it ("Au9", "Sept.8.l984");
herbdesk.quality.dates decides what it means (two-digit years, day/month order, plausibility).
"""

from __future__ import annotations

import re

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from herbdesk.quality.dates import read_date

# Month names and abbreviations (English, and French for Canadian labels), accents stripped,
# mapped to the English abbreviation quality.dates reads.
_NAMES = (
    "jan january janv janvier/feb february fev fevr fevrier/mar march mars/apr april avr avril/"
    "may mai/jun june juin/jul july juil juillet/aug august aout/sep sept september septembre/"
    "oct october octobre/nov november novembre/dec december decembre"
)
_ENGLISH = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
MONTHS = {w: _ENGLISH[n] for n, names in enumerate(_NAMES.split("/")) for w in names.split()}
_ROMAN = frozenset(["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii"])
_MONTH_OCR = str.maketrans("9q05", "ggos")  # "Au9", "Auq" -> "aug"
_SHORT = [w for w in MONTHS if len(w) in (3, 4)]

_SEP = r"[\s.,/-]*"
_MON = r"[A-Za-z][A-Za-z0-9]{1,8}"
_PATTERNS = (
    ("ymd", re.compile(r"\b(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})\b")),
    (
        "mdy",
        re.compile(
            rf"\b(?P<m>{_MON})\.?{_SEP}(?P<d>\d{{1,2}})(?:st|nd|rd|th)?{_SEP}(?P<y>\d{{4}})\b"
        ),
    ),
    (
        "dmy",
        re.compile(rf"\b(?P<d>\d{{1,2}}){_SEP}(?P<m>{_MON})\.?{_SEP}(?P<y>\d{{4}}|\d{{2}})\b"),
    ),
    ("num", re.compile(r"\b(?P<a>\d{1,2})[/.-](?P<b>\d{1,2})[/.-](?P<y>\d{4}|\d{2})\b")),
    ("my", re.compile(rf"\b(?P<m>{_MON})\.?{_SEP}(?P<y>\d{{4}})\b")),
)


def month(token: str) -> tuple[str, float] | None:
    """English abbreviation and trust of a month token: exact 1.0, an OCR digit for a letter
    0.85, one slip in a short name ("Ayg", "Yov", "gume") 0.75; roman numerals as written."""
    plain = token.lower().rstrip(".")
    if plain in _ROMAN:
        return plain, 0.9
    key = plain.translate(_MONTH_OCR)
    if key in MONTHS:
        return MONTHS[key], 1.0 if key == plain else 0.85
    if 3 <= len(key) <= 4 and key.isalpha():
        hits = process.extract(key, _SHORT, scorer=Levenshtein.distance, score_cutoff=1)
        found = {MONTHS[name] for name, _, _ in hits}
        if len(found) == 1:
            return found.pop(), 0.75
    return None


def find_date(text: str) -> tuple[str, float, tuple[int, int]] | None:
    """First unambiguous date in the text as (ISO 8601, trust, span), else None."""
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            y = m.group("y")
            if kind == "my" and re.search(r"\d[\s.,/-]*$", text[: m.start()]):
                continue  # the day was there but the date is impossible ("31 Feb 1984")
            trust = 1.0 if len(y) == 4 else 0.7  # "47" is read as 1947, "05" as 2005
            if kind == "ymd":
                verbatim = f"{y}-{int(m.group('m')):02d}-{int(m.group('d')):02d}"
            elif kind == "num":
                verbatim, trust = f"{m.group('a')}/{m.group('b')}/{y}", trust * 0.85
            else:
                mon = month(m.group("m"))
                if mon is None:
                    continue
                trust *= mon[1]
                verbatim = (
                    f"{mon[0]} {y}"
                    if kind == "my"
                    else f"{m.group('d')} {mon[0]} {y}"
                    if kind == "dmy"
                    else f"{mon[0]} {m.group('d')} {y}"
                )
            reading = read_date(verbatim)
            if reading.problem or reading.ambiguous or not reading.normalised:
                continue  # 05/06/47: either order is possible; or no such day
            return reading.normalised, trust, m.span()
    return None
