"""TailFollower against real files and a real writer process: growth, rotation, damage, limits.

Run `python tests/test_tail.py` to print append→delivery latency (p50/p99) for watch and poll.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from herbdesk.events.codec import encode
from herbdesk.events.tail import (
    DELETED,
    FOLLOWING,
    WAITING,
    TailFollower,
    TailStatus,
    choose_mode,
    fs_type_of,
    is_network_fs,
    parse_mounts,
)
from herbdesk.events.types import Event

ROOT = Path(__file__).resolve().parents[1]

# Appends events 1..n in random chunk sizes, so lines are split across writes.
WRITER = r"""
import os, random, sys, time
from herbdesk.events.codec import encode
from herbdesk.events.types import Event
path, n, seed, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rng = random.Random(seed)
TS = "2026-11-26T21:18:49.123Z"
data = b"".join(
    encode(Event("specimen.queued", "run-w", i, TS, specimen_id=f"{i:064x}",
                 data={"image": f"s{i}.jpg", "pad": "x" * rng.randrange(300)}))
    for i in range(1, n + 1)
)
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
pos = 0
while pos < len(data):
    k = rng.choice((1, 3, 40, 200, 900, 4000))
    os.write(fd, data[pos:pos + k])
    pos += k
    if rng.random() < 0.3:
        time.sleep(rng.random() * pause)
os.close(fd)
"""


def start_writer(
    path: Path, n: int, seed: int = 1, pause: float = 0.003
) -> subprocess.Popen[bytes]:
    """A separate process appending n events to path (created if missing)."""
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(n), str(seed), str(pause)], cwd=ROOT
    )


def ev(seq: int, event_type: str = "specimen.queued", run_id: str = "r", **data: Any) -> Event:
    return Event(event_type, run_id, seq, "2026-11-26T21:18:49.123Z", data=data)


def line(seq: int, **kw: Any) -> bytes:
    return encode(ev(seq, **kw))


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


class Collector:
    """Thread-safe sink for on_events/on_status, with waits instead of sleeps."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.batches = 0
        self.statuses: list[TailStatus] = []
        self._cond = threading.Condition()

    def on_events(self, batch: list[Event]) -> None:
        with self._cond:
            self.events.extend(batch)
            self.batches += 1
            self._cond.notify_all()

    def on_status(self, st: TailStatus) -> None:
        with self._cond:
            self.statuses.append(st)
            self._cond.notify_all()

    @property
    def seqs(self) -> list[int]:
        with self._cond:
            return [e.seq for e in self.events]

    def wait(self, pred: Callable[[], bool], timeout: float = 15.0) -> bool:
        with self._cond:
            return self._cond.wait_for(pred, timeout)

    def wait_seqs(self, n: int, timeout: float = 15.0) -> list[int]:
        self.wait(lambda: len(self.events) >= n, timeout)
        return self.seqs

    def wait_state(self, follower: Any, state: str, timeout: float = 15.0) -> bool:
        return self.wait(lambda: follower.state == state, timeout)


@pytest.fixture()
def follow(tmp_path: Path) -> Iterator[Callable[..., tuple[TailFollower, Collector]]]:
    made: list[TailFollower] = []

    def make(path: Path | None = None, **kw: Any) -> tuple[TailFollower, Collector]:
        col = Collector()
        kw.setdefault("safety_interval", 0.2)
        f = TailFollower(
            path or tmp_path / "events.jsonl", col.on_events, on_status=col.on_status, **kw
        )
        made.append(f)
        f.start()
        return f, col

    yield make
    for f in made:
        f.stop()


@pytest.mark.parametrize("mode", ["watch", "poll"])
def test_writer_process_every_event_once_in_order(tmp_path: Path, follow: Any, mode: str) -> None:
    n = 3000
    f, col = follow(mode=mode, poll_interval=0.05)
    writer = start_writer(tmp_path / "events.jsonl", n)
    assert writer.wait(60) == 0
    assert col.wait_seqs(n) == list(range(1, n + 1))
    time.sleep(0.3)
    assert len(col.events) == n
    assert f.stats.bad_lines == 0 and f.stats.events == n
    assert f.offset == (tmp_path / "events.jsonl").stat().st_size
    assert col.batches < n / 4, "events must arrive in batches, not one callback each"


