"""Names checklist: is a record's scientificName in a reference list, or a near miss of one?

OCR and transcription misread single letters ("Coreopsis tinctorie"), and checklists differ
in whether they carry authorship, so names are compared on a normalised key (genus, epithet
and infraspecific parts, case-folded, no authorship, no hybrid sign). Exact hits are one dict
lookup; misses go to rapidfuzz, but only over the names of one genus (or of the few genera a
misread genus is close to), which keeps a World Flora Online-size list (~1.5 M names) at
well over ten thousand lookups a second.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rapidfuzz import fuzz, process

__all__ = ["Checklist", "ChecklistError", "NameMatch", "name_key", "split_authorship"]

DEFAULT_CUTOFF = 90.0
# Genera with more names than this are searched through epithet blocks, not name by name.
SMALL_GENUS = 256

_DWC = "http://rs.tdwg.org/dwc/terms/"
_SCI = _DWC + "scientificName"
_AUTH = _DWC + "scientificNameAuthorship"

_HYBRID = "×"
_HYBRID_TOKENS = frozenset({_HYBRID, "x", "X"})
_RANKS = {
    "subsp.": "subsp.",
    "subsp": "subsp.",
    "ssp.": "subsp.",
    "ssp": "subsp.",
    "var.": "var.",
    "var": "var.",
    "subvar.": "subvar.",
    "f.": "f.",
    "fo.": "f.",
    "forma": "f.",
    "subf.": "subf.",
    "nothosubsp.": "nothosubsp.",
    "nothovar.": "nothovar.",
}
# Qualifiers an identifier adds to a name; they are not part of it.
_QUALIFIERS = frozenset({"cf.", "cf", "aff.", "aff", "?"})
_SPECIES_ONLY = frozenset({"sp.", "sp", "spp.", "spp", "indet.", "indet"})
# Lowercase words that start an authorship ("de Candolle", "van Steenis", "ex", "sensu").
_AUTHOR_WORDS = frozenset(
    {
        "de", "da", "das", "del", "della", "den", "der", "des", "di", "do", "dos", "du", "d'",
        "ex", "et", "in", "la", "le", "non", "sensu", "ten", "ter", "van", "von", "y", "zu",
        "auct.", "hort.", "nom.", "emend.", "s.l.", "s.str.", "s.s.",
    }
)  # fmt: skip
_PUNCT = "\"'“”‘’,;:!*()[]"
# The common line of a plain list: a bare binomial, ASCII, no authorship (and no second word
# the full parser treats specially, like "sp" or "de").
_NOT_EPITHET = sorted(
    {w for w in _SPECIES_ONLY | _HYBRID_TOKENS | _AUTHOR_WORDS | set(_RANKS) | _QUALIFIERS
     if w.isalpha() and w.islower()}
)  # fmt: skip
_WORD = r"[a-z]+(?:-[a-z]+)?"
_FAST_NAME = (
    rf"[A-Z][a-z]+ (?!(?:{'|'.join(_NOT_EPITHET)})(?: |$)){_WORD}"
    rf"(?: (?:subsp|var|subvar|f|subf)\. {_WORD})?"
)
# An authorship after it starts with a capital or "(" ("L.", "(L.) DC.").
_FAST = re.compile(rf"({_FAST_NAME})(?: [A-Z(].*)?")
# The same over a whole file: group 1 is a fast name, else group 2 is the line for the parser.
_FAST_LINES = re.compile(rf"^(?:({_FAST_NAME})(?: [A-Z(][^\n]*)?|([^\n]*))$", re.M)
_IDENT = re.compile(r"[A-Za-z_][\w:./-]*")


@dataclass(frozen=True)
class _Text:
    """A whole plain-list file, parsed with one regex pass instead of line by line."""

    text: str


class ChecklistError(ValueError):
    """A checklist file that cannot be read as one; the message says which file and why."""


@dataclass(frozen=True)
class NameMatch:
    """Result of a lookup: "matched" (exact key), "fuzzy" (a suggestion) or "not_found"."""

    status: str
    name: str | None
    score: float


NOT_FOUND = NameMatch("not_found", None, 0.0)


def _fold(s: str) -> str:
    """Case-fold and drop diacritics ("Isoëtes" and "Isoetes" are one name)."""
    s = s.casefold()
    if s.isascii():
        return s
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def _is_epithet(tok: str) -> bool:
    return tok.replace("-", "").isalpha() and tok.islower() and tok not in _AUTHOR_WORDS


def parse_name(name: str, *, query: bool = False) -> tuple[str, str] | None:
    """(key, canonical) of a scientific name, or None if it does not start with a genus.

    The canonical form keeps the spelling of the input (the hybrid sign and rank marker as
    written) without authorship; the key is what two spellings of one name share. `query`
    is lenient with what OCR leaves around a name (stray punctuation, a capitalised epithet).
    """
    parsed = _parse(name, query)
    return None if parsed is None else parsed[:2]


def split_authorship(name: str) -> tuple[str, str]:
    """(the name, the rest as written): "Setaria viridis (L.) Beauv." -> ("Setaria viridis",
    "(L.) Beauv."). Read leniently, as a lookup reads it; ("", name) if it has no genus."""
    parsed = _parse(name, query=True)
    if parsed is None:
        return "", name.strip()
    words = name.split()
    # the lookup's words are the name's without stray punctuation and without empty ones
    kept = [n for n, w in enumerate(words) if w.strip(_PUNCT)]
    used = parsed[2]
    cut = kept[used] if used < len(kept) else len(words)
    return parsed[1], " ".join(words[cut:])


def _parse(name: str, query: bool) -> tuple[str, str, int] | None:
    """(key, canonical, how many of the words it used): parse_name's reading of `name`."""
    toks = name.split()
    if query:
        toks = [t.strip(_PUNCT) for t in toks]
        toks = [t for t in toks if t]
    if not toks:
        return None
    upper = name.isupper()  # "COREOPSIS TINCTORIA": case says nothing about epithet vs author
    canon: list[str] = []
    keys: list[str] = []
    i = 0
    if toks[0] in _HYBRID_TOKENS and len(toks) > 1:  # "× Agropogon"
        canon.append(toks[0])
        i = 1
    genus = toks[i]
    bare = genus.lstrip(_HYBRID)
    if not bare.isalpha():
        return None
    canon.append(genus)
    keys.append(_fold(bare))
    i += 1
    n = len(toks)
    if i < n and re.fullmatch(r"\([A-Z][a-z]+\)", toks[i]):  # subgenus: "Carex (Vignea) ..."
        i += 1
    while i < n and toks[i] in _QUALIFIERS:
        i += 1
    have_epithet = False
    while i < n:
        tok = toks[i]
        low = tok.lower() if upper else tok
        if low in _SPECIES_ONLY:
            break
        if low in _HYBRID_TOKENS and i + 1 < n:  # "Mentha x piperita"
            nxt = toks[i + 1].lower() if upper else toks[i + 1]
            if _is_epithet(nxt.lstrip(_HYBRID)):
                canon.append(tok)
                i += 1
                continue
            break
        rank = _RANKS.get(low) if have_epithet else None
        if rank is not None and i + 1 < n:
            nxt = toks[i + 1].lower() if upper else toks[i + 1]
            if not _is_epithet(nxt.lstrip(_HYBRID)):
                break
            canon += [tok, toks[i + 1]]
            keys += [rank, _fold(nxt.lstrip(_HYBRID))]
            i += 2
            continue
        bare = low.lstrip(_HYBRID)
        # OCR sometimes capitalises the epithet; with nothing read yet after the genus, a
        # plain word (no dot: authors abbreviate) is taken as the epithet.
        lenient = query and not have_epithet and bare.isalpha() and len(bare) > 2
        if not (_is_epithet(bare) or lenient):
            break
        canon.append(tok)
        keys.append(_fold(bare))
        have_epithet = True
        i += 1
    return " ".join(keys), " ".join(canon), i


