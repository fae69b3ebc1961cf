"""Specimen table columns and the constants other widgets share with it (row height, short ids,
status colours, plain-text tooltips)."""

from __future__ import annotations

import html

from PySide6.QtGui import QColor

from herbdesk.common.dwc import DWC_TERMS
from herbdesk.runstate.state import (
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_PROCESSING,
    STATUS_QUEUED,
    STATUS_RETRYING,
    STATUS_SKIPPED,
)

DEFAULT_TERMS = (
    "scientificName",
    "catalogNumber",
    "recordedBy",
    "eventDate",
    "country",
    "stateProvince",
    "locality",
)

# The file name names the row; then its status, the Darwin Core terms (TABLE_TERMS), and what
# the run measured. Which columns show is the user's choice (table.py, remembered in QSettings).
TABLE_TERMS: tuple[str, ...] = (
    *DEFAULT_TERMS,
    *(t for t in DWC_TERMS if t not in DEFAULT_TERMS),
)
COL_FILE, COL_STATUS = 0, 1
TERM_BASE = 2  # column of TABLE_TERMS[0]
COL_CONFIDENCE = TERM_BASE + len(TABLE_TERMS)
COL_QUALITY, COL_FIELDS, COL_ERROR, COL_SEQ, COL_SPECIMEN, COL_TIME, COL_COST = range(
    COL_CONFIDENCE + 1, COL_CONFIDENCE + 8
)
HEADERS = (
    "file",
    "status",
    *TABLE_TERMS,
    "confidence",
    "quality",
    "fields",
    "error",
    "#",
    "sha256",
    "time (s)",
    "cost ($)",
)
# stable names for the settings (headers may change their wording)
COLUMN_KEYS = (
    "file",
    "status",
    *TABLE_TERMS,
    "confidence",
    "quality",
    "fields",
    "error",
    "sequence",
    "specimen_id",
    "time",
    "cost",
)
DEFAULT_COLUMNS = frozenset({"file", "status", *DEFAULT_TERMS, "confidence", "quality", "error"})
NUMERIC_COLUMNS = frozenset({COL_SEQ, COL_FIELDS, COL_CONFIDENCE, COL_TIME, COL_COST})


def column_term(column: int) -> str | None:
    """The Darwin Core term a table column shows, if it shows one."""
    i = column - TERM_BASE
    return TABLE_TERMS[i] if 0 <= i < len(TABLE_TERMS) else None


SHORT_ID = 12
ROW_HEIGHT = 22

# Mid-tone colours: enough contrast on a white base and on a dark (#2b2b2b-ish) base alike.
STATUS_COLORS: dict[str, QColor] = {
    STATUS_COMPLETED: QColor("#2e9d4f"),
    STATUS_FAILED: QColor("#e0483e"),
    STATUS_PROCESSING: QColor("#3b82f6"),
    STATUS_RETRYING: QColor("#3b82f6"),
    STATUS_SKIPPED: QColor("#8c8c8c"),
}
# Sorting by status puts problems and work in flight first.
STATUS_RANK = {
    STATUS_FAILED: 0,
    STATUS_RETRYING: 1,
    STATUS_PROCESSING: 2,
    STATUS_QUEUED: 3,
    STATUS_SKIPPED: 4,
    STATUS_COMPLETED: 5,
}
STATUS_FILTERS = (
    "All",
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_PROCESSING,
    STATUS_QUEUED,
    STATUS_SKIPPED,
)


def plain_tooltip(text: str) -> str:
    """Tooltips are rich text when they look like HTML; escaping shows log text literally."""
    return f'<p style="white-space:pre-wrap">{html.escape(text)}</p>'
