"""Follow an events.jsonl that another process appends to, locally or on a network mount.

Lessons from lnav/klogg and TensorBoard: a partial last line is held until its newline arrives,
a shrunken file is read again from the start, a replaced or rotated path is reopened after the
old handle is drained, a bad line is counted and skipped, and on network filesystems (where
inotify never hears about writes made by other hosts) the file is polled with `stat`.
Qt-free: callbacks run on the follower's own thread; the GUI hands them to a signal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from herbdesk.events.codec import decode
from herbdesk.events.reader import ReadStats, open_regular
from herbdesk.events.types import Event

log = logging.getLogger(__name__)

Mode = Literal["auto", "watch", "poll"]
OnEvents = Callable[[list[Event]], None]
LineDecoder = Callable[[bytes], Event]

WAITING = "waiting_for_file"
FOLLOWING = "following"
DELETED = "deleted"
RECONNECTING = "reconnecting"  # ssh only
STOPPED = "stopped"

DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
READ_SIZE = 256 * 1024
MAX_BATCH = 4096
SAFETY_INTERVAL = 1.0  # watch mode: a stat this often, in case a notification never comes

# Filesystems where inotify misses writes made elsewhere (other hosts, the VM host, FUSE daemons).
_NETWORK_FS = (
    "nfs nfs4 cifs smb smb2 smb3 smbfs ncpfs 9p afs openafs ceph glusterfs lustre gpfs beegfs "
    "orangefs davfs coda sshfs virtiofs vboxsf vmhgfs prl_fs fuse"
)
NETWORK_FS_TYPES = frozenset(_NETWORK_FS.split())


@dataclass
class TailStats(ReadStats):
    """ReadStats plus what following adds: skipped huge lines, file switches, bytes, reconnects."""

    oversized_lines: int = 0
    truncations: int = 0
    rotations: int = 0
    reopens: int = 0
    bytes_read: int = 0
    reconnects: int = 0


@dataclass(frozen=True)
class TailStatus:
    """A state change or a notable happening (`change`: truncated, rotated, error, …)."""

    state: str
    source: str
    offset: int
    message: str = ""
    change: str = ""


OnStatus = Callable[[TailStatus], None]


class LineAssembler:
    """Turns byte chunks into events: holds the partial last line, caps huge lines.

    `offset` is the byte just past the last complete line, i.e. where a reader resumes.
    Memory stays below max_line_bytes plus one chunk: an oversized line is dropped as it streams.
    `control(line)` may claim a complete line (ssh uses it for in-band `tail:` diagnostics);
    a claimed line does not advance the offset.
    """

    def __init__(
        self,
        stats: TailStats,
        decoder: LineDecoder,
        max_line_bytes: int,
        control: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.stats = stats
        self._decoder = decoder
        self._max = max_line_bytes
        self._control = control
        self._buf = bytearray()
        self._pending = 0  # bytes after `offset` seen so far (held or skipped)
        self._skipping = False
        self._count_skip = True
        self._line_no = 0
        self.offset = 0

    def reset(self, offset: int = 0, *, resync: bool = False) -> None:
        """Forget the partial line; with resync, drop bytes up to the next newline uncounted."""
        self._buf = bytearray()
        self._pending = 0
        self._skipping = resync
        self._count_skip = not resync
        self._line_no = 0
        self.offset = offset

    def feed(self, chunk: bytes, out: list[Event]) -> None:
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                break
            size = self._pending + (nl - start) + 1
            if self._skipping:
                self._skipping = False
                self._line_no += 1
                self._pending = 0
                self.offset += size
            else:
                line = bytes(self._buf) + chunk[start:nl] if self._buf else chunk[start:nl]
                self._buf = bytearray()
                self._pending = 0
                if len(line) > self._max:
                    self.stats.oversized_lines += 1
                    self._line_no += 1
                    self.offset += size
                elif self._control is not None and self._control(line):
                    pass  # the handler adjusts `offset` itself if it has to
                else:
                    self._line_no += 1
                    self._emit(line, self.offset, out)
                    self.offset += size
            start = nl + 1
        rest = len(chunk) - start
        if not rest:
            return
        self._pending += rest
        if self._skipping:
            return
        self._buf += chunk[start:]
        if len(self._buf) > self._max:
            self._buf = bytearray()  # a fresh object: the old one's memory goes back
            self._skipping = True
            self.stats.oversized_lines += 1

    def flush_final(self, out: list[Event]) -> None:
        """The file is finished (rotated away): a last line without newline still counts."""
        if self._buf and not self._skipping:
            self._line_no += 1
            self._emit(bytes(self._buf), self.offset, out)
        self.offset += self._pending
        self._buf = bytearray()
        self._pending = 0
        self._skipping = False

    def count_bad(self, raw: bytes, reason: str) -> None:
        """Record a torn fragment that a control handler split off a line."""
        if raw.strip():
            self.stats.lines += 1
            self.stats.record_bad(self._line_no, self.offset, reason, raw)

    def _emit(self, raw: bytes, start: int, out: list[Event]) -> None:
        line = raw.strip()
        if not line:
            return
        self.stats.lines += 1
        try:
            ev = self._decoder(line)
        except Exception as exc:  # BadLine, or whatever a custom decoder raises: skip, count
            self.stats.record_bad(self._line_no, start, str(exc) or type(exc).__name__, line)
            return
        self.stats.events += 1
        out.append(ev)


# --------------------------------------------------------------------- filesystem type


def _unescape_mount(field: str) -> str:
    r"""Mount points in /proc escape space, tab, newline and backslash as \040 \011 \012 \134."""
    for code, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, ch)
    return field


def parse_mounts(text: str) -> list[tuple[str, str]]:
    """(mount point, fs type) pairs from /proc/self/mountinfo or /proc/mounts text, in order."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        parts = line.split()
        if " - " in line and len(parts) >= 7 and "-" in parts[6:]:
            sep = parts.index("-", 6)  # mountinfo: optional fields end at a lone "-"
            if sep + 1 < len(parts):
                out.append((_unescape_mount(parts[4]), parts[sep + 1]))
        elif len(parts) >= 3:  # /proc/mounts: source mountpoint fstype options …
            out.append((_unescape_mount(parts[1]), parts[2]))
    return out


