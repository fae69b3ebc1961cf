"""Shared helpers for the benchmark scripts: repeated timing, child processes, tables."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


@dataclass
class Figure:
    """One line of the results table: several samples, a target and an optional reference."""

    name: str
    unit: str
    samples: list[float] = field(default_factory=list)
    target: str = ""
    reference: list[float] | None = None  # samples of the reference (ratio = median/median)
    ok: bool | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def ratio(self) -> float | None:
        """min / min of the reference: on a shared machine the fastest run of each is the
        best estimate of its own cost (other load only ever adds time)."""
        if not self.reference or not self.samples:
            return None
        ref = min(self.reference)
        return min(self.samples) / ref if ref else None


def fmt(x: float) -> str:
    if x != x:  # nan
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def print_table(title: str, figures: Sequence[Figure]) -> str:
    """Print (and return) a Markdown table: min/median/max, ratio, target, verdict."""
    lines = [
        f"### {title}",
        "",
        "| figure | unit | min | median | max | runs | ratio to ref (min/min) | target | met |",
        "|---|---|--:|--:|--:|--:|--:|---|---|",
    ]
    for f in figures:
        s = f.samples or [float("nan")]
        ratio = f.ratio
        met = "-" if f.ok is None else ("yes" if f.ok else "NO")
        lines.append(
            f"| {f.name} | {f.unit} | {fmt(min(s))} | {fmt(f.median)} | {fmt(max(s))} "
            f"| {len(f.samples)} | {fmt(ratio) if ratio is not None else '-'} | {f.target} "
            f"| {met}{(' ' + f.note) if f.note else ''} |"
        )
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


def code_path() -> str:
    """Where children import herbdesk from: this checkout, or HERBDESK_BENCH_SRC first.

    HERBDESK_BENCH_SRC=/path/to/other/checkout measures another version of the package with
    the same benchmark scripts (how the "before" figures of docs/performance.md were taken).
    """
    other = os.environ.get("HERBDESK_BENCH_SRC")
    return os.pathsep.join([other, str(ROOT)] if other else [str(ROOT)])


def child_cwd() -> Path:
    """`python -m` puts the working directory first on sys.path: with another checkout to
    measure, children must not start in this one, or they import this herbdesk."""
    if os.environ.get("HERBDESK_BENCH_SRC"):
        import tempfile

        return Path(tempfile.gettempdir())
    return ROOT


def run_child(
    module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> dict:
    """Run `python -m benchmarks.<module> ARGS` in a fresh process; its last stdout line is JSON.

    A fresh process per sample keeps peak RSS (ru_maxrss, read by the child itself) honest.
    """
    full_env = dict(os.environ)
    full_env.setdefault("QT_QPA_PLATFORM", "offscreen")
    full_env["PYTHONPATH"] = code_path() + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [PY, "-m", f"benchmarks.{module}", *args],
        cwd=child_cwd(),
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KB on Linux


def emit_json(obj: dict) -> None:
    print(json.dumps(obj), flush=True)