def test_truncation_restarts_from_zero(tmp_path: Path, follow: Any) -> None:
    p = tmp_path / "events.jsonl"
    append(p, b"".join(line(i) for i in range(1, 6)))
    f, col = follow()
    assert col.wait_seqs(5) == [1, 2, 3, 4, 5]
    with open(p, "wb") as fh:  # truncate in place (same inode), then a new run writes
        fh.write(line(1, run_id="r2") + line(2, run_id="r2"))
    col.wait(lambda: len(col.events) >= 7)
    assert [(e.run_id, e.seq) for e in col.events[5:]] == [("r2", 1), ("r2", 2)]
    assert f.stats.truncations == 1 and f.stats.rotations == 0
    assert any(s.change == "truncated" for s in col.statuses)


def test_rotation_by_rename_keeps_lines_of_old_handle(tmp_path: Path, follow: Any) -> None:
    p = tmp_path / "events.jsonl"
    old = open(p, "ab", buffering=0)  # noqa: SIM115
    old.write(line(1) + line(2))
    f, col = follow()
    col.wait_seqs(2)
    old.write(line(3) + line(4))  # written just before the switch, not yet read
    os.rename(p, tmp_path / "events.jsonl.1")
    old.write(line(5))  # the writer had not noticed the rename yet
    old.close()
    append(p, line(6) + line(7))
    assert col.wait_seqs(7) == [1, 2, 3, 4, 5, 6, 7]
    assert f.stats.rotations == 1 and f.stats.reopens == 1
    assert f.state == FOLLOWING


def test_replacement_by_os_replace(tmp_path: Path, follow: Any) -> None:
    p = tmp_path / "events.jsonl"
    append(p, line(1) + line(2))
    f, col = follow()
    col.wait_seqs(2)
    append(p, line(3))
    tmp = tmp_path / "events.jsonl.tmp"
    tmp.write_bytes(line(1, run_id="r2") + line(2, run_id="r2") + b'{"torn')
    os.replace(tmp, p)
    col.wait(lambda: len(col.events) >= 5)
    assert [(e.run_id, e.seq) for e in col.events] == [
        ("r", 1),
        ("r", 2),
        ("r", 3),
        ("r2", 1),
        ("r2", 2),
    ]
    append(p, b'ail"}\n' + line(3, run_id="r2"))  # the partial line completes (as a bad line)
    col.wait(lambda: len(col.events) >= 6)
    assert col.events[-1].run_id == "r2" and col.events[-1].seq == 3
    assert f.stats.rotations == 1 and f.stats.bad_lines == 1


def test_delete_and_recreate(tmp_path: Path, follow: Any) -> None:
    p = tmp_path / "events.jsonl"
    append(p, line(1) + line(2))
    f, col = follow()
    col.wait_seqs(2)
    p.unlink()
    assert col.wait_state(f, DELETED)
    assert any(s.state == DELETED for s in col.statuses)
    append(p, line(1, run_id="r2"))
    col.wait(lambda: len(col.events) >= 3)
    assert (col.events[-1].run_id, col.events[-1].seq) == ("r2", 1)
    assert col.wait_state(f, FOLLOWING)
    assert f.stats.rotations == 1


def test_missing_file_and_directory_appear_later(tmp_path: Path, follow: Any) -> None:
    p = tmp_path / "later" / "events.jsonl"
    f, col = follow(p)
    assert col.wait_state(f, WAITING)
    time.sleep(0.3)
    assert col.events == []
    p.parent.mkdir()
    append(p, line(1))
    assert col.wait_seqs(1) == [1]
    append(p, line(2))  # now through the directory watch armed after mkdir
    assert col.wait_seqs(2) == [1, 2]
    assert [s.state for s in col.statuses[:2]] == [WAITING, FOLLOWING]


def test_poll_mode_forced_on_local_file(tmp_path: Path, follow: Any) -> None:
    f, col = follow(mode="poll", poll_interval=0.05, safety_interval=60)
    assert f.mode == "poll" and f._observer is None
    append(tmp_path / "events.jsonl", line(1) + line(2))
    assert col.wait_seqs(2, timeout=5) == [1, 2]
    assert f._observer is None


