"""The offline OCR engine on the five real sample sheets, with the network switched off."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from herbdesk.common.dwc import DWC_TERM_SET
from herbdesk.extraction.engines.base import (
    Engine,
    EngineError,
    EngineSettings,
    ErrorKind,
    Extraction,
    SpecimenInput,
)
from herbdesk.extraction.engines.ocr import OcrEngine

SPECIMENS = Path(__file__).parents[1] / "resources" / "specimens"
SHEETS = [SPECIMENS / f"specimen_00{i}.jpg" for i in range(1, 6)]


def _no_network(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the OCR engine tried to open a network connection")


@pytest.fixture(scope="module")
def offline() -> Iterator[None]:
    """Any connection attempt fails the test: the models must come from the wheel."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        yield


@pytest.fixture(scope="module")
def engine(offline: None) -> Iterator[OcrEngine]:
    eng = OcrEngine(EngineSettings(engine="ocr"))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def results(engine: OcrEngine) -> dict[str, Extraction | EngineError]:
    """Each sample sheet read once (seconds each), shared by the tests below."""
    out: dict[str, Extraction | EngineError] = {}
    for path in SHEETS:
        t0 = time.perf_counter()
        try:
            out[path.name] = engine.extract(SpecimenInput(path, path.stem))
        except EngineError as exc:
            out[path.name] = exc
        print(f"{path.name}: {time.perf_counter() - t0:.1f} s")
    return out


def _fields(results: dict[str, Extraction | EngineError], name: str) -> dict[str, str]:
    res = results[name]
    assert isinstance(res, Extraction), f"{name}: {res}"
    return {k: v.value for k, v in res.fields.items()}


def test_is_an_engine(engine: OcrEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.name == "ocr" and engine.model == "rapidocr-PP-OCRv6"


def test_preflight_passes_offline(engine: OcrEngine) -> None:
    checks = engine.preflight()
    assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok]
    names = {c.name for c in checks}
    assert {"import rapidocr", "import onnxruntime", "det model", "rec model", "cls model"} <= names
    assert "engine init" in names


def test_name_or_collector_recovered_on_most_sheets(
    results: dict[str, Extraction | EngineError],
) -> None:
    hits = [
        name
        for name, res in results.items()
        if isinstance(res, Extraction) and {"scientificName", "recordedBy"} & set(res.fields)
    ]
    assert len(hits) >= 4, {n: getattr(r, "fields", r) for n, r in results.items()}


def test_extractions_are_well_formed(results: dict[str, Extraction | EngineError]) -> None:
    for name, res in results.items():
        assert isinstance(res, Extraction), f"{name}: {res}"
        assert res.model == "rapidocr-PP-OCRv6" and res.usage == {} and res.cost_usd is None
        assert set(res.fields) <= DWC_TERM_SET
        assert res.raw_text.strip() and "\n" in res.raw_text
        for term, fv in res.fields.items():
            assert fv.value.strip(), term
            assert fv.confidence is not None and 0.0 < fv.confidence <= 1.0, (term, fv)


def test_typed_label_read_whole(results: dict[str, Extraction | EngineError]) -> None:
    """specimen_005: a typed label, upright once EXIF orientation is applied."""
    got = _fields(results, "specimen_005.jpg")
    assert got["scientificName"] == "Hieracium umbellatum L."
    assert got["stateProvince"] == "British Columbia" and got["country"] == "Canada"
    assert got["recordNumber"] == "22"
    assert "recordedBy" not in got  # the Collector line is blank on this sheet


def test_label_turned_90_degrees_is_read(results: dict[str, Extraction | EngineError]) -> None:
    """specimen_003 has no EXIF orientation: its label only reads after turning the sheet."""
    got = _fields(results, "specimen_003.jpg")
    assert got["scientificName"].startswith("Setaria viridis")
    assert got["stateProvince"] == "Saskatchewan"
    assert got.get("recordNumber") == "1073b"


def test_raw_text_is_in_reading_order(results: dict[str, Extraction | EngineError]) -> None:
    res = results["specimen_005.jpg"]
    assert isinstance(res, Extraction)
    text = res.raw_text
    assert text.index("Botanical Name") < text.index("Locality") < text.index("Coll")
    assert "calibrite" not in text.lower()  # the colour checker is not label text


def test_corrupt_image_is_an_image_error(engine: OcrEngine, tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(EngineError) as info:
        engine.extract(SpecimenInput(bad, "broken"))
    assert info.value.kind == ErrorKind.IMAGE


def test_blank_sheet_has_no_fields(engine: OcrEngine, tmp_path: Path) -> None:
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (800, 600), (250, 248, 240)).save(blank)
    with pytest.raises(EngineError) as info:
        engine.extract(SpecimenInput(blank, "blank"))
    assert info.value.kind == ErrorKind.NO_FIELDS
    assert info.value.raw_text == ""


