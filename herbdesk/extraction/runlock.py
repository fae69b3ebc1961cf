"""One writer per run directory: an exclusive flock on `run.lock` for the whole run.

The lock file holds who took it ({host, pid, started}) so a second process can say who
holds the directory and since when. flock belongs to the open file: it goes with the holder's
process, so a crashed or SIGKILLed writer never leaves the directory locked (the file stays,
the lock does not). The same record goes to run.json as `writer`, and the holder touches the
lock file every HEARTBEAT_S (its mtime is the heartbeat) so a reader that sees the run
directory can tell a quiet run from a dead one (`writer_state`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from herbdesk.events.types import utc_now_iso

LOCK = "run.lock"
HEARTBEAT_S = 30.0


class RunDirInUseError(OSError):
    """Another process writes this run directory (an OSError: cli and app show it as such)."""

    def __init__(self, run_dir: Path, holder: dict[str, Any]) -> None:
        super().__init__(errno.EBUSY, "run directory in use")
        self.run_dir = run_dir
        self.holder = holder

    def __str__(self) -> str:
        h = self.holder
        who = (
            f"herbdesk pid {h.get('pid')} on {h.get('host')} since {h.get('started')}"
            if h.get("pid")
            else "another herbdesk process (it is just starting)"
        )
        return (
            f"{self.run_dir} is in use by {who}; wait for that run to end or stop it, "
            "then --resume it (one writer per run directory)"
        )


def writer_record() -> dict[str, Any]:
    """This process as a run's writer."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": utc_now_iso()}


class RunLock:
    """Held from `acquire` to `release`; refuses with RunDirInUseError while another holds it."""

    def __init__(self, path: Path, fd: int, holder: dict[str, Any]) -> None:
        self.path = path
        self.holder = holder
        self._fd: int | None = fd
        self._stop = threading.Event()
        self._fd_lock = threading.Lock()
        # the thread holds no reference to self, so an abandoned lock can still be collected
        threading.Thread(
            target=_heartbeat,
            args=(fd, self._stop, self._fd_lock),
            name="herbdesk-heartbeat",
            daemon=True,
        ).start()

    @classmethod
    def acquire(cls, run_dir: Path) -> RunLock:
        path = Path(run_dir) / LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = read_holder(run_dir)
            os.close(fd)
            raise RunDirInUseError(Path(run_dir), holder) from None
        except BaseException:
            os.close(fd)
            raise
        holder = writer_record()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, orjson.dumps(holder, option=orjson.OPT_APPEND_NEWLINE), 0)
        except OSError:
            os.close(fd)
            raise
        return cls(path, fd, holder)

    def release(self) -> None:
        """Let the next writer in (the file stays: unlinking it would race a new holder)."""
        with self._fd_lock:
            self._stop.set()
            fd, self._fd = self._fd, None
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)  # closing the only descriptor drops the flock

    def __del__(self) -> None:  # a Pipeline built but never run still lets go
        self.release()


def _heartbeat(fd: int, stop: threading.Event, fd_lock: threading.Lock) -> None:
    while not stop.wait(HEARTBEAT_S):
        with fd_lock:
            if stop.is_set():
                return  # released: fd may already name another file
            with contextlib.suppress(OSError):
                os.utime(fd)


def read_holder(run_dir: Path) -> dict[str, Any]:
    """The record in run.lock ({} if none or unreadable)."""
    try:
        obj = orjson.loads((Path(run_dir) / LOCK).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return obj if isinstance(obj, dict) else {}


@dataclass(frozen=True)
class WriterStatus:
    """Whether the process that writes a run still lives, as far as this machine can tell.

    `alive`/`dead` for a writer on this host (its pid is checked; a dead one is known at once),
    `remote` for one on another host (only silence can tell), `unknown` without a record.
    """

    state: str
    holder: dict[str, Any]
    heartbeat_age_s: float | None = None  # seconds since run.lock was last touched

    def describe(self) -> str:
        h = self.holder
        return f"pid {h.get('pid')} on {h.get('host')}, started {h.get('started')}"


def writer_status(run_dir: Path) -> WriterStatus:
    """The run's writer from run.lock (else run.json's `writer`), and whether it lives."""
    run_dir = Path(run_dir)
    holder = read_holder(run_dir)
    if not holder.get("pid"):
        from herbdesk.extraction.runfiles import read_run_json

        rec = read_run_json(run_dir).get("writer")
        holder = rec if isinstance(rec, dict) else {}
    try:
        age: float | None = max(0.0, time.time() - (run_dir / LOCK).stat().st_mtime)
    except OSError:
        age = None
    pid = holder.get("pid")
    if type(pid) is not int or pid <= 0:
        return WriterStatus("unknown", holder, age)
    if holder.get("host") != socket.gethostname():
        return WriterStatus("remote", holder, age)
    return WriterStatus("alive" if _pid_alive(pid) else "dead", holder, age)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return True
    if pid == os.getpid():
        return True
    # a zombie (killed, not yet reaped by its parent) is gone for our purposes
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
