"""The columns of an export, their Darwin Core (or herbdesk) term URIs, and a record's row.

The same columns, in the same order, make the CSV and the archive's occurrence.txt; the
archive's meta.xml maps each to its term URI. docs/export.md documents every column.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from herbdesk.common.dwc import DWC_TERMS
from herbdesk.export.records import Record
from herbdesk.export.source import Provenance

DWC_NS = "http://rs.tdwg.org/dwc/terms/"
# herbdesk owns no domain: its own terms live under the reserved .invalid top-level domain
# (RFC 2606), so the URIs are unique, documented in docs/export.md, and never resolve to
# someone else's page. The last path segment is the column name, as DwC-A readers shorten.
HERBDESK_NS = "https://herbdesk.invalid/terms/"
# In herbdesk's term set but not in Darwin Core (Symbiota's field name): not given a dwc URI
NOT_DWC = frozenset({"recordEnteredBy"})
# occurrenceID: a name-based UUID (RFC 4122 v5) of the specimen id, so the same sheet gets
# the same id in every export and every run (herbdesk's specimen id is the image's sha256)
OCCURRENCE_NS = uuid.uuid5(uuid.NAMESPACE_URL, HERBDESK_NS + "specimen")
DEFAULT_BASIS = "PreservedSpecimen"  # a herbarium sheet; used where the record gives none


@dataclass(frozen=True)
class Column:
    name: str
    uri: str


PROVENANCE: tuple[str, ...] = (
    "specimen_id",
    "image",
    "engine",
    "model",
    "prompt_sha256",
    "herbdesk_version",
    "run_id",
    "extracted_at",
    "confidence",
    "usable",
    "findings",
    "reviewed",
)
COLUMNS: tuple[Column, ...] = (
    Column("occurrenceID", DWC_NS + "occurrenceID"),
    *(Column(t, (HERBDESK_NS if t in NOT_DWC else DWC_NS) + t) for t in DWC_TERMS),
    Column("verbatimLabel", DWC_NS + "verbatimLabel"),
    *(Column(name, HERBDESK_NS + name) for name in PROVENANCE),
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)


def occurrence_id(specimen_id: str) -> str:
    return f"urn:uuid:{uuid.uuid5(OCCURRENCE_NS, specimen_id)}"


def findings_text(quality: Mapping[str, Any]) -> str:
    """`check:term` per finding, `; ` between (herbdesk.quality's check names)."""
    out = []
    for f in quality.get("findings") or []:
        if isinstance(f, (list, tuple)) and len(f) >= 2:
            out.append(f"{f[0]}:{f[1]}")
    return "; ".join(out)


def record_row(
    rec: Record,
    values: Mapping[str, Any],
    quality: Mapping[str, Any],
    reviewed: bool,
    prov: Provenance,
) -> list[str]:
    """The cells of one record, in COLUMNS order (text, unescaped: each writer makes it safe).

    `values` are the record's values after review corrections (ReviewLedger.apply).
    """
    terms = [str(values.get(t, "")) for t in DWC_TERMS]
    basis = DWC_TERMS.index("basisOfRecord")
    terms[basis] = terms[basis] or DEFAULT_BASIS
    conf = rec.confidence
    cells = {
        "specimen_id": rec.specimen_id,
        "image": rec.image,
        "engine": rec.engine or prov.engine,
        "model": rec.model or prov.model,
        "prompt_sha256": prov.prompt_sha256,
        "herbdesk_version": prov.herbdesk_version,
        "run_id": rec.run_id or prov.run_id,
        "extracted_at": rec.timestamp,
        "confidence": f"{conf:.4g}" if isinstance(conf, (int, float)) else "",
        "usable": "true" if quality.get("usable") else "false",
        "findings": findings_text(quality),
        "reviewed": "true" if reviewed else "false",
    }
    return [
        occurrence_id(rec.specimen_id),
        *terms,
        rec.label_text,
        *(cells[name] for name in PROVENANCE),
    ]
