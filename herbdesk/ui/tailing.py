"""Following a log that another process writes (locally, on a network mount, or over SSH).

The followers are Qt-free and call back on their own threads; this bridge turns those calls
into queued Qt signals, so the GUI thread only ever sees event batches and status texts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from herbdesk.distributed.follow import follower_for_target
from herbdesk.events.layout import EVENTS
from herbdesk.events.legacy import AutoDecoder
from herbdesk.events.ssh_tail import SshTailFollower, parse_remote_target
from herbdesk.events.tail import TailFollower, TailStatus

STATE_TEXT = {
    "waiting_for_file": "waiting for the file to appear",
    "following": "following",
    "deleted": "the file was deleted; waiting for it to come back",
    "reconnecting": "connection lost; reconnecting",
    "connecting": "connecting",
    "stopped": "stopped",
}


class TailSource(QObject):
    """One followed log; `start()` begins delivering, `stop()` ends it (idempotent)."""

    events_arrived = Signal(list)
    """A batch of events appended to the followed log."""
    status_changed = Signal(str)
    """A plain-text description of the follower's state (waiting, following, reconnecting…)."""

    def __init__(
        self,
        target: str,
        *,
        poll_interval: float | None = None,
        from_end: bool = False,
        identity_file: str | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.target = target
        self.follower: Any = follower_for_target(
            target, self.events_arrived.emit, self._status, from_end=from_end
        )
        self.remote: Any = parse_remote_target(target) if self.follower is None else None
        if self.follower is not None:  # redis://host:port/db/run_id, mirrored locally
            self.target = self.follower.source  # password redacted
            self.remote = self.follower.source  # not a local path: kept out of recent files
            self.run_dir: Path | None = self.follower.mirror_dir
        elif self.remote is not None:
            self.follower = SshTailFollower(
                self.remote,
                self.events_arrived.emit,
                on_status=self._status,
                identity_file=identity_file,
                decoder=AutoDecoder(),
                from_end=from_end,
                ssh_options=("BatchMode=yes", "ServerAliveInterval=15"),
            )
            self.run_dir = None
        else:
            path = Path(target)
            if path.is_dir() or (not path.exists() and path.suffix != ".jsonl"):
                path = path / EVENTS  # a run directory, perhaps not created yet
            self.follower = TailFollower(
                path,
                self.events_arrived.emit,
                on_status=self._status,
                mode="poll" if poll_interval else "auto",
                poll_interval=poll_interval or 1.0,
                decoder=AutoDecoder(),
                from_end=from_end,
            )
            self.run_dir = path.parent
        self.mode: str = str(self.follower.mode)

    def _status(self, status: TailStatus) -> None:
        text = STATE_TEXT.get(status.state, status.state)
        if status.change:
            text += f" ({status.change})"
        if status.message:
            # the follower's messages often say the state already ("following /x/events.jsonl")
            first = status.message.split(" ", 1)[0].lower()
            said = first == str(status.state).lower() or first == text.split(" ", 1)[0].lower()
            text = status.message if said else f"{text}: {status.message}"
        self.status_changed.emit(text)

    @property
    def bad_lines(self) -> int:
        return int(self.follower.stats.bad_lines)

    def start(self) -> None:
        self.follower.start()

    def stop(self) -> None:
        self.follower.stop()
