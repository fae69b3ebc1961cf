"""Export a run's records: occurrences CSV or a Darwin Core Archive, with provenance.

One function serves `herbdesk export` and File → Export… in the window (docs/export.md).
"""

from __future__ import annotations

from herbdesk.export.core import FORMATS, ExportError, ExportOptions, ExportResult, export

__all__ = ["FORMATS", "ExportError", "ExportOptions", "ExportResult", "export"]