def test_partial_last_line_is_held_until_complete(tmp_path: Path, follow: Any) -> None:
    p = tmp_path / "events.jsonl"
    whole = line(1)
    append(p, whole[:40])
    f, col = follow()
    col.wait_state(f, FOLLOWING)
    time.sleep(0.5)
    assert col.events == [] and f.offset == 0 and f.stats.bad_lines == 0
    append(p, whole[40:] + line(2)[:10])
    assert col.wait_seqs(1) == [1]
    assert f.offset == len(whole)
    append(p, line(2)[10:])
    assert col.wait_seqs(2) == [1, 2]


def test_nul_bytes_and_invalid_utf8_are_counted_and_skipped(tmp_path: Path, follow: Any) -> None:
    p = tmp_path / "events.jsonl"
    append(p, line(1) + b"\x00\x00\x00\x00\n" + line(2) + b'{"event_type": "\xff\xfe"}\n' + line(3))
    f, col = follow()
    assert col.wait_seqs(3) == [1, 2, 3]
    assert f.stats.bad_lines == 2 and f.stats.lines == 5
    assert [b.line_no for b in f.stats.bad_samples] == [2, 4]


def test_oversized_line_skipped_with_bounded_memory(tmp_path: Path, follow: Any) -> None:
    p = tmp_path / "events.jsonl"
    append(p, line(1))
    mib = 1024 * 1024
    tracemalloc.start()
    try:
        f, col = follow(max_line_bytes=mib)
        col.wait_seqs(1)
        piece = b"x" * mib
        with open(p, "ab") as fh:
            fh.write(b'{"event_type": "huge", "data": "')
            for _ in range(20):
                fh.write(piece)
                fh.flush()
            fh.write(b'"}\n' + line(2))
        assert col.wait_seqs(2, timeout=30) == [1, 2]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f.stats.oversized_lines == 1 and f.stats.bad_lines == 0
    assert peak < 6 * mib, f"peak {peak / mib:.1f} MiB while skipping a 20 MiB line"
    append(p, line(3))
    assert col.wait_seqs(3) == [1, 2, 3]


def test_from_end_and_mid_line_start_offset(tmp_path: Path, follow: Any) -> None:
    f0, col0 = follow(tmp_path / "later.jsonl", from_end=True)  # missing: all of it is new
    col0.wait_state(f0, WAITING)
    append(tmp_path / "later.jsonl", line(7))
    assert col0.wait_seqs(1) == [7]
    p = tmp_path / "events.jsonl"
    append(p, line(1) + line(2))
    f, col = follow(from_end=True)
    col.wait_state(f, FOLLOWING)
    append(p, line(3))
    assert col.wait_seqs(1) == [3]
    f2, col2 = follow(start_offset=len(line(1)) + 5)  # mid-line: resync at the next newline
    assert col2.wait_seqs(1) == [3]
    time.sleep(0.3)
    assert col2.seqs == [3] and f2.stats.bad_lines == 0 and f2.stats.lines == 1


def test_callback_errors_do_not_stop_the_follow(tmp_path: Path) -> None:
    seen: list[int] = []

    def flaky(batch: list[Event]) -> None:
        seen.extend(e.seq for e in batch)
        if len(seen) == 1:
            raise RuntimeError("consumer bug")

    p = tmp_path / "events.jsonl"
    append(p, line(1))
    f = TailFollower(p, flaky, safety_interval=0.1)
    f.start()
    try:
        deadline = time.monotonic() + 5
        while len(seen) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        append(p, line(2))
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen == [1, 2]
    finally:
        f.stop()
    assert f.state == "stopped"


# ----------------------------------------------------------------- mode choice

