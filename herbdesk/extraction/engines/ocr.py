"""The offline engine: RapidOCR (PP-OCRv6, ONNX, CPU) plus a rule-based Darwin Core parser.

Runs without network or API key, so a first run, a demo or a test works anywhere. Labels on
herbarium sheets are often turned 90°, so each sheet is read in three orientations and the
most legible one wins; each block of text found there is then re-read enlarged, because
typewritten label text on a 1600 px sheet is too small for the recogniser.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from herbdesk.extraction.dwc_parser import parse_label
from herbdesk.extraction.engines.base import (
    Check,
    EngineError,
    EngineSettings,
    ErrorKind,
    Extraction,
    SpecimenInput,
)
from herbdesk.extraction.images import load_image

log = logging.getLogger(__name__)

MODEL_NAME = "rapidocr-PP-OCRv6"
# The ONNX files shipped inside the rapidocr 3.x wheel; passing them explicitly keeps
# RapidOCR off its download path entirely.
_MODEL_FILES = {
    "Det": "PP-OCRv6_det_small.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}
# Long side for the orientation pass: the sample sheets' native size, and enough to
# rank orientations of a 20k px scan without running the detector on 300 Mpx.
PAGE_SIDE = 1600
# Long side at which the high-resolution source is kept for the enlarged re-read.
SOURCE_SIDE = 4000
ROTATIONS = (0, 270, 90)  # PIL degrees counter-clockwise; labels are mostly turned 90° CCW
TARGET_LINE_PX = 34.0  # text height the recogniser reads best (its input is 48 px high)
MAX_ZOOM = 3.0
MAX_CROP_SIDE = 2000  # RapidOCR shrinks anything longer, which would undo the zoom
# Printed on the colour checker in every photograph: never label text.
_TARGET_WORDS = re.compile(r"alibr|checker|classic|^\W*(1?2/?2?2|mm)\W*$", re.I)


@dataclass(frozen=True)
class Box:
    """One recognised text line, with its axis-aligned bounds in page pixels."""

    text: str
    score: float
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def height(self) -> float:
        return max(1.0, min(self.y1 - self.y0, self.x1 - self.x0) if self.tall else self.y1 - self.y0)

    @property
    def tall(self) -> bool:
        return (self.y1 - self.y0) > 1.5 * (self.x1 - self.x0)

    @property
    def weight(self) -> float:
        """Legibility: confident characters count, dot leaders and noise do not."""
        letters = sum(ch.isalnum() for ch in self.text)
        return self.score * letters


def _models_dir() -> Path | None:
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "models"


def _rapidocr_params() -> dict[str, Any]:
    models = _models_dir()
    if models is None:
        raise EngineError(ErrorKind.CONFIG, "rapidocr is not installed")
    params: dict[str, Any] = {
        "Global.log_level": "error",  # INFO logs every model path; WARNING logs blank pages
        "Global.text_score": 0.4,
        "Global.max_side_len": MAX_CROP_SIDE,
        # Faint ballpoint on a dotted line needs a more permissive detector than print.
        "Det.thresh": 0.2,
        "Det.box_thresh": 0.4,
    }
    for task, fname in _MODEL_FILES.items():
        path = models / fname
        if not path.is_file():
            raise EngineError(ErrorKind.CONFIG, f"rapidocr model missing: {path}")
        params[f"{task}.model_path"] = str(path)
    return params


def _prepare(img: Image.Image) -> Image.Image:
    """Red channel, contrast-stretched: blue and black ink turn dark, cream paper white."""
    red = ImageOps.autocontrast(img.getchannel("R"), cutoff=1)
    return Image.merge("RGB", (red, red, red))


def _scaled(img: Image.Image, factor: float) -> Image.Image:
    if abs(factor - 1.0) < 0.05:
        return img
    size = (max(1, round(img.width * factor)), max(1, round(img.height * factor)))
    return img.resize(size, Image.Resampling.LANCZOS)


class OcrEngine:
    """Offline Darwin Core extraction: OCR in the best orientation, then label rules."""

    name = "ocr"

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.model = MODEL_NAME
        self._local = threading.local()
        self._params: dict[str, Any] | None = None

    # -- Engine protocol -------------------------------------------------------------------

    def preflight(self) -> list[Check]:
        """Imports, shipped model files and one tiny inference; never raises, never downloads."""
        checks: list[Check] = []
        for mod in ("rapidocr", "onnxruntime"):
            found = importlib.util.find_spec(mod) is not None
            checks.append(Check(f"import {mod}", found, "installed" if found else "not installed"))
        models = _models_dir()
        for task, fname in _MODEL_FILES.items():
            path = models / fname if models else None
            ok = bool(path and path.is_file())
            detail = str(path) if ok else f"{fname} not found in the rapidocr package"
            checks.append(Check(f"{task.lower()} model", ok, detail))
        if all(c.ok for c in checks):
            try:
                t0 = time.perf_counter()
                blank = np.full((64, 256, 3), 255, dtype=np.uint8)
                self._ocr()(blank)
                checks.append(
                    Check("engine init", True, f"ready in {time.perf_counter() - t0:.1f} s")
                )
            except Exception as exc:  # preflight reports, it never raises
                checks.append(Check("engine init", False, f"{type(exc).__name__}: {exc}"))
        else:
            checks.append(Check("engine init", False, "skipped: a dependency is missing"))
        return checks

    def extract(self, specimen: SpecimenInput) -> Extraction:
        source = load_image(specimen.path, max_side=SOURCE_SIDE)
        try:
            lines = self.read_lines(source)
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(ErrorKind.INTERNAL, f"OCR failed: {type(exc).__name__}: {exc}") from exc
        raw_text = "\n".join(text for text, _ in lines)
        fields = parse_label(lines)
        if not fields or set(fields) <= {"basisOfRecord"}:
            raise EngineError(ErrorKind.NO_FIELDS, "no Darwin Core term found in OCR text",
                              raw_text=raw_text)
        return Extraction(fields=fields, raw_text=raw_text, usage={}, cost_usd=None,
                          model=self.model)

    def close(self) -> None:
        """Drops this thread's recogniser; the others go with their threads."""
        self._local.__dict__.clear()

    # -- OCR -----------------------------------------------------------------------------

    def _ocr(self) -> Any:
        """This thread's RapidOCR: ONNX sessions are not shared between worker threads."""
        ocr = getattr(self._local, "ocr", None)
        if ocr is None:
            from rapidocr import RapidOCR

            if self._params is None:
                self._params = _rapidocr_params()
            ocr = RapidOCR(params=dict(self._params))
            self._local.ocr = ocr
        return ocr

    def _run(self, img: Image.Image) -> list[Box]:
        res = self._ocr()(np.asarray(img))
        txts = getattr(res, "txts", None)
        boxes = getattr(res, "boxes", None)
        scores = getattr(res, "scores", None)
        if not txts or boxes is None or scores is None:
            return []
        out: list[Box] = []
        for text, score, quad in zip(txts, scores, boxes, strict=False):
            pts = np.asarray(quad, dtype=float)
            out.append(Box(str(text).strip(), float(score), float(pts[:, 0].min()),
                           float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())))
        return [b for b in out if b.text and not _TARGET_WORDS.search(b.text)]

    def read_lines(self, source: Image.Image) -> list[tuple[str, float]]:
        """OCR lines (text, score) of the sheet in reading order of its best orientation."""
        page_scale = min(1.0, PAGE_SIDE / max(source.size))
        page = _prepare(_scaled(source, page_scale))
        rot, found = self._orient(page)
        rotated = source.rotate(rot, expand=True) if rot else source
        blocks: list[list[Box]] = []
        reread: list[tuple[float, float, float, float]] = []
        flat = [b for b in found if not b.tall]
        for cluster in sorted(_clusters(flat), key=lambda c: -sum(b.weight for b in c)):
            if any(all(_inside(b, r) for b in cluster) for r in reread):
                continue  # already read again as part of a bigger block
            lines, crop = self._reread(rotated, cluster, page_scale)
            if crop is not None:
                reread.append(crop)
            blocks.append(_merge_lines(lines))
        # A stamp or slip at right angles to the label: RapidOCR turns such crops itself.
        blocks.extend([b] for b in found if b.tall and b.score >= 0.8)
        blocks.sort(key=lambda blk: (min(b.y0 for b in blk), min(b.x0 for b in blk)))
        return [(b.text, round(b.score, 4)) for blk in blocks for b in blk]

    def _orient(self, page: Image.Image) -> tuple[int, list[Box]]:
        """The rotation whose horizontal lines are most legible, with those lines."""
        best: tuple[float, int, list[Box]] = (-1.0, 0, [])
        for rot in ROTATIONS:
            found = self._run(page.rotate(rot, expand=True) if rot else page)
            legibility = sum(b.weight for b in found if not b.tall)
            log.debug("rotation %d: legibility %.1f", rot, legibility)
            if legibility > best[0]:
                best = (legibility, rot, found)
            # Only text standing on end can read better rotated; skip the work if there's none.
            if rot == 0 and sum(b.weight for b in found if b.tall) < 0.5 * legibility:
                break
        return best[1], best[2]

    def _reread(
        self, rotated: Image.Image, cluster: list[Box], page_scale: float
    ) -> tuple[list[Box], tuple[float, float, float, float] | None]:
        """Re-reads one text block enlarged; returns the more legible reading and its crop."""
        line_h = float(np.median([b.height for b in cluster]))
        pad = 1.5 * line_h
        x0 = max(0.0, min(b.x0 for b in cluster) - pad)
        y0 = max(0.0, min(b.y0 for b in cluster) - pad)
        x1 = max(b.x1 for b in cluster) + pad
        y1 = max(b.y1 for b in cluster) + pad
        src = 1.0 / page_scale  # page px -> source px
        crop = rotated.crop((round(x0 * src), round(y0 * src), min(rotated.width, round(x1 * src)),
                             min(rotated.height, round(y1 * src))))
        zoom = min(MAX_ZOOM, TARGET_LINE_PX / (line_h * src), MAX_CROP_SIDE / max(crop.size))
        if zoom * src < 1.15:
            return cluster, None  # already legible at page size: another pass gains nothing
        back = 1.0 / (zoom * src)  # crop px -> page px
        found = [Box(b.text, b.score, x0 + b.x0 * back, y0 + b.y0 * back, x0 + b.x1 * back,
                     y0 + b.y1 * back) for b in self._run(_prepare(_scaled(crop, zoom)))
                 if not b.tall]
        if found and sum(b.weight for b in found) >= sum(b.weight for b in cluster):
            return found, (x0, y0, x1, y1)
        return cluster, None