def name_key(name: str) -> str | None:
    """The comparison key of a name: "Coreopsis tinctoria Nutt." -> "coreopsis tinctoria"."""
    parsed = parse_name(name, query=True)
    return parsed[0] if parsed else None


class Checklist:
    """A set of accepted names with exact and fuzzy lookup on the normalised key."""

    def __init__(self, names: Iterable[str] = (), *, score_cutoff: float = DEFAULT_CUTOFF) -> None:
        self.score_cutoff = score_cutoff
        self.source_format = "names"
        self.rejected = 0  # entries that did not parse as a name
        # key -> canonical name; the value is None when it is just the key with a capital
        # first letter (most entries), which saves a string per name at WFO size.
        self._names: dict[str, str | None] = {}
        self._genera: dict[str, list[str]] = {}  # genus key -> keys of its names
        # genus and its one-letter deletions -> genera: two genera one edit apart (a letter
        # misread, dropped, added or two swapped) share a key, found by ~10 dict lookups.
        self._genus_variants: dict[str, str | tuple[str, ...]] = {}
        self._epithet_blocks: dict[str, dict[str, list[str]]] = {}  # big genera, built lazily
        self._add_all(names)

    # ------------------------------------------------------------------ building

    def _parse_entry(self, line: str) -> tuple[str, str | None] | None:
        """(key, canonical or None when implied by the key) of one entry; None to skip it."""
        line = line.strip()
        if not line or line[0] == "#":
            return None
        m = _FAST.fullmatch(line)
        if m is not None:
            return m[1].lower(), None
        parsed = parse_name(line)
        if parsed is None:
            self.rejected += 1
            return None
        key, canon = parsed
        return key, (None if canon == key[:1].upper() + key[1:] else canon)

    def _entries(self, names: Iterable[str] | _Text) -> Iterator[tuple[str, str | None]]:
        parse = self._parse_entry
        if isinstance(names, _Text):
            for fast, other in _FAST_LINES.findall(names.text):
                if fast:
                    yield fast.lower(), None
                elif other and (entry := parse(other)) is not None:
                    yield entry
        else:
            for raw in names:
                if (entry := parse(raw)) is not None:
                    yield entry

    def _add_all(self, names: Iterable[str] | _Text) -> None:
        store = self._names
        genera = self._genera
        for key, canon in self._entries(names):
            if key in store:
                continue
            store[key] = canon
            sp = key.find(" ")
            genus = key if sp < 0 else key[:sp]
            members = genera.get(genus)
            if members is None:
                genera[genus] = [key]
            else:
                members.append(key)
        self._build_blocks()

    def _build_blocks(self) -> None:
        variants: dict[str, str | tuple[str, ...]] = {}
        for genus in self._genera:
            for v in _deletions(genus):
                have = variants.get(v)
                if have is None:
                    variants[v] = genus
                elif isinstance(have, str):
                    if have != genus:
                        variants[v] = (have, genus)
                elif genus not in have:
                    variants[v] = (*have, genus)
        self._genus_variants = variants
        self._epithet_blocks = {}

    def _in_genus(
        self, genus: str, key: str, epithet: str, cutoff: float
    ) -> tuple[str, float] | None:
        """Best name of `genus` for `key`. A big genus is searched only among names whose
        epithet shares its first two or last three letters with the query's: one misread
        letter in an epithet of five letters or more leaves one of them intact."""
        members = self._genera[genus]
        if len(members) <= SMALL_GENUS:
            return _best(key, members, cutoff)
        blocks = self._epithet_blocks.get(genus)
        if blocks is None:
            blocks = {}
            start = len(genus) + 1
            for k in members:
                ep = k[start:].split(" ", 1)[0]
                if ep:
                    for bk in (ep[:2], "~" + ep[-3:]):
                        blocks.setdefault(bk, []).append(k)
            self._epithet_blocks[genus] = blocks
        best: tuple[str, float] | None = None
        for bk in (epithet[:2], "~" + epithet[-3:]):
            block = blocks.get(bk)
            if block:
                found = _best(key, block, best[1] if best else cutoff)
                if found is not None and (best is None or found[1] > best[1]):
                    best = found
        return best

    @classmethod
    def load(cls, path: Path, *, score_cutoff: float = DEFAULT_CUTOFF) -> Checklist:
        """Read a checklist, detecting the format from the content.

        Plain list (one name a line, `#` comments), CSV/TSV with a scientificName column
        (Darwin Core or COLDP NameUsage/Name), Darwin Core Archive zip (taxon core, through
        python-dwca-reader) or COLDP zip. Raises ChecklistError for anything else.
        """
        path = Path(path)
        names, fmt = _read_names(path)
        self = cls(score_cutoff=score_cutoff)
        self._add_all(names)
        self.source_format = fmt
        if not self._names:
            detail = f", {self.rejected} lines not names" if self.rejected else ""
            raise ChecklistError(f"{path.name}: no scientific names found ({fmt}{detail})")
        return self

    # ------------------------------------------------------------------ lookup

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.match(name).status == "matched"

    def _canonical(self, key: str) -> str:
        canon = self._names[key]
        return canon if canon is not None else key[:1].upper() + key[1:]

    def match(self, name: str) -> NameMatch:
        """Exact match on the key, else the closest name scoring at least `score_cutoff`."""
        parsed = parse_name(name, query=True)
        if parsed is None:
            return NOT_FOUND
        key = parsed[0]
        if key in self._names:
            return NameMatch("matched", self._canonical(key), 100.0)
        cutoff = self.score_cutoff
        sp = key.find(" ")
        genus = key if sp < 0 else key[:sp]
        best: tuple[str, float] | None = None
        if sp < 0:  # a genus alone can only be one of the checklist's genus entries
            for g in self._close_genera(genus):
                score = fuzz.ratio(key, g, score_cutoff=best[1] if best else cutoff)
                if g in self._names and score and (best is None or score > best[1]):
                    best = (g, score)
            return (
                NameMatch("fuzzy", self._canonical(best[0]), round(best[1], 2))
                if best
                else NOT_FOUND
            )
        epithet = key[sp + 1 :].split(" ", 1)[0]
        if genus in self._genera:  # genus read right: epithet fuzzy within it
            best = self._in_genus(genus, key, epithet, cutoff)
        if best is None:  # genus misread: the closest genera, then their names
            for g in self._close_genera(genus):
                found = self._in_genus(g, key, epithet, best[1] if best else cutoff)
                if found is not None and (best is None or found[1] > best[1]):
                    best = found
        if best is None:
            return NOT_FOUND
        return NameMatch("fuzzy", self._canonical(best[0]), round(best[1], 2))

    def _close_genera(self, genus: str) -> list[str]:
        """Checklist genera one edit away from `genus` (not `genus` itself)."""
        found: list[str] = []
        variants = self._genus_variants
        for v in _deletions(genus):
            have = variants.get(v)
            if have is None:
                continue
            for g in (have,) if isinstance(have, str) else have:
                if g != genus and g not in found:
                    found.append(g)
        return found


