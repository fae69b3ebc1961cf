"""Darwin Core records for the synthetic logs, judged by herbdesk's own RecordJudge.

Each specimen gets a record a vision model could give for its sheet: mostly valid values, some
verbatim dates (a warning), and the junk real runs show (label text such as "Identified by"
as the name, impossible dates such as "2809", placeholders, zero coordinates). The quality
object is `RecordJudge.quality` of that record, as the pipeline computes it, so the lines carry
exactly what a run writes; the catalogue number is unique per sheet, so fingerprints differ.
"""

from __future__ import annotations

import random
from typing import Any

from herbdesk.quality.judge import QualitySettings, RecordJudge

_TAXA = (
    "Carex aurea Nutt.", "Agropyron cristatum (L.) Gaertn.", "Coreopsis tinctoria Nutt.",
    "Helianthus annuus L.", "Poa pratensis L.", "Symphyotrichum laeve (L.) A. Love & D. Love",
    "Artemisia frigida Willd.", "Bouteloua gracilis (Kunth) Lag. ex Griffiths",
    "Solidago canadensis L.", "Rosa arkansana Porter", "Populus tremuloides Michx.",
    "Elymus trachycaulus (Link) Gould", "Malva rotundifolia L.", "Achillea millefolium L.",
    "Geum triflorum Pursh", "Anemone patens L.", "Typha latifolia L.", "Salix bebbiana Sarg.",
    "Astragalus bisulcatus (Hook.) A. Gray", "Opuntia polyacantha Haw.",
    "Puccinia graminis Pers.", "Erysiphe cichoracearum DC.", "Ustilago avenae (Pers.) Rostr.",
    "Melampsora medusae Thüm.", "Carex", "Salix sp.", "Poa palustris var. major",
    "Antennaria parvifolia Nutt.", "Juncus balticus Willd.", "Stipa comata Trin. & Rupr.",
)  # fmt: skip
_PEOPLE = ("M. Molloy", "D. E. Wade", "A. J. Breitung", "G. F. Ledingham", "J. H. Hudson",
           "W. P. Fraser", "R. C. Russell", "B. Boivin", "K. M. Pearson", "S. Bowes",
           "T. C. Vanterpool", "P. M. Simmonds & R. J. Ledingham")  # fmt: skip
_PLACES = (
    ("Swift Current Research Station", "Saskatchewan", "Canada"),
    ("Regina Waterfowl Park", "Sask.", "Canada"),
    ("Cypress Hills, {n} km S of Maple Creek", "Saskatchewan", "Canada"),
    ("Lethbridge, Oldman River valley", "Alberta", "Canada"),
    ("Brandon, Assiniboine River", "Man.", "Canada"),
    ("Medicine Hat, Police Point Park", "Alberta", "Canada"),
    ("Grasslands National Park, {n} km E of Val Marie", "Saskatchewan", "Canada"),
    ("Fargo, Red River bank", "North Dakota", "United States"),
    ("Saskatoon, University farm, plot {n}", "SK", "Canada"),
    ("Indian Head, Experimental Farm", "Saskatchewan", "Canada"),
)  # fmt: skip
_HABITATS = (
    "wet meadow",
    "dry hillside",
    "roadside ditch",
    "waste ground",
    "prairie",
    "aspen parkland",
    "sandy bank",
    "coulee",
    "slough margin",
    "on leaves of host",
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "June", "July", "Aug", "Sept", "Oct", "Nov", "Dec")
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")
_BOILER = (
    "Identified by",
    "Checked by",
    "Duplicate confirmed",
    "Calibrite colorchecker",
    "Plants of Saskatchewan",
    "Host",
    "Herbarium of the University of Saskatchewan",
)
_BAD_DATES = ("2809", "0195", "1222", "3011", "31/31/1961")
_BAD_PEOPLE = ("Collector", "det.", "Coll.", "Identified by")
_PLACEHOLDERS = ("-", "?", "not visible", "illegible", "unknown", "<string>", "n/a")


def _v(value: str, conf: float) -> dict[str, Any]:
    return {"value": value, "confidence": conf}


