"""A sheet rewritten between its queueing and its processing: the specimen id and the bytes
sent to the engine are always the same bytes. The changed sheet fails with `image_changed`
(not retried, no request), and a later resume queues the new content under its own id."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastengine import FastEngine
from reliability import assert_counts_agree, assert_csv_matches_raw, make_fake_jpegs, raw_lines

from herbdesk.events.types import Event, EventType
from herbdesk.extraction.config import RunConfig
from herbdesk.extraction.engines import EngineSettings
from herbdesk.extraction.engines.base import Extraction, SpecimenInput
from herbdesk.extraction.images import load_image, specimen_id_of
from herbdesk.extraction.pipeline import Pipeline


class SeeingEngine(FastEngine):
    """The fast engine, noting the sha256 of the bytes it would send for each specimen."""

    def __init__(self) -> None:
        super().__init__(EngineSettings(engine="fast"))
        self.sent: list[tuple[str, str]] = []

    def extract(self, specimen: SpecimenInput) -> Extraction:
        data = specimen.data if specimen.data is not None else specimen.path.read_bytes()
        self.sent.append((specimen.specimen_id, hashlib.sha256(data).hexdigest()))
        return super().extract(specimen)


def _config(images: Path, out: Path, **kw: Any) -> RunConfig:
    return RunConfig(
        inputs=[images], out_dir=out, engine=EngineSettings(engine="fast"), concurrency=1, **kw
    )


def test_a_sheet_rewritten_mid_run_is_never_recorded_under_its_old_id(tmp_path: Path) -> None:
    images = make_fake_jpegs(tmp_path / "images", 8)
    late = images / "sheet_00007.jpg"
    new_bytes = (images / "sheet_00000.jpg").read_bytes() + b"rescanned"
    engine = SeeingEngine()
    p = Pipeline(_config(images, tmp_path / "out", run_id="r"), engine=engine)
    old_id = specimen_id_of(late)

    def rewrite_once(ev: Event) -> None:  # after the first finish: the late sheet is queued
        if ev.event_type == EventType.SPECIMEN_COMPLETED and late.read_bytes() != new_bytes:
            late.write_bytes(new_bytes)

    p.subscribe(rewrite_once, "rescanner")
    assert p.run().status == "completed"
    assert all(sid == sent for sid, sent in engine.sent)  # the id is the hash of what was sent
    assert old_id not in {sid for sid, _ in engine.sent}  # no request for the changed sheet
    (changed,) = [r for r in raw_lines(p.run_dir) if not r["success"]]
    assert changed["specimen_id"] == old_id and changed["error"]["kind"] == "image_changed"
    assert "changed" in changed["error"]["message"] and changed["attempts"] == 0
    assert_counts_agree(p.run_dir)

    again = Pipeline(_config(images, tmp_path / "out", resume_dir=p.run_dir), engine=SeeingEngine())
    assert again.run().status == "completed"
    new_id = hashlib.sha256(new_bytes).hexdigest()
    ok = [r["specimen_id"] for r in raw_lines(p.run_dir) if r["success"]]
    assert sorted(ok) == sorted({*ok}) and new_id in ok and old_id not in ok and len(ok) == 8
    assert_csv_matches_raw(p.run_dir)
    s = assert_counts_agree(p.run_dir).summary
    # every sheet on disk succeeded once; the old content's failure stays on record
    assert (s["total"], s["succeeded"], s["failed"]) == (8, 8, 1), s


def test_load_image_decodes_the_bytes_given_not_the_file(tmp_path: Path) -> None:
    from PIL import Image

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("RGB", (4, 4), (255, 0, 0)).save(a)
    Image.new("RGB", (4, 4), (0, 0, 255)).save(b)
    assert load_image(a, data=b.read_bytes()).getpixel((0, 0)) == (0, 0, 255)


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastengine import register_fast_engine

    register_fast_engine(monkeypatch)