def _deletions(word: str) -> set[str]:
    """`word` and every string one letter shorter."""
    out = {word[:i] + word[i + 1 :] for i in range(len(word))}
    out.add(word)
    return out


def _best(key: str, choices: list[str], cutoff: float) -> tuple[str, float] | None:
    found = process.extractOne(key, choices, scorer=fuzz.ratio, score_cutoff=cutoff)
    return (found[0], found[1]) if found is not None else None


# ---------------------------------------------------------------------- reading files


def _read_names(path: Path) -> tuple[Iterable[str] | _Text, str]:
    """(names, format label) from a file; raises ChecklistError with the reason."""
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        data = path.read_bytes()
    except OSError as exc:
        raise ChecklistError(f"{path}: cannot read checklist ({exc.strerror or exc})") from exc
    if not data.strip():
        raise ChecklistError(f"{path.name}: the checklist file is empty")
    return _read_text(data, path.name)


def _decode(data: bytes, label: str) -> str:
    if b"\x00" in data[:65536]:
        raise ChecklistError(f"{label}: binary file, not a text, CSV/TSV or zip checklist")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ChecklistError(
            f"{label}: not UTF-8 text (invalid byte at offset {exc.start}); "
            "save the checklist as UTF-8"
        ) from exc


def _norm_header(field: str) -> str:
    """Header field to a bare term: "dwc:scientificName", a term URI -> "scientificname"."""
    f = field.strip().strip('"').strip()
    f = f.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return f.casefold()


