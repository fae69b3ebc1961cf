"""Sorting and filtering the specimen table over N rows (default 1,000,000), offscreen.

    python -m benchmarks.bench_table [--rows N]

Builds a RunState with N specimen rows (columns filled directly: generating and folding a
3M-event log would take longer than the figure measured) and Darwin Core values for the
completed ones, ten terms a record as the fake model answers (taxa, collectors and places
repeat, catalog numbers do not), written one object a line to a temporary file and put in
as an opened log's column fold does: each row keeps where its object is (`set_spans`,
`fold_terms_s`: what a load adds for the values). The first term sort or value search has the
window read them all on a thread of its own (started directly here: `prepare_s`, with the
longest the GUI thread went unserved meanwhile,
`gui_stall_max_ms`, timed by a 10 ms timer); `--no-prepare` leaves that to the first term sort
(`first_term_sort_s`, the build included, on the GUI thread); `--eager` decodes them at once
instead, as the folds without a file do (`set_rows`). Shows it in the real SpecimenTableView
and times each operation as the user triggers it, until the view is consistent again (sort:
header click; filters: status combo, search text). Prints one JSON line of seconds per operation.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

from benchmarks.common import emit_json, peak_rss_mb


def build_state(n: int):  # type: ignore[no-untyped-def]
    from herbdesk.runstate.state import (
        STATUS_COMPLETED,
        STATUS_FAILED,
        STATUS_QUEUED,
        OptionalFloats,
        RunState,
    )

    rng = random.Random(3)
    st = RunState()
    st.specimen_id = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
    st.image = [f"DAO{i:07d}.jpg" for i in range(n)]
    st.path = [f"/data/sheets/DAO{i:07d}.jpg" for i in range(n)]
    status = []
    for i in range(n):
        r = i % 10
        status.append(STATUS_FAILED if r == 3 else STATUS_QUEUED if r == 7 else STATUS_COMPLETED)
    st.row_status = status
    done = [s != STATUS_QUEUED for s in status]
    st.sequence = [i + 1 if d else None for i, d in enumerate(done)]
    st.fields_extracted = [rng.randint(5, 20) if d else 0 for d in done]
    st.confidence = OptionalFloats(
        [round(rng.uniform(0.4, 0.98), 4) if s == STATUS_COMPLETED else None for s in status]
    )
    st.time_ms = OptionalFloats([round(rng.uniform(8000, 40000), 1) if d else None for d in done])
    st.cost_usd = OptionalFloats([0.0011 if d else None for d in done])
    st.error = [
        "bad_reply: reply is not a JSON object" if s == STATUS_FAILED else "" for s in status
    ]
    st.attempts = [1 if d else 0 for d in done]
    st.succeeded = status.count(STATUS_COMPLETED)
    st.failed = status.count(STATUS_FAILED)
    return st


GENERA = ("Carex", "Poa", "Salix", "Quercus", "Acer", "Rosa", "Solidago", "Aster", "Juncus")
PROVINCES = ("Ontario", "Quebec", "Manitoba", "Saskatchewan", "Alberta", "Nova Scotia")


def term_records(n: int, status: list[str], out: IO[bytes]) -> tuple[list[int], list[int]]:
    """Completed rows and their `dwc` objects as a run's events carry them, written to `out`
    one a line; returns the rows and where each object ends."""
    import json

    rng = random.Random(5)
    collectors = [
        f"{chr(65 + i % 26)}. {name}"
        for i, name in enumerate(
            ["Macoun", "Boivin", "Dore", "Scoggan", "Cody", "Calder", "Breitung", "Wade"] * 40
        )
    ]
    species = [
        f"{g} {s}{i} L."
        for i, (g, s) in enumerate(
            (g, s) for g in GENERA for s in ("alba", "nigra", "rubra", "minor") * 140
        )
    ]
    rows, ends = [], []
    at = 0
    for r in range(n):
        if status[r] != "completed":
            continue
        name = "Identified by" if r % 97 == 0 else rng.choice(species)
        rows.append(r)
        raw = (
            json.dumps(
                {
                    "catalogNumber": f"DAO{r:07d}",
                    "scientificName": name,
                    "eventDate": f"{rng.randint(1880, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",  # noqa: E501
                    "recordedBy": rng.choice(collectors),
                    "recordNumber": str(rng.randint(1, 9999)),
                    "country": "Canada" if r % 10 else "United States",
                    "stateProvince": rng.choice(PROVINCES),
                    "locality": f"{rng.randint(1, 40)} km N of {rng.choice(GENERA)} Lake, "
                    f"{r % 50_000}",
                    "habitat": rng.choice(("sandy bank", "wet meadow", "mixed woods", "roadside")),
                    "decimalLatitude": round(rng.uniform(42, 60), 4),
                }
            ).encode()
        )  # fmt: skip
        out.write(raw + b"\n")
        at += len(raw) + 1
        ends.append(at - 1)
    return rows, ends


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--eager", action="store_true", help="decode the values at once")
    ap.add_argument("--no-prepare", action="store_true", help="no background read of values")
    args = ap.parse_args()
    n = args.rows

    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from herbdesk.ui.columns import COL_CONFIDENCE, COL_FILE, COL_STATUS, TABLE_TERMS, TERM_BASE
    from herbdesk.ui.document import RunDocument
    from herbdesk.ui.table import SpecimenTableView

    if args.no_prepare:  # the window's old way: the first term sort reads them on its thread
        from herbdesk.ui import document as document_mod

        document_mod.READ_AT_ONCE = sys.maxsize
    app = QApplication([sys.argv[0]])
    doc = RunDocument()
    view = SpecimenTableView(doc)
    view.resize(1200, 700)
    view.show()
    app.processEvents()
    import numpy as np

    from herbdesk.runstate.terms import FileSpans

    st = build_state(n)
    tmp = tempfile.TemporaryDirectory()
    values = Path(tmp.name) / "values.jsonl"
    with open(values, "wb") as fh:
        row_list, end_list = term_records(n, st.row_status, fh)
    rows, ends = np.array(row_list, np.int64), np.array(end_list, np.int64)
    del row_list, end_list
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = (ends - starts).astype(np.int32)
    t0 = time.perf_counter()
    block = 50_000  # as the bulk fold hands them over, a block of lines at a time
    if args.eager:
        with open(values, "rb") as fh:
            lines = fh.read().splitlines()
        for i in range(0, len(rows), block):
            st.terms.set_rows(rows[i : i + block], lines[i : i + block])
        del lines
    else:
        st.terms.source = FileSpans(values)
        for i in range(0, len(rows), block):
            st.terms.set_spans(rows[i : i + block], starts[i : i + block], lengths[i : i + block])
    fold_terms_s = time.perf_counter() - t0
    doc.state = st
    t0 = time.perf_counter()
    view.model.set_state(st)
    app.processEvents()
    out: dict[str, float] = {"show_s": time.perf_counter() - t0, "fold_terms_s": fold_terms_s}

    if not args.no_prepare:
        gaps: list[float] = []
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            gaps.append(now - last[0])
            last[0] = now

        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(tick)
        t = last[0] = time.perf_counter()
        timer.start()
        doc.prepare_terms()
        while doc.preparing:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        timer.stop()
        out["prepare_s"] = time.perf_counter() - t
        out["gui_stall_max_ms"] = 1000 * max(gaps, default=0.0)
        out["gui_stalls_over_100ms"] = sum(g > 0.1 for g in gaps)

    def timed(name: str, action) -> None:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        action()
        app.processEvents()
        _ = view.model.index(0, 0).data()  # the first visible cell is consistent
        out[name] = time.perf_counter() - t

    asc, desc = Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder
    first = TERM_BASE + TABLE_TERMS.index("recordedBy")
    timed("first_term_sort_s", lambda: view.table.sortByColumn(first, asc))  # builds them
    timed("sort_confidence_s", lambda: view.table.sortByColumn(COL_CONFIDENCE, asc))
    timed("sort_confidence_desc_s", lambda: view.table.sortByColumn(COL_CONFIDENCE, desc))
    timed("sort_file_s", lambda: view.table.sortByColumn(COL_FILE, asc))
    timed("sort_status_s", lambda: view.table.sortByColumn(COL_STATUS, asc))
    for term in ("scientificName", "catalogNumber", "locality"):
        c = TERM_BASE + TABLE_TERMS.index(term)
        timed(f"sort_{term}_s", lambda c=c: view.table.sortByColumn(c, asc))
    c = TERM_BASE + TABLE_TERMS.index("scientificName")
    timed("sort_scientificName_desc_s", lambda: view.table.sortByColumn(c, desc))
    timed("filter_status_s", lambda: view.status_combo.setCurrentText("failed"))
    failed = view.model.rowCount()
    timed("filter_text_s", lambda: view.search_edit.setText("DAO00012"))
    matched = view.model.rowCount()
    timed(
        "filter_clear_s",
        lambda: (view.search_edit.clear(), view.status_combo.setCurrentText("All")),
    )
    timed("filter_value_s", lambda: view.search_edit.setText("Identified"))  # a term's value
    value_rows = view.model.rowCount()
    timed("filter_value_common_s", lambda: view.search_edit.setText("lake"))  # most rows
    common_rows = view.model.rowCount()
    timed("filter_value_status_s", lambda: view.status_combo.setCurrentText("completed"))
    timed(
        "filter_clear2_s",
        lambda: (view.search_edit.clear(), view.status_combo.setCurrentText("All")),
    )
    t = time.perf_counter()
    sb = view.table.verticalScrollBar()
    for k in range(50):  # scrolling: 50 page jumps with a repaint each
        sb.setValue(sb.maximum() * k // 50)
        view.table.viewport().repaint()
    out["scroll_page_ms"] = (time.perf_counter() - t) / 50 * 1000
    out["rows"] = view.model.rowCount()
    out["failed_rows"] = failed
    out["text_rows"] = matched
    out["value_rows"] = value_rows
    out["value_common_rows"] = common_rows
    out["rss_mb"] = peak_rss_mb()
    emit_json(out)
    tmp.cleanup()


if __name__ == "__main__":
    main()
