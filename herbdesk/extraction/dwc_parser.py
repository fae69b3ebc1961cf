"""Rule-based Darwin Core from OCR'd label lines: how the offline engine reads a label.

Pure and Qt-free so every rule is testable on hand-written lines. A label is read the way a
curator reads it: by its captions ("Botanical Name", "Collector", "Coll. No.", found through
OCR slips), the value right of a caption or on the line below it, the header ("Plants of
Saskatchewan", an institution and its address), and the kind of sheet (a "Pathogen ... Host"
sheet is the pathogen's record, its host an associated taxon). Dates and places are read by
herbdesk.quality's readers, names are checked for a Latin shape and, given a checklist,
corrected to the nearest listed name when the reading is doubtful (`KEEP_MARGIN`), the label's
authorship kept and its reading told in identificationRemarks.

A value's confidence is how sure the OCR was of its line (the recogniser's score times how
alike the line read at different enlargements) times how far the rule itself is trusted,
then mapped by CALIBRATION onto how often such values were right. Rules are conservative: a
wrong term costs a curator more than a missing one, so a value that does not look like what
the term holds is dropped, never guessed.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rapidfuzz import fuzz

from herbdesk.extraction.engines.base import FieldValue
from herbdesk.extraction.label.captions import head_caption
from herbdesk.extraction.label.dates import find_date
from herbdesk.extraction.label.places import INSTITUTION as _INSTITUTION
from herbdesk.extraction.label.places import find_region
from herbdesk.quality.checklist import split_authorship
from herbdesk.quality.names import name_problem

# A name read as a checklist name's near neighbour is replaced by it only when the match score
# (0..1) beats the reading's own confidence by this much: a confident reading of a well-shaped
# name ("Setaria viridis" at 0.89 beside a listed "Setaria viridus", 0.93) is kept, and the
# quality check's `name_fuzzy_match` shows the suggestion; a doubtful one (handwriting, a line
# read differently at each size) is corrected.
KEEP_MARGIN = 0.1

__all__ = ["Line", "NameLookup", "normalise", "parse_date", "parse_label"]


@dataclass(frozen=True)
class Line:
    """One OCR line: text, recogniser score, agreement between its readings (0..1) and, from
    the engine, its bounds in page pixels (for a value written below its caption)."""

    text: str
    score: float
    agreement: float = 1.0
    box: tuple[float, float, float, float] | None = None


class NameLookup(Protocol):
    """What a names checklist answers (herbdesk.quality.checklist.Checklist)."""

    def match(self, name: str) -> object: ...


# -- text clean-up -----------------------------------------------------------------------------

_KEEP_SYMBOLS = str.maketrans({"′": "'", "’": "'", "″": '"', "”": '"', "º": "°", "˚": "°"})


def normalise(text: str) -> str:
    """OCR line -> plain text: no accents or stray scripts, dot leaders and border junk gone."""
    text = unicodedata.normalize("NFKD", text.translate(_KEEP_SYMBOLS))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = "".join(ch if (ch.isascii() and ch.isprintable()) or ch == "°" else " " for ch in text)
    text = re.sub(r"^[\s|\[\]{}!]+", "", text)  # the label's ruled border read as | [ !
    text = re.sub(r"^[jJlI1](?=[A-Z][a-z])", "", text)  # ... or as a letter glued to a caption
    text = re.sub(r"(?:\s*[.:_,]){3,}\s*|(?:\s*\.){2,}\s*", " ", text)  # dot leaders
    text = re.sub(r"\b([A-Z])\.(?=[a-z]{2})", r"\1", text)  # "S.ept" -> "Sept"
    text = re.sub(r"\b([A-Z])\.(?=[A-Z][a-z])", r"\1. ", text)  # "M.Molley" -> "M. Molley"
    text = re.sub(r"(?<=[a-z]{3})\.(?=[A-Za-z])", " ", text)  # "Location.Swift.Current"
    text = re.sub(r"(?<=[a-z])\.(?=[A-Z])", ". ", text)  # "St.Louis" -> "St. Louis"
    text = re.sub(r"(?<=\S)\(", " (", text)  # "cristatum(L)" -> "cristatum (L)"
    text = re.sub(r"\s+\.(?=\s|$)|(?<=\s)\.(?=[A-Za-z])", " ", text)  # a lone leader dot
    return _trim(re.sub(r"\s+", " ", text))


def _trim(text: str) -> str:
    """Strips separators but keeps the full stop of an abbreviation ("Beauv.", "B.C.")."""
    text = text.strip(" :;,-_")
    text = re.sub(r"(?:\s*\.){2,}$|\s+\.$", "", text).strip(" :;,-_")
    return text.lstrip(".").strip()


def _digits(token: str) -> str:
    """Fixes l/I/O read for 1/0 in a token that is otherwise a number ("l984" -> "1984")."""
    if sum(ch.isdigit() for ch in token) < 2:
        return token
    return token.translate(str.maketrans("lI|Oo", "11100"))


def _numeric(text: str) -> str:
    return re.sub(r"[0-9lIO|o]{2,}", lambda m: _digits(m.group()), text)


# -- dates -----------------------------------------------------------------------------------


def _year(text: str) -> int | None:
    """A bare four-digit year ("Det. W. A. Weber 1979"), when it is a plausible one."""
    import datetime as dt

    y = int(text)
    return y if len(text) == 4 and 1750 <= y <= dt.date.today().year else None


def parse_date(text: str) -> tuple[str, float, tuple[int, int]] | None:
    """First date in the text as (ISO 8601, trust, span); None unless it is unambiguous."""
    return find_date(_numeric(text))


# -- coordinates and elevation ---------------------------------------------------------------

_DMS = r"(\d{1,3})\s*°\s*(?:(\d{1,2}(?:\.\d+)?)\s*'\s*)?(?:(\d{1,2}(?:\.\d+)?)\s*\"\s*)?"
_DMS_PAIR = re.compile(rf"([NS])?\s*{_DMS}\s*([NS])?[\s,;]+([EW])?\s*{_DMS}\s*([EW])?", re.I)
_DEC_PAIR = re.compile(
    r"(?<![\d.])(-?\d{1,2}\.\d+)\s*°?\s*([NS])?[\s,;]+(?:long?\.?\s*:?\s*)?"
    r"(-?\d{1,3}\.\d+)\s*°?\s*([EW])?",
    re.I,
)


def find_coordinates(text: str) -> tuple[float, float, str, float] | None:
    """(lat, lon, verbatim, trust) from DMS or decimal degrees; None when out of range."""
    m = _DMS_PAIR.search(text)
    if m and (m.group(1) or m.group(5)) and (m.group(6) or m.group(10)):
        g = m.groups()
        lat = float(g[1]) + float(g[2] or 0) / 60 + float(g[3] or 0) / 3600
        lon = float(g[6]) + float(g[7] or 0) / 60 + float(g[8] or 0) / 3600
        lat *= -1 if (g[0] or g[4]).upper() == "S" else 1
        lon *= -1 if (g[5] or g[9]).upper() == "W" else 1
        trust = 0.9
    else:
        m = _DEC_PAIR.search(text)
        labelled = re.search(r"\b(lat|coord|gps)", text, re.I)
        if not m or not (m.group(2) or m.group(4) or labelled):
            return None  # a bare pair of decimals could be anything
        lat, lon = float(m.group(1)), float(m.group(3))
        lat *= -1 if (m.group(2) or "").upper() == "S" else 1
        lon *= -1 if (m.group(4) or "").upper() == "W" and lon > 0 else 1
        trust = 0.85
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return round(lat, 6), round(lon, 6), m.group().strip(" ,;"), trust


_ELEV_CAPTION = re.compile(
    r"\b(?:elev(?:ation)?|alt(?:itude)?)\b\.?\s*:?\s*(?:ca\.?|c\.|about)?\s*", re.I
)
_ELEV_VALUE = re.compile(
    r"(\d{1,2}[,\s]?\d{3}|\d{2,4})\s*(?:-\s*[\d,]+\s*)?"
    r"(m\b|meters|metres|ft\b|feet|')(\s*a\.?s\.?l\.?)?",
    re.I,
)


def find_elevation(text: str, captioned: bool = False) -> tuple[int, float, str] | None:
    """Elevation in metres, trust, and as the label gives it (verbatimElevation: "2500'").
    Needs a caption, "ft"/' or "m a.s.l.": a bare "500 m" is as likely a distance
    ("500 m N of road")."""
    cap = _ELEV_CAPTION.search(text)
    start = cap.end() if cap else 0
    m = _ELEV_VALUE.search(text, start)
    if not m:
        return None
    unit = m.group(2).lower()
    feet = unit in ("ft", "feet", "'")
    value = int(re.sub(r"[,\s]", "", m.group(1)))
    if not (cap or captioned or feet or m.group(3)):
        return None
    if unit == "'" and (value < 100 or "°" in text[max(0, m.start() - 4) : m.start()]):
        return None  # the minutes of 49° 30' N
    metres = round(value * 0.3048) if feet else value
    if not 0 <= metres <= 8850:
        return None
    return metres, 0.9 if (cap or captioned) else 0.75, m.group(0).strip()


def _add_elevation(f: _Fields, elev: tuple[int, float, str], score: float) -> None:
    """The elevation in metres and, beside it, as written: a curator checks "2500'" against
    the label, and feet turned into metres lose the original precision."""
    f.add("minimumElevationInMeters", str(elev[0]), score * elev[1])
    f.add("verbatimElevation", elev[2], score * elev[1])


# -- names -----------------------------------------------------------------------------------

_INITIAL = re.compile(r"^[A-Z]\.?$")
_SURNAME = re.compile(r"^(?:[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)*|Mc[A-Z][a-z]+|Mac[A-Z][a-z]+)\.?,?$")


def person_name(value: str) -> str | None:
    """Collector/determiner names ("M. Molley", "A. Wade & D. Wade" -> "A. Wade | D. Wade")."""
    value = re.sub(r"\b([A-Z])([A-Z][a-z]{2,})\b", r"\1. \2", value.strip(" .,;:"))  # MMolley
    tokens = value.replace(",", " , ").split()
    if not tokens or len(tokens) > 8:
        return None
    out: list[str] = []
    for tok in tokens:
        if _INITIAL.match(tok):
            out.append(tok[0] + ".")
        elif _SURNAME.match(tok.rstrip(",")):
            out.append(tok.rstrip("."))
        elif tok.lower() in ("&", "and", "et", "with"):
            out.append("|")  # the Darwin Core separator between people
        elif tok == ",":
            out.append(",")
        else:
            return None
    people = " ".join(out).replace(" ,", ",").split(" | ")
    if not all(any(len(t) >= 3 and t[-1] != "." for t in p.split()) for p in people):
        return None  # initials alone are not a name
    return " | ".join(people)


_LATIN_END = re.compile(
    r"(?:a|ae|ana|ans|ata|atum|atus|ea|ens|ensis|es|ia|ii|i|is|ius|ix|ium|"
    r"oides|um|us|x|on|or|ora|ra|e)$"
)
_STRICT_END = re.compile(
    r"..(?:us|um|is|ii|ae|ensis|oides|atum|atus|ius|ium|acea|ana|ens|ans|ix"
    r"|ica|osa|ina|ata|ella|ula|ora|ides|iflora|ifolia|alis)$"
)
_AUTHOR_TOKEN = re.compile(r"^\(?[A-Z][A-Za-z'-]*\.?\)?$|^(?:&|ex|et|in)$")
_CAPTION_WORDS = (
    "botanical common date habitat host location locality collector pathogen "
    "regina plants research agriculture disease number coll det identified "
    "checked station herbarium the north south east west near along"
)
_NOT_GENUS = frozenset(_CAPTION_WORDS.split())


def latin_name(value: str, strict: bool = False) -> str | None:
    """Genus + epithet (+ infraspecific rank) + author if it looks like one; None if not.

    Family names (-aceae) in front are skipped. ``strict`` is for lines without a caption
    saying they hold a name: only distinctly Latin epithets, so "Open area" is no plant.
    """
    tokens = value.replace(",", " ").split()
    while tokens and tokens[0].lower().endswith("aceae"):
        tokens.pop(0)
    if len(tokens) < 2:
        return None
    genus, epithet = tokens[0], tokens[1].rstrip(".")
    if not re.fullmatch(r"[A-Z][a-z]{2,}", genus) or not re.fullmatch(r"[a-z]{3,}", epithet):
        return None
    if genus.lower() in _NOT_GENUS or not (_STRICT_END if strict else _LATIN_END).search(epithet):
        return None
    name, rest = [genus, epithet], tokens[2:]
    if (
        len(rest) >= 2
        and rest[0].rstrip(".").lower() in ("var", "ssp", "subsp", "f", "forma")
        and re.fullmatch(r"[a-z]{3,}", rest[1])
    ):
        name += [rest[0].rstrip(".") + ".", rest[1]]
        rest = rest[2:]
    author: list[str] = []
    for tok in rest:
        if not _AUTHOR_TOKEN.match(tok):
            break
        author.append(re.sub(r"^\(L\)$", "(L.)", tok))
    if author == ["L"]:
        author = ["L."]
    if author and any("." in t or "(" in t for t in author):
        name += author
    return " ".join(name)


# -- captions --------------------------------------------------------------------------------

# (key, pattern, may stand mid-line). Weak captions only count at the start of a line, so a
# "host" or "No." inside a locality does not cut it in two.
_CAPTIONS: tuple[tuple[str, str, bool], ...] = (
    ("catalog", r"(?:accession|catalog(?:ue)?|herbarium)\s*(?:no|number|#)\.?", True),
    ("recno", r"coll(?:ector)?'?s?[.,]?\s*(?:no|num|number|#)\.?", True),
    ("hostdet", r"host\s*identified\s*by|host\s*det\.?(?:\s*by)?", True),
    ("det", r"pathogen\s*identified\s*by|pathogen\s*det\.?(?:\s*by)?", True),
    ("det", r"determined\s*by|identified\s*by|ident\.\s*(?:by)?|det(?:[.:]|\s+by)\s*(?:by)?", True),
    ("skip", r"checked\s*by|common\s*name|vernacular\s*name|disease\s*symptoms?|stet!?", True),
    (
        "skip",
        r"annotated\s*by|annot\.|revised\s*by|rev\.|verified\s*by|conf(?:\.|irmed)\s*by",
        True,
    ),
    ("collector", r"collectors?|collected\s*by|coll\.|leg[.:]|legit", True),
    ("date", r"date(?:\s*collected)?|collected\s*on", True),
    ("locality", r"locality|location|loc\.", True),
    ("habitat", r"habitat", True),
    ("elev", r"elevation|elev\.|altitude|alt\.", True),
    ("sciname", r"botanical\s*name|scientific\s*name|taxon\s*:|species\s*:", True),
    ("host", r"host", False),
    ("pathogen", r"pathogen|fungus|parasite", False),
    ("number", r"number|no\.|#", False),
)
_CAPTION_RX = [
    (k, re.compile(rf"(?<![A-Za-z])(?:{p})(?![A-Za-z])", re.I), mid) for k, p, mid in _CAPTIONS
]


def _segments(text: str) -> tuple[str, list[tuple[str, str, float]]]:
    """Splits a line at its captions: (text before any caption, [(key, value, trust)]);
    trust is how close a garbled caption came to the real one (1.0 when exact)."""
    spans: list[tuple[int, int, str, float]] = []
    for key, rx, mid in _CAPTION_RX:
        for m in rx.finditer(text):
            if mid or m.start() == 0:
                spans.append((m.start(), m.end(), key, 1.0))
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    kept: list[tuple[int, int, str, float]] = []
    for s in spans:
        if not kept or s[0] >= kept[-1][1]:
            kept.append(s)
    if (not kept or kept[0][0] > 0) and not latin_name(text, strict=True):
        fuzzy = head_caption(text)
        if fuzzy and (not kept or fuzzy[1] <= kept[0][0]):
            kept.insert(0, (0, fuzzy[1], fuzzy[0], fuzzy[2]))
    for m in re.finditer(r"\b[A-Za-z]{8,10}\b", text):  # "follector" mid-line
        if fuzz.ratio(m.group().lower(), "collector") >= 88 and all(
            m.end() <= s[0] or m.start() >= s[1] for s in kept
        ):
            kept.append((m.start(), m.end(), "collector", 0.9))
    kept.sort()
    segments = [
        (key, _trim(text[end : (kept[i + 1][0] if i + 1 < len(kept) else len(text))]), trust)
        for i, (_, end, key, trust) in enumerate(kept)
    ]
    return text[: kept[0][0]] if kept else text, segments


# -- the label -------------------------------------------------------------------------------

_ACRONYM = re.compile(
    r"\(([A-Z]{2,6})\)|\b([A-Z]{2,6})\s+HERBARIUM\b|\bHERBARIUM\s+\(?([A-Z]{2,6})\b"
)
_CODE_LINE = re.compile(r"^([A-Z]{2,6})\s?-?\s?(\d{4,8})$")
_ACCESSION_LINE = re.compile(r"^\d{2}-\d{1,4}$")
_RECORD_NO = re.compile(r"^[A-Z]{0,3}-?\d+[a-z]?$")
_GARBAGE = re.compile(r"[^A-Za-z0-9\s.,;:'\"()&/°#-]")
_WORD = re.compile(r"\(?(?:[A-Za-z][a-z'-]*|\d+|[A-Z0-9.-]+|[&/])\)?[.,;:]?")
# Nouns of a place written without a caption ("Regina Waterfowl Park", "Texas Creek").
_PLACE_NOUN = re.compile(
    r"\b(?:park|creek|lake|river|station|road|hwy|highway|coulee|valley|hills?|bay|island"
    r"|township|twp|county|mi\.?|km)\b",
    re.I,
)
_PEOPLE_TERMS = ("recordedBy", "identifiedBy")

# Confidence as first computed (line certainty x rule trust) -> how often values with it
# were right on the sample sheets' truth (benchmarks/ocr_quality.py prints the table).
CALIBRATION = ((0.0, 0.0), (0.3, 0.5), (0.5, 0.7), (0.65, 0.8), (0.8, 0.9), (1.0, 0.97))
# Free text (locality, habitat) has no shape to check, so an OCR slip in it goes unnoticed.
_FREE_TEXT = 0.72


def calibrated(raw: float) -> float:
    """Piecewise-linear map of a raw confidence through CALIBRATION."""
    raw = min(1.0, max(0.0, raw))
    for (x0, y0), (x1, y1) in itertools.pairwise(CALIBRATION):
        if raw <= x1:
            return y0 + (y1 - y0) * (raw - x0) / (x1 - x0)
    return CALIBRATION[-1][1]


def _plausible(value: str) -> bool:
    """Free text worth keeping: real words, not the symbol soup OCR makes of handwriting."""
    tokens = value.split()
    good = sum(bool(_WORD.fullmatch(t)) for t in tokens)
    return (
        bool(re.search(r"[A-Za-z]{3,}", value))
        and len(_GARBAGE.findall(value)) <= 1
        and good >= 0.75 * len(tokens)
    )


class _Fields:
    """The most confident value seen per term, and every reading of a person's name."""

    def __init__(self, checklist: NameLookup | None = None) -> None:
        self.best: dict[str, FieldValue] = {}
        self.checklist = checklist
        # (term, name, confidence, weight): one person read on several lines of a label
        self.people: list[tuple[str, str, float, float]] = []
        # (term, value) -> what the label said, for values a checklist corrected
        self.corrected: dict[tuple[str, str], str] = {}

    def add(self, term: str, value: str | None, confidence: float) -> None:
        if not value:
            return
        conf = min(1.0, max(0.0, confidence))
        old = self.best.get(term)
        if old is None or (old.confidence or 0.0) < conf:
            self.best[term] = FieldValue(value, conf)

    def person(self, term: str, value: str | None, confidence: float) -> None:
        if value:
            self.people.append((term, value, confidence, confidence * len(value)))
            self.add(term, value, confidence)

    def name(self, term: str, value: str, confidence: float, prefix: str = "") -> None:
        """A Latin name: dropped unless it has a name's shape; checked against a checklist."""
        if name_problem(value):
            return
        if self.checklist is not None:
            m = self.checklist.match(value)
            status, best, score = (getattr(m, k, None) for k in ("status", "name", "score"))
            match = float(score or 0) / 100
            if status == "matched":
                confidence = min(1.0, confidence * 1.1)
            elif status == "fuzzy" and best and match - confidence >= KEEP_MARGIN:
                reading = value
                authorship = split_authorship(value)[1]  # checklist names carry none
                value = f"{best} {authorship}".strip()
                confidence *= match
                self.corrected[(term, prefix + value)] = (
                    f"{term} read on the label as {prefix + reading!r}; "
                    f"corrected to the checklist's {best} (match {match * 100:.0f})"
                )
            else:  # not in the list as read: a misreading, or a name it lacks or misspells
                confidence *= 0.8
        self.add(term, prefix + value, confidence)

    def settle_corrections(self) -> None:
        """Each kept value a checklist corrected says so in identificationRemarks, with what
        the label said: a correction is never silent."""
        said = [
            (note, v.confidence or 0.0)
            for (term, value), note in self.corrected.items()
            if (v := self.best.get(term)) is not None and v.value == value
        ]
        if said:
            self.best["identificationRemarks"] = FieldValue(
                " | ".join(n for n, _ in said), max(c for _, c in said)
            )

    def region(self, text: str, confidence: float, locality: bool = False) -> None:
        found = find_region(text, locality)
        if found:
            country, province = found
            self.add("country", country, confidence * (1.0 if province else 0.95))
            self.add("stateProvince", province, confidence)

    def settle_people(self) -> None:
        """One person written on several lines ("Collector", "Identified by") reads
        differently on each: close readings (same initial, surname within two slips) take
        the spelling the others agree with most, longer readings first (handwriting OCR
        drops letters more often than it invents them)."""
        for term in _PEOPLE_TERMS:
            fv = self.best.get(term)
            if fv is None:
                continue
            alike = [p for p in self.people if p[1] == fv.value][:1]
            grew = True
            while grew:  # readings alike to any reading of the group (the chain of slips)
                more = [
                    p
                    for p in self.people
                    if p not in alike and any(_same_person(p[1], q[1]) for q in alike)
                ]
                alike, grew = alike + more, bool(more)
            if len(alike) < 2:
                continue

            supports = [_support(p, alike) for p in alike]
            top = alike[supports.index(max(supports))]
            agree = sum(_key(p[1]) == _key(top[1]) for p in alike) / len(alike)
            conf = max(p[2] for p in alike) * (0.8 + 0.2 * agree)
            self.best[term] = FieldValue(top[1], conf)