MOUNTINFO = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:50 / /mnt/lab rw,relatime shared:5 - nfs4 srv:/export rw,vers=4.2
41 40 0:51 / /mnt/lab/scratch rw - ext4 /dev/vdb rw
42 27 0:52 / /home/u/remote rw,nosuid master:1 - fuse.sshfs u@h:/data rw
43 27 0:53 / /media/share\040drive rw - cifs //nas/share rw
44 27 0:54 / /mnt/labx rw - xfs /dev/vdc rw
"""


def test_mount_parser_picks_poll_on_network_filesystems() -> None:
    mounts = parse_mounts(MOUNTINFO)
    assert ("/media/share drive", "cifs") in mounts and ("/mnt/lab", "nfs4") in mounts
    assert fs_type_of("/mnt/lab/runs/r1/events.jsonl", MOUNTINFO) == "nfs4"
    assert fs_type_of("/mnt/lab/scratch/events.jsonl", MOUNTINFO) == "ext4"  # longest prefix
    assert fs_type_of("/mnt/labx/events.jsonl", MOUNTINFO) == "xfs"  # not under /mnt/lab
    assert fs_type_of("/home/u/remote/r/events.jsonl", MOUNTINFO) == "fuse.sshfs"
    assert fs_type_of("/media/share drive/events.jsonl", MOUNTINFO) == "cifs"
    assert fs_type_of("/srv/events.jsonl", MOUNTINFO) == "ext4"
    for p, mode in [
        ("/mnt/lab/e.jsonl", "poll"),
        ("/home/u/remote/e.jsonl", "poll"),
        ("/media/share drive/e.jsonl", "poll"),
        ("/mnt/lab/scratch/e.jsonl", "watch"),
        ("/srv/e.jsonl", "watch"),
    ]:
        assert choose_mode(p, MOUNTINFO) == mode, p
    proc_mounts = "srv:/x /data nfs rw 0 0\n/dev/vda / ext4 rw 0 0\n"
    assert fs_type_of("/data/e.jsonl", proc_mounts) == "nfs"
    assert all(map(is_network_fs, ["smb3", "9p", "ceph", "glusterfs", "afs", "fuse.rclone"]))
    assert not any(map(is_network_fs, ["ext4", "xfs", "btrfs", "tmpfs", "overlay", "fuseblk"]))


def test_auto_mode_picks_watch_on_local_tmp(tmp_path: Path) -> None:
    f = TailFollower(tmp_path / "events.jsonl", lambda b: None)
    assert f.requested_mode == "auto" and f.mode == "watch"


# ----------------------------------------------------------------- latency


def measure_latency(mode: str, n: int = 200, gap: float = 0.01, poll: float = 1.0) -> list[float]:
    """Append one line every `gap` s; return sorted append→delivery delays in seconds."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "events.jsonl"
        path.touch()
        written: dict[int, float] = {}
        delays: list[float] = []
        done = threading.Event()

        def on_events(batch: list[Event]) -> None:
            now = time.perf_counter()
            delays.extend(now - written[e.seq] for e in batch)
            if len(delays) >= n:
                done.set()

        f = TailFollower(path, on_events, mode=mode, poll_interval=poll)  # type: ignore[arg-type]
        f.start()
        time.sleep(0.3)
        with open(path, "ab", buffering=0) as fh:
            for i in range(1, n + 1):
                data = line(i)
                written[i] = time.perf_counter()
                fh.write(data)
                time.sleep(gap)
        done.wait(poll + 5)
        f.stop()
    return sorted(delays)


