"""Opening a log: one sample per process (so peak RSS is this sample's own).

    python -m benchmarks.bench_open {polars|fold|window} LOG

polars: `polars.read_ndjson` (the reference reader). fold: herbdesk's headless load of the
whole log into a RunState, as `herbdesk summary` and the app's loader do it. window: a real
(offscreen) MainWindow opens the log; reports time to the first rows shown and to fully loaded.
Prints one JSON line: {"seconds", "rss_mb", ["first_rows_s"]}.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from benchmarks.common import emit_json, peak_rss_mb


def bench_polars(log: Path) -> dict:
    import polars as pl

    t0 = time.perf_counter()
    df = pl.read_ndjson(log)
    dt = time.perf_counter() - t0
    return {"seconds": dt, "rss_mb": peak_rss_mb(), "rows": df.height}


def bench_fold(log: Path) -> dict:
    from herbdesk.runstate.load import load_state

    t0 = time.perf_counter()
    state, _stats = load_state(log)
    dt = time.perf_counter() - t0
    return {"seconds": dt, "rss_mb": peak_rss_mb(), "rows": state.rows, "events": state.events}


def bench_window(log: Path) -> dict:
    import tempfile

    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from herbdesk.ui.mainwindow import MainWindow

    app = QApplication([sys.argv[0]])
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    win.resize(1400, 900)
    win.show()
    app.processEvents()
    first: list[float] = []
    t0 = time.perf_counter()

    def on_refresh(_rows: object) -> None:
        if not first and win.document.state.rows > 0:
            first.append(time.perf_counter() - t0)

    win.document.refreshed.connect(on_refresh)
    # the app's own event loop (exec), left as soon as the load is done: a processEvents()
    # and sleep loop would add its sleeps to the figure
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(5)
    poll.timeout.connect(lambda: None if win.is_loading() else loop.quit())
    poll.start()
    win.open_path(log)
    loop.exec()
    poll.stop()
    win.document.flush()
    app.processEvents()
    dt = time.perf_counter() - t0
    out = {
        "seconds": dt,
        "first_rows_s": first[0] if first else dt,
        "rss_mb": peak_rss_mb(),
        "rows": win.document.state.rows,
        "events": win.document.state.events,
    }
    win.shutdown()
    return out


def main() -> None:
    mode, log = sys.argv[1], Path(sys.argv[2])
    fn = {"polars": bench_polars, "fold": bench_fold, "window": bench_window}[mode]
    emit_json(fn(log))


if __name__ == "__main__":
    main()