def _support(p: tuple[str, str, float, float], group: list[tuple[str, str, float, float]]) -> float:
    """How much the other readings agree with reading p, longer readings weighing more."""
    sims = sum(fuzz.ratio(_key(p[1]), _key(q[1])) for q in group if q is not p)
    return sims * len(_key(p[1]))


def _same_person(a: str, b: str) -> bool:
    """Two readings of one name: same first initial (when both have one) and a surname
    ratio of 60 or more."""
    wa, wb = a.replace(".", " ").split(), b.replace(".", " ").split()
    if not wa or not wb:
        return False
    if len(wa) > 1 and len(wb) > 1 and wa[0][0].lower() != wb[0][0].lower():
        return False
    return fuzz.ratio(_key(wa[-1]), _key(wb[-1])) >= 60


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def _segment(
    f: _Fields, key: str, value: str, score: float, near_institution: bool, pathogen_sheet: bool
) -> None:
    """Applies the rule for one captioned value."""
    if key in ("sciname", "host", "pathogen"):
        name = latin_name(value)
        if name and key == "host" and pathogen_sheet:
            f.name("associatedTaxa", name, score * 0.85, prefix="host: ")
        elif name:
            f.name("scientificName", name, score * (0.9 if key != "host" else 0.85))
    elif key == "collector":
        date = parse_date(value)
        if date:  # "Coll. J. Smith 1234, 12 July 1978"
            f.add("eventDate", date[0], score * 0.8 * date[1])
            value = value[: date[2][0]]
        num = re.search(r"\s(?:no\.?\s*|#\s*)?([A-Z]?-?\d+[a-z]?)\b", value, re.I)
        if num:
            f.add("recordNumber", num.group(1), score * 0.8)
            value = value[: num.start()]
        f.person("recordedBy", person_name(value), score * 0.9)
    elif key in ("recno", "number", "catalog"):
        token = _numeric(value.split(" ")[0].strip(".,;:")) if value else ""
        if key == "catalog" or (key == "number" and near_institution):
            if sum(ch.isdigit() for ch in token) >= 3 and re.fullmatch(r"[A-Z]*-?\d+", token):
                f.add("catalogNumber", token, score * 0.85)
        elif _RECORD_NO.match(token):
            f.add("recordNumber", token, score * (0.9 if key == "recno" else 0.75))
    elif key == "date":
        date = parse_date(value)
        year = _numeric(value)
        if date:
            f.add("eventDate", date[0], score * 0.95 * date[1])
        elif re.fullmatch(r"\d{4}", year) and _year(year):
            f.add("eventDate", year, score * 0.7)  # a bare year is a valid ISO 8601 date
    elif key == "det" or (key == "hostdet" and not pathogen_sheet):
        date = parse_date(value)
        who = value
        yr = re.search(r"\b(1[789]\d\d|20\d\d)\b", _numeric(value))
        if date:
            f.add("dateIdentified", date[0], score * 0.85 * date[1])
            who = value[: date[2][0]].strip(" ,.") or value[date[2][1] :].strip(" ,.")
        elif yr and _year(yr.group()):  # "Det. W. A. Weber 1979"
            f.add("dateIdentified", yr.group(), score * 0.75)
            who = value[: yr.start()].strip(" ,.")
        f.person("identifiedBy", person_name(who), score * (0.85 if key == "det" else 0.6))
    elif key == "hostdet":  # a pathogen sheet: who named the host, not the specimen
        host_det = person_name(value)
        if host_det is not None:
            f.people.append(("", host_det, score * 0.85, score * 0.85 * len(host_det)))
    elif key in ("locality", "habitat", "elev"):
        elev = find_elevation(value, captioned=key == "elev")
        if elev:
            _add_elevation(f, elev, score)
            value = _ELEV_VALUE.sub("", value).strip(" .,;")
        if key == "locality" and _plausible(value):
            f.add("locality", value, score * _FREE_TEXT)
            f.region(value, score * 0.95, locality=True)
        elif key == "habitat" and _plausible(value):
            f.add("habitat", value, score * _FREE_TEXT)


