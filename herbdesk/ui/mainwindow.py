"""The main window: run setup, banners, KPIs, plots, specimen table and detail, event log."""

from __future__ import annotations

import linecache
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from herbdesk import __version__
from herbdesk.events.layout import EVENTS, RAW
from herbdesk.events.reader import ReadStats, iter_events
from herbdesk.extraction.config import RunOutcome
from herbdesk.extraction.control import USER_STOP
from herbdesk.extraction.liveness import DEFAULT_STALE_S
from herbdesk.runstate.columns import row_in
from herbdesk.ui.banners import BannerBar
from herbdesk.ui.detail import SpecimenDetail, wait_for_decodes
from herbdesk.ui.document import RunDocument
from herbdesk.ui.eventlog import EventLogPane
from herbdesk.ui.formatting import whole_percent
from herbdesk.ui.icons import app_icon
from herbdesk.ui.kpis import KpiStrip
from herbdesk.ui.loader import LogLoader
from herbdesk.ui.locating import LocateThread
from herbdesk.ui.plots import PlotsPanel
from herbdesk.ui.replay import ReplayBar
from herbdesk.ui.setup import RunSetupPanel
from herbdesk.ui.table import SpecimenTableView
from herbdesk.ui.table_model import SpecimenTableModel
from herbdesk.ui.tailing import TailSource
from herbdesk.ui.worker import RunWorker

MAX_RECENT = 10
DETAIL_FOLLOW_MS = 500


def drop_source_cache() -> None:
    """Forget the source text PySide6 cached while modules were imported.

    PySide6's `__feature__` import hook reads every module imported after it through
    `inspect`, and `linecache` keeps the text: about 18 MB once numpy and pyqtgraph are in.
    Only tracebacks use it, and they read the files again when needed.
    """
    linecache.clearcache()


PLOTS_MIN_HEIGHT = 150  # px: axis labels, title and a few rows of bars