def _read_text(data: bytes, label: str) -> tuple[Iterable[str] | _Text, str]:
    text = _decode(data, label)
    m = re.search(r"^[ \t]*[^#\s][^\r\n]*", text, re.M)  # first line not blank nor a comment
    first = m[0] if m else None
    if first is None:
        raise ChecklistError(f"{label}: no scientific names found (only blank or # lines)")
    suffix = PurePosixPath(label).suffix.lower()
    delim: str | None = None
    if "\t" in first:
        delim = "\t"  # names never contain tabs
    else:
        for d in (",", ";"):
            fields = first.split(d)
            if d in first and all(_IDENT.fullmatch(f.strip().strip('"')) for f in fields):
                delim = d  # a header row: identifiers only
                break
        if delim is None and suffix in (".csv", ".tsv"):
            delim = "\t" if suffix == ".tsv" else ","
    if delim is None:
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return _Text(text), "text list"
    return _read_table(text, delim, label)


def _read_table(text: str, delim: str, label: str) -> tuple[Iterable[str] | _Text, str]:
    if delim == "\t":  # TSV (DwC text, COLDP) is not quoted: a " is part of the value
        rows = csv.reader(io.StringIO(text), delimiter=delim, quoting=csv.QUOTE_NONE)
    else:
        rows = csv.reader(io.StringIO(text), delimiter=delim)
    header: list[str] | None = None
    for row in rows:
        if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#"):
            header = row
            break
    if header is None:
        raise ChecklistError(f"{label}: no header row")
    cols = [_norm_header(h) for h in header]
    if "scientificname" not in cols:
        shown = ", ".join(h.strip() for h in header[:12])
        raise ChecklistError(
            f"{label}: the header has no scientificName column "
            f"(accepted: scientificName, dwc:scientificName, col:scientificName; found: {shown})"
        )
    sci = cols.index("scientificname")
    auth = next(
        (cols.index(c) for c in ("authorship", "scientificnameauthorship") if c in cols), -1
    )
    fmt = "COLDP table" if any(h.strip().startswith("col:") for h in header) else "CSV/TSV"
    return _table_names(rows, sci, auth), fmt


