"""Rule-based Darwin Core from OCR'd label lines: how the offline engine reads a label.

Pure and Qt-free so every rule is testable on hand-written lines. A value's confidence is the
OCR score of its line times how far the rule itself is trusted. Rules are conservative: a wrong
term costs a curator more than a missing one, so a value that does not look like what the term
holds is dropped, never guessed.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from herbdesk.extraction.engines.base import FieldValue

__all__ = ["normalise", "parse_date", "parse_label"]

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

# English and French (Canadian labels) names and abbreviations, accents already stripped.
_MONTH_NAMES = (
    "jan january janv janvier/feb february fev fevr fevrier/mar march mars/apr april avr avril/"
    "may mai/jun june juin/jul july juil juillet/aug august aout/sep sept september septembre/"
    "oct october octobre/nov november novembre/dec december decembre"
)
_MONTHS = {w: n for n, names in enumerate(_MONTH_NAMES.split("/"), 1) for w in names.split()}
_ROMAN_NUMERALS = "i ii iii iv v vi vii viii ix x xi xii"
_ROMAN = {r: n for n, r in enumerate(_ROMAN_NUMERALS.split(), 1)}
_MONTH_OCR = str.maketrans("9q05", "ggos")  # "Au9", "Auq" -> "aug"


def _distance(a: str, b: str) -> int:
    """Levenshtein distance, for OCR-garbled captions, months and place names."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _month(token: str) -> tuple[int, float] | None:
    """Month number and trust: exact name 1.0, one OCR slip ("Ayg", "Yov") 0.75."""
    plain = token.lower().rstrip(".")
    key = plain.translate(_MONTH_OCR)
    if key in _MONTHS:
        return _MONTHS[key], 1.0 if key == plain else 0.85
    if 3 <= len(key) <= 4 and key.isalpha():
        hits = {
            n for name, n in _MONTHS.items() if len(name) in (3, 4) and _distance(key, name) <= 1
        }
        if len(hits) == 1:
            return hits.pop(), 0.75
    return None


def _year(text: str) -> tuple[int, float] | None:
    """A four-digit year, or a two-digit one read as 19xx/20xx when only one is possible."""
    today = dt.date.today()
    y = int(text)
    if len(text) == 4:
        return (y, 1.0) if 1750 <= y <= today.year else None
    if len(text) == 2:
        return (1900 + y, 0.7) if y > today.year % 100 else None  # "05" could be 1905 or 2005
    return None


def _iso(y: int, m: int, d: int | None) -> str | None:
    if d is None:
        return f"{y:04d}-{m:02d}"
    try:
        day = dt.date(y, m, d)
    except ValueError:
        return None
    return day.isoformat() if day <= dt.date.today() else None


_SEP = r"[\s.,/-]*"
_DATE_PATTERNS = (
    # 1984-09-08, 1984/9/8
    ("ymd", re.compile(r"\b(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})\b")),
    # Sept. 8 1984, Aug. 22, 1985, Nov.4,1962
    (
        "mdy",
        re.compile(
            rf"\b(?P<m>[A-Za-z][A-Za-z0-9]{{2,8}})\.?{_SEP}(?P<d>\d{{1,2}})"
            rf"(?:st|nd|rd|th)?{_SEP}(?P<y>\d{{4}})\b"
        ),
    ),
    # 8 Sep 1984, 8-Sept-1984, 8.IX.1984, 8 ix 1984
    (
        "dmy",
        re.compile(
            rf"\b(?P<d>\d{{1,2}}){_SEP}(?P<m>[A-Za-z][A-Za-z0-9]{{1,8}})\.?{_SEP}"
            r"(?P<y>\d{4}|\d{2})\b"
        ),
    ),
    # 20/06/1947, 20.06.47
    ("num", re.compile(r"\b(?P<a>\d{1,2})[/.-](?P<b>\d{1,2})[/.-](?P<y>\d{4}|\d{2})\b")),
    # Aug. 1985
    ("my", re.compile(rf"\b(?P<m>[A-Za-z][A-Za-z0-9]{{2,8}})\.?{_SEP}(?P<y>\d{{4}})\b")),
)