class MainWindow(QMainWindow):
    located = Signal(object)
    """File → Locate images… found sheets, now shown (the Located)."""

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings()
        self.setWindowTitle("herbdesk")
        self.setWindowIcon(app_icon())
        self.document = RunDocument(self)
        self.worker: RunWorker | None = None
        self.loader: LogLoader | None = None
        self.locator: LocateThread | None = None  # File → Locate images… searching
        self._locate_remember = True  # the search's folder is remembered for _locate_log
        self._locate_log: Path | None = None
        self.tail_source: TailSource | None = None
        self.opened_log: Path | None = None  # the log File → Open read (File → Export… uses it)
        self.exporter: Any = None  # the ExportThread writing an export
        self.export_box: Any = None  # the open ExportDialog
        self.review_window: Any = None  # the open ReviewWindow
        self.review_loader: Any = None  # the ReviewLoader preparing its queue
        self.setAcceptDrops(True)
        self._notified: set[str] = set()
        # the opened/tailed run's configuration the setup panel shows (not the app settings)
        self._shown_config: dict[str, Any] | None = None
        self._run_config_tailed = False
        self.stale_after_s = float(
            str(self.settings.value("stale_after_s", DEFAULT_STALE_S) or DEFAULT_STALE_S)
        )

        self.banners = BannerBar()
        self.kpis = KpiStrip()
        self.plots = PlotsPanel()
        self.table = SpecimenTableView(self.document, settings=self.settings)
        self.table_model: SpecimenTableModel = self.table.model
        self._detail_row: int | None = None
        self.non_interactive = False  # a scripted screenshot: never ask the user anything
        self.detail = SpecimenDetail()
        self.table.specimen_selected.connect(self._user_selected)
        self._follow_latest = True  # the detail shows the newest result until a row is picked
        self._terms_msg = ""  # the status bar's reading-values message, while it shows
        # Following the newest result re-reads raw.jsonl and decodes a sheet image: at most
        # twice a second, however fast results stream in (the latest one always shows).
        self._detail_pending = False
        self._detail_cooldown = QTimer(self)
        self._detail_cooldown.setSingleShot(True)
        self._detail_cooldown.setInterval(DETAIL_FOLLOW_MS)
        self._detail_cooldown.timeout.connect(self._follow_detail)

        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.banners)
        self.replay = ReplayBar(self.document)
        self.replay.hide()
        lay.addWidget(self.replay)
        lay.addWidget(self.kpis)
        self.lower_split = QSplitter(Qt.Orientation.Horizontal)
        self.lower_split.addWidget(self.table)
        self.lower_split.addWidget(self.detail)
        # halves: the table carries the records' terms (and scrolls sideways to the rest),
        # the detail pane the sheet and every term of the selected record
        self.lower_split.setStretchFactor(0, 1)
        self.lower_split.setStretchFactor(1, 1)
        self.main_split = QSplitter(Qt.Orientation.Vertical)
        # plots stay readable on a laptop screen (at 1280x720 they were a strip a few px high)
        self.plots.setMinimumHeight(PLOTS_MIN_HEIGHT)
        self.main_split.setChildrenCollapsible(False)
        self.main_split.addWidget(self.plots)
        self.main_split.addWidget(self.lower_split)
        self.main_split.setStretchFactor(0, 2)
        self.main_split.setStretchFactor(1, 3)
        lay.addWidget(self.main_split, 1)
        self.setCentralWidget(central)

        self.setup = RunSetupPanel()  # scrolls its form itself; its run controls stay in sight
        self.setup_dock = QDockWidget("Run setup", self)
        self.setup_dock.setObjectName("setup_dock")
        self.setup_dock.setWidget(self.setup)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.setup_dock)
        self.event_log = EventLogPane()
        self.event_log.attach(self.document)
        self.log_dock = QDockWidget("Event log", self)
        self.log_dock.setObjectName("log_dock")
        self.log_dock.setWidget(self.event_log)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.resizeDocks([self.log_dock], [170], Qt.Orientation.Vertical)
        self.resizeDocks(
            [self.setup_dock],
            [self.setup.minimumSizeHint().width() + 30],
            Qt.Orientation.Horizontal,
        )

        self.setup.start_requested.connect(self.start_run)
        self.setup.mode_changed.connect(self._setup_mode_changed)
        self.setup.pause_toggled.connect(self._pause_toggled)
        self.setup.stop_requested.connect(self.stop_run)
        self.setup.resume_run_requested.connect(lambda d: self.start_run(resume_dir=Path(d)))
        self.document.refreshed.connect(self._refresh)
        self.document.flushed.connect(self.plots.flush)
        self.document.flushed.connect(self._follow_detail)
        self.document.terms_progress.connect(self._terms_progress)
        self.document.terms_ready.connect(self._terms_ready)
        self.document.reset_done.connect(self._on_reset)

        self.source_label = QLabel("No run")
        self.source_label.setTextFormat(Qt.TextFormat.PlainText)
        self.counts_label = QLabel("")
        self.counts_label.setTextFormat(Qt.TextFormat.PlainText)
        self.silence_label = QLabel("")
        self.silence_label.setTextFormat(Qt.TextFormat.PlainText)
        self.statusBar().addWidget(self.source_label, 1)
        self.load_progress = QProgressBar()
        self.load_progress.setMaximumWidth(220)
        self.load_progress.setFormat("loading %p%")
        self.load_progress.hide()
        self.bad_lines_btn = QPushButton("")
        self.bad_lines_btn.setFlat(True)
        self.bad_lines_btn.hide()
        self.bad_lines_btn.clicked.connect(self._show_bad_lines)
        self.statusBar().addPermanentWidget(self.load_progress)
        self.locate_cancel = QPushButton("Cancel locating")
        self.locate_cancel.setFlat(True)
        self.locate_cancel.hide()
        self.locate_cancel.clicked.connect(self.cancel_locate)
        self.statusBar().addPermanentWidget(self.locate_cancel)
        self.statusBar().addPermanentWidget(self.bad_lines_btn)
        self.statusBar().addPermanentWidget(self.silence_label)
        self.statusBar().addPermanentWidget(self.counts_label)
        self._bad_samples: list = []

        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(app_icon(), self)
            self.tray.setToolTip("herbdesk")
            self.tray.show()
        self._clock = QTimer(self)  # elapsed/ETA keep moving between events
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick_clock)
        self._clock.start()
        self._build_menus()
        self._restore()

    # ---------------------------------------------------------------- menus
    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        self.open_action = QAction("&Open run or log…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self._open_dialog)
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        tail_action = QAction("&Tail a log…", self)
        tail_action.setShortcut(QKeySequence("Ctrl+T"))
        tail_action.setToolTip("Follow a log that a headless run is writing")
        tail_action.triggered.connect(self._tail_dialog)
        file_menu.addAction(tail_action)
        tail_remote = QAction("Tail a &remote log over SSH…", self)
        tail_remote.triggered.connect(self._tail_remote_dialog)
        file_menu.addAction(tail_remote)
        connect = QAction("&Connect to a distributed run…", self)
        connect.setToolTip("Attach to a run on a Redis broker: redis://host:6379/0/<run_id>")
        connect.triggered.connect(self._connect_dialog)
        file_menu.addAction(connect)
        file_menu.addSeparator()
        self.export_action = QAction("&Export…", self)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.setToolTip("Write the records as CSV or a Darwin Core Archive")
        self.export_action.triggered.connect(self.export_dialog)
        file_menu.addAction(self.export_action)
        self.locate_action = QAction("&Locate images…", self)
        self.locate_action.setToolTip(
            "Find the sheets of an opened log whose image paths are missing or moved"
        )
        self.locate_action.triggered.connect(self._locate_dialog)
        file_menu.addAction(self.locate_action)
        shot = QAction("Save &screenshot…", self)
        shot.triggered.connect(self._screenshot_dialog)
        file_menu.addAction(shot)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        run_menu = mb.addMenu("&Run")
        self.start_action = QAction("&Start", self)
        self.start_action.setShortcut(QKeySequence("Ctrl+R"))
        # the same path as the Start button: with an opened run shown, the settings come first
        self.start_action.triggered.connect(self.setup.request_start)
        self.pause_action = QAction("&Pause / resume", self)
        self.pause_action.setShortcut(QKeySequence("Ctrl+P"))
        self.pause_action.triggered.connect(self.setup.pause_btn.toggle)
        self.stop_action = QAction("S&top", self)
        self.stop_action.setShortcut(QKeySequence("Ctrl+."))
        self.stop_action.triggered.connect(self.stop_run)
        for a in (self.start_action, self.pause_action, self.stop_action):
            run_menu.addAction(a)

        view = mb.addMenu("&View")
        view.addAction(self.setup_dock.toggleViewAction())
        view.addAction(self.log_dock.toggleViewAction())
        view.addMenu(self.table.columns_menu)  # also the table header's context menu
        view.addSeparator()
        # Ctrl+R is Run → Start: the review takes Ctrl+Shift+R
        self.review_action = QAction("&Review…", self)
        self.review_action.setShortcut(QKeySequence("Ctrl+Shift+R"))
        self.review_action.setStatusTip("Spot-check records term by term (docs/review.md)")
        self.review_action.triggered.connect(self.open_review)
        view.addAction(self.review_action)
        help_menu = mb.addMenu("&Help")
        about = QAction("&About herbdesk", self)
        about.triggered.connect(
            lambda: QMessageBox.about(
                self,
                "About herbdesk",
                f"herbdesk {__version__}\nRun and monitor Darwin Core extraction from "
                "herbarium specimen images, live.",
            )
        )
        help_menu.addAction(about)
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        for path in self._recent():
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda _=False, p=path: self.open_path(Path(p)))
        self.recent_menu.setEnabled(bool(self._recent()))

    def _recent(self) -> list[str]:
        val = self.settings.value("recent", [])
        if isinstance(val, str):
            return [val]
        return [str(v) for v in val] if isinstance(val, list) else []

    def _add_recent(self, path: Path) -> None:
        # absolute: a relative path stored here failed when the app started in another folder
        text = str(Path(path).absolute())
        items = [text] + [p for p in self._recent() if p != text]
        self.settings.setValue("recent", items[:MAX_RECENT])
        self._rebuild_recent()

    # ---------------------------------------------------------------- runs
    def start_run(self, resume_dir: Path | None = None) -> bool:
        """Start (or resume) a run from the setup form; False with a message if it cannot."""
        if self.worker is not None and self.worker.isRunning():
            return False
        try:
            config = self.setup.build_config(resume_dir=resume_dir if resume_dir else None)
            worker = RunWorker(config, self)
        except (ValueError, OSError) as exc:
            self.setup.show_settings()  # the form is where the problem gets fixed
            self.setup.set_message(str(exc))
            self.statusBar().showMessage(str(exc), 10000)
            return False
        self.setup.set_message("")
        self.setup.show_settings()  # the panel shows what this run is started with
        self.switch_source(worker.run_dir, f"Live run: {worker.run_dir}", live=True)
        if resume_dir:  # show the whole run: what was done before, then what comes now
            self._load_log(worker.run_dir / EVENTS)
        worker.events_emitted.connect(self.document.apply_events)
        worker.events_emitted.connect(self._budget_pause)
        worker.run_finished.connect(self._run_finished)
        self.worker = worker
        self._notified.clear()
        self.setup.set_running(True)
        self._add_recent(worker.run_dir)
        worker.start()
        return True

    def _pause_toggled(self, paused: bool) -> None:
        if self.worker is None:
            return
        if paused:
            self.worker.pause()
        else:
            try:
                self.worker.resume(self.setup.budget_usd())
            except ValueError as exc:
                self.statusBar().showMessage(str(exc), 10000)

    def _budget_pause(self, events: list) -> None:
        """A budget pause turns Pause into Resume: raise the Budget field, then press it."""
        for ev in events:
            if ev.event_type == "extraction.paused" and ev.data.get("reason") == "budget":
                btn = self.setup.pause_btn
                btn.blockSignals(True)
                btn.setChecked(True)
                btn.setText("Resume")
                btn.blockSignals(False)

    def stop_run(self) -> None:
        if self.worker is not None and self.worker.isRunning():
            self.worker.stop()
            self.statusBar().showMessage("Stopping: in-flight specimens finish…", 5000)

    def _run_finished(self, outcome: RunOutcome) -> None:
        self.setup.set_running(False)
        if self.worker is not None:
            self.worker.wait(2000)
            self.worker.deleteLater()
            self.worker = None
        self.document.flush()
        self.statusBar().showMessage(f"Run {outcome.status}: {outcome.message}", 15000)

    # ---------------------------------------------------------------- open
    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open event log", "", "Event logs (*.jsonl);;All files (*)"
        )
        if path:
            self.open_path(Path(path))

    def _pick_run(self, path: Path) -> Path | None:
        """A runs folder asks which of its runs to open (newest first); other paths as given.
        None: the user cancelled. Without a user to ask (a scripted screenshot), the newest."""
        from herbdesk.runstate.load import runs_in

        runs = runs_in(path)
        if not runs:
            return path
        from PySide6.QtWidgets import QInputDialog

        # offscreen, nobody could answer a dialog (a scripted render, a test)
        if self.non_interactive or QGuiApplication.platformName() == "offscreen":
            self.statusBar().showMessage(f"{path} holds {len(runs)} runs: opened the newest")
            return runs[0]
        names = [r.name for r in runs]
        name, ok = QInputDialog.getItem(
            self, "Open a run", f"{path} holds {len(runs)} runs (newest first):", names, 0, False
        )
        return runs[names.index(name)] if ok and name in names else None

    def open_path(self, path: Path) -> bool:
        """Open a run directory, events.jsonl or raw.jsonl; loads in the background.

        The opened run folds through the same RunState as a live one, so it looks the same.
        """
        if self.worker is not None and self.worker.isRunning():
            self.statusBar().showMessage("A run is in progress; stop it before opening a log.")
            return False
        from herbdesk.runstate.load import log_refusal, resolve_log

        path = Path(path)
        picked = self._pick_run(path)
        if picked is None:
            return False
        path = picked
        log = resolve_log(path)
        # a FIFO or a device (never read: it would not end), or a CSV or an image (no run):
        # refused as `summary` refuses it, the run shown before stays
        refusal = log_refusal(path)
        if refusal is not None:
            self.statusBar().showMessage(refusal, 10000)
            return False
        # the replay bar shows at once, empty: the layout stays still while the file loads
        # (a bar or banner appearing mid-load resized and repainted every plot)
        self.switch_source(log.parent, f"Opened: {log}", live=False)
        self.opened_log = log  # exported as it is (a raw.jsonl of any name: the original's)
        self._show_run_config(tailed=False)
        loader = LogLoader(log, self)
        loader.events_loaded.connect(self._loaded_events)
        loader.progress.connect(self._load_progress)
        loader.loaded.connect(self._load_done)
        self.loader = loader
        self.load_progress.setValue(0)
        self.load_progress.show()
        # the plots keep their last picture until the first rows arrive (a few ms): painting
        # them cleared, then again with the first rows, took ~80 ms of the GUI thread the
        # fold needed (pyqtgraph's axes are drawn in Python)
        self.plots.setUpdatesEnabled(False)
        self._add_recent(path)
        loader.start()
        return True

    # ---------------------------------------------------------------- review
    def open_review(self) -> bool:
        """View → Review…: the spot-check review of the shown run (herbdesk/ui/review.py),
        shown once its queue is prepared off this thread."""
        from herbdesk.ui.review import open_review

        return open_review(self)

    def is_preparing_review(self) -> bool:
        return self.review_loader is not None

    # ---------------------------------------------------------------- export
    def export_source(self) -> Path | None:
        """What File → Export… exports: the opened log, else the shown run's directory."""
        doc = self.document
        log = self.opened_log
        if log is not None and not doc.live and log.parent == doc.run_dir:
            return Path(log)
        return doc.run_dir

    def export_dialog(self) -> None:
        """Ask how to export (non-blocking, so a test or script can fill it in), then export."""
        from herbdesk.ui.export_dialog import ExportDialog

        source = self.export_source()
        if source is None:
            self.statusBar().showMessage("Nothing to export: start a run or open a log first.")
            return
        if self.exporter is not None and self.exporter.isRunning():
            self.statusBar().showMessage("An export is still being written.")
            return
        dialog = ExportDialog(source, self)
        dialog.accepted.connect(lambda: self.start_export(dialog.options()))
        self.export_box = dialog
        dialog.open()

    def start_export(self, options) -> None:
        from herbdesk.ui.export_dialog import ExportThread

        self.exporter = ExportThread(options, self)
        self.exporter.done.connect(self._export_done)
        self.statusBar().showMessage(f"Exporting to {options.out}…")
        self.exporter.start()

    def _export_done(self, result, error: str) -> None:
        if error:
            self.statusBar().showMessage(f"Export failed: {error}", 15000)
        else:
            text = result.message()
            self.statusBar().showMessage(text[:1].upper() + text[1:], 15000)

    # ---------------------------------------------------------------- tail
    def _tail_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Follow event log", "", "Event logs (*.jsonl);;All files (*)"
        )
        if path:
            self.tail(path)

    def _tail_remote_dialog(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        text, ok = QInputDialog.getText(
            self, "Tail a remote log", "user@host:/path/to/run/events.jsonl"
        )
        if ok and text.strip():
            self.tail(text.strip())

    def _connect_dialog(self) -> None:
        from PySide6.QtWidgets import QInputDialog, QLineEdit

        text, ok = QInputDialog.getText(
            self,
            "Connect to a distributed run",
            "redis://[user:password@]host:6379/0/<run_id>",
            QLineEdit.EchoMode.Normal,
            "redis://127.0.0.1:6379/0/",
        )
        if ok and text.strip():
            self.tail(text.strip())

    def tail(
        self,
        target: str,
        *,
        poll_interval: float | None = None,
        from_end: bool = False,
        identity_file: str | None = None,
    ) -> bool:
        """Follow a log another process writes; shown live, like a run started here."""
        if self.worker is not None and self.worker.isRunning():
            self.statusBar().showMessage("A run is in progress; stop it before tailing a log.")
            return False
        try:
            source = TailSource(
                target,
                poll_interval=poll_interval,
                from_end=from_end,
                identity_file=identity_file,
                parent=self,
            )
        except ValueError as exc:
            self.statusBar().showMessage(str(exc), 10000)
            return False
        self.switch_source(source.run_dir, f"Tail ({source.mode}): {source.target}", live=True)
        self._show_run_config(tailed=True)
        source.events_arrived.connect(self.document.apply_events)
        source.status_changed.connect(self._tail_status)
        self.tail_source = source
        if source.remote is None:
            self._add_recent(Path(target))
        source.start()
        return True

    def stop_tail(self) -> None:
        if self.tail_source is not None:
            self.tail_source.stop()
            self.tail_source.deleteLater()
            self.tail_source = None

    # ---------------------------------------------------------------- setup panel
    def _show_run_config(self, *, tailed: bool) -> None:
        """Show the new source's own configuration (none until its log tells it)."""
        self._run_config_tailed = tailed
        self._shown_config = None
        self.setup.show_run_config(None, None, tailed=tailed)
        self._setup_mode_changed(True)  # also when it already showed another run
        self._sync_run_config()

    def _sync_run_config(self) -> None:
        """Fill in the opened run's configuration once its extraction.started is folded.

        A replay that seeks back folds from nothing again: the configuration already shown
        stays (it is the same log's), so only a non-empty, different one replaces it.
        """
        if not self.setup.showing_run_config:
            return
        st = self.document.state
        if st.config and st.config is not self._shown_config:
            self._shown_config = st.config
            self.setup.show_run_config(st.config, st.run_id, tailed=self._run_config_tailed)

    def _setup_mode_changed(self, showing_run: bool) -> None:
        what = "followed" if self._run_config_tailed else "opened"
        self.setup_dock.setWindowTitle(
            f"Run setup — {what} run's configuration" if showing_run else "Run setup"
        )

    def _tail_status(self, text: str) -> None:
        self.source_label.setText(f"{self.document.source_label} — {text}")
        if self.tail_source is not None:
            self.document.set_bad_lines(self.tail_source.bad_lines)

    def _loaded_events(self, events: list) -> None:
        # batches are queued across threads: one a cancelled loader sent before it stopped
        # still arrives, and must not fold an old log into what the window shows now
        if self.loader is not None and self.sender() is self.loader:
            self.document.apply_events(events)

    def _cancel_loader(self) -> None:
        self.plots.setUpdatesEnabled(True)
        if self.loader is not None:
            self.loader.cancel()
            self.loader.wait()
            self.loader.deleteLater()
            self.loader = None
            self.load_progress.hide()

    def _load_progress(self, done: int, total: int) -> None:
        if self.loader is None or self.sender() is not self.loader:
            return
        value = int(100 * done / total) if total else 100
        if value != self.load_progress.value():
            # setValue repaints synchronously (~4 ms a time offscreen, a tenth of a second
            # over a 1M-event load); one ordinary paint is scheduled instead
            self.load_progress.setUpdatesEnabled(False)
            self.load_progress.setValue(value)
            self.load_progress.setUpdatesEnabled(True)
            self.load_progress.update()

    def _load_done(self, stats) -> None:
        if self.loader is None or self.sender() is not self.loader:
            return  # a cancelled load's end, queued before it stopped: not this window's now
        try:
            self.load_progress.hide()
            self.plots.setUpdatesEnabled(True)
            self.replay.load(self.document.events)
            self.replay.show()
            self._set_bad_lines(stats)
            # banners first: the layout settles before the views draw the whole file, once
            self.banners.update_from(self.document.state, self.document.run_dir)
            self.document.flush()
            self._relocate_remembered()
        finally:  # a view that fails to show the file must not leave the window "loading"
            if self.loader is not None:
                self.loader.wait()
                self.loader.deleteLater()
                self.loader = None
            drop_source_cache()

    def _terms_progress(self, done: int, total: int) -> None:
        pct = 100 * done // total if total else 100
        waiting = self.table_model.waiting()
        waits = " (the sort or search asked for runs when done)" if waiting else ""
        self._terms_msg = f"Reading the records' values for search and sort: {pct} %{waits}"
        self.statusBar().showMessage(self._terms_msg)

    def _terms_ready(self) -> None:
        if self._terms_msg and self.statusBar().currentMessage() == self._terms_msg:
            self.statusBar().showMessage("Every value read: search and sort cover all terms", 5000)

    def is_loading(self) -> bool:
        return self.loader is not None

    def _set_bad_lines(self, stats) -> None:
        self.document.set_bad_lines(stats.bad_lines)
        self._bad_samples = list(stats.bad_samples)
        if stats.bad_lines:
            self.bad_lines_btn.setText(f"⚠ {stats.bad_lines} bad line(s) skipped")
            self.bad_lines_btn.show()
        else:
            self.bad_lines_btn.hide()

    def _show_bad_lines(self) -> None:
        lines = [
            f"line {b.line_no} (byte {b.offset}): {b.reason}\n    {b.excerpt}"
            for b in self._bad_samples
        ]
        box = QMessageBox(self)
        box.setWindowTitle("Skipped lines")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setText(f"{len(self._bad_samples)} skipped line(s) (the first ones are listed):")
        box.setDetailedText("\n".join(lines))
        box.exec()

    def _load_log(self, log: Path) -> None:
        stats = ReadStats()
        batch = []
        for ev in iter_events(log, stats):
            batch.append(ev)
            if len(batch) >= 5000:
                self.document.apply_events(batch)
                batch = []
        if batch:
            self.document.apply_events(batch)
        self._set_bad_lines(stats)
        self.document.flush()

    # ---------------------------------------------------------------- refresh
    def _on_reset(self) -> None:
        self._notified.clear()
        self.banners.clear()
        self._detail_row = None
        self._follow_latest = True
        self._detail_pending = False
        self._detail_cooldown.stop()
        self.detail.clear()
        self.plots.clear()
        self.source_label.setText(self.document.source_label)

    def _tick_clock(self) -> None:
        st = self.document.state
        if st.status == "running" and not self.check_writer_dead():
            # a dead run's elapsed time and ETA stop counting
            self.kpis.update_from(st, live=self.document.live)
        self.check_staleness()

    def check_writer_dead(self) -> bool:
        """Red banner while a live run's writer on this host is gone (known from its pid)."""
        doc = self.document
        ws = None
        if doc.live and doc.run_dir is not None and doc.state.status == "running":
            from herbdesk.extraction.runlock import writer_status

            ws = writer_status(doc.run_dir)
        if ws is None or ws.state != "dead":
            self.banners.remove_banner("dead")
            return False
        self.banners.show_banner(
            "dead",
            "error",
            f"The run's writer ({ws.describe()}) is gone: the run died without finishing. "
            "Resume it to continue where it stopped.",
        )
        return True

    def check_staleness(self) -> None:
        """'last event N s ago'; amber banner and a notification when a live run goes silent."""
        st = self.document.state
        silent = self.document.silent_for()
        if silent is None or st.status in ("completed", "failed", "cancelled"):
            self.silence_label.setText("")
            self.banners.remove_banner("stale")
            return
        from herbdesk.ui.formatting import duration

        self.silence_label.setText(f"last event {duration(silent)} ago")
        if silent >= self.stale_after_s and not st.paused:
            text = (
                f"No event for {duration(silent)}: the run has not finished but has gone "
                "silent. It may have died (process killed, machine asleep, disk or network gone)."
            )
            self.banners.show_banner("stale", "warning", text)
            if "stale" not in self._notified and self.tray is not None:
                self._notified.add("stale")
                self.tray.showMessage(
                    "herbdesk: run silent", text, QSystemTrayIcon.MessageIcon.Warning
                )
        else:
            self.banners.remove_banner("stale")
            self._notified.discard("stale")

    def _refresh(self, changed: np.ndarray) -> None:
        st = self.document.state
        if self._follow_latest and st.last_finished_row is not None:
            if st.last_finished_row != self._detail_row or row_in(changed, st.last_finished_row):
                self._detail_pending = True
                if not self._detail_cooldown.isActive():
                    self._follow_detail()
        elif self._detail_row is not None and row_in(changed, self._detail_row):
            self._show_detail(self._detail_row)
        self._sync_run_config()
        if not self.plots.updatesEnabled() and (st.rows or not self.is_loading()):
            self.plots.setUpdatesEnabled(True)  # the first rows of an opened log are here
        self.kpis.update_from(st, live=self.document.live)
        loading = self.is_loading()
        self.plots.update_from(st, loading=loading)
        if not loading:  # banners come with the whole file (see open_path)
            self.banners.update_from(st, self.document.run_dir)
        bad = f" · {st.bad_lines} bad line(s) skipped" if st.bad_lines else ""
        self.counts_label.setText(f"{st.events:,} events{bad}")
        self._notify(st)

    def _notify(self, st) -> None:
        if self.tray is None or not self.document.live:
            return
        for cp in st.checkpoints:
            key = f"cp{cp.get('checkpoint')}"
            if key not in self._notified and cp.get("status") == "failed":
                self._notified.add(key)
                self.tray.showMessage(
                    "herbdesk: checkpoint failed",
                    f"Run {st.run_id} halted: {whole_percent(cp.get('success_rate'))} success.",
                    QSystemTrayIcon.MessageIcon.Critical,
                )
        if st.status in ("completed", "failed", "cancelled") and "end" not in self._notified:
            self._notified.add("end")
            if st.paused_at_budget:  # a pause, not a failure
                self.tray.showMessage(
                    "herbdesk: run paused at its budget",
                    st.budget_pause_text(self.document.run_dir or "RUN_DIR"),
                    QSystemTrayIcon.MessageIcon.Warning,
                )
            else:
                self.tray.showMessage(f"herbdesk: run {st.status}", st.message or "")

    def _follow_detail(self) -> None:
        """Show the newest result if one is waiting, then hold further updates a moment."""
        st = self.document.state
        if self._detail_pending and self._follow_latest and st.last_finished_row is not None:
            self._detail_pending = False
            self._show_detail(st.last_finished_row)
            self._detail_cooldown.start()

    def _user_selected(self, row: int) -> None:
        self._follow_latest = False
        self._detail_pending = False
        self._show_detail(row)

    def _show_detail(self, row: int) -> None:
        self._detail_row = row
        doc = self.document
        self.detail.show_specimen(doc.state, row, doc.raw_index, doc.located)

    # ---------------------------------------------------------------- locate images
    def _locate_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder holding the sheets")
        if d:
            self.locate_images(Path(d))

    def locate_images(self, folder: Path, remember: bool = True) -> bool:
        """Find the sheets whose recorded paths are missing under `folder` (by file name,
        else by content hash) and show them; the folder is remembered for this log.

        Searched on a thread (hashing a big folder takes minutes): progress in the status
        bar, Cancel locating there; the result is applied in `_locate_done`. A search
        already going is cancelled first. False if nothing is shown to search for."""
        st = self.document.state
        if not st.rows:
            return False
        self.cancel_locate()
        # a snapshot (a live run's columns grow meanwhile); zip: ~50 ms at a million rows
        rows = list(zip(st.specimen_id, st.image, st.path, strict=False))
        locator = LocateThread(Path(folder), rows, self)
        locator.progress.connect(self._locate_progress)
        locator.done.connect(self._locate_done)
        self.locator = locator
        self._locate_remember = remember
        self._locate_log = self.opened_log  # the log the folder is remembered for
        self.statusBar().showMessage(f"Locating sheets in {folder}…")
        self.locate_cancel.show()
        locator.start()
        return True

    def is_locating(self) -> bool:
        return self.locator is not None

    def cancel_locate(self) -> None:
        """Stop a search: nothing it found is applied. Not waited for (the file being
        hashed may be large, or on a drive that hangs): it stops before the next file and
        is deleted once its thread ended."""
        locator = self.locator
        if locator is None:
            return
        locator.cancel()
        locator.finished.connect(locator.deleteLater)
        self.locator = None
        self.locate_cancel.hide()
        self.statusBar().showMessage("Locating cancelled: nothing changed.", 8000)

    def _locate_progress(self, done: int, total: int) -> None:
        locator = self.locator
        if locator is None or self.sender() is not locator:
            return  # a cancelled search's last report, queued before it stopped
        self.statusBar().showMessage(
            f"Locating sheets in {locator.folder}: {done:,} of {total:,} file(s) hashed…"
        )

    def _locate_done(self, found, error: str) -> None:
        locator = self.locator
        if locator is None or self.sender() is not locator:
            return  # cancelled (the window or another source moved on): not applied
        locator.wait()  # it has emitted its last signal: ends at once
        locator.deleteLater()
        self.locator = None
        self.locate_cancel.hide()
        folder = locator.folder
        if error or found is None:
            self.statusBar().showMessage(error or "Locating cancelled: nothing changed.", 10000)
            return
        if not found.wanted:
            self.statusBar().showMessage("Every sheet's recorded path is there.", 8000)
            return
        self.document.located.update(found.paths)
        log = self._locate_log
        if self._locate_remember and log is not None and found.paths:
            self.settings.setValue(f"locate/{log.resolve()}", str(folder.resolve()))
        self.statusBar().showMessage(found.message(folder), 15000)
        if self._detail_row is not None:
            self._show_detail(self._detail_row)
        self.located.emit(found)

    def _relocate_remembered(self) -> None:
        """An opened log whose sheets were located before finds them there again."""
        log = self.opened_log
        if log is None:
            return
        folder = self.settings.value(f"locate/{log.resolve()}")
        if folder and Path(str(folder)).is_dir():
            self.locate_images(Path(str(folder)), remember=False)

    # ---------------------------------------------------------------- screenshots
    def save_screenshot(self, path: Path, size: QSize | None = None) -> bool:
        if size is not None:
            self.resize(size)
            if self.settings.value(f"{self._layout_key()}/state") is None:
                self._default_docks()  # as a first start at that size lays them out
        self.document.flush()  # may select another specimen
        self.detail.wait_for_image(10000)  # its sheet is decoded off the GUI thread
        for _ in range(5):
            QApplication.processEvents()
            time.sleep(0.02)
        self.plots.flush()  # what the settled layout changed (the term chart's rows)
        return self.grab().save(str(path))

    def _screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save screenshot", "herbdesk.png", "PNG (*.png)"
        )
        if path:
            self.save_screenshot(Path(path))

    # ---------------------------------------------------------------- persistence
    def _layout_key(self) -> str:
        """Settings prefix of the layout for this screen size: docks and splitters laid out
        on a laptop screen are not forced on a large monitor, and back (each size keeps its
        own)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return "window"
        size = screen.availableGeometry().size()
        return f"window/{size.width()}x{size.height()}"

    def _default_docks(self) -> None:
        """The docks' first size at a screen size: the setup dock at most a quarter of the
        width, the event log a sixth of the height (on a laptop screen the table and the
        detail pane need what is left)."""
        width = min(self.setup.minimumSizeHint().width() + 30, max(300, self.width() // 4))
        self.resizeDocks([self.setup_dock], [width], Qt.Orientation.Horizontal)
        height = min(170, max(110, self.height() // 6))
        self.resizeDocks([self.log_dock], [height], Qt.Orientation.Vertical)

    def _restore(self) -> None:
        s = self.settings
        geo = s.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1440, 900)
        key = self._layout_key()
        st = s.value(f"{key}/state")
        if st is not None:
            self.restoreState(st)
        else:
            self._default_docks()
        for name, split in (("main_split", self.main_split), ("lower_split", self.lower_split)):
            val = s.value(f"{key}/{name}")
            if val is not None:
                split.restoreState(val)
        self.setup.load_settings(s)

    def _save(self) -> None:
        s = self.settings
        key = self._layout_key()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue(f"{key}/state", self.saveState())
        s.setValue(f"{key}/main_split", self.main_split.saveState())
        s.setValue(f"{key}/lower_split", self.lower_split.saveState())
        self.setup.save_settings(s)
        s.sync()

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        """A dropped log or run directory opens; a folder of images goes to the setup form."""
        from herbdesk.extraction.images import IMAGE_SUFFIXES

        for url in event.mimeData().urls():
            p = Path(url.toLocalFile())
            is_run = p.is_dir() and ((p / EVENTS).exists() or (p / RAW).exists())
            if p.suffix == ".jsonl" or is_run:
                self.open_path(p)
            elif p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES:
                self.setup.show_settings()  # images dropped are for the next run
                self.setup.images.setText(str(p if p.is_dir() else p.parent))
            else:
                continue
            event.acceptProposedAction()
            return

    def release_sources(self) -> None:
        """Let go of what feeds the shown run: a log still loading is cancelled (its queued
        batches are dropped) and a followed log is no longer followed."""
        self._cancel_loader()
        self.cancel_locate()  # its sheets are the old source's
        self.stop_tail()

    def switch_source(self, run_dir: Path | None, title: str, *, live: bool) -> None:
        """The one way to show a new source (a live run, an opened log, a tail): release the
        old one, then reset the document, so nothing of the old source reaches the new one
        (Start pressed while a log loaded once folded the old log into the live run)."""
        self.release_sources()
        self.replay.clear()
        self.replay.setVisible(not live)  # opened logs step through; live ones do not
        self.document.reset(run_dir, title, live=live)

    def shutdown(self, timeout_ms: int = 60000, reason: str = USER_STOP) -> None:
        """Stop a running run gracefully and wait for its files to close; `reason` is what
        its end event says stopped it (a scripted exit or a signal is not the user)."""
        if self.review_window is not None or self.review_loader is not None:
            from herbdesk.ui.review import close_review

            close_review(self)  # lets go of the log it appends to
        self.release_sources()
        self.document.stop_preparing(wait_ms=timeout_ms)
        for locator in self.findChildren(LocateThread):  # cancelled ones finishing a file
            locator.wait(timeout_ms)
        if self.exporter is not None and self.exporter.isRunning():  # cancelled: no temp left
            self.exporter.cancel()
            self.exporter.wait(timeout_ms)
        if self.worker is not None and self.worker.isRunning():
            self.worker.stop(reason)
            self.worker.wait(timeout_ms)
        wait_for_decodes(2000)  # no sheet decode left running into interpreter exit

    def force_close(self) -> None:
        """Close without asking (signals, scripted exits); the run was already stopped."""
        self._closing_forced = True
        self.close()

    def closeEvent(self, event) -> None:
        forced = getattr(self, "_closing_forced", False)
        if not forced and self.worker is not None and self.worker.isRunning():
            answer = QMessageBox.question(
                self,
                "Stop the run?",
                "A run is in progress. Stop it gracefully (in-flight specimens finish and are "
                "recorded) and quit?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.shutdown()
        self._save()
        if self.tray is not None:
            self.tray.hide()
        super().closeEvent(event)
