"""Bad settings are usage errors (exit 2, one line naming the file and the key), never a
traceback; a run resumes from any working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakeapi import FakeApi

MODEL = "test/vision-model"


def _herbdesk(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "OPENROUTER_API_KEY": "sk-test-good"}
    return subprocess.run(
        [sys.executable, "-m", "herbdesk", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def _assert_usage_error(r: subprocess.CompletedProcess[str], *named: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for text in named:
        assert text in lines[0], (text, lines[0])


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[run]\nconcurrency = "lots"\n', ("concurrency", "integer", "'lots'")),
        ("[run]\nconcurency = 4\n", ("concurency", "unknown key", "concurrency")),
        ('[validation]\ncheckpoint_after = "five"\n', ("[validation] checkpoint_after",)),
        ("[validation]\ncheckpoint_threshold = true\n", ("checkpoint_threshold", "number")),
        ("[validation]\nthreshold = 0.5\n", ("[validation] threshold", "unknown key")),
        ("[quality]\nrequire = 5\n", ("[quality] require", "string")),
        ("[run]\ninputs = 3\n", ("[run] inputs",)),
        ("[run]\nrequests_per_minute = [1]\n", ("requests_per_minute", "number")),
        ("run = 5\n", ("[run]", "table")),
        ("[runn]\nengine = 'ocr'\n", ("[runn]", "unknown table")),
        ("[alerts]\nstall_minutes = 'soon'\n", ("[alerts]", "stall_minutes")),
        ("[run\n", ("TOML",)),
    ],
    ids=[
        "int-as-word",
        "misspelt-key",
        "int-as-string",
        "bool-as-rate",
        "unknown-validation-key",
        "require-not-text",
        "inputs-not-a-list",
        "pace-a-list",
        "run-not-a-table",
        "unknown-table",
        "alerts-value",
        "broken-toml",
    ],
)
def test_a_bad_config_value_is_a_one_line_usage_error(
    tmp_path: Path, many_images, toml: str, named: tuple[str, ...]
) -> None:
    conf = tmp_path / "run.toml"
    conf.write_text(toml, encoding="utf-8")
    r = _herbdesk("run", str(many_images(2)), "--config", str(conf), "--out", str(tmp_path / "o"))
    _assert_usage_error(r, str(conf), *named)
    assert not (tmp_path / "o").exists()  # nothing was started


def test_a_prompt_file_that_is_not_utf8_is_a_usage_error(tmp_path: Path, many_images) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_bytes("Transcris l'étiquette".encode("latin-1"))
    r = _herbdesk(
        "run", str(many_images(2)), "--engine", "openrouter", "--model", MODEL,
        "--prompt", str(prompt), "--out", str(tmp_path / "o"),
    )  # fmt: skip
    _assert_usage_error(r, str(prompt), "UTF-8")
    assert not (tmp_path / "o").exists()


def test_resume_from_another_working_directory_completes(tmp_path: Path, many_images) -> None:
    """Started with relative paths in one directory, halted, resumed from another."""
    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    start.mkdir()
    elsewhere.mkdir()
    many_images(6).rename(start / "imgs")
    with FakeApi(script=["good", "good", "401"]) as api:
        args = ["run", "imgs", "--engine", "openrouter", "--model", MODEL,
                "--base-url", api.base_url, "--out", "runs", "--run-id", "r1",
                "--concurrency", "1"]  # fmt: skip
        r = _herbdesk(*args, cwd=start)
        assert r.returncode == 5, r.stderr
        run_dir = start / "runs" / "r1"
        r = _herbdesk("run", "--resume", str(run_dir), cwd=elsewhere)
        assert r.returncode == 0, r.stderr
    summary = json.loads(_herbdesk("summary", str(run_dir), "--json").stdout)
    assert summary["status"] == "completed" and summary["succeeded"] == 6, summary
    assert not (elsewhere / "runs").exists()