def test_worker_threads_read_alike(
    engine: OcrEngine, results: dict[str, Extraction | EngineError]
) -> None:
    """Two workers at once, each with its own recogniser, read what one read alone."""
    sheet = SPECIMENS / "specimen_005.jpg"
    with ThreadPoolExecutor(max_workers=2) as pool:
        both = list(pool.map(lambda _: engine.extract(SpecimenInput(sheet, "s5")), range(2)))
    alone = results[sheet.name]
    assert isinstance(alone, Extraction)
    for res in both:
        assert res.fields["scientificName"] == alone.fields["scientificName"]
        assert res.fields["stateProvince"] == alone.fields["stateProvince"]


def test_close_then_reuse(offline: None) -> None:
    eng = OcrEngine(EngineSettings(engine="ocr"))
    assert all(c.ok for c in eng.preflight())
    eng.close()
    assert all(c.ok for c in eng.preflight())  # a fresh recogniser is made on demand
    eng.close()


def test_checklist_flag_reaches_the_engine_and_a_bad_one_is_a_config_error(
    tmp_path: Path,
) -> None:
    """`run --checklist F` with the OCR engine hands F to the label parser; an unreadable
    checklist fails as a config error (fatal, with the path named), not per sheet."""
    from herbdesk.cli.main import _build_parser
    from herbdesk.cli.runconfig import build_run_config

    names = tmp_path / "names.txt"
    names.write_text("Coreopsis tinctoria Nutt.\nSetaria viridis (L.) P.Beauv.\n", encoding="utf-8")
    images = tmp_path / "images"
    images.mkdir()
    args = _build_parser().parse_args(
        ["run", str(images), "--engine", "ocr", "--checklist", str(names), "--out", str(tmp_path)]
    )
    settings = build_run_config(args).engine
    assert settings.extra["checklist"] == str(names.absolute())
    lookup = OcrEngine(settings)._checklist()
    assert lookup is not None and lookup.match("Coreopsis tinctorie").name == "Coreopsis tinctoria"
    gone = tmp_path / "moved-away.txt"  # deleted between the flag check and the first sheet
    with pytest.raises(EngineError) as err:
        OcrEngine(EngineSettings(engine="ocr", extra={"checklist": str(gone)}))._checklist()
    assert err.value.kind == ErrorKind.CONFIG and "moved-away.txt" in err.value.message


def test_a_line_read_alike_at_every_size_agrees_and_handwriting_does_not() -> None:
    from herbdesk.extraction.engines.ocr import Box, _best_readings

    printed = [Box("Locality Texas Creek", 0.99, 0, 0, 200, 20)] * 3
    hand = [
        Box("Host Portulaca oleracea", 0.95, 0, 50, 200, 70),
        Box("Host Po tkca ole-ceea", 0.90, 0, 50, 200, 70),
        Box("Host", 0.99, 0, 50, 40, 70),  # the caption alone: no evidence either way
    ]
    rows = {b.text: b for b in _best_readings(printed + hand)}
    assert rows["Locality Texas Creek"].agreement == 1.0
    assert rows["Host Portulaca oleracea"].agreement < 0.9
    assert "Host" not in rows


def test_only_lines_in_doubt_are_read_a_third_time() -> None:
    from herbdesk.extraction.engines.ocr import Box, _doubtful

    page = [
        Box("Locality Bow River Flats", 0.97, 0, 0, 300, 20),
        Box("Collector", 0.99, 0, 30, 90, 50),  # the page pass found only the caption
        Box("Herbarium No. ........", 0.90, 0, 60, 300, 80),  # a blank found empty
        Box("Habitat moist sand", 0.90, 0, 90, 300, 110),
    ]
    enlarged = [
        Box("Locality. Bow River Flats", 0.96, 0, 0, 300, 20),  # alike but for a leader dot
        Box("Collector J. Harkness 2231", 0.99, 0, 30, 300, 50),  # read surely
        Box("Herbarium No. ....:.", 0.80, 0, 60, 300, 80),
        Box("Hobitat moiat sond", 0.88, 0, 90, 300, 110),  # handwriting read differently
    ]
    texts = {b.text for b in _doubtful(page, enlarged)}
    assert texts == {
        "Herbarium No. ........",
        "Herbarium No. ....:.",
        "Hobitat moiat sond",
        "Habitat moist sand",
    }
    assert _doubtful(enlarged[:2], enlarged[:2]) == []  # print: read alike, settled