def parse_date(text: str) -> tuple[str, float, tuple[int, int]] | None:
    """First date in the text as (ISO 8601, trust, span); None unless it is unambiguous."""
    text = _numeric(text)
    for kind, pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            year = _year(m.group("y"))
            if year is None:
                continue
            y, trust = year
            if kind == "my" and re.search(r"\d[\s.,/-]*$", text[: m.start()]):
                continue  # the day was there but the date is impossible ("31 Feb 1984")
            if kind == "ymd":
                iso, t = _iso(y, int(m.group("m")), int(m.group("d"))), 1.0
            elif kind == "num":
                a, b = int(m.group("a")), int(m.group("b"))
                if (a <= 12) == (b <= 12):
                    continue  # 05/06/47: day-first and month-first are both possible
                iso, t = (_iso(y, b, a) if a > 12 else _iso(y, a, b)), 0.85
            else:
                mon = m.group("m")
                roman = _ROMAN.get(mon.lower()) if kind == "dmy" else None
                month = (roman, 0.9) if roman else _month(mon)
                if month is None:
                    continue
                day = int(m.group("d")) if kind != "my" else None
                iso, t = _iso(y, month[0], day), month[1]
            if iso:
                return iso, trust * t, m.span()
    return None


# -- places ----------------------------------------------------------------------------------

_CA = {
    "Alberta": r"alberta|alta\.",
    "British Columbia": r"british columbia|b\.\s?c\.?",
    "Manitoba": r"manitoba|man\.",
    "New Brunswick": r"new brunswick|n\.\s?b\.",
    "Newfoundland and Labrador": r"newfoundland(?: and labrador)?|labrador|nfld\.?",
    "Nova Scotia": r"nova scotia|n\.\s?s\.",
    "Ontario": r"ontario|ont\.",
    "Prince Edward Island": r"prince edward island|p\.\s?e\.\s?i\.",
    "Quebec": r"quebec|que\.",
    "Saskatchewan": r"saskatchewan|sask\.?",
    "Yukon": r"yukon(?: territory)?|y\.\s?t\.",
    "Northwest Territories": r"northwest territories|n\.\s?w\.\s?t\.",
    "Nunavut": r"nunavut",
}
_US_STATES = (
    "Alabama Alaska Arizona Arkansas California Colorado Connecticut Delaware Florida Georgia "
    "Hawaii Idaho Illinois Indiana Iowa Kansas Kentucky Louisiana Maine Maryland Massachusetts "
    "Michigan Minnesota Mississippi Missouri Montana Nebraska Nevada New_Hampshire New_Jersey "
    "New_Mexico New_York North_Carolina North_Dakota Ohio Oklahoma Oregon Pennsylvania "
    "Rhode_Island South_Carolina South_Dakota Tennessee Texas Utah Vermont Virginia "
    "Washington West_Virginia Wisconsin Wyoming"
)
_US = [state.replace("_", " ") for state in _US_STATES.split()]
_OTHER_COUNTRIES = "Mexico Greenland France Germany Australia Brazil China Japan India Russia"
_COUNTRIES = {
    "Canada": r"canada",
    "United States": r"u\.?\s?s\.?\s?a\.?|united states(?: of america)?",
    "United Kingdom": r"united kingdom|england|scotland|great britain",
    "South Africa": r"south africa",
} | {c: c.lower() for c in _OTHER_COUNTRIES.split()}
_REGIONS: list[tuple[str, str, re.Pattern[str]]] = (
    [("Canada", p, re.compile(rf"(?<![\w.])(?:{rx})(?!\w)", re.I)) for p, rx in _CA.items()]
    + [("United States", s, re.compile(rf"\b{s}\b", re.I)) for s in _US]
    + [(c, "", re.compile(rf"(?<![\w.])(?:{rx})(?!\w)", re.I)) for c, rx in _COUNTRIES.items()]
)
# "Texas Creek", "Washington Lake": a place named after a state, not the state.
_FEATURE_AFTER = re.compile(
    r"\s*(creek|river|lake|mountains?|mt|road|rd|street|st|park|hills?"
    r"|island|pass|valley|county|co)\b",
    re.I,
)
# Institution names that contain a country without locating the specimen.
_INSTITUTION = re.compile(
    r"agriculture(?: and agri-food)? canada|canada department of|"
    r"research station|herbarium|university|museum|institute",
    re.I,
)


def find_region(text: str, locality: bool = False) -> tuple[str, str] | None:
    """(country, stateProvince or "") named last in the text: regions are written last.

    In a ``locality`` value a long one-word name may carry an OCR slip or two
    ("Soskotchewan"), and an institution named there ("Research Station") is a place.
    """
    found: list[tuple[int, str, str]] = []
    if locality:
        for m in re.finditer(r"[A-Za-z]{7,}", text):
            word = m.group().lower()
            for country, province, _ in _REGIONS:
                name = (province or country).lower()  # e.g. "saskatchewan", "mexico"
                if (
                    " " not in name
                    and abs(len(name) - len(word)) <= 2
                    and word != name
                    and _distance(word, name) <= (2 if len(name) >= 9 else 1)
                ):
                    found.append((m.start(), country, province))
    for country, province, pattern in _REGIONS:
        for m in pattern.finditer(text):
            near = text[max(0, m.start() - 30) : m.end() + 30]
            named_after = _FEATURE_AFTER.match(text, m.end())
            if not named_after and (locality or not _INSTITUTION.search(near)):
                found.append((m.start(), country, province))
    if not found:
        return None
    _, country, province = max(found)
    return country, province


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