def _pctl(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def latency_report(n: int = 200, gap: float = 0.01) -> str:
    rows = []
    for mode in ("watch", "poll"):
        d = measure_latency(mode, n, gap)
        rows.append(
            f"{mode:5}  n={len(d)}  p50={_pctl(d, 0.5) * 1000:7.1f} ms  "
            f"p99={_pctl(d, 0.99) * 1000:7.1f} ms"
        )
    return "\n".join(rows)


def test_latency_report(capsys: pytest.CaptureFixture[str]) -> None:
    report = latency_report(n=60, gap=0.02)
    with capsys.disabled():
        print("\ntail latency (append→delivery, poll_interval=1 s):\n" + report)
    assert report.count("n=60") == 2  # every line delivered in both modes


if __name__ == "__main__":
    print("tail latency (append→delivery, poll_interval=1 s, 200 lines, 10 ms apart):")
    print(latency_report())


# ----------------------------------------------------------------- herbdesk tail (CLI)

TAIL_MAIN = "import sys; from herbdesk.cli.tail import main; sys.exit(main())"

# Copies a prepared log into place line by line, as a run would write it.
COPIER = r"""
import os, sys, time
src, dst, gap = sys.argv[1], sys.argv[2], float(sys.argv[3])
os.makedirs(os.path.dirname(dst), exist_ok=True)
with open(src, "rb") as fh, open(dst, "ab", buffering=0) as out:
    for raw in fh:
        out.write(raw)
        time.sleep(gap)
"""


def run_log(
    terminal: str = "extraction.completed",
    reason: str | None = None,
    n: int = 6,
    first_seq: int = 1,
    resumed: bool = False,
) -> bytes:
    """The events of one invocation: start, specimens, checkpoint after 5, a terminal event."""
    seq = iter(range(first_seq, first_seq + 10 * n + 10))
    out = [encode(ev(next(seq), "extraction.started", total=n, resumed=resumed))]
    for i in range(1, n + 1):
        sid = f"{i:02d}" * 32
        for t in ("specimen.queued", "specimen.processing"):
            out.append(
                encode(
                    Event(
                        t,
                        "r",
                        next(seq),
                        "2026-11-26T21:18:49.123Z",
                        specimen_id=sid,
                        data={"image": f"s{i}.jpg"},
                    )
                )
            )
        out.append(
            encode(
                Event(
                    "specimen.completed",
                    "r",
                    next(seq),
                    "2026-11-26T21:18:50.456Z",
                    specimen_id=sid,
                    sequence=i,
                    data={
                        "image": f"s{i}.jpg",
                        "success": True,
                        "fields_extracted": 12,
                        "confidence": 0.9,
                        "processing_time_ms": 800,
                    },
                )
            )
        )
        if i == 5:
            out.append(
                encode(
                    ev(
                        next(seq),
                        "validation.checkpoint",
                        checkpoint=1,
                        status="passed",
                        success_rate=1.0,
                        threshold=0.5,
                        succeeded=5,
                        failed=0,
                    )
                )
            )
    data: dict[str, Any] = {
        "status": terminal.split(".")[-1],
        "message": "done",
        "processed": n,
        "succeeded": n,
        "failed": 0,
    }
    if reason:
        data["reason"] = reason
    out.append(encode(ev(next(seq), terminal, **data)))
    return b"".join(out)


def run_tail(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", TAIL_MAIN, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_tail_print_until_done_follows_a_live_run(tmp_path: Path) -> None:
    src = tmp_path / "source.jsonl"
    src.write_bytes(run_log())
    run_dir = tmp_path / "run-1"  # the run has not created its directory yet
    tail = subprocess.Popen(
        [sys.executable, "-c", TAIL_MAIN, "--print", "--until-done", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    time.sleep(0.5)  # the tail starts before the log exists
    copier = subprocess.Popen(
        [sys.executable, "-c", COPIER, str(src), str(run_dir / "events.jsonl"), "0.01"]
    )
    out, err = tail.communicate(timeout=30)
    copier.wait(10)
    assert tail.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == len(src.read_bytes().splitlines())
    assert any("validation.checkpoint" in ln and "checkpoint 1 PASSED" in ln for ln in lines)
    assert "#6 s6.jpg fields=12 conf=0.90 800ms" in out
    assert lines[-1].split()[1] == "extraction.completed"
    assert "waiting_for_file" in err and "following" in err


@pytest.mark.parametrize(
    ("terminal", "reason", "code"),
    [
        ("extraction.failed", "early_validation_failed", 4),
        ("extraction.failed", "consecutive_failures", 4),
        ("extraction.failed", "fatal_error", 5),
        ("extraction.failed", "preflight_failed", 3),
        ("extraction.failed", "internal_error", 1),
        ("extraction.cancelled", None, 130),
    ],
)
def test_tail_until_done_exit_codes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    terminal: str,
    reason: str | None,
    code: int,
) -> None:
    from herbdesk.cli.tail import main

    p = tmp_path / "events.jsonl"
    p.write_bytes(run_log(terminal, reason))
    assert main(["--jsonl", "--until-done", str(p)]) == code
    assert capsys.readouterr().out.count("\n") == len(p.read_bytes().splitlines())


def test_tail_subprocess_exit_4_on_early_validation_failure(tmp_path: Path) -> None:
    p = tmp_path / "events.jsonl"
    p.write_bytes(run_log("extraction.failed", "early_validation_failed"))
    r = run_tail("--print", "--until-done", str(p))
    assert r.returncode == 4, r.stderr
    assert "failed (early_validation_failed)" in r.stdout.splitlines()[-1]


def test_until_done_waits_for_a_resumed_run(tmp_path: Path) -> None:
    p = tmp_path / "events.jsonl"
    first = run_log("extraction.failed", "consecutive_failures")
    second = run_log(first_seq=len(first.splitlines()) + 1, resumed=True).splitlines(True)
    p.write_bytes(first + b"".join(second[:4]))  # the resumed run is under way
    tail = subprocess.Popen(
        [sys.executable, "-c", TAIL_MAIN, "--jsonl", "--until-done", str(p)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    time.sleep(1.0)
    assert tail.poll() is None, "an earlier invocation's failure is not the end of the log"
    append(p, b"".join(second[4:]))
    out, err = tail.communicate(timeout=30)
    assert tail.returncode == 0, err
    assert len(out.splitlines()) == len(first.splitlines()) + len(second)
    assert b'"extraction.completed"' in out.splitlines()[-1]


def test_jsonl_output_is_normalized(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from herbdesk.cli.tail import main

    p = tmp_path / "events.jsonl"
    p.write_bytes(
        b'{"event_type":"extraction.completed","seq":1,"run_id":"r","timestamp":"t",'
        b'"data":{"status":"completed"},"extra":"dropped"}\n'
    )
    assert main(["--jsonl", "--until-done", str(p)]) == 0
    assert capsys.readouterr().out == (
        '{"schema_version":1,"seq":1,"event_type":"extraction.completed","timestamp":"t",'
        '"run_id":"r","data":{"status":"completed"}}\n'
    )


def test_print_neutralizes_terminal_control_characters() -> None:
    from herbdesk.cli.tail import format_event

    e = Event(
        "specimen.failed",
        "r",
        3,
        "2026-11-26T21:18:49.123Z",
        specimen_id="ab" * 32,
        sequence=2,
        data={"image": "x.jpg", "error": {"kind": "bad_reply", "message": "\x1b]0;pwned\x07oops"}},
    )
    text = format_event(e)
    assert text.startswith("21:18:49.123  specimen.failed")
    # the whole sequence goes (a window title, a URL is its payload, not text), marked by "?"
    assert "abababab" in text and "bad_reply: ?oops" in text and "\x1b" not in text


def test_ctrl_c_exits_cleanly(tmp_path: Path) -> None:
    import signal

    p = tmp_path / "events.jsonl"
    p.write_bytes(line(1))
    tail = subprocess.Popen(
        [sys.executable, "-c", TAIL_MAIN, "--print", str(p)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    time.sleep(1.0)
    tail.send_signal(signal.SIGINT)
    out, err = tail.communicate(timeout=10)
    assert tail.returncode == 130
    assert "Traceback" not in err and "specimen.queued" in out


def test_without_output_flag_opens_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    import herbdesk.cli.app
    from herbdesk.cli.tail import main

    seen: list[list[str]] = []

    def fake_app(argv: list[str]) -> int:  # the app itself is another module's concern
        seen.append(argv)
        return 7

    monkeypatch.setattr(herbdesk.cli.app, "launch_app", fake_app)
    assert main(["u@h:/srv/run/events.jsonl", "--from-end"]) == 7
    assert main(["/x/events.jsonl", "--poll", "2"]) == 7
    assert seen == [
        ["--tail", "u@h:/srv/run/events.jsonl", "--from-end"],
        ["--tail", "/x/events.jsonl", "--poll", "2.0"],
    ]


def test_hostile_remote_target_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from herbdesk.cli.tail import main

    assert main(["--print", "--", "-oProxyCommand=touch${IFS}x:/p"]) == 2
    assert "invalid ssh host" in capsys.readouterr().err