def fs_type_of(path: str | os.PathLike[str], mounts_text: str | None = None) -> str | None:
    """The fs type of the mount holding `path` (longest mount-point prefix; later mounts win)."""
    if mounts_text is None:
        mounts_text = _read_mounts()
        if mounts_text is None:
            return None
    p = Path(os.path.abspath(path))
    missing: list[str] = []
    while not p.exists() and p.parent != p:  # resolve symlinks of the part that exists
        missing.insert(0, p.name)
        p = p.parent
    real = os.path.join(os.path.realpath(p), *missing) if missing else os.path.realpath(p)
    best: tuple[int, str] | None = None
    for mount_point, fstype in parse_mounts(mounts_text):
        mp = mount_point.rstrip("/") or "/"
        inside = mp == "/" or real == mp or real.startswith(mp + "/")
        if inside and (best is None or len(mp) >= best[0]):
            best = (len(mp), fstype)
    return best[1] if best else None


def _read_mounts() -> str | None:
    for name in ("/proc/self/mountinfo", "/proc/mounts"):
        try:
            with open(name, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            continue
    return None


def is_network_fs(fstype: str | None) -> bool:
    """True for filesystems where change notifications cannot be trusted (poll them)."""
    if not fstype:
        return False
    return fstype in NETWORK_FS_TYPES or fstype.startswith("fuse.")


def choose_mode(path: str | os.PathLike[str], mounts_text: str | None = None) -> str:
    """`poll` on a network mount, `watch` elsewhere (and where mounts cannot be read)."""
    if mounts_text is None and not sys.platform.startswith("linux"):
        return "watch"
    return "poll" if is_network_fs(fs_type_of(path, mounts_text)) else "watch"


# ------------------------------------------------------------------------- follower


class TailFollower:
    """Follows one path on its own thread; `on_events` gets batches, `on_status` changes.

    Reads start at `start_offset` (or at the end with `from_end`); after a truncation or a
    switch to a new file, at 0. Callbacks run on the follower thread and must not block long.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        on_events: OnEvents,
        *,
        on_status: OnStatus | None = None,
        mode: Mode = "auto",
        poll_interval: float = 1.0,
        decoder: LineDecoder = decode,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        start_offset: int = 0,
        from_end: bool = False,
        safety_interval: float = SAFETY_INTERVAL,
        max_batch: int = MAX_BATCH,
    ) -> None:
        if mode not in ("auto", "watch", "poll"):
            raise ValueError(f"mode must be auto, watch or poll, not {mode!r}")
        self.path = Path(path).absolute()
        self._on_events = on_events
        self._on_status = on_status
        self.requested_mode: str = mode
        self.mode: str = choose_mode(self.path) if mode == "auto" else mode
        self.poll_interval = max(0.01, poll_interval)
        self.safety_interval = max(0.01, safety_interval)
        self._max_batch = max(1, max_batch)
        self._start_offset = max(0, start_offset)
        self._from_end = from_end
        self.stats = TailStats()
        self._asm = LineAssembler(self.stats, decoder, max(1, max_line_bytes))
        self.state = WAITING
        self._reported: str | None = None
        self._fh: Any = None  # unbuffered binary file
        self._ident: tuple[int, int] | None = None
        self._pos = 0
        self._opened_once = False
        self._caught_up = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: Any = None
        self._watched_dir: tuple[int, int] | None = None

    # ----------------------------------------------------------------- public
    @property
    def offset(self) -> int:
        """Byte offset just past the last complete line delivered (or skipped)."""
        return self._asm.offset

    @property
    def caught_up(self) -> bool:
        """True once everything the file held at the last wake-up has been delivered."""
        return self._caught_up

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("TailFollower already started")
        if self._from_end:  # "from now on" means from this call; a missing file is all new
            try:
                self._start_offset = os.stat(self.path).st_size
            except OSError:
                self._start_offset = 0
            self._from_end = False
        self._thread = threading.Thread(target=self._run, name="herbdesk-tail", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following; the thread's last callback is the `stopped` status, before we return."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wake(self) -> None:
        """Check the file now (e.g. the user pressed refresh)."""
        self._wake.set()

    # ----------------------------------------------------------------- thread
    def _run(self) -> None:
        try:
            if self.mode == "watch":
                self._ensure_watch()
            while not self._stop.is_set():
                self._wake.clear()
                self._cycle()
                if self.mode == "watch":
                    self._ensure_watch()
                    self._wake.wait(self.safety_interval)
                else:
                    self._wake.wait(self.poll_interval)
        except Exception as exc:  # a bug must not vanish with the thread
            log.exception("tail of %s failed", self.path)
            self._status(STOPPED, f"follower failed: {exc}", "error")
        finally:
            self._stop_watch()
            self._close()
            if self.state != STOPPED:
                self._status(STOPPED, "stopped")

    def _cycle(self) -> None:
        out: list[Event] = []
        if self._fh is None and not self._open(out):
            self._deliver(out)
            self._caught_up = True
            return
        self._check_truncated()
        self._read_available(out)
        try:
            st = os.stat(self.path)
            ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            ident = None
        except OSError as exc:
            self._status(self.state, f"cannot stat {self.path}: {exc}", "error")
            ident = self._ident
        if self._fh is None:
            pass  # a read error closed it; reopened next cycle
        elif ident is None:
            if self.state != DELETED:
                self._status(DELETED, f"{self.path} was deleted or moved away; waiting for it")
        elif ident != self._ident:
            self._read_available(out)  # what the old handle still holds comes first
            self._asm.flush_final(out)
            self._close()
            self.stats.rotations += 1
            self._open(out, change="rotated")
        elif self.state != FOLLOWING:
            self._status(FOLLOWING, f"following {self.path}")
        self._deliver(out)
        self._caught_up = True

    def _open(self, out: list[Event], change: str = "") -> bool:
        try:
            # kept open across cycles; a FIFO or device put in the log's place is refused, not
            # read (a FIFO would block this thread, /dev/zero would never end)
            fh = open_regular(self.path, buffering=0)
        except FileNotFoundError:
            state = DELETED if self._opened_once else WAITING
            if self._reported != state:
                self._status(state, f"waiting for {self.path} to appear")
            return False
        except OSError as exc:
            if self._reported != WAITING:
                self._status(WAITING, f"cannot open {self.path}: {exc}", "error")
            return False
        st = os.fstat(fh.fileno())
        ident = (st.st_dev, st.st_ino)
        if self._opened_once and ident == self._ident and st.st_size >= self._pos:
            # the same file again (after a read error): carry on where we were
            fh.seek(self._pos)
            self._fh = fh
            self.stats.reopens += 1
            self._status(FOLLOWING, f"following {self.path} again", "reopened")
            self._read_available(out)
            return True
        start, resync = 0, False
        if not self._opened_once:
            start = self._start_offset
            if start > st.st_size:
                start = 0  # shorter than where we were asked to start: not the same file
            if start > 0:
                fh.seek(start - 1)
                resync = fh.read(1) != b"\n"  # mid-line: the rest of that line is not ours
        else:
            self.stats.reopens += 1
        fh.seek(start)
        self._fh, self._ident, self._pos = fh, ident, start
        self._asm.reset(start, resync=resync)
        first = not self._opened_once
        self._opened_once = True
        msg = f"following {self.path}" if first else f"following a new file at {self.path}"
        self._status(FOLLOWING, msg, change)
        self._read_available(out)
        return True

    def _check_truncated(self) -> None:
        try:
            size = os.fstat(self._fh.fileno()).st_size
        except OSError:
            return
        if size < self._pos:
            self.stats.truncations += 1
            self._fh.seek(0)
            self._pos = 0
            self._asm.reset(0)
            self._status(
                FOLLOWING, f"{self.path} was truncated; reading from the start", "truncated"
            )

    def _read_available(self, out: list[Event]) -> None:
        while not self._stop.is_set():
            try:
                chunk = self._fh.read(READ_SIZE)
            except OSError as exc:  # e.g. ESTALE on NFS: reopen by path next time
                self._status(self.state, f"read error: {exc}; reopening", "error")
                self._close()
                return
            if not chunk:
                return
            self._caught_up = False
            self._pos += len(chunk)
            self.stats.bytes_read += len(chunk)
            self._asm.feed(chunk, out)
            if len(out) >= self._max_batch:
                self._deliver(out)

    def _deliver(self, out: list[Event]) -> None:
        if not out or self._stop.is_set():
            out.clear()
            return
        batch = list(out)
        out.clear()
        try:
            self._on_events(batch)
        except Exception:  # a consumer bug must not stop the follow
            log.exception("on_events callback failed")

    def _status(self, state: str, message: str, change: str = "") -> None:
        self.state = self._reported = state
        if self._on_status is None:
            return
        try:
            self._on_status(TailStatus(state, str(self.path), self.offset, message, change))
        except Exception:
            log.exception("on_status callback failed")

    def _close(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None

    # ------------------------------------------------------------------ watch
    def _ensure_watch(self) -> None:
        """(Re)arm inotify on the parent directory; until that works the safety stat covers."""
        directory = self.path.parent
        try:
            st = os.stat(directory)
        except OSError:
            self._stop_watch()
            return
        ident = (st.st_dev, st.st_ino)
        if self._observer is not None and ident == self._watched_dir:
            return
        self._stop_watch()
        try:
            self._observer = _start_observer(directory, self.path.name, self._wake.set)
            self._watched_dir = ident
        except Exception as exc:  # inotify limits (ENOSPC), no watchdog backend: poll instead
            self._observer = None
            self.mode = "poll"
            self.poll_interval = min(self.poll_interval, self.safety_interval)
            msg = f"cannot watch {directory} ({exc}); polling every {self.poll_interval:g} s"
            self._status(self.state, msg, "watch-failed")

    def _stop_watch(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(2.0)
            self._observer = None
            self._watched_dir = None


def _start_observer(directory: Path, name: str, wake: Callable[[], None]) -> Any:
    from watchdog.events import (
        FileClosedEvent,
        FileCreatedEvent,
        FileDeletedEvent,
        FileModifiedEvent,
        FileMovedEvent,
        FileSystemEvent,
        FileSystemEventHandler,
    )
    from watchdog.observers import Observer

    class _Hint(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            for p in (event.src_path, getattr(event, "dest_path", "")):
                if p and os.path.basename(os.fsdecode(p)) == name:
                    wake()
                    return

    kinds: Sequence[type[FileSystemEvent]] = (
        FileModifiedEvent,
        FileCreatedEvent,
        FileDeletedEvent,
        FileMovedEvent,
        FileClosedEvent,
    )
    observer = Observer()
    observer.daemon = True
    observer.schedule(_Hint(), str(directory), recursive=False, event_filter=list(kinds))
    observer.start()
    return observer