class RecordMaker:
    """Records and their quality objects, deterministic for a seed."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.judge = RecordJudge.from_settings(QualitySettings())
        self._cache: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}

    def _date(self) -> str:
        r, y = self.rng, self.rng.randint(1890, 2019)
        m, d = r.randint(1, 12), r.randint(1, 28)
        form = r.random()
        if form < 0.8:
            return f"{y}-{m:02d}-{d:02d}" if r.random() < 0.9 else f"{y}-{m:02d}"
        if form < 0.87:
            return f"{_MONTHS[m - 1]} {d}, {y}"  # verbatim: date_not_iso, still valid
        if form < 0.94:
            return f"{d}.{_ROMAN[m - 1]}.{y}"
        return f"{m:02d}/{d:02d}/{y % 100:02d}"

    def record(self, i: int) -> dict[str, dict[str, Any]]:
        """raw.jsonl's `dwc` for sheet i: {term: {"value", "confidence"}}."""
        r = self.rng
        kind = r.random()
        if kind < 0.04:  # a model reading the label's printed text (fakeapi's "boilerplate")
            rec = {"scientificName": _v(r.choice(_BOILER), 0.9),
                   "eventDate": _v(r.choice(_BAD_DATES), 0.8),
                   "recordedBy": _v(r.choice(_BAD_PEOPLE), 0.7)}  # fmt: skip
            if r.random() < 0.5:
                rec["catalogNumber"] = _v(f"{i:07d}", 0.9)
            return rec
        locality, province, country = r.choice(_PLACES)
        rec = {
            "catalogNumber": _v(f"{i:07d}", 0.95),
            "scientificName": _v(r.choice(_TAXA), round(r.uniform(0.6, 0.97), 2)),
            "eventDate": _v(self._date(), round(r.uniform(0.6, 0.95), 2)),
            "recordedBy": _v(r.choice(_PEOPLE), round(r.uniform(0.6, 0.9), 2)),
            "country": _v(country, 0.95),
            "stateProvince": _v(province, 0.9),
            "locality": _v(locality.format(n=r.randint(2, 40)), 0.85),
        }
        if r.random() < 0.8:
            rec["recordNumber"] = _v(str(r.randint(10, 4999)), 0.8)
        if r.random() < 0.7:
            rec["habitat"] = _v(r.choice(_HABITATS), 0.8)
        if r.random() < 0.3:
            rec["identifiedBy"] = _v(r.choice(_PEOPLE), 0.7)
            rec["dateIdentified"] = _v(self._date(), 0.7)
        if r.random() < 0.2:
            rec["decimalLatitude"] = _v(f"{r.uniform(49, 54):.4f}", 0.7)
            rec["decimalLongitude"] = _v(f"{-r.uniform(101, 110):.4f}", 0.7)
        if r.random() < 0.15:
            rec["minimumElevationInMeters"] = _v(str(r.randint(400, 1400)), 0.7)
        junk = r.random()
        if junk < 0.05:  # the name is label text or carries digits: not usable
            rec["scientificName"] = _v(r.choice((*_BOILER, "Carex 1961", "Poa of Regina")), 0.8)
        elif junk < 0.08:  # a placeholder for a required or an ordinary term
            term = r.choice(("scientificName", "locality", "recordedBy", "eventDate", "habitat"))
            rec[term] = _v(r.choice(_PLACEHOLDERS), 0.5)
        elif junk < 0.11:  # an impossible date, a person that is label text
            rec["eventDate"] = _v(r.choice(_BAD_DATES), 0.6)
            if r.random() < 0.5:
                rec["recordedBy"] = _v(r.choice(_BAD_PEOPLE), 0.6)
        elif junk < 0.13:  # an invalid ordinary term; the record stays usable
            term, value = r.choice((("decimalLatitude", "0"), ("recordNumber", "1961-06-08"),
                                    ("minimumElevationInMeters", "9999"),
                                    ("country", "Rupert's Land")))  # fmt: skip
            rec[term] = _v(value, 0.6)
            if term == "decimalLatitude":
                rec["decimalLongitude"] = _v("0", 0.6)
        return rec

    def quality(self, rec: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """`RecordJudge.quality` of the record (repeated records, junk mostly, judged once)."""
        key = tuple((t, v["value"]) for t, v in rec.items())
        q = self._cache.get(key)
        if q is None:
            q = self._cache[key] = self.judge.quality(rec)
        return q
