"""Follow an events.jsonl on another machine through the OpenSSH client.

The remote side runs a one-line POSIX sh script that reports the file's inode and size, then
`tail -c +N -F` with its diagnostics merged into the stream, so a truncation or a replaced file
arrives in order with the data. Locally we count bytes up to the last complete line; after a
dropped connection we reconnect with exponential backoff and resume from exactly that byte, so
nothing is shown twice or missed. If the file was replaced or shrank meanwhile, the script
starts from 0 and says so in its header.

Security: arguments go to `ssh` as a list (no local shell), `--` ends ssh's options, the host and
user are validated (no leading '-', a small charset). The remote command string is one every
common login shell parses alike: a fixed script in single quotes, the path sent as octal digits
(see REMOTE_SCRIPT).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlsplit

import orjson

from herbdesk.events.codec import decode
from herbdesk.events.tail import (
    DEFAULT_MAX_LINE_BYTES,
    DELETED,
    FOLLOWING,
    MAX_BATCH,
    READ_SIZE,
    RECONNECTING,
    STOPPED,
    WAITING,
    LineAssembler,
    LineDecoder,
    OnEvents,
    OnStatus,
    TailStats,
    TailStatus,
)
from herbdesk.events.types import Event

CONNECTING = "connecting"
STABLE_AFTER = 10.0  # a connection that lasted this long resets the backoff
log = logging.getLogger(__name__)

_HOST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_IPV6_RE = re.compile(r"[0-9A-Fa-f:.]+(%[A-Za-z0-9._-]+)?")
_USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_OPTION_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*[= ]\S.*")
_SCP_RE = re.compile(r"(?:(?P<user>[^@/:]*)@)?(?P<host>\[[^\]/]*\]|[^:/\[\]@]*):(?P<path>.*)", re.S)

# ssh hands the command string to the user's login shell, which may be sh, bash, zsh, fish or
# (t)csh. So the string is one that every one of them reads alike: `sh -c '<script>'` and plain
# arguments. The script holds no `'`, no `!` (csh history, even under -c), no `\\` or `\'`
# (escapes inside fish's single quotes) and no line break; the path travels as octal digits,
# three per byte, decoded by the script with printf's `\0ddd` (no path byte is ever parsed).
# Header first, then tail; the background reader sees the connection close and ends tail (the
# exec keeps its pid, `$$`). A missing file is awaited first: GNU tail polls slowly otherwise.
REMOTE_SCRIPT = (
    "export LC_ALL=C; set -f; e=; h=$1; "
    'while [ -n "$h" ]; do r=${h#???}; o=${h%"$r"}; e="$e\\0$o"; h=$r; done; '
    'f=$(printf %b "$e"); n=$2; w=${3#_}; i=-; s=0; '
    'if [ -e "$f" ]; then set -- $(ls -di -- "$f" 2>/dev/null) -; i=$1; '
    'set -- $(wc -c < "$f" 2>/dev/null) 0; s=$1; fi; '
    'if [ "$n" -lt 0 ]; then n=$s; else case $w in "" | "$i") [ "$s" -lt "$n" ] && n=0;; '
    "*) n=0;; esac; fi; "
    'echo "herbdesk-tail 1 $i $s $n"; '
    "exec 3<&0; ( read -r _ <&3; kill $$ ) >/dev/null 2>&1 & "
    'until [ -e "$f" ]; do sleep 1; done; [ "$i" = - ] && echo "herbdesk-tail appeared"; '
    'exec tail -c +$((n+1)) -F -- "$f" 2>&1'
)
UNPORTABLE = re.compile(r"['!\n\r]|\\[^0]")  # what REMOTE_SCRIPT must never hold (tested)


def octal_arg(path: str) -> str:
    """The path as octal digits, three per byte: a word no shell can split or expand."""
    return "".join(f"{b:03o}" for b in path.encode("utf-8", "surrogateescape"))


_HEADER_RE = re.compile(rb"herbdesk-tail 1 (-|\d+) (\d+) (\d+)\s*")
_RESET_MSG_RE = re.compile(
    rb"tail: .*(has been replaced;\s+following new file|has appeared;\s+following new file"
    rb"|: file truncated)\s*"
)
DEFAULT_SSH_OPTIONS: tuple[str, ...] = (
    "BatchMode=yes",  # never prompt: there is no terminal to type a password into
    "ServerAliveInterval=15",
    "ServerAliveCountMax=3",
    "ClearAllForwardings=yes",  # a LocalForward in ~/.ssh/config would clash on reconnect
)


@dataclass(frozen=True)
class RemoteTarget:
    """A validated `[user@]host[:port]` and absolute remote path; invalid values raise."""

    host: str
    path: str
    user: str | None = None
    port: int | None = None

    def __post_init__(self) -> None:
        if not (_HOST_RE.fullmatch(self.host) or _IPV6_RE.fullmatch(self.host)):
            raise ValueError(f"invalid ssh host {self.host!r}")
        if self.user is not None and not _USER_RE.fullmatch(self.user):
            raise ValueError(f"invalid ssh user {self.user!r}")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"invalid ssh port {self.port!r}")
        if not self.path.startswith("/"):
            raise ValueError(f"remote path must be absolute: {self.path!r}")
        if any(c in self.path for c in "\0\n\r"):
            raise ValueError("remote path contains NUL or a line break")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        if self.port is not None:
            return f"ssh://{user}{host}:{self.port}{self.path}"
        return f"{user}{host}:{self.path}"


def parse_remote_target(s: str) -> RemoteTarget | None:
    """`user@host:/p`, `host:/p` or `ssh://user@host:port/p`; None if `s` is not remote syntax.

    Raises ValueError for something that is remote syntax but unsafe or malformed (a host
    starting with '-', a relative path, a line break), so it is refused rather than read as a
    local file name.
    """
    if s.startswith("ssh://"):
        parts = urlsplit(s)
        if parts.query or parts.fragment or parts.password is not None:
            raise ValueError(f"unsupported ssh URL {s!r}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"invalid port in {s!r}") from exc
        if not parts.hostname:
            raise ValueError(f"no host in {s!r}")
        return RemoteTarget(parts.hostname, parts.path, parts.username, port)
    if s.startswith(("/", ".", "~")) or ":" not in s:
        return None
    m = _SCP_RE.fullmatch(s)
    if m is None:
        return None  # a '/' before the first ':' means a local relative path
    host = m["host"]
    if os.name == "nt" and len(host) == 1 and host.isalpha():
        return None  # C:\ is a drive, not a host
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return RemoteTarget(host, m["path"], m["user"] if m["user"] is not None else None)


class SshTailFollower:
    """Like TailFollower for a remote file; callbacks run on the follower's thread."""

    mode = "ssh"

    def __init__(
        self,
        target: RemoteTarget | str,
        on_events: OnEvents,
        *,
        on_status: OnStatus | None = None,
        identity_file: str | os.PathLike[str] | None = None,
        port: int | None = None,
        ssh_options: Sequence[str] = (),
        ssh_binary: str = "ssh",
        connect_timeout: float = 10.0,
        decoder: LineDecoder = decode,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        start_offset: int = 0,
        from_end: bool = False,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_batch: int = MAX_BATCH,
    ) -> None:
        if isinstance(target, str):
            parsed = parse_remote_target(target)
            if parsed is None:
                raise ValueError(f"not a remote target: {target!r}")
            target = parsed
        for opt in ssh_options:
            if not _OPTION_RE.fullmatch(opt) or "\n" in opt:
                raise ValueError(f"ssh option must look like Key=Value: {opt!r}")
        self.target = target
        self.port = port if port is not None else target.port
        self.identity_file = os.fspath(identity_file) if identity_file is not None else None
        self.ssh_options = tuple(ssh_options)
        self.ssh_binary = ssh_binary
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._on_events = on_events
        self._on_status = on_status
        self._max_batch = max(1, max_batch)
        self.stats = TailStats()
        self._asm = LineAssembler(self.stats, decoder, max(1, max_line_bytes), self._control)
        self._asm.offset = max(0, start_offset)
        self._want = -1 if from_end else max(0, start_offset)
        self._ident = ""  # remote inode from the last header ("" before the first connect)
        self.state = CONNECTING
        self.last_error = ""
        self._stderr: deque[str] = deque(maxlen=20)
        self._proc: subprocess.Popen[bytes] | None = None
        self._caught_up = False
        self._reconnect_now = False
        self._remaining = 0  # data bytes still to come before we are caught up
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- public
    @property
    def offset(self) -> int:
        """Remote byte offset just past the last complete line: where a reconnect resumes."""
        return self._asm.offset

    @property
    def caught_up(self) -> bool:
        """True once the bytes the file held when this connection opened are delivered."""
        return self._caught_up

    @property
    def connection_pid(self) -> int | None:
        """The running ssh client's pid (None between connections)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def build_command(self, start: int, ident: str = "") -> list[str]:
        """The ssh argv that streams the file from byte `start` (-1: from the end)."""
        if ident and not (ident == "-" or ident.isdigit()):
            raise ValueError(f"bad remote file id {ident!r}")
        cmd = [self.ssh_binary, "-T", "-a", "-x"]
        for opt in (*self.ssh_options, *DEFAULT_SSH_OPTIONS):  # ssh: the first value wins
            cmd += ["-o", opt]
        cmd += ["-o", f"ConnectTimeout={max(1, round(self.connect_timeout))}"]
        if self.identity_file:
            cmd += ["-i", self.identity_file]
        if self.port is not None:
            cmd += ["-p", str(self.port)]
        if self.target.user:
            cmd += ["-l", self.target.user]
        # `_` keeps the id a non-empty word: `''` is one more thing shells could differ on
        args = ("herbdesk-tail", octal_arg(self.target.path), str(int(start)), f"_{ident}")
        remote = f"sh -c '{REMOTE_SCRIPT}' {' '.join(args)}"
        return [*cmd, "--", self.target.host, remote]

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("SshTailFollower already started")
        self._thread = threading.Thread(target=self._run, name="herbdesk-ssh-tail", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and end the thread (its last callback is `stopped`)."""
        self._stop.set()
        self._end_process()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def reconnect(self) -> None:
        """Drop the current connection now; the follower reconnects without a backoff wait."""
        self._reconnect_now = True
        self._end_process()

    # ----------------------------------------------------------------- thread
    def _run(self) -> None:
        failures = 0  # connections in a row that failed or lasted under STABLE_AFTER seconds
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                got_header = self._session()
                if self._stop.is_set():
                    break
                stable = got_header and time.monotonic() - began >= STABLE_AFTER
                failures = 0 if stable else failures + 1
                delay = min(self.backoff_max, self.backoff_initial * 2 ** max(0, failures - 1))
                delay *= random.uniform(0.8, 1.2)  # many followers must not reconnect in step
                if self._reconnect_now:
                    self._reconnect_now, delay = False, 0.0
                why = self.last_error or "connection closed"
                self._status(RECONNECTING, f"{why}; reconnecting in {delay:.1f} s", "disconnected")
                if self._stop.wait(delay):
                    break
                self.stats.reconnects += 1
        finally:
            self._end_process()
            self._status(STOPPED, "stopped")

    def _session(self) -> bool:
        """One connection: header, then data until EOF. True if the remote script started."""
        self._caught_up = False
        self._status(CONNECTING, f"connecting to {self.target}")
        start = self._want if self._want < 0 else self._asm.offset
        try:
            proc = subprocess.Popen(
                self.build_command(start, self._ident),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
                start_new_session=True,
            )
        except OSError as exc:
            self.last_error = f"cannot run {self.ssh_binary}: {exc}"
            return False
        self._proc = proc
        self._stderr.clear()
        threading.Thread(target=self._drain_stderr, args=(proc.stderr,), daemon=True).start()
        if self._stop.is_set():
            self._end_process()
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        pre = b""
        header = None
        out: list[Event] = []
        while True:
            try:
                chunk = os.read(fd, READ_SIZE)
            except OSError:
                chunk = b""
            if not chunk:
                break
            if header is None:
                pre += chunk
                header, chunk, pre = self._find_header(pre)
                if header is None:
                    continue
            self.stats.bytes_read += len(chunk)
            self._asm.feed(chunk, out)
            self._remaining -= len(chunk)
            self._deliver(out)
            if self._remaining <= 0 and not self._caught_up:
                self._caught_up = True
        self._deliver(out)
        rc = proc.wait()
        self._proc = None
        err = " / ".join(s for s in self._stderr if s)
        self.last_error = f"ssh exited with {rc}" + (f": {err}" if err else "")
        return header is not None

    def _find_header(self, pre: bytes) -> tuple[bytes | None, bytes, bytes]:
        """Skip whatever a login shell prints first; apply the header when it arrives."""
        while b"\n" in pre:
            line, pre = pre.split(b"\n", 1)
            m = _HEADER_RE.fullmatch(line)
            if m is None:
                continue
            ident, size, start = m[1].decode(), int(m[2]), int(m[3])
            asked = self._want if self._want < 0 else self._asm.offset
            had_file = self._ident not in ("", "-")
            change, state, msg = "", FOLLOWING, f"following {self.target}"
            if ident == "-":
                state = DELETED if had_file else WAITING
                msg = f"waiting for {self.target} to appear"
            elif had_file and ident != self._ident:
                self.stats.rotations += 1
                change, msg = "rotated", "the remote file was replaced; reading it from the start"
            elif asked >= 0 and start != asked:
                self.stats.truncations += 1
                change, msg = "truncated", "the remote file shrank; reading it from the start"
            self._want = start
            self._ident = ident
            self._asm.reset(start)
            self._remaining = size - start
            self._caught_up = self._remaining <= 0
            self._status(state, msg, change)
            return line, pre, b""
        return None, b"", pre[-65536:]

    def _control(self, line: bytes) -> bool:
        """In-band `tail:` diagnostics: state changes, never data, never counted in offset."""
        if line == b"herbdesk-tail appeared":
            self._status(FOLLOWING, f"following {self.target}")
            return True
        if not line.startswith(b"tail: "):
            m = _RESET_MSG_RE.search(line) if b"tail: " in line else None
            if m is None or m.end() != len(line) or _is_json(line):
                return False
            self._asm.count_bad(line[: m.start()], "torn line before the file changed")
            line = line[m.start() :]
        text = line.decode("utf-8", "replace").strip()
        if "file truncated" in text or "following new file" in text:
            self._ident = ""  # a new file of unknown inode: on reconnect only its size counts
        if "file truncated" in text:
            self.stats.truncations += 1
            self._asm.reset(0)
            self._status(
                FOLLOWING, "the remote file was truncated; reading from the start", "truncated"
            )
        elif "following new file" in text:
            replaced = "has been replaced" in text or self.state == DELETED
            if replaced:
                self.stats.rotations += 1
            self._asm.reset(0)
            self._status(
                FOLLOWING, f"following a new file at {self.target}", "rotated" if replaced else ""
            )
        elif "has become inaccessible" in text:
            self._status(DELETED, f"{self.target} was deleted or moved away; waiting for it")
        elif "cannot open" in text:
            self._status(DELETED if self._asm.offset else WAITING, text)
        else:
            self._status(self.state, text, "remote-notice")
        return True

    def _drain_stderr(self, stream: IO[bytes] | None) -> None:
        if stream is None:
            return
        with contextlib.suppress(OSError, ValueError):
            for raw in stream:
                self._stderr.append(raw.decode("utf-8", "replace").strip()[:300])

    def _end_process(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()  # the remote `read` sees EOF and stops tail
        proc.terminate()
        try:
            proc.wait(2.0)
        except subprocess.TimeoutExpired:
            proc.kill()

    def _deliver(self, out: list[Event]) -> None:
        while out and not self._stop.is_set():
            batch, out[:] = out[: self._max_batch], out[self._max_batch :]
            try:
                self._on_events(batch)
            except Exception:  # a consumer bug must not stop the follow
                log.exception("on_events callback failed")
        out.clear()

    def _status(self, state: str, message: str, change: str = "") -> None:
        self.state = state
        if self._on_status is not None:
            status = TailStatus(state, str(self.target), self.offset, message, change)
            try:
                self._on_status(status)
            except Exception:
                log.exception("on_status callback failed")


def _is_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True