def _below(lines: list[Line], i: int) -> int | None:
    """The line holding the value of line i's caption when it is written below it: the next
    line, starting under the caption (by the OCR boxes when there are any)."""
    if i + 1 >= len(lines):
        return None
    here, nxt = lines[i].box, lines[i + 1].box
    if here is None or nxt is None:
        return i + 1
    height = here[3] - here[1]
    gap = nxt[1] - here[3]
    return i + 1 if gap <= 1.5 * height and nxt[0] <= here[2] and nxt[2] >= here[0] else None


def _line(item: Line | tuple[str, float] | tuple[str, float, float]) -> Line:
    if isinstance(item, Line):
        return item
    score = max(0.0, min(1.0, float(item[1])))
    return Line(item[0], score, float(item[2]) if len(item) > 2 else 1.0)


def parse_label(
    lines: Sequence[Line | tuple[str, float] | tuple[str, float, float]],
    checklist: NameLookup | None = None,
) -> dict[str, FieldValue]:
    """Darwin Core terms from OCR lines in reading order: (text, score 0..1) pairs or Lines."""
    read = [_line(x) for x in lines]
    texts = [normalise(x.text) for x in read]
    parts = [_segments(t) for t in texts]
    pathogen_sheet = any(k == "pathogen" for _, segs in parts for k, _, _ in segs)
    f = _Fields(checklist)
    institution_at, address = -10, ""
    used: set[int] = set()  # lines read as the value of a caption above them
    for i, (line, text, (prefix, segments)) in enumerate(zip(read, texts, parts, strict=True)):
        if not text or i in used:
            continue
        # Print reads alike at every enlargement; handwriting does not.
        score = max(0.0, min(1.0, line.score)) * max(0.0, min(1.0, line.agreement)) ** 1.5
        header = bool(_INSTITUTION.search(text))
        is_address = not header and i - institution_at == 1 and text.upper() == text
        if header:
            institution_at = i
            acro = _ACRONYM.search(text)
            if acro:
                f.add("institutionCode", next(g for g in acro.groups() if g), score * 0.85)
            elif re.search(r"agriculture canada", text, re.I):
                f.add("institutionCode", "Agriculture Canada", score * 0.5)
            if re.search(r"\bcanada\b", text, re.I):  # a Canadian institution's own sheets
                f.add("country", "Canada", score * 0.6)
        if is_address:
            address = text
        for n, (key, value, trust) in enumerate(segments):
            if not value and n == len(segments) - 1 and key not in ("skip", "hostdet"):
                below = _below(read, i)
                if below is not None and not parts[below][1]:
                    value, used = texts[below], used | {below}
                    trust *= read[below].score * read[below].agreement
            _segment(f, key, value, score * trust, i - institution_at <= 2, pathogen_sheet)
        flora = re.search(r"\b(?:plants|flora)\s+of\s+(.+)", text, re.I)
        if flora:
            f.region(flora.group(1), score * 0.9)
        elif not (header or is_address or segments):  # "Collector: J. Washington" is no state
            f.region(text, score * 0.75)
        coords = find_coordinates(text)
        if coords:
            lat, lon, verbatim, trust = coords
            f.add("decimalLatitude", str(lat), score * trust)
            f.add("decimalLongitude", str(lon), score * trust)
            f.add("verbatimCoordinates", verbatim, score * trust)
        if not segments:
            near = i - institution_at <= 2
            _uncaptioned(f, prefix, score, header or is_address, near, texts[i - 1] if i else "")
    if address and "stateProvince" not in f.best:
        # The institution's address: where its staff mostly collect, so a weak last resort.
        f.region(address, 0.25)
    f.settle_people()
    f.settle_corrections()
    if f.best:
        f.best = {
            t: FieldValue(v.value, round(calibrated(v.confidence or 0.0), 3))
            for t, v in f.best.items()
        }
        f.add("basisOfRecord", "PreservedSpecimen", 0.5)  # inferred: it is a herbarium sheet
    return f.best