def _inside(box: Box, rect: tuple[float, float, float, float]) -> bool:
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    return rect[0] <= cx <= rect[2] and rect[1] <= cy <= rect[3]


def _clusters(boxes: list[Box]) -> list[list[Box]]:
    """Groups boxes lying within a few line heights of each other: a label, a stamp, a slip."""
    parent = list(range(len(boxes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            b = boxes[j]
            m = 2.0 * max(a.height, b.height)
            if a.x0 - m <= b.x1 and b.x0 - m <= a.x1 and a.y0 - m <= b.y1 and b.y0 - m <= a.y1:
                parent[find(i)] = find(j)
    groups: dict[int, list[Box]] = {}
    for i, b in enumerate(boxes):
        groups.setdefault(find(i), []).append(b)
    return list(groups.values())


def _merge_lines(boxes: list[Box]) -> list[Box]:
    """Joins boxes on one line (a caption and its value) into one, top to bottom.

    Pairs are joined best-overlap first, so a raised value goes to the caption it sits
    on rather than to the line above that it merely touches.
    """
    rows: list[list[Box]] = [[b] for b in boxes]
    row_of = list(range(len(boxes)))
    pairs = sorted(
        ((_overlap_y(a, b), i, j) for i, a in enumerate(boxes) for j, b in enumerate(boxes)
         if i < j and _same_row(a, b)),
        reverse=True,
    )
    for _, i, j in pairs:
        ri, rj = row_of[i], row_of[j]
        if ri != rj and all(_same_row(a, b) for a in rows[ri] for b in rows[rj]):
            for b in rows[rj]:
                row_of[boxes.index(b)] = ri
            rows[ri].extend(rows[rj])
            rows[rj] = []
    merged: list[Box] = []
    for row in filter(None, rows):
        row.sort(key=lambda b: b.x0)
        sizes = [max(1, sum(ch.isalnum() for ch in b.text)) for b in row]
        score = sum(b.score * n for b, n in zip(row, sizes, strict=True)) / sum(sizes)
        merged.append(Box(" ".join(b.text for b in row), score, row[0].x0,
                          min(b.y0 for b in row), max(b.x1 for b in row), max(b.y1 for b in row)))
    # Order by the caption (leftmost box), which sits on the line, not by a raised value.
    return sorted(merged, key=lambda b: (b.y0 + b.y1) / 2)


def _overlap_y(a: Box, b: Box) -> float:
    return (min(a.y1, b.y1) - max(a.y0, b.y0)) / max(1.0, min(a.y1 - a.y0, b.y1 - b.y0))


def _same_row(a: Box, b: Box) -> bool:
    """Side by side on one line; a typed value often sits a little above its caption."""
    overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
    return _overlap_y(a, b) >= 0.25 and overlap_x <= 0.2 * min(a.x1 - a.x0, b.x1 - b.x0)
