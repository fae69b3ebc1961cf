"""Countries and provinces/states named in label text, read by herbdesk.quality.places.

quality.places knows ISO 3166 (pycountry) and the customary abbreviations ("Sask.", "B.C.");
this module decides which words of a line to ask it about: capitalised runs of one to four
words, abbreviations only when written as abbreviations, and not a place named after a
region ("Texas Creek") or an institution's name ("Agriculture Canada").
"""

from __future__ import annotations

import re
from functools import cache

import pycountry
from rapidfuzz import fuzz, process

from herbdesk.quality.places import country_code, subdivision, subdivision_name

# Countries whose provinces/states a label may name without naming the country; elsewhere
# a bare subdivision name is too often an ordinary word ("Central", "North").
HOME_COUNTRIES = ("CA", "US")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*\.?(?:\s?[A-Za-z]\.)*")
# "Texas Creek", "Washington Lake": a place named after a state, not the state.
_FEATURE_AFTER = re.compile(
    r"[\s,]*(creek|river|lake|mountains?|mt|road|rd|street|st|park|hills?|island|pass"
    r"|valley|county|co|bay|falls|springs?|crossing|junction)\b",
    re.I,
)
INSTITUTION = re.compile(
    r"agriculture(?: and agri-food)? canada|canada department of|"
    r"research (?:station|centre|center)|herbarium|university|museum|institute",
    re.I,
)


def country_name(alpha2: str) -> str:
    c = pycountry.countries.get(alpha_2=alpha2)
    return str(c.name) if c is not None else alpha2


@cache
def _province_names(alpha2: str) -> tuple[str, ...]:
    subs = pycountry.subdivisions.get(country_code=alpha2) or []
    return tuple(str(s.name) for s in subs)


def _abbreviated(words: str) -> bool:
    """Written as an abbreviation: a full stop ("Sask.", "B. C.") or capitals ("BC")."""
    return "." in words or (words.replace(" ", "").isupper() and len(words) <= 4)


def _candidates(text: str, home: tuple[str, ...]) -> list[tuple[int, int, str, str]]:
    """(start, end, country alpha-2, subdivision code or "") for each run of words that names
    a region."""
    tokens = list(_TOKEN.finditer(text))
    named = {c for t in tokens if (c := country_code(t.group().rstrip("."))) and len(t.group()) > 3}
    out: list[tuple[int, int, str, str]] = []
    for i, first in enumerate(tokens):
        if not first.group()[0].isupper():
            continue
        for j in range(min(len(tokens), i + 4) - 1, i - 1, -1):  # longest run first
            start, end = first.start(), tokens[j].end()
            words = text[start:end]
            if j > i and not all(
                t.group()[0].isupper() or t.group() in ("and", "of") for t in tokens[i : j + 1]
            ):
                continue
            abbrev = _abbreviated(words)
            # the home countries first: "N.S." is Nova Scotia before it is a Bahamas district
            code = next(filter(None, (subdivision(words, c) for c in home)), None)
            code = code or subdivision(words)
            found: tuple[str, str] | None = None
            if code and not abbrev and country_code(words) == code[:2]:
                code = None  # "Mexico": the country, not its state of that name
            if code:
                country = code[:2]
                ok = country in home if abbrev else country in home or country in named
                if ok and len(words.replace(".", "")) >= 2:
                    found = (country, code)
            if found is None and (not abbrev or words.upper() in ("U.S.A.", "USA", "U.S.", "UK")):
                alpha2 = country_code(words.rstrip("."))
                if alpha2 and (len(words) > 3 or abbrev):
                    found = (alpha2, "")
            if found and not _FEATURE_AFTER.match(text, end):
                out.append((start, end, *found))
                break
    return out


def find_region(
    text: str, locality: bool = False, home: tuple[str, ...] = HOME_COUNTRIES
) -> tuple[str, str] | None:
    """(country name, stateProvince name or "") named last in the text: regions are written
    last. In a ``locality`` a long word may carry an OCR slip or two ("Soskotchewan"), and an
    institution named there ("Swift Current Research Station") is a place."""
    found = [
        c
        for c in _candidates(text, home)
        if locality or not INSTITUTION.search(text[max(0, c[0] - 30) : c[1] + 30])
    ]
    if locality and not found:
        for m in re.finditer(r"[A-Za-z]{7,}", text):
            for country in home:
                hit = process.extractOne(
                    m.group(), _province_names(country), scorer=fuzz.ratio, score_cutoff=80
                )
                if hit:
                    code = subdivision(hit[0], country)
                    found.append((m.start(), m.end(), country, code or ""))
    if not found:
        return None
    _, _, country, code = max(found)
    # "Boulder, Colorado, U.S.A.": the country comes last, the state before it.
    subs = [c for c in found if c[3] and c[2] == country]
    if subs and not code:
        code = max(subs)[3]
    return country_name(country), subdivision_name(code) if code else ""
