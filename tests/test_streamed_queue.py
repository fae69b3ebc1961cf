"""Streamed queueing: the first specimen starts while the rest of a folder is still being
identified; each image is read once; resume trusts the run's image index for unchanged files;
the resume point comes from raw records' head and tail, not a parse of every record."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastengine import FastEngine
from reliability import assert_counts_agree, make_fake_jpegs, raw_lines

from herbdesk.events.types import Event, EventType
from herbdesk.extraction import identify, results
from herbdesk.extraction.config import RunConfig
from herbdesk.extraction.engines import EngineSettings
from herbdesk.extraction.imageindex import INDEX, ImageIndex
from herbdesk.extraction.images import read_stamped, scan_images
from herbdesk.extraction.pipeline import Pipeline, specimen_record
from herbdesk.extraction.results import ResultsWriter, resume_point

N = 40  # well past the read-ahead (identify.READ_AHEAD)
LONG_AGO = time.time() - 3600  # older than imageindex.RACY_NS: the index vouches for them


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastengine import register_fast_engine

    register_fast_engine(monkeypatch)


def _config(images: Path, out: Path, **kw: Any) -> RunConfig:
    kw.setdefault("concurrency", 2)
    return RunConfig(inputs=[images], out_dir=out, engine=EngineSettings(engine="fast"), **kw)


def _aged(folder: Path) -> Path:
    for f in folder.iterdir():
        os.utime(f, (LONG_AGO, LONG_AGO))
    return folder


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the images the identifier reads, in order."""
    read: list[str] = []

    def reading(path: Path) -> Any:
        read.append(Path(path).name)
        return read_stamped(path)

    monkeypatch.setattr(identify, "read_stamped", reading)
    return read


def test_the_first_specimen_starts_before_the_folder_is_identified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last image's read waits until a specimen is processing: with every image hashed
    before the first start (as before) it waited in vain, and the run began only after."""
    images = make_fake_jpegs(tmp_path / "images", N)
    last = f"sheet_{N - 1:05d}.jpg"
    processing = threading.Event()
    at_first_start: list[int] = []
    queued: list[str] = []
    totals: list[int] = []

    def slow_read(path: Path) -> Any:
        if Path(path).name == last:
            processing.wait(30)  # a guard against a hang, not a timing assertion
        return read_stamped(path)

    def watch(ev: Event) -> None:
        if ev.event_type == EventType.EXTRACTION_STARTED:
            totals.append(ev.data["total"])
        elif ev.event_type == EventType.SPECIMEN_QUEUED:
            queued.append(ev.data["image"])
        elif ev.event_type == EventType.SPECIMEN_PROCESSING and not processing.is_set():
            at_first_start.append(len(queued))
            processing.set()

    monkeypatch.setattr(identify, "read_stamped", slow_read)
    p = Pipeline(_config(images, tmp_path / "out", run_id="s"))
    p.subscribe(watch, "watch")
    assert p.run().status == "completed"
    assert totals == [N]  # the total is the scan's, known before anything is read
    (n_queued,) = at_first_start
    assert n_queued < N and last not in queued[:n_queued]
    assert len(queued) == N and len(raw_lines(p.run_dir)) == N
    assert_counts_agree(p.run_dir)


def test_each_image_is_read_once_and_sent_as_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The identifier's read is the only read: the worker sends those bytes (the engine sees
    data, never reopens the file), and no image is read twice."""
    images = make_fake_jpegs(tmp_path / "images", N)
    read = _reads(monkeypatch)
    opened: list[str] = []
    sent: list[tuple[str, str]] = []

    class Seeing(FastEngine):
        def extract(self, specimen: Any) -> Any:
            assert specimen.data is not None  # bytes carried, not re-read by the engine
            sent.append((specimen.specimen_id, hashlib.sha256(specimen.data).hexdigest()))
            return super().extract(specimen)

    import herbdesk.extraction.pipeline as pipeline_mod

    def no_second_read(path: Path) -> Any:
        opened.append(Path(path).name)
        raise AssertionError("read again at processing")

    monkeypatch.setattr(pipeline_mod, "read_specimen", no_second_read)
    p = Pipeline(_config(images, tmp_path / "out", run_id="o"), engine=Seeing(EngineSettings()))
    assert p.run().status == "completed"
    assert sorted(read) == sorted(f.name for f in images.iterdir()) and not opened
    assert len(sent) == N and all(sid == h for sid, h in sent)


