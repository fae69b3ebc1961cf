"""Record checks: the table of named checks, and the judgement of one record against it.

A check is data (name, term, severity, message) so that docs/quality.md, the event log, the
summary and the window all speak of the same findings. Severities:
- `empty`: the value is a placeholder; the term counts as not filled;
- `error`: the term is filled but invalid;
- `warning`: the term stays valid, the finding is worth a look (a verbatim date, a fuzzy
  checklist match).
A record is usable when its required terms are filled and valid (`QualityConfig.required`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from herbdesk.quality import dates, geo, names, places

EMPTY, ERROR, WARNING = "empty", "error", "warning"


@dataclass(frozen=True)
class Check:
    name: str
    term: str  # a Darwin Core term, several joined by "/", or "*" for any
    severity: str
    message: str


CHECKS: dict[str, Check] = {
    c.name: c
    for c in (
        Check("placeholder", "*", EMPTY, "a placeholder (-, ?, n/a, unknown, not visible, "
              "illegible, none, <string>, false) counts as empty"),
        Check("term_name", "*", EMPTY, "the term's own name as its value counts as empty"),
        Check("prompt_example", "*", EMPTY, "the prompt's example value counts as empty"),
        Check("name_boilerplate", "scientificName", ERROR,
              "label text, not a name (Identified by, Checked by, Host, colour checker…)"),
        Check("name_digits", "scientificName", ERROR, "a scientific name has no digits"),
        Check("name_function_word", "scientificName", ERROR,
              "an epithet is an English function word (by, of, in, for)"),
        Check("name_shape", "scientificName", ERROR,
              "not shaped like a uninomial, binomial or trinomial with authorship"),
        Check("name_fuzzy_match", "scientificName", WARNING,
              "not in the checklist as written; a close name is suggested"),
        Check("name_not_in_checklist", "scientificName", WARNING, "not found in the checklist"),
        Check("date_invalid", "eventDate/dateIdentified", ERROR, "not a date"),
        Check("date_year_range", "eventDate/dateIdentified", ERROR,
              f"year before {dates.MIN_YEAR}"),
        Check("date_future", "eventDate/dateIdentified", ERROR, "a date in the future"),
        Check("date_not_iso", "eventDate/dateIdentified", WARNING,
              "not ISO 8601; normalisable (the finding gives the ISO form)"),
        Check("country_unknown", "country", ERROR, "not a country known to ISO 3166"),
        Check("state_unknown", "stateProvince", ERROR,
              "not a subdivision known to ISO 3166 (of the record's country when it has one)"),
        Check("coord_not_numeric", "decimalLatitude/decimalLongitude", ERROR, "not a number"),
        Check("coord_out_of_range", "decimalLatitude/decimalLongitude", ERROR,
              "latitude outside -90..90 or longitude outside -180..180"),
        Check("coord_zero", "decimalLatitude/decimalLongitude", ERROR,
              "0/0: a default, not a place"),
        Check("coord_swapped", "decimalLatitude/decimalLongitude", ERROR,
              "outside the record's country; swapped, the point lies in it"),
        Check("coord_sign_flipped", "decimalLatitude/decimalLongitude", ERROR,
              "outside the record's country; with a sign flipped, the point lies in it"),
        Check("coord_outside_country", "decimalLatitude/decimalLongitude", WARNING,
              "not within ~50 km of the record's country (coarse outlines: check it)"),
        Check("elevation_not_numeric", "minimumElevationInMeters", ERROR, "not a number"),
        Check("elevation_implausible", "minimumElevationInMeters", ERROR,
              "outside -430..8850 m"),
        Check("number_is_date", "recordNumber/catalogNumber", ERROR, "a date, not a number"),
        Check("number_is_word", "recordNumber/catalogNumber", ERROR, "a word, not a number"),
        Check("catalog_pattern", "catalogNumber", ERROR,
              "does not match the collection's pattern (--catalog-pattern)"),
        Check("person_boilerplate", "recordedBy/identifiedBy", ERROR,
              "label text, not a person (Collector, det., Identified by…)"),
        Check("person_no_name", "recordedBy/identifiedBy", ERROR, "holds no name"),
        Check("required_missing", "*", ERROR,
              "a required term is missing or invalid: the record is not usable"),
    )
}  # fmt: skip

PLACEHOLDERS = frozenset(
    {"-", "--", "---", "?", "??", "???", "n/a", "na", "n.a.", "none", "null", "nil", "nan",
     "unknown", "not known", "not visible", "illegible", "not legible", "unreadable",
     "not readable", "not available", "not provided", "not applicable", "not given",
     "not specified", "no data", "<string>", "string", "<value>", "value", "false", "...",
     "…", "[illegible]", "[unknown]", "(illegible)", "x", "tbd", "none given", "empty"}
)  # fmt: skip
_SPLIT_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_DEFAULT_REQUIRED: tuple[tuple[str, ...], ...] = (
    ("scientificName",),
    ("eventDate", "recordedBy", "locality"),
)
_TERM_CHECKS_DATE = ("eventDate", "dateIdentified")
_PERSON = ("recordedBy", "identifiedBy")
_NUMBER = ("recordNumber", "catalogNumber")


class NameLookup(Protocol):
    def match(self, name: str) -> Any: ...


@dataclass
class QualityConfig:
    """What a record is held to. `required`: groups of terms, each group needing one of its
    terms filled and valid (the default: scientificName, and one of eventDate, recordedBy,
    locality)."""

    required: tuple[tuple[str, ...], ...] = _DEFAULT_REQUIRED
    catalog_pattern: str | None = None
    examples: Mapping[str, str] = field(default_factory=dict)
    checklist: NameLookup | None = None
    today: date | None = None

    def __post_init__(self) -> None:
        self._catalog_re = re.compile(self.catalog_pattern) if self.catalog_pattern else None
        self._examples = {t: _norm(v) for t, v in self.examples.items() if v}


def parse_required(text: str) -> tuple[tuple[str, ...], ...]:
    """`--require scientificName,eventDate|recordedBy`: comma between required groups, `|`
    between the terms of which one is enough."""
    from herbdesk.common.dwc import canonical_term

    groups: list[tuple[str, ...]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        terms = []
        for name in part.split("|"):
            term = canonical_term(name)
            if term is None:
                raise ValueError(f"--require: {name.strip()!r} is not a Darwin Core term")
            terms.append(term)
        groups.append(tuple(terms))
    if not groups:
        raise ValueError("--require: no terms given")
    return tuple(groups)


_EXAMPLE_RE = re.compile(r'"(\w+)"\s*:\s*\{\s*"value"\s*:\s*"([^"]*)"')


def prompt_examples(prompt_text: str) -> dict[str, str]:
    """The example values a prompt shows ({"scientificName": {"value": "Malva …"}}): a model
    that copies them back has read nothing."""
    return {m[1]: m[2] for m in _EXAMPLE_RE.finditer(prompt_text or "")}


@dataclass(frozen=True)
class Finding:
    check: str
    term: str
    value: str
    detail: str = ""

    def to_list(self) -> list[str]:
        out = [self.check, self.term, self.value[:80]]
        if self.detail:
            out.append(self.detail[:120])
        return out


@dataclass(frozen=True)
class RecordQuality:
    usable: bool
    filled: tuple[str, ...]
    invalid: tuple[str, ...]
    findings: tuple[Finding, ...]
    fingerprint: str | None

    def to_data(self) -> dict[str, Any]:
        """The `quality` object of a specimen.completed event (docs/events.md)."""
        return {
            "usable": self.usable,
            "filled": list(self.filled),
            "invalid": list(self.invalid),
            "findings": [f.to_list() for f in self.findings],
            "fingerprint": self.fingerprint,
        }


def _norm(value: str) -> str:
    return " ".join(value.strip().lower().split()).strip(" .:;,")


def _term_words(term: str) -> set[str]:
    spaced = _SPLIT_CAMEL.sub(" ", term).lower()
    return {term.lower(), spaced, spaced.replace(" in meters", "")}


def _text(raw: Any) -> str | None:
    if isinstance(raw, Mapping):
        raw = raw.get("value")
    if raw is None:
        return None
    if isinstance(raw, bool):
        return "false" if not raw else "true"
    return str(raw).strip()


def judge_record(values: Mapping[str, Any], config: QualityConfig | None = None) -> RecordQuality:
    """Judge one record: {term: value} or {term: {"value": …}} (raw.jsonl's `dwc`)."""
    cfg = config or QualityConfig()
    today = cfg.today or date.today()
    findings: list[Finding] = []
    filled: dict[str, str] = {}
    for term, raw in values.items():
        text = _text(raw)
        if not text:
            continue
        n = _norm(text)
        if n in PLACEHOLDERS or not n.strip("-?._ "):
            findings.append(Finding("placeholder", term, text))
        elif n in _term_words(term):
            findings.append(Finding("term_name", term, text))
        elif cfg._examples.get(term) == n:
            findings.append(Finding("prompt_example", term, text))
        else:
            filled[term] = text
    invalid: set[str] = set()
    for term, text in filled.items():
        for f in _term_findings(term, text, filled, cfg, today):
            findings.append(f)
            if CHECKS[f.check].severity == ERROR:
                invalid.add(term)
    usable = all(any(t in filled and t not in invalid for t in g) for g in cfg.required)
    if not usable:
        missing = ["|".join(g) for g in cfg.required if not any(
            t in filled and t not in invalid for t in g)]  # fmt: skip
        findings.append(
            Finding("required_missing", missing[0].split("|")[0], "", ", ".join(missing))
        )
    return RecordQuality(
        usable=usable,
        filled=tuple(sorted(filled)),
        invalid=tuple(sorted(invalid)),
        findings=tuple(findings),
        fingerprint=fingerprint(filled),
    )


def fingerprint(filled: Mapping[str, str]) -> str | None:
    """A short hash of the record's filled values: equal for the same record on two sheets."""
    if not filled:
        return None
    text = "\x1f".join(f"{t}\x1e{_norm(v)}" for t, v in sorted(filled.items()))
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).hexdigest()