def find_elevation(text: str, captioned: bool = False) -> tuple[int, float] | None:
    """Elevation in metres and trust. Needs a caption, "ft"/' or "m a.s.l.": a bare
    "500 m" is as likely a distance ("500 m N of road")."""
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
    return metres, 0.9 if (cap or captioned) else 0.75


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
    ("skip", r"pathogen\s*identified\s*by|pathogen\s*det\.?(?:\s*by)?", True),
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
# OCR-mangled captions at the start of a line ("llabitnt", "Loca'in", "Colltctor").
_FUZZY = ("location", "locality", "habitat", "collector", "pathogen", "host", "date")


def _fuzzy_caption(text: str) -> tuple[str, int] | None:
    """(key, end) of a garbled caption opening the line, if one word is close to one."""
    words = list(re.finditer(r"[A-Za-z':]+", text[:24]))
    for n in (1, 2):
        if len(words) < n or words[0].start() > 0:
            break
        word = re.sub(r"[':]", "", "".join(w.group() for w in words[:n])).lower()
        word = re.sub(r"^(ll|il|li|ii)", "h", word)  # typewriter H read as "ll"
        for caption in _FUZZY:
            if _distance(word, caption) <= (1 if len(caption) < 8 else 2):
                return ("locality" if caption == "location" else caption), words[n - 1].end()
    return None