def test_a_sheet_changed_after_it_was_identified_fails_as_image_changed(
    tmp_path: Path,
) -> None:
    """Rewritten after its bytes were read (the read-ahead holds them): the stat at processing
    sees it, the re-read's hash differs, it fails as image_changed with no request. Only
    touched (same bytes, new mtime): re-read, same hash, processed as usual."""
    images = make_fake_jpegs(tmp_path / "images", 6)
    rewritten, touched = images / "sheet_00004.jpg", images / "sheet_00005.jpg"
    old_id = hashlib.sha256(rewritten.read_bytes()).hexdigest()

    def rewrite(ev: Event) -> None:  # just after its read, long before a worker takes it
        if ev.event_type == EventType.SPECIMEN_QUEUED and ev.data["image"] == rewritten.name:
            rewritten.write_bytes(rewritten.read_bytes()[::-1])
        if ev.event_type == EventType.SPECIMEN_QUEUED and ev.data["image"] == touched.name:
            os.utime(touched, (LONG_AGO, LONG_AGO))

    p = Pipeline(_config(images, tmp_path / "out", run_id="c", concurrency=1))
    p.subscribe(rewrite, "rescanner")
    assert p.run().status == "completed"
    recs = raw_lines(p.run_dir)
    (bad,) = [r for r in recs if not r["success"]]
    assert bad["specimen_id"] == old_id and bad["error"]["kind"] == "image_changed"
    assert bad["attempts"] == 0
    assert [r["success"] for r in recs if r["image"] == touched.name] == [True]


def test_resume_trusts_the_index_for_unchanged_files_and_rehashes_a_touched_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = _aged(make_fake_jpegs(tmp_path / "images", 12))
    first = Pipeline(_config(images, tmp_path / "out", run_id="r"))
    assert first.run().status == "completed"
    assert len(ImageIndex(first.run_dir)) == 12  # every hashed image is in the run's index

    touched = images / "sheet_00003.jpg"
    os.utime(touched, (LONG_AGO + 60, LONG_AGO + 60))  # same bytes, another mtime
    make_fake_jpegs(tmp_path / "more", 14)  # two sheets the first run never saw
    for i in (12, 13):
        (tmp_path / "more" / f"sheet_{i:05d}.jpg").rename(images / f"sheet_{i:05d}.jpg")
    read = _reads(monkeypatch)
    again = Pipeline(_config(images, tmp_path / "out", resume_dir=first.run_dir))
    skipped: list[str] = []
    again.subscribe(
        lambda ev: (
            skipped.append(ev.data["image"])
            if ev.event_type == EventType.SPECIMEN_SKIPPED
            else None
        ),
        "skips",
    )
    assert again.run().status == "completed"
    # the eleven unchanged, completed sheets were skipped unread; the touched one was read
    # (and found done), the new ones read and extracted
    assert sorted(read) == ["sheet_00003.jpg", "sheet_00012.jpg", "sheet_00013.jpg"]
    assert again.identifier is not None and again.identifier.index is not None
    assert again.identifier.index.lookups == 11
    assert len(skipped) == 12 and touched.name in skipped
    ok = [r["specimen_id"] for r in raw_lines(first.run_dir) if r["success"]]
    assert len(ok) == len(set(ok)) == 14