def _table_names(rows: Iterator[list[str]], sci: int, auth: int) -> Iterator[str]:
    for row in rows:
        if len(row) <= sci:
            continue
        name = row[sci]
        if auth >= 0 and len(row) > auth:
            a = row[auth].strip()
            if a and name.rstrip().endswith(a):
                name = name.rstrip()[: -len(a)]
        yield name


def _read_zip(path: Path) -> tuple[Iterable[str] | _Text, str]:
    try:
        with zipfile.ZipFile(path) as zf:
            members = {PurePosixPath(n).name.lower(): n for n in zf.namelist()}
            if "meta.xml" not in members:
                for stem in ("nameusage", "name"):
                    for ext in (".tsv", ".txt", ".csv"):
                        if stem + ext in members:
                            data = zf.read(members[stem + ext])
                            names, _ = _read_text(data, f"{path.name}:{members[stem + ext]}")
                            return names, "COLDP archive"
    except zipfile.BadZipFile as exc:
        raise ChecklistError(f"{path.name}: damaged zip file ({exc})") from exc
    return _read_dwca(path), "Darwin Core Archive"


def _read_dwca(path: Path) -> list[str]:
    """Names of a DwC-A core through python-dwca-reader; extracted into a directory we own
    so it is removed even when the archive turns out to be invalid."""
    import xml.etree.ElementTree as ET

    from dwca.exceptions import InvalidArchive
    from dwca.read import DwCAReader

    with tempfile.TemporaryDirectory(prefix="herbdesk-dwca-") as tmp:
        try:
            with zipfile.ZipFile(path) as zf:
                zf.extractall(tmp)
            root = Path(tmp)
            inner = list(root.iterdir())
            if len(inner) == 1 and inner[0].is_dir():  # the library's rule for one folder
                root = inner[0]
            with DwCAReader(str(root), skip_metadata=True) as reader:
                core = reader.core_file.file_descriptor
                if not reader.core_contains_term(_SCI):
                    raise ChecklistError(
                        f"{path.name}: the archive's core ({core.type or 'no row type'}) "
                        "has no scientificName column"
                    )
                has_auth = reader.core_contains_term(_AUTH)
                terms = [_SCI, _AUTH] if has_auth else [_SCI]
                names: list[str] = []
                if hasattr(reader, "iter_terms"):  # 0.17+: tuples, no row objects
                    rows: Iterable[tuple[str | None, ...]] = reader.iter_terms(terms)
                else:
                    rows = (tuple(r.data.get(t) for t in terms) for r in reader)
                for values in rows:
                    name = values[0] or ""
                    if has_auth and values[1] and name.rstrip().endswith(values[1].strip()):
                        name = name.rstrip()[: -len(values[1].strip())]
                    names.append(name)
                return names
        except ChecklistError:
            raise
        except (InvalidArchive, ET.ParseError, OSError, ValueError, KeyError, IndexError) as exc:
            raise ChecklistError(
                f"{path.name}: not a readable Darwin Core Archive or COLDP zip ({exc})"
            ) from exc
