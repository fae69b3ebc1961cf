"""The API key, whole or in pieces, is blanked from everything a run writes or shows: error
texts cut near an echo of the key, raw reply text and the field values a model quotes."""

from __future__ import annotations

import csv
from pathlib import Path

from fakeapi import FakeApi
from helpers import api_config, run

from herbdesk.common.redaction import MIN_SECRET_LEN, REDACTED, Redactor, redact_secret

KEY = "sk-or-v1-" + "5ecret0key1never2leaks3" * 3


def _pieces(key: str, n: int = MIN_SECRET_LEN) -> set[str]:
    return {key[i : i + n] for i in range(len(key) - n + 1)}


def _assert_clean(blob: str, where: str) -> None:
    for piece in _pieces(KEY):
        assert piece not in blob, f"{piece!r} of the key leaked into {where}"


def test_whole_partial_and_cut_keys_are_redacted() -> None:
    assert redact_secret(f"got Bearer {KEY}.", KEY) == f"got Bearer {REDACTED}."
    cut = ("x" * 40 + KEY)[:100]  # a cut keeps all but the last characters of the key
    assert redact_secret(cut, KEY) == "x" * 40 + REDACTED
    assert redact_secret(f"tail {KEY[-20:]} end", KEY) == f"tail {REDACTED} end"
    assert redact_secret(f"mid {KEY[12:30]} end", KEY) == f"mid {REDACTED} end"
    assert redact_secret(f"[{KEY[:8]}]", KEY) == f"[{REDACTED}]"
    assert redact_secret(f"[{KEY[3:10]}]", KEY) == f"[{KEY[3:10]}]"  # 7 characters: kept
    assert redact_secret("", KEY) == ""


def test_short_keys_do_not_mangle_text() -> None:
    assert redact_secret("key accepted", "k") == "key accepted"
    assert redact_secret("passwor accepted", "passwor") == "passwor accepted"
    assert redact_secret("key accepted", None) == "key accepted"
    assert redact_secret("my password1 here", "password1") == f"my {REDACTED} here"
    assert Redactor("k").cut("k" * 30, 10) == "k" * 10


def test_redact_before_cutting() -> None:
    r = Redactor(KEY)
    text = "x" * 90 + KEY
    assert r.cut(text, 100) == ("x" * 90 + REDACTED)[:100]
    _assert_clean(r.cut(text, 100), "a cut text")


def test_a_long_text_is_redacted_quickly() -> None:
    import time

    text = ("plain label text, nothing secret. " * 130_000) + KEY[:-5]
    t0 = time.monotonic()
    out = Redactor(KEY).redact(text)
    assert time.monotonic() - t0 < 2.0
    assert out.endswith(REDACTED)


def test_echoes_near_a_cut_and_quoted_keys_reach_no_run_file(tmp_path: Path, many_images) -> None:
    """A 500 echoing the key at the 500-character cut, a non-JSON body echoing it at the
    2,000-character cut, a reply whose values quote the key and a 401 halting with the echo:
    events.jsonl, raw.jsonl, run.json, the CSV and the outcome hold no 8 characters of it."""
    images = many_images(5)
    script = ["echo_at:500:440", "raw_echo_at:1960", "quote_key", "echo_at:401:450"]
    with FakeApi(valid_key=KEY, script=script) as api:
        cfg = api_config(
            images, tmp_path / "runs", api.base_url, key=KEY, concurrency=1, max_attempts=1
        )
        outcome, _ = run(cfg)
    assert outcome.status == "failed" and REDACTED in outcome.message
    _assert_clean(outcome.message, "the halt message")
    files = [p for p in outcome.run_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"events.jsonl", "raw.jsonl", "run.json", "occurrences.csv"}
    for p in files:
        _assert_clean(p.read_text(encoding="utf-8"), p.name)
    with open(outcome.run_dir / "occurrences.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["locality"] == f"near Bearer {REDACTED} hill"
    assert rows[0]["recordedBy"] == REDACTED
    assert rows[0]["scientificName"]  # the rest of the record is kept as it came