def test_an_index_entry_never_vouches_for_changed_bytes(tmp_path: Path) -> None:
    """Size or mtime differ: no answer; an entry for a just-written file is not recorded (it
    could change again within the same mtime tick); a torn last record is ignored."""
    f = tmp_path / "a.jpg"
    f.write_bytes(b"x" * 10)
    _, sid, stamp = read_stamped(f)
    idx = ImageIndex(tmp_path)
    idx.add(f, stamp, sid)  # written just now: racy, not recorded
    old = (10, int(LONG_AGO * 1e9))
    idx.add(f, old, sid)
    idx.close()
    with open(tmp_path / INDEX, "ab") as fh:
        fh.write(b"torn")
    idx = ImageIndex(tmp_path)
    assert len(idx) == 1 and idx.get(f, old) == sid
    assert idx.get(f, (11, old[1])) is None and idx.get(f, (10, old[1] + 1)) is None
    assert idx.get(tmp_path / "b.jpg", old) is None
    idx.add(tmp_path / "b.jpg", old, sid)
    idx.close()
    assert len(ImageIndex(tmp_path)) == 2  # appended after the torn tail was cut


def test_the_resume_point_reads_records_by_head_and_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records as herbdesk writes them are not parsed whole (their model text can be
    gigabytes); failures, foreign lines and torn lines are, and the answer is the same."""
    from herbdesk.extraction.engines.base import EngineError, ErrorKind, SpecimenInput
    from herbdesk.extraction.pipeline import SpecimenOutcome

    engine = FastEngine(EngineSettings(engine="fast"))
    w = ResultsWriter(tmp_path)
    n = 2000
    for i in range(n):
        item = SpecimenInput(path=Path(f'/x/sheet "{i}".jpg'), specimen_id=f"{i:064x}")
        if i % 500 == 7:
            o = SpecimenOutcome(None, EngineError(ErrorKind.BAD_REPLY, "no"), 1, 1.0)
        else:
            o = SpecimenOutcome(engine.extract(item_bytes(item)), None, 1, 2.5)
        w.write(specimen_record("r", i + 1, item, engine, o))
    w.close()
    raw = tmp_path / "raw.jsonl"
    with open(raw, "ab") as fh:  # a torn success at the end, and a foreign line
        fh.write(b'{"note": "hand-written"}\n')
        fh.write(raw.read_bytes().splitlines()[1][:-30] + b"\n")
    whole: list[bytes] = []
    real = results.parse_whole_record

    def counting(line: bytes) -> Any:
        whole.append(line)
        return real(line)

    monkeypatch.setattr(results, "parse_whole_record", counting)
    point = resume_point(raw)
    done, last, spent = point.done, point.last, point.spent
    assert len(whole) == 4 + 2  # the four failures, the foreign line, the torn one
    expected = set()
    cost = 0.0
    records = costed = 0
    for line in raw.read_bytes().splitlines():
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if rec.get("success"):
            expected.add(rec["specimen_id"])
        cost += rec.get("cost_usd") or 0.0
        if "specimen_id" in rec:  # not the foreign line
            records += 1
            costed += rec.get("cost_usd") is not None
    assert done == expected and len(done) == n - 4 and last == n
    assert (point.finished, point.costed) == (records, costed)  # the budget's mean goes on
    # every record's cost, read from the tail of the ones not parsed whole
    assert cost > 0 and spent == pytest.approx(cost)


def item_bytes(item: Any) -> Any:
    """A specimen with bytes the fast engine can read (it hashes what it is given)."""
    import dataclasses

    return dataclasses.replace(item, data=b"\xff\xd8" + item.specimen_id.encode())


def test_the_scan_lists_what_it_did_and_holds_names_compactly(tmp_path: Path) -> None:
    """Nested folders depth-first by name (sorted(rglob) order), hidden files and other
    suffixes left out, a symlinked folder not followed, overlapping inputs listed once."""
    root = tmp_path / "c"
    for rel in ("b/2.JPG", "a.png", "b/1.tif", "b/c/0.jpeg", "z.jpg", ".hid.jpg", "x.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    (root / "link").symlink_to(root / "b", target_is_directory=True)
    found = scan_images([root])
    want = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in {".jpg", ".jpeg", ".png", ".tif", ".tiff"}
        and not p.name.startswith(".")
    )
    assert list(found) == want and len(found) == 5
    assert list(scan_images([root, root / "z.jpg", root / "b"])) == want
    assert list(scan_images([root], limit=2)) == want[:2]
