"""File and folder names that are not valid UTF-8 (any byte string is a legal name on Linux):
the run goes on, every run file stays valid UTF-8 with such a byte written as `\\xNN`, and a
resume finds the same sheets again, by content, through the folder named in run.json."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
from reliability import assert_counts_agree, assert_csv_matches_raw, make_fake_jpegs, raw_lines

TESTS = Path(__file__).resolve().parent
RUNNER = TESTS / "herbdesk_runner.py"


def _runner(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "OPENROUTER_API_KEY": "sk-unused", "COLUMNS": "160"}
    return subprocess.run(
        [os.fsencode(sys.executable), os.fsencode(RUNNER), *map(os.fsencode, args)],
        capture_output=True, env=env, timeout=120,
    )  # fmt: skip


def test_names_that_are_not_utf8_survive_into_every_run_file_and_resume(tmp_path: Path) -> None:
    folder = os.fsdecode(os.fsencode(tmp_path) + b"/scans\xfe")  # the folder itself, too
    images = make_fake_jpegs(Path(folder), 4)
    bad = os.fsdecode(os.fsencode(images) + b"/sheet\xff.jpg")
    os.rename(images / "sheet_00001.jpg", bad)
    out = tmp_path / "out"
    r = _runner("run", str(images), "--engine", "fast", "--out", str(out), "--run-id", "u")
    assert r.returncode == 0, r.stderr[-2000:]
    run_dir = out / "u"
    for name in ("events.jsonl", "raw.jsonl", "occurrences.csv", "run.json", "metrics.jsonl"):
        text = (run_dir / name).read_bytes().decode("utf-8")  # strict: valid UTF-8 throughout
        text = text.replace("\\\\", "\\")  # JSON doubles the backslash
        want = "scans\\xfe" if name in ("run.json", "metrics.jsonl") else "sheet\\xff.jpg"
        assert want in text or name == "metrics.jsonl", name
    recs = raw_lines(run_dir)
    assert sorted(r["image"] for r in recs) == [
        "sheet\\xff.jpg",
        *(f"sheet_0000{i}.jpg" for i in (0, 2, 3)),
    ]
    assert all("scans\\xfe" in r["image_path"] for r in recs)
    with open(run_dir / "occurrences.csv", encoding="utf-8", newline="") as fh:
        assert "sheet\\xff.jpg" in {row["image"] for row in csv.DictReader(fh)}
    info = orjson.loads((run_dir / "run.json").read_bytes())
    assert info["config"]["inputs"] == [str(tmp_path) + "/scans\\xfe"]
    assert_counts_agree(run_dir)
    assert b"Traceback" not in r.stderr

    # resume from run.json alone: the folder is found again and every sheet is known
    (Path(bad)).unlink()
    make_fake_jpegs(tmp_path / "more", 6)
    os.rename(
        tmp_path / "more" / "sheet_00005.jpg", os.fsdecode(os.fsencode(images) + b"/new\x80.jpg")
    )
    r2 = _runner("run", "--resume", str(run_dir))
    assert r2.returncode == 0, r2.stderr[-2000:]
    ok = Counter(rec["specimen_id"] for rec in raw_lines(run_dir) if rec.get("success"))
    assert len(ok) == 5 and set(ok.values()) == {1}
    assert "new\\x80.jpg" in {rec["image"] for rec in raw_lines(run_dir)}
    assert_csv_matches_raw(run_dir)
    assert_counts_agree(run_dir)


def test_escaping_is_the_identity_on_valid_names_and_reversible() -> None:
    from herbdesk.common.fsnames import fs_text, fs_unescape, json_safe

    assert fs_text("Quercus robur ü.jpg") == "Quercus robur ü.jpg"
    raw = os.fsdecode(b"sheet\xff\x80.jpg")
    assert fs_text(raw) == "sheet\\xff\\x80.jpg"
    assert fs_unescape(fs_text(raw)) == raw
    assert fs_text("\ud800") == "\\ud800"  # a lone surrogate that is no byte: still valid text
    obj = {"a": [raw, {"b": raw}], "n": 1}
    assert orjson.loads(orjson.dumps(json_safe(obj))) == {
        "a": ["sheet\\xff\\x80.jpg", {"b": "sheet\\xff\\x80.jpg"}],
        "n": 1,
    }
