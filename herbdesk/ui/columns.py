"""Specimen table columns and the constants other widgets share with it (row height, short ids,
status colours, plain-text tooltips)."""

from __future__ import annotations

import html

from PySide6.QtGui import QColor

from herbdesk.runstate.state import (
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_PROCESSING,
    STATUS_QUEUED,
    STATUS_RETRYING,
    STATUS_SKIPPED,
)

COL_SEQ, COL_STATUS, COL_SPECIMEN, COL_FILE, COL_FIELDS = range(5)
COL_CONFIDENCE, COL_TIME, COL_COST, COL_ERROR, COL_QUALITY = range(5, 10)
HEADERS = (
    "#",
    "status",
    "specimen",
    "file",
    "fields",
    "confidence",
    "time (s)",
    "cost ($)",
    "error",
    "quality",
)
NUMERIC_COLUMNS = frozenset({COL_SEQ, COL_FIELDS, COL_CONFIDENCE, COL_TIME, COL_COST})
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