_COLLECTOR_LINE = re.compile(
    r"^(?P<who>(?:[A-Z][a-z]+|[A-Z]\.)(?:\s+(?:[A-Z][a-z]+|[A-Z]\.|&|and))*\s+[A-Z][a-z]+)"
    r"\s*(?P<num>[A-Z]{0,3}-?\d+[a-z]?)?\b"
)


def _uncaptioned(
    f: _Fields, text: str, score: float, header: bool, near_institution: bool, above: str
) -> None:
    """Rules for a line without captions: codes, numbers, a bare Latin name, a collector's
    line ("J. Smith 1234 June 8, 1961"), a place."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z]{1,3}-?\d)", " ", text)  # "WadeC-451" -> "Wade C-451"
    code = _CODE_LINE.match(text)
    date = parse_date(text) if not header else None
    if code:
        f.add("catalogNumber", f"{code.group(1)} {code.group(2)}", score * 0.8)
        f.add("collectionCode", code.group(1), score * 0.6)
    elif _ACCESSION_LINE.match(_numeric(text)):
        # On a stamp an accession number; under a label the collector's "84-24".
        term = "catalogNumber" if near_institution else "recordNumber"
        f.add(term, _numeric(text), score * 0.6)
    elif not header:
        if date and len(date[0]) == 10:  # a full date on its own: most likely when collected
            f.add("eventDate", date[0], score * 0.6 * date[1])
        elev = find_elevation(text)
        if elev:
            _add_elevation(f, elev, score)
        name = latin_name(text, strict=True)
        if name:
            f.name("scientificName", name, score * 0.6)
            return
        who = _COLLECTOR_LINE.match(text)
        if who and (who.group("num") or date) and person_name(who.group("who")):
            people = [person_name(who.group("who")) or ""]
            if person_name(above) and not _PLACE_NOUN.search(above):
                people.insert(0, person_name(above) or "")  # a companion on the line above
            f.person("recordedBy", " | ".join(people), score * 0.6)
            if who.group("num"):
                f.add("recordNumber", who.group("num"), score * 0.6)
        elif _PLACE_NOUN.search(text) and _plausible(text) and text[:1].isupper():
            f.add("locality", text, score * 0.55 * _FREE_TEXT)
