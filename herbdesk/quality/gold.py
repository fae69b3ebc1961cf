"""Known-answer sheets (`--gold FILE`): expected values compared term by term.

Two forms. A CSV with a header: an `image` column (the file name) or a `catalogNumber` column,
then one column per expected term. Or the JSON transcription form the project measures the
offline engine with (benchmarks/ocr_quality.py): `{"<image stem>": {"<term>": "<value>", …,
"_handwritten": [terms]}, "_note": …}`, keys starting with `_` skipped. Values are compared
normalised: case, accents, punctuation and spacing ignored; dates by value (any form the date
reader understands); scientific names by genus and epithet (authorship left out).
"""

from __future__ import annotations

import csv
import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from herbdesk.quality.dates import normalise_date
from herbdesk.quality.names import genus_epithet

_DATE_TERMS = frozenset({"eventDate", "dateIdentified"})
_NAME_TERMS = frozenset({"scientificName"})


class GoldError(ValueError):
    """A gold file that cannot be used; the message says why and where."""


def _plain(text: str) -> str:
    s = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return " ".join("".join(ch if ch.isalnum() else " " for ch in s).split())


def same_value(term: str, expected: str, got: str) -> bool:
    """Whether `got` is `expected` for `term` under the normalisation above."""
    if term in _DATE_TERMS:
        a, b = normalise_date(expected), normalise_date(got)
        if a and b:
            return a == b
    if term in _NAME_TERMS:
        return genus_epithet(expected) == genus_epithet(got) != ""
    return _plain(expected) == _plain(got)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise GoldError(f"gold file {path}: cannot read it ({exc})") from exc


def _is_json(text: str) -> bool:
    return text.lstrip().startswith("{")


def read_truth(path: Path, text: str | None = None) -> dict[str, dict[str, Any]]:
    """The JSON transcription form: image stem -> {term: value, "_handwritten": [...]}, the
    top-level keys starting with `_` left out. The one reader of it (gold files and
    benchmarks/ocr_quality.py)."""
    text = _read_text(path) if text is None else text
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GoldError(f"gold file {path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise GoldError(f"gold file {path}: JSON gold is an object of sheets")
    out: dict[str, dict[str, Any]] = {}
    for stem, terms in data.items():
        if stem.startswith("_"):
            continue
        if not isinstance(terms, dict):
            raise GoldError(
                f"gold file {path}: {stem!r} is not an object of terms "
                '(expected {"<image stem>": {"<term>": "<value>"}})'
            )
        out[stem] = terms
    return out


@dataclass(frozen=True)
class GoldSet:
    by_image: Mapping[str, Mapping[str, str]]
    by_catalog: Mapping[str, Mapping[str, str]]
    by_stem: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # JSON form

    @classmethod
    def load(cls, path: Path) -> GoldSet:
        text = _read_text(path)
        if _is_json(text):
            return cls._from_truth(path, read_truth(path, text))
        return cls._from_csv(path, text)

    @classmethod
    def _from_truth(cls, path: Path, truth: Mapping[str, Mapping[str, Any]]) -> GoldSet:
        from herbdesk.common.dwc import canonical_term

        by_stem: dict[str, dict[str, str]] = {}
        for stem, terms in truth.items():
            expected: dict[str, str] = {}
            for name, value in terms.items():
                if name.startswith("_"):
                    continue  # _handwritten and other notes
                term = canonical_term(name)
                if term is None:
                    raise GoldError(f"gold file {path}: {stem}: {name!r} is not a Darwin Core term")
                if value is not None and str(value).strip():
                    expected[term] = str(value).strip()
            by_stem[PurePath(stem).stem] = expected
        if not by_stem:
            raise GoldError(f"gold file {path} lists no sheets")
        return cls({}, {}, by_stem)

    @classmethod
    def _from_csv(cls, path: Path, text: str) -> GoldSet:
        from herbdesk.common.dwc import canonical_term

        rows = list(csv.reader(text.splitlines()))
        if not rows:
            raise GoldError(f"gold file {path} is empty")
        header = [h.strip() for h in rows[0]]
        key = "image" if "image" in header else "catalogNumber" if "catalogNumber" in header else ""
        if not key:
            raise GoldError(
                f"gold file {path}: the header needs an 'image' or 'catalogNumber' column "
                "(a CSV such as 'image,scientificName,eventDate' then one row a sheet, or the "
                'JSON form {"<image stem>": {"<term>": "<value>"}}; see docs/quality.md)'
            )
        terms = {}
        for i, h in enumerate(header):
            if h == "image":
                continue
            term = canonical_term(h)
            if term is None:
                raise GoldError(f"gold file {path}: column {h!r} is not a Darwin Core term")
            terms[i] = term
        by_image: dict[str, dict[str, str]] = {}
        by_catalog: dict[str, dict[str, str]] = {}
        for n, row in enumerate(rows[1:], start=2):
            if not any(c.strip() for c in row):
                continue
            expected = {terms[i]: v.strip() for i, v in enumerate(row) if i in terms and v.strip()}
            ident = row[header.index(key)].strip() if len(row) > header.index(key) else ""
            if not ident:
                raise GoldError(f"gold file {path}, line {n}: no {key}")
            if key == "image":
                by_image[PurePath(ident).name] = expected
            else:
                by_catalog[_plain(ident)] = expected
        if not by_image and not by_catalog:
            raise GoldError(f"gold file {path} lists no sheets")
        return cls(by_image, by_catalog)

    def __len__(self) -> int:
        return len(self.by_image) + len(self.by_catalog) + len(self.by_stem)

    def named(self, image: str) -> Mapping[str, str] | None:
        """The expected terms of a sheet named by its file name (or, JSON form, its stem)."""
        if image in self.by_image:
            return self.by_image[image]
        return self.by_stem.get(PurePath(image).stem) if self.by_stem else None

    def expected_for(self, image: str, values: Mapping[str, Any]) -> Mapping[str, str] | None:
        named = self.named(image)
        if named is not None:
            return named
        cat = values.get("catalogNumber")
        if isinstance(cat, Mapping):
            cat = cat.get("value")
        return self.by_catalog.get(_plain(str(cat))) if cat else None


def compare(expected: Mapping[str, str], values: Mapping[str, Any]) -> dict[str, str]:
    """Per term: "correct", "wrong" or "missing"."""
    out: dict[str, str] = {}
    for term, want in expected.items():
        got = values.get(term)
        if isinstance(got, Mapping):
            got = got.get("value")
        if got is None or not str(got).strip():
            out[term] = "missing"
        else:
            out[term] = "correct" if same_value(term, want, str(got)) else "wrong"
    return out
