"""Every exit code a help text or a doc names is the code herbdesk/cli/exitcodes.py gives for
what the sentence describes (`tail --stale-minutes` once said "exit 7", the budget pause's code,
for a run gone silent, which exits 8)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from herbdesk.cli import exitcodes, main

ROOT = Path(__file__).resolve().parents[1]

# Words one of which a sentence naming the code must hold: what the code means.
MEANING_WORDS: dict[int, tuple[str, ...]] = {
    exitcodes.EXIT_OK: ("completed", "written", "printed", "ok"),
    exitcodes.EXIT_INTERNAL: ("internal", "other end", "fail"),
    exitcodes.EXIT_USAGE: ("usage", "refused", "error", "in use", "not a", "bad", "cannot"),
    exitcodes.EXIT_PREFLIGHT: ("preflight",),
    exitcodes.EXIT_HALTED: ("halt", "validation", "gate", "checkpoint", "gold", "identical"),
    exitcodes.EXIT_FATAL: ("fatal", "disk", "revoked"),
    exitcodes.EXIT_BELOW_THRESHOLD: ("below threshold", "below_threshold"),
    exitcodes.EXIT_BUDGET: ("budget",),
    exitcodes.EXIT_DEAD: ("died", "dead", "gone", "silent", "stale", "never ended"),
    exitcodes.EXIT_CANCELLED: ("cancel", "ctrl-c"),
}
_INLINE = re.compile(r"\bexit(?:s|ed|ing)?(?:\s+with)?(?:\s+(?:code|status))?\s+(\d+)\b", re.I)
_HELP_ROW = re.compile(r"^  (\d{1,3}) {2,}(\S.*)$", re.M)  # "  7    paused at its --budget"
_MD_ROW = re.compile(r"^\| (\d{1,3}) \| (.+) \|$", re.M)  # README's table


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def _texts(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    texts = {
        f"herbdesk {' '.join(cmd)} --help": _help(cmd, capsys)
        for cmd in ([], ["run"], ["tail"], ["summary"], ["export"], ["review"], ["worker"])
    }
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    for path in sorted((ROOT / "herbdesk").rglob("*.py")):
        if path.name != "exitcodes.py":
            texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    return texts


def _sentence(text: str, at: int) -> str:
    """The sentence around `at`: from the last full stop or blank line before (at most 200
    characters back) to the next."""
    start = max(text.rfind(". ", 0, at), text.rfind(".\n", 0, at), text.rfind("\n\n", 0, at))
    start = max(start, at - 200)
    ends = [i for i in (text.find(". ", at), text.find(".\n", at), text.find("\n\n", at)) if i > 0]
    return " ".join(text[start + 1 : min(ends, default=len(text))].split())


def _wrong(code: int, context: str) -> str | None:
    if code not in exitcodes.EXIT_MEANINGS:
        return f"exit {code} is no herbdesk exit code"
    if not any(w in context.lower() for w in MEANING_WORDS[code]):
        return f"exit {code} ({exitcodes.EXIT_MEANINGS[code]}) named for: {context!r}"
    return None


def test_every_code_has_a_meaning_and_words_for_it() -> None:
    codes = {v for k, v in vars(exitcodes).items() if k.startswith("EXIT_") and isinstance(v, int)}
    assert codes == set(exitcodes.EXIT_MEANINGS) == set(MEANING_WORDS)


def test_every_exit_code_named_in_help_and_docs_means_what_the_text_says(capsys) -> None:
    problems: list[str] = []
    checked = 0
    for where, text in _texts(capsys).items():
        for m in _INLINE.finditer(text):
            checked += 1
            if (why := _wrong(int(m.group(1)), _sentence(text, m.start()))) is not None:
                problems.append(f"{where}: {why}")
        rows = [*_HELP_ROW.finditer(text)] if "exit codes" in text else []
        for m in [*rows, *_MD_ROW.finditer(text)]:
            checked += 1
            if (why := _wrong(int(m.group(1)), m.group(2))) is not None:
                problems.append(f"{where}: {why}")
    assert not problems, "\n".join(problems)
    assert checked > 40  # the patterns still find the mentions


def test_the_check_catches_a_code_typed_for_the_wrong_meaning() -> None:
    text = "report an unfinished run silent this long as stalled; with --until-done exit 7."
    m = _INLINE.search(text)
    assert m is not None and _wrong(int(m.group(1)), _sentence(text, m.start())) is not None
    fixed = text.replace("exit 7", f"exit {exitcodes.EXIT_DEAD}")
    m = _INLINE.search(fixed)
    assert m is not None and _wrong(int(m.group(1)), _sentence(fixed, m.start())) is None


def test_tail_help_gives_the_dead_run_code_for_stale_minutes(capsys) -> None:
    text = " ".join(_help(["tail"], capsys).split())
    assert f"with --until-done exit {exitcodes.EXIT_DEAD}." in text
    assert f"{exitcodes.EXIT_BUDGET} paused at its --budget" in text
