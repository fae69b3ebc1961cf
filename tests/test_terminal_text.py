"""No text from outside drives the terminal: server errors, model values, log contents and file
names reach `run`, `summary` and `tail` output cleaned (no ESC, no C1, no bidi override)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from fakeapi import HOSTILE_TEXT, FakeApi

from herbdesk.common.termtext import clean_text, json_safe

MODEL = "test/vision-model"
BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def _herbdesk(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "COLUMNS": "200", "OPENROUTER_API_KEY": "sk-test-good"}
    return subprocess.run(
        [sys.executable, "-m", "herbdesk", *args], capture_output=True, env=env, timeout=120
    )


def _assert_inert(blob: bytes, where: str) -> None:
    """Bytes a terminal can show without obeying any of them."""
    assert b"\x1b" not in blob, f"ESC in {where}"
    text = blob.decode("utf-8")  # not valid UTF-8 would itself be a defect
    bad = sorted(
        {
            f"U+{ord(ch):04X}"
            for ch in text
            if (ord(ch) < 0x20 and ch not in "\n\t") or 0x7F <= ord(ch) <= 0x9F or ch in BIDI
        }
    )
    assert not bad, f"control or bidi characters {bad} in {where}"


def test_clean_text_drops_sequences_and_controls() -> None:
    out = clean_text(HOSTILE_TEXT)
    _assert_inert(out.encode(), "clean_text")
    assert "pwned" not in out and "evil.example" not in out  # the title and the hidden URL
    assert "title" in out and "click" in out and "cleared" in out and "end" in out
    assert clean_text("a\nb\tc") == "a b c"
    assert clean_text("a\r\nb\tc\n", multiline=True) == "a\nb\tc\n"
    assert clean_text("x" * 50, limit=10) == "x" * 9 + "…"
    assert clean_text("lone \ud800 surrogate") == "lone \ufffd surrogate"
    assert json_safe(orjson.dumps({"k": "\x9b\u202e\u2069é…"})) == (
        b'{"k":"\\u009b\\u202e\\u2069' + "é…".encode() + b'"}'
    )


@pytest.fixture()
def hostile_run(tmp_path: Path, many_images) -> tuple[Path, list[tuple[str, bytes]]]:
    """`herbdesk run` against a server whose errors and replies carry escape sequences, on a
    folder holding a file named with one; the run halts on a fatal error whose text is too."""
    images = many_images(8)
    (images / "sheet_\x1b]0;named\x07.jpg").write_bytes(b"not an image")  # a failed specimen
    script = ["hostile_fields", "hostile_error:400", "hostile_error:502", "good",
              "hostile_fields", "good", "hostile_error:401"]  # fmt: skip
    out = tmp_path / "runs"
    with FakeApi(script=script) as api:
        r = _herbdesk(
            "run", str(images), "--engine", "openrouter", "--model", MODEL,
            "--base-url", api.base_url, "--out", str(out), "--run-id", "hostile",
            "--concurrency", "1", "--max-attempts", "2", "--checkpoint-threshold", "0",
            "--quality-threshold", "0", "--no-degraded-halt",
        )  # fmt: skip
    assert r.returncode == 5, r.stderr.decode(errors="replace")
    # the hostile texts were on their way: the messages are there, cleaned
    err = r.stderr.decode()
    assert "cleared" in err and "title" in err and "failed sheet_?.jpg: image_error" in err
    return out / "hostile", [("run stdout", r.stdout), ("run stderr", r.stderr)]


def test_run_summary_and_tail_output_is_inert(hostile_run) -> None:
    run_dir, outputs = hostile_run
    log = run_dir / "events.jsonl"
    assert b"\\u001b]0;pwned" in log.read_bytes()  # the log keeps what the server said
    for args in (
        ["summary", str(run_dir)],
        ["summary", str(run_dir), "--json"],
        ["tail", "--print", "--until-done", str(log)],
        ["tail", "--jsonl", "--until-done", str(log)],
    ):
        r = _herbdesk(*args)
        assert r.returncode in (0, 5), (args, r.stderr)
        outputs += [(f"{args} stdout", r.stdout), (f"{args} stderr", r.stderr)]
        assert r.stdout
    for where, blob in outputs:
        _assert_inert(blob, where)
    # JSON output stays JSON and keeps the text, escaped
    summary = orjson.loads(dict(outputs)[f"{['summary', str(run_dir), '--json']} stdout"])
    assert "\x1b]0;pwned" in summary["message"]
    jsonl = dict(outputs)[f"{['tail', '--jsonl', '--until-done', str(log)]} stdout"]
    events = [orjson.loads(line) for line in jsonl.splitlines()]
    assert "\x9b31m" in orjson.dumps(events).decode()
