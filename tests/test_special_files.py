"""A FIFO, a device or a symlink to one in place of a log is refused at once with exit 2:
`tail --print` used to block on a FIFO forever and spin at full CPU on /dev/zero."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


def _herbdesk(*args: str) -> subprocess.CompletedProcess[str]:
    # a hang is the bug: the timeout turns it into a failure instead of a stuck suite
    return subprocess.run(
        [sys.executable, "-m", "herbdesk", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=20,
    )


@pytest.fixture()
def specials(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jsonl"
    zero.symlink_to("/dev/zero")
    run_dir = tmp_path / "run"  # a run directory whose log is a FIFO
    run_dir.mkdir()
    os.mkfifo(run_dir / "events.jsonl")
    return {"fifo": fifo, "zero": zero, "run_dir": run_dir}


@pytest.mark.parametrize("which", ["fifo", "zero", "run_dir"])
@pytest.mark.parametrize(
    "command",
    [["tail", "--print"], ["tail", "--jsonl", "--until-done"], ["summary"], ["open"]],
    ids=["tail-print", "tail-jsonl", "summary", "open"],
)
def test_a_fifo_or_device_in_place_of_a_log_is_refused(
    specials: dict[str, Path], which: str, command: list[str]
) -> None:
    r = _herbdesk(*command, str(specials[which]))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "not a regular file" in r.stderr, r.stderr
    kind = "a character device" if which == "zero" else "a FIFO"
    assert kind in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_the_follower_refuses_a_fifo_put_in_the_logs_place(specials: dict[str, Path]) -> None:
    """The app's tail mode follows through TailFollower: it reports the FIFO and keeps
    waiting for a real log instead of blocking its thread in open()."""
    import threading

    from herbdesk.events.tail import TailFollower

    said: list[str] = []
    seen = threading.Event()

    def on_status(st) -> None:  # type: ignore[no-untyped-def]
        said.append(st.message)
        if "not a regular file" in st.message:
            seen.set()

    follower = TailFollower(specials["fifo"], lambda evs: None, on_status=on_status, mode="poll")
    follower.start()
    try:
        assert seen.wait(20), said
    finally:
        follower.stop(timeout=20)
    assert follower._thread is not None and not follower._thread.is_alive()
    assert any("(a FIFO)" in m for m in said)