def _segments(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Splits a line at its captions: (text before any caption, [(key, value), ...])."""
    spans: list[tuple[int, int, str]] = []
    for key, rx, mid in _CAPTION_RX:
        for m in rx.finditer(text):
            if mid or m.start() == 0:
                spans.append((m.start(), m.end(), key))
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    kept: list[tuple[int, int, str]] = []
    for s in spans:
        if not kept or s[0] >= kept[-1][1]:
            kept.append(s)
    if not kept or kept[0][0] > 0:
        fuzzy = _fuzzy_caption(text)
        if fuzzy and (not kept or fuzzy[1] <= kept[0][0]):
            kept.insert(0, (0, fuzzy[1], fuzzy[0]))
    for m in re.finditer(r"\b[A-Za-z]{8,10}\b", text):  # "follector" mid-line
        if _distance(m.group().lower(), "collector") == 1 and all(
            m.end() <= s[0] or m.start() >= s[1] for s in kept
        ):
            kept.append((m.start(), m.end(), "collector"))
    kept.sort()
    segments = [
        (key, text[end : (kept[i + 1][0] if i + 1 < len(kept) else len(text))])
        for i, (_, end, key) in enumerate(kept)
    ]
    segments = [(key, _trim(value)) for key, value in segments]
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
    """The most confident value seen per term."""

    def __init__(self) -> None:
        self.best: dict[str, FieldValue] = {}

    def add(self, term: str, value: str | None, confidence: float) -> None:
        if not value:
            return
        conf = round(min(1.0, max(0.0, confidence)), 3)
        old = self.best.get(term)
        if old is None or (old.confidence or 0.0) < conf:
            self.best[term] = FieldValue(value, conf)

    def region(self, text: str, confidence: float, locality: bool = False) -> None:
        found = find_region(text, locality)
        if found:
            country, province = found
            self.add("country", country, confidence * (0.95 if province else 1.0))
            self.add("stateProvince", province, confidence)


def _segment(f: _Fields, key: str, value: str, score: float, near_institution: bool) -> None:
    """Applies the rule for one captioned value."""
    if key in ("sciname", "host", "pathogen"):
        name = latin_name(value)
        if name and key == "pathogen":
            f.add("associatedTaxa", f"pathogen: {name}", score * 0.7)
        elif name:
            f.add("scientificName", name, score * (0.9 if key == "sciname" else 0.85))
    elif key == "collector":
        date = parse_date(value)
        if date:  # "Coll. J. Smith 1234, 12 July 1978"
            f.add("eventDate", date[0], score * 0.8 * date[1])
            value = value[: date[2][0]]
        num = re.search(r"\s(?:no\.?\s*|#\s*)?([A-Z]?-?\d+[a-z]?)\b", value, re.I)
        if num:
            f.add("recordNumber", num.group(1), score * 0.8)
            value = value[: num.start()]
        f.add("recordedBy", person_name(value), score * 0.85)
    elif key in ("recno", "number", "catalog"):
        token = _numeric(value.split(" ")[0].strip(".,;:")) if value else ""
        if key == "catalog" or (key == "number" and near_institution):
            if sum(ch.isdigit() for ch in token) >= 3 and re.fullmatch(r"[A-Z]*-?\d+", token):
                f.add("catalogNumber", token, score * 0.75)
        elif _RECORD_NO.match(token):
            f.add("recordNumber", token, score * (0.85 if key == "recno" else 0.7))
    elif key == "date":
        date = parse_date(value)
        year = _numeric(value)
        if date:
            f.add("eventDate", date[0], score * 0.9 * date[1])
        elif re.fullmatch(r"\d{4}", year) and _year(year):
            f.add("eventDate", year, score * 0.7)  # a bare year is a valid ISO 8601 date
    elif key in ("det", "hostdet"):
        date = parse_date(value)
        who = value
        yr = re.search(r"\b(1[789]\d\d|20\d\d)\b", _numeric(value))
        if date:
            f.add("dateIdentified", date[0], score * 0.85 * date[1])
            who = value[: date[2][0]].strip(" ,.") or value[date[2][1] :].strip(" ,.")
        elif yr and _year(yr.group()):  # "Det. W. A. Weber 1979"
            f.add("dateIdentified", yr.group(), score * 0.75)
            who = value[: yr.start()].strip(" ,.")
        f.add("identifiedBy", person_name(who), score * 0.85)
    elif key in ("locality", "habitat", "elev"):
        elev = find_elevation(value, captioned=key == "elev")
        if elev:
            f.add("minimumElevationInMeters", str(elev[0]), score * elev[1])
            value = _ELEV_VALUE.sub("", value).strip(" .,;")
        if key == "locality" and _plausible(value):
            f.add("locality", value, score * 0.85)
            f.region(value, score * 0.9, locality=True)
        elif key == "habitat" and _plausible(value):
            f.add("habitat", value, score * 0.85)


def parse_label(lines: list[tuple[str, float]]) -> dict[str, FieldValue]:
    """Darwin Core terms from OCR lines (text, score 0..1) in reading order."""
    f = _Fields()
    institution_at = -10
    for i, (raw, raw_score) in enumerate(lines):
        text, score = normalise(raw), max(0.0, min(1.0, float(raw_score)))
        if not text:
            continue
        header = bool(_INSTITUTION.search(text))
        address = not header and i - institution_at == 1 and text.upper() == text
        if header:
            institution_at = i
            acro = _ACRONYM.search(text)
            if acro:
                f.add("institutionCode", next(g for g in acro.groups() if g), score * 0.85)
            elif re.search(r"agriculture canada", text, re.I):
                f.add("institutionCode", "Agriculture Canada", score * 0.5)
        prefix, segments = _segments(text)
        for key, value in segments:
            _segment(f, key, value, score, near_institution=i - institution_at <= 2)
        flora = re.search(r"\b(?:plants|flora)\s+of\s+(.+)", text, re.I)
        if flora:
            f.region(flora.group(1), score * 0.8)
        elif not (header or address or segments):  # "Collector: J. Washington" is no state
            f.region(text, score * 0.7)
        coords = find_coordinates(text)
        if coords:
            lat, lon, verbatim, trust = coords
            f.add("decimalLatitude", str(lat), score * trust)
            f.add("decimalLongitude", str(lon), score * trust)
            f.add("verbatimCoordinates", verbatim, score * trust)
        if not segments:
            _uncaptioned(f, prefix, score, header or address)
    if f.best:
        f.add("basisOfRecord", "PreservedSpecimen", 0.5)  # inferred: it is a herbarium sheet
    return f.best


def _uncaptioned(f: _Fields, text: str, score: float, header: bool) -> None:
    """Rules for a line without captions: codes, accession numbers, a bare Latin name."""
    code = _CODE_LINE.match(text)
    if code:
        f.add("catalogNumber", f"{code.group(1)} {code.group(2)}", score * 0.8)
        f.add("collectionCode", code.group(1), score * 0.6)
    elif _ACCESSION_LINE.match(_numeric(text)):
        f.add("catalogNumber", _numeric(text), score * 0.6)
    elif not header:
        date = parse_date(text)
        if date and len(date[0]) == 10:  # a full date on its own: most likely when collected
            f.add("eventDate", date[0], score * 0.6 * date[1])
        elev = find_elevation(text)
        if elev:
            f.add("minimumElevationInMeters", str(elev[0]), score * elev[1])
        f.add("scientificName", latin_name(text, strict=True), score * 0.6)