def _term_findings(
    term: str, text: str, filled: Mapping[str, str], cfg: QualityConfig, today: date
) -> Sequence[Finding]:
    if term == "scientificName":
        return _name_findings(text, cfg)
    if term in _TERM_CHECKS_DATE:
        r = dates.read_date(text, today)
        if r.problem:
            return [Finding(r.problem, term, text)]
        if not r.iso:
            hint = f"normalisable to {r.normalised}" + (
                " (day/month ambiguous)" if r.ambiguous else ""
            )
            return [Finding("date_not_iso", term, text, hint)]
        return []
    if term == "country":
        return [] if places.country_code(text) else [Finding("country_unknown", term, text)]
    if term == "stateProvince":
        cc = places.country_code(filled.get("country", "")) if "country" in filled else None
        if places.subdivision(text, cc):
            return []
        return [Finding("state_unknown", term, text, f"in {filled['country']}" if cc else "")]
    if term in ("decimalLatitude", "decimalLongitude"):
        return _coord_findings(term, text, filled)
    if term == "minimumElevationInMeters":
        v = _float(text)
        if v is None:
            return [Finding("elevation_not_numeric", term, text)]
        return [] if -430 <= v <= 8850 else [Finding("elevation_implausible", term, text)]
    if term in _NUMBER:
        return _number_findings(term, text, cfg, today)
    if term in _PERSON:
        if names.is_boilerplate(text):
            return [Finding("person_boilerplate", term, text)]
        if not re.search(r"[A-Za-zÀ-ÿ]{2,}|[A-Z]\.", text):
            return [Finding("person_no_name", term, text)]
    return []


