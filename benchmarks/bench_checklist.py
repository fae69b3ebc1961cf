"""Names checklist at World Flora Online size: load time, lookups a second, memory.

    python -m benchmarks.bench_checklist [--names 1500000] [--genera 50000] [--lookups 20000]

Generates a deterministic list of Latin-looking names (genus sizes skewed like real floras,
some lines with authorship or an infraspecific part) into a temp dir, loads it with
`Checklist.load` and times lookups of three kinds: exact hits (half of them with authorship
or different case), one-letter misspellings (in the epithet or the genus) and misses
(invented genera, or a known genus with an invented epithet). Prints the figures and checks
the targets: load <= 10 s, >= 10,000 lookups/s on the mix, RSS < 1 GB.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from herbdesk.quality.checklist import Checklist, NameMatch

SEED = 20240611
ONSETS = ["b", "c", "d", "f", "g", "l", "m", "n", "p", "r", "s", "t", "v", "ch", "ph", "th"]
ONSETS += ["br", "cr", "dr", "gr", "pr", "tr", "pl", "cl", "st", "sc", "h", "x", "z", ""]
VOWELS = ["a", "e", "i", "o", "u", "ae", "ia", "io", "y", "au", "ei"]
GENUS_ENDS = ["ia", "us", "um", "a", "is", "on", "ella", "anthus", "opsis", "carpus", "aria"]
GENUS_ENDS += ["odendron", "phyllum", "ago", "ina", "ites", "oides", "ea", "ocarpa", "ops"]
EPITHET_ENDS = ["us", "a", "um", "ensis", "oides", "ii", "iana", "ifolia", "ata", "osa", "ica"]
EPITHET_ENDS += ["alis", "ides", "ina", "ella", "escens", "iflora", "ophylla", "orum", "ae"]
AUTHORS = ["L.", "Nutt.", "DC.", "Mill.", "(L.) DC.", "Benth.", "Hook.f.", "A.Gray"]
AUTHORS += ["Willd.", "(Torr. & A.Gray) Nutt.", "Kunth", "Pers.", "de Candolle", "Sm."]


def _word(rng: random.Random, syllables: int, ends: list[str]) -> str:
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(syllables)) + (
        rng.choice(ONSETS) + rng.choice(ends)
    )


def _genus(rng: random.Random) -> str:
    return _word(rng, rng.choice((1, 2, 2, 3)), GENUS_ENDS).capitalize()


def _epithet(rng: random.Random) -> str:
    return _word(rng, rng.choice((1, 2, 2, 3)), EPITHET_ENDS)


def generate(path: Path, n_names: int, n_genera: int, keep: int) -> tuple[list[str], list[str]]:
    """Write the list; return (a sample of `keep` canonical names, the genera)."""
    rng = random.Random(SEED)
    genera: list[str] = []
    seen: set[str] = set()
    while len(genera) < n_genera:
        g = _genus(rng)
        if g not in seen and len(g) >= 4:
            seen.add(g)
            genera.append(g)
    # Skewed genus sizes (a few huge genera, many small ones), scaled to n_names.
    weights = [1.0 / (i + 10) ** 0.9 for i in range(n_genera)]
    scale = n_names / sum(weights)
    sizes = [max(1, round(w * scale)) for w in weights]
    sample: list[str] = []
    written = 0
    every = max(1, n_names // keep)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("# generated checklist for bench_checklist\n")
        for genus, size in zip(genera, sizes, strict=True):
            used: set[str] = set()
            tries = 0
            while len(used) < size and written < n_names and tries < size * 5:
                tries += 1
                ep = _epithet(rng)
                if ep in used:
                    continue
                used.add(ep)
                canon = f"{genus} {ep}"
                if rng.random() < 0.08:
                    canon += f" {rng.choice(('subsp.', 'var.'))} {_epithet(rng)}"
                line = canon
                if rng.random() < 0.4:
                    line += " " + rng.choice(AUTHORS)
                fh.write(line + "\n")
                if written % every == 0:
                    sample.append(canon)
                written += 1
    return sample, genera


def misspell(rng: random.Random, name: str) -> str:
    """One OCR-like error: substitution, deletion, insertion or swap of one letter."""
    parts = name.split(" ")
    idx = 0 if rng.random() < 0.3 else 1  # mostly the epithet, sometimes the genus
    w = parts[idx]
    i = rng.randrange(1, len(w) - 1)
    op = rng.randrange(4)
    letters = "aeiourlnmcst"
    if op == 0:
        w = w[:i] + rng.choice(letters.replace(w[i], "")) + w[i + 1 :]
    elif op == 1:
        w = w[:i] + w[i + 1 :]
    elif op == 2:
        w = w[:i] + rng.choice(letters) + w[i:]
    elif w[i] != w[i + 1]:
        w = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    else:
        w = w[:i] + w[i + 1 :]
    parts[idx] = w
    return " ".join(parts)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn: Callable[[str], NameMatch], queries: list[str]) -> tuple[float, list[NameMatch]]:
    t0 = time.perf_counter()
    out = [fn(q) for q in queries]
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=int, default=1_500_000)
    ap.add_argument("--genera", type=int, default=50_000)
    ap.add_argument("--lookups", type=int, default=20_000, help="per kind")
    args = ap.parse_args(argv)
    rng = random.Random(SEED + 1)

    with tempfile.TemporaryDirectory(prefix="bench-checklist-") as tmp:
        path = Path(tmp) / "checklist.txt"
        t0 = time.perf_counter()
        sample, genera = generate(path, args.names, args.genera, keep=args.lookups * 2)
        gen_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 2**20
        gc.collect()
        rss0 = rss_mb()
        t0 = time.perf_counter()
        cl = Checklist.load(path)
        load_s = time.perf_counter() - t0
        gc.collect()
        rss1 = rss_mb()

    n = args.lookups
    exact = rng.sample(sample, n)
    for i in range(0, n, 2):  # half as a record would carry them
        exact[i] = exact[i] + " " + rng.choice(AUTHORS) if i % 4 else exact[i].upper()
    originals = rng.sample(sample, n)
    typos = [misspell(rng, s) for s in originals]
    known = set(genera)
    misses = []
    while len(misses) < n:
        if rng.random() < 0.5:
            g = _genus(rng)
            if g in known:
                continue
        else:
            g = rng.choice(genera)
        misses.append(f"{g} {_epithet(rng)}{rng.choice(('ix', 'ueo', 'yth'))}")
    mix = exact + typos + misses
    rng.shuffle(mix)

    print(f"checklist: {len(cl):,} names, {len(cl._genera):,} genera, {size_mb:.1f} MB text")
    print(f"generate: {gen_s:.2f} s (not part of the figures)")
    print(f"load: {load_s:.2f} s   RSS {rss0:.0f} -> {rss1:.0f} MB (+{rss1 - rss0:.0f} MB)")
    results = {}
    rates = {}
    for label, queries in (("exact", exact), ("misspelt", typos), ("miss", misses), ("mix", mix)):
        dt, out = timed(cl.match, queries)
        results[label] = out
        rates[label] = len(queries) / dt
        print(
            f"lookups {label:8s}: {len(queries) / dt:10,.0f} /s  ({dt * 1e6 / len(queries):.1f} us)"
        )
    ex = sum(m.status == "matched" for m in results["exact"])
    typo_out = results["misspelt"]
    fz = sum(m.status != "not_found" for m in typo_out)
    right = sum(
        m.name is not None and m.name == o for m, o in zip(typo_out, originals, strict=True)
    )
    fp = sum(m.status != "not_found" for m in results["miss"])
    print(f"exact hits matched: {ex / n:.1%}")
    print(f"misspellings: suggestion found {fz / n:.1%}, the intended name {right / n:.1%}")
    print(f"misses given a suggestion anyway: {fp / n:.1%}")
    peak = peak_rss_mb()
    print(f"peak RSS: {peak:.0f} MB")
    rate = rates["mix"]
    ok = load_s <= 10 and rate >= 10_000 and peak < 1024
    print(
        f"targets: load {load_s:.2f} s <= 10 s, mix {rate:,.0f}/s >= 10,000/s, "
        f"peak RSS {peak:.0f} MB < 1024 MB: {'OK' if ok else 'FAILED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
