"""The shape of a scientific name, and the label text that is not one.

A name is a genus (capitalised), then lower-case epithets, optional rank markers and hybrid
signs, then authorship ("(L.) Gaertn.", "Nutt.", "Torr. & A. Gray"). What labels put where a
name should be ("Identified by", "Checked by", colour-checker text, place names) is told apart
by a list of boilerplate phrases and by the shape: an epithet is never an English function
word, a name has no digits, and a genus alone is not followed by plain capitalised words.
"""

from __future__ import annotations

import re

RANK_MARKERS = frozenset(
    {"subsp.", "ssp.", "var.", "f.", "forma", "subvar.", "subf.", "×", "x", "sp.", "spp.",
     "cf.", "aff.", "agg.", "s.l.", "s.str.", "nothosubsp.", "nothovar."}
)  # fmt: skip
FUNCTION_WORDS = frozenset(
    {"by", "of", "in", "for", "the", "and", "on", "at", "to", "from", "with", "near", "or",
     "an", "a", "is", "no", "not", "date", "name"}
)  # fmt: skip
# Label text that is not a name, a person or a value (lower-case phrase prefixes).
BOILERPLATE = (
    "identified by", "identified", "ident.", "checked by", "checked", "det.", "det by",
    "determined by", "determinavit", "conf.", "confirmed", "duplicate", "collector",
    "collected by", "collectors", "coll.", "coll by", "leg.", "habitat", "locality",
    "location", "host", "plants of", "flora of", "herbarium", "herb.", "calibrite",
    "colorchecker", "color checker", "colour checker", "x-rite", "kodak", "botanical name",
    "scientific name", "common name", "name", "date", "no.", "number", "accession",
    "catalog", "catalogue", "specimen", "label", "annotation", "university", "research station",
    "agriculture canada", "department of", "museum", "copyright", "scale", "cm", "mm", "inches",
    "unknown", "unidentified", "pathogen", "remarks", "notes", "elevation", "altitude",
)  # fmt: skip
_BOILER_RE = re.compile(
    r"^(?:" + "|".join(re.escape(b) for b in sorted(BOILERPLATE, key=len, reverse=True)) + r")"
    r"(?=$|[\s:.,;])",
    re.IGNORECASE,
)
_GENUS = re.compile(r"^[A-Z][a-zäëïöüé]+(?:-[a-z]+)?$")
_EPITHET = re.compile(r"^[a-zäëïöüé]+(?:-[a-zäëïöüé]+)?$")


def is_boilerplate(value: str) -> bool:
    """Whether a value starts with label text that is no name, person or value."""
    return bool(_BOILER_RE.match(value.strip()))


def name_problem(value: str) -> str | None:
    """The check a scientificName fails (a name in CHECKS), or None if it has a name's shape."""
    text = " ".join(value.split())
    if is_boilerplate(text):
        return "name_boilerplate"
    if any(ch.isdigit() for ch in text):
        return "name_digits"
    tokens = text.split(" ")
    if tokens[0] in ("×", "x", "X") and len(tokens) > 1:
        tokens = tokens[1:]
    genus = tokens[0]
    if genus.isupper() and len(genus) > 1:  # labels in capitals: "CAREX AUREA Nutt."
        genus = genus.capitalize()
        tokens = [genus] + [t.lower() if t.isupper() and "." not in t else t for t in tokens[1:]]
    if not _GENUS.match(genus):
        return "name_shape"
    epithets = 0
    i = 1
    while i < len(tokens):
        tok = tokens[i]
        low = tok.lower()
        if low in FUNCTION_WORDS and tok == low:
            return "name_function_word"
        if low in RANK_MARKERS:
            i += 1
            continue
        if _EPITHET.match(tok):
            epithets += 1
            i += 1
            continue
        break
    if epithets > 3:
        return "name_shape"
    authorship = tokens[i:]
    if authorship and not _authorship_ok(authorship, epithets):
        return "name_shape"
    return None


def _authorship_ok(tokens: list[str], epithets: int) -> bool:
    """Authorship is abbreviations, initials, parentheses, '&', 'ex' and surnames; after a
    genus alone, plain capitalised words are more likely a phrase ("Swift Current")."""
    text = " ".join(tokens)
    if not (tokens[0][0].isupper() or tokens[0][0] in "(&"):
        return False
    if any(t.lower() in FUNCTION_WORDS - {"in"} for t in tokens):
        return False
    abbreviated = "." in text or "(" in text or "&" in text
    return abbreviated or (epithets > 0 and len(tokens) <= 2)


def genus_epithet(value: str) -> str:
    """Genus and first epithet, lower-case: the key names are compared by (gold, identical)."""
    words = [w for w in value.replace("×", " ").split() if w.lower() not in RANK_MARKERS]
    if not words:
        return ""
    key = words[0].lower()
    if len(words) > 1 and _EPITHET.match(words[1].lower()) and not words[1][:1].isupper():
        key += " " + words[1].lower()
    return key