def _name_findings(text: str, cfg: QualityConfig) -> list[Finding]:
    problem = names.name_problem(text)
    if problem:
        return [Finding(problem, "scientificName", text)]
    if cfg.checklist is None:
        return []
    m = cfg.checklist.match(text)
    status = getattr(m, "status", "not_found")
    if status == "fuzzy":
        detail = f"did you mean {m.name} ({float(m.score):.0f})"
        return [Finding("name_fuzzy_match", "scientificName", text, detail)]
    if status != "matched":
        return [Finding("name_not_in_checklist", "scientificName", text)]
    return []


def _float(text: str) -> float | None:
    try:
        v = float(text.strip().replace(",", "."))
    except ValueError:
        return None
    return v if v == v and abs(v) != float("inf") else None


def _coord_findings(term: str, text: str, filled: Mapping[str, str]) -> list[Finding]:
    v = _float(text)
    if v is None:
        return [Finding("coord_not_numeric", term, text)]
    limit = 90.0 if term == "decimalLatitude" else 180.0
    if not -limit <= v <= limit:
        return [Finding("coord_out_of_range", term, text)]
    lat = _float(filled.get("decimalLatitude", ""))
    lon = _float(filled.get("decimalLongitude", ""))
    if lat == 0.0 and lon == 0.0:
        return [Finding("coord_zero", term, text)]
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return []
    cc = places.country_code(filled["country"]) if "country" in filled else None
    if cc is None:
        return []
    problem = geo.coordinate_problem(lat, lon, cc)
    return [Finding(problem[0], term, text, problem[1])] if problem else []


_DATE_LIKE = re.compile(r"^\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4}$")


def _number_findings(term: str, text: str, cfg: QualityConfig, today: date) -> list[Finding]:
    if _DATE_LIKE.match(text.strip()) and not dates.read_date(text, today).problem:
        return [Finding("number_is_date", term, text)]
    if not any(ch.isdigit() for ch in text):
        return [Finding("number_is_word", term, text)]
    if term == "catalogNumber" and cfg._catalog_re and not cfg._catalog_re.fullmatch(text):
        return [Finding("catalog_pattern", term, text, f"pattern {cfg.catalog_pattern}")]
    return []
