"""Field captions at the head of a label line, found through OCR slips with rapidfuzz.

Printed captions ("Locality", "Habitat", "Collector") are read well but not perfectly:
"Loca'in", "llabitnt" (a typewriter H read as "ll"), "PathogenH" (the value glued on). The
exact captions are matched by the parser's patterns; this module finds the rest: the first
one or two words of a line, or the start of a glued word, close to a caption.
"""

from __future__ import annotations

import re

from rapidfuzz import fuzz, process

# caption -> the parser's key for the value it introduces
CAPTIONS = {
    "botanical name": "sciname",
    "scientific name": "sciname",
    "pathogen": "pathogen",
    "host": "host",
    "collector": "collector",
    "collectors": "collector",
    "collected by": "collector",
    "coll no": "recno",
    "number": "number",
    "date": "date",
    "locality": "locality",
    "location": "locality",
    "habitat": "habitat",
    "det by": "det",
    "identified by": "det",
    "determined by": "det",
    "checked by": "skip",
    "common name": "skip",
    "disease symptom": "skip",
    "disease symptoms": "skip",
    "elevation": "elev",
    "altitude": "elev",
}
_PLAIN = {c.replace(" ", ""): c for c in CAPTIONS}
_WORD = re.compile(r"[A-Za-z':]+")


def _cutoff(caption: str) -> float:
    """One slip in a caption, two in a long one (as a rapidfuzz ratio)."""
    n = len(caption)
    return 100 * (1 - (2.0 if n >= 8 else 1.0) / n) - 0.5


def _plain(word: str) -> str:
    word = re.sub(r"[':]", "", word).lower()
    return re.sub(r"^(ll|il|li|ii)", "h", word)  # typewriter H read as "ll"


def head_caption(text: str) -> tuple[str, int, float] | None:
    """(key, end of the caption in text, similarity 0..1) of a garbled caption opening the
    line, or None. A word longer than the caption it starts with, the rest capitalised, is
    a caption glued to its value ("PathogenH partulacear", "Habitatbeside")."""
    words = list(_WORD.finditer(text[:32]))
    if not words or words[0].start() > 1:
        return None
    first = words[0].group()
    for plain in sorted(_PLAIN, key=len, reverse=True):  # glued
        cap = _PLAIN[plain]
        rest = first[len(plain) :]
        if " " in cap or len(plain) < 6 or not rest:
            continue
        score = fuzz.ratio(_plain(first[: len(plain)]), plain)
        # "Habitatbeside": an exact caption then a lower-case word of its own
        if (score >= _cutoff(plain) and rest[0].isupper()) or (score == 100 and len(rest) >= 4):
            return CAPTIONS[cap], words[0].start() + len(plain), score / 100
    best: tuple[str, int, float] | None = None
    for n in (1, 2):
        if len(words) < n:
            break
        joined = _plain("".join(w.group() for w in words[:n]))
        # n words make an n-word caption, or a one-word caption split by OCR ("Locat ion")
        names = [p for p, c in _PLAIN.items() if c.count(" ") + 1 in (1, n)]
        hit = process.extractOne(joined, names, scorer=fuzz.ratio)
        if hit and hit[1] >= _cutoff(hit[0]) and (best is None or hit[1] / 100 > best[2]):
            best = (CAPTIONS[_PLAIN[hit[0]]], words[n - 1].end(), hit[1] / 100)
    return best
