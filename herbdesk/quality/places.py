"""Countries and their subdivisions from ISO 3166 (pycountry ships the data offline), plus the
customary abbreviations herbarium labels use ("Sask.", "B.C.", "Calif.") that ISO does not."""

from __future__ import annotations

import unicodedata
from functools import cache

import pycountry

# Customary (pre-postal) abbreviations on labels -> ISO 3166-2 code.
_CUSTOMARY = {
    "sask": "CA-SK", "bc": "CA-BC", "ont": "CA-ON", "alta": "CA-AB", "alb": "CA-AB",
    "man": "CA-MB", "que": "CA-QC", "pq": "CA-QC", "ns": "CA-NS", "nb": "CA-NB",
    "nfld": "CA-NL", "pei": "CA-PE", "yuk": "CA-YT", "yt": "CA-YT", "nwt": "CA-NT",
    "ala": "US-AL", "ariz": "US-AZ", "ark": "US-AR", "calif": "US-CA", "cal": "US-CA",
    "colo": "US-CO", "conn": "US-CT", "del": "US-DE", "fla": "US-FL", "ga": "US-GA",
    "ida": "US-ID", "ill": "US-IL", "ind": "US-IN", "kans": "US-KS", "kan": "US-KS",
    "ky": "US-KY", "la": "US-LA", "me": "US-ME", "md": "US-MD", "mass": "US-MA",
    "mich": "US-MI", "minn": "US-MN", "miss": "US-MS", "mo": "US-MO", "mont": "US-MT",
    "nebr": "US-NE", "neb": "US-NE", "nev": "US-NV", "nh": "US-NH", "nj": "US-NJ",
    "nm": "US-NM", "ny": "US-NY", "nc": "US-NC", "nd": "US-ND", "okla": "US-OK",
    "ore": "US-OR", "oreg": "US-OR", "pa": "US-PA", "penn": "US-PA", "ri": "US-RI",
    "sc": "US-SC", "sd": "US-SD", "tenn": "US-TN", "tex": "US-TX", "ut": "US-UT",
    "vt": "US-VT", "va": "US-VA", "wash": "US-WA", "wva": "US-WV", "wis": "US-WI",
    "wisc": "US-WI", "wyo": "US-WY",
}  # fmt: skip
_COUNTRY_ALIASES = {
    "usa": "US", "us": "US", "america": "US", "uk": "GB", "britain": "GB",
    "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
}  # fmt: skip


def _key(text: str) -> str:
    """Case-, accent- and punctuation-insensitive key ("B.C." -> "bc", "Québec" -> "quebec")."""
    s = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    s = "".join(ch if ch.isalnum() or ch == " " else " " if ch in "-_," else "" for ch in s)
    return " ".join(s.split())


def country_code(value: str) -> str | None:
    """ISO alpha-2 of a country name, code or official name; None if not a country."""
    k = _key(value)
    if not k:
        return None
    if k in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[k]
    return _countries().get(k)


@cache
def _countries() -> dict[str, str]:
    out: dict[str, str] = {}
    for c in pycountry.countries:
        for attr in ("name", "official_name", "common_name", "alpha_2", "alpha_3"):
            v = getattr(c, attr, None)
            if v:
                out[_key(v)] = c.alpha_2
    return out


@cache
def _subdivisions() -> dict[str, set[str]]:
    """key -> ISO 3166-2 codes it may name (names, codes, suffixes like "SK", customary)."""
    out: dict[str, set[str]] = {}
    for s in pycountry.subdivisions:
        for v in (s.name, s.code, s.code.split("-", 1)[1]):
            out.setdefault(_key(v), set()).add(s.code)
    for k, code in _CUSTOMARY.items():
        out.setdefault(k, set()).add(code)
    return out


def subdivision(value: str, country: str | None = None) -> str | None:
    """The ISO 3166-2 code `value` names (in `country` when given, an alpha-2), else None.

    A bare suffix ("SK", "ON") is only taken within a known country: hundreds of countries
    have a subdivision coded "ON" or "BC".
    """
    k = _key(value)
    for suffix in (" province", " state", " prov", " territory"):
        if k.endswith(suffix) and k != suffix.strip():
            k = k[: -len(suffix)]
    codes = _subdivisions().get(k, set())
    if country:
        same = sorted(c for c in codes if c.startswith(country + "-"))
        return same[0] if same else None
    named = sorted(c for c in codes if len(k) > 3 or k in _CUSTOMARY)
    return named[0] if named else None


def subdivision_name(code: str) -> str:
    sub = pycountry.subdivisions.get(code=code)
    return str(sub.name) if sub is not None else code
