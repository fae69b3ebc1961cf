"""The Darwin Core terms herbdesk extracts, in the column order of occurrences.csv."""

from __future__ import annotations

DWC_TERMS: tuple[str, ...] = (
    "catalogNumber",
    "scientificName",
    "eventDate",
    "recordedBy",
    "country",
    "stateProvince",
    "locality",
    "verbatimLocality",
    "habitat",
    "minimumElevationInMeters",
    "verbatimElevation",
    "decimalLatitude",
    "decimalLongitude",
    "verbatimCoordinates",
    "recordNumber",
    "identifiedBy",
    "dateIdentified",
    "reproductiveCondition",
    "establishmentMeans",
    "associatedTaxa",
    "individualCount",
    "sex",
    "lifeStage",
    "preparations",
    "occurrenceRemarks",
    "identificationRemarks",
    "fieldNotes",
    "institutionCode",
    "collectionCode",
    "basisOfRecord",
    "recordEnteredBy",
    "previousIdentifications",
    "geodeticDatum",
    "coordinateUncertaintyInMeters",
)
DWC_TERM_SET: frozenset[str] = frozenset(DWC_TERMS)
_LOWER = {t.lower(): t for t in DWC_TERMS}


def canonical_term(name: str) -> str | None:
    """The Darwin Core term for a key, tolerating case and a `dwc:` prefix; None if unknown."""
    key = name.strip()
    if key.lower().startswith("dwc:"):
        key = key[4:]
    return _LOWER.get(key.lower())
