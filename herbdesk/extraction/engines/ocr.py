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
_TARGET_WORDS = re.compile(r"^(calibrite|colou?r\s*checker.*|.*classic|\d{1,2}/?\d{2}|mm)$", re.I)


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
        return [b for b in out if b.text and not _TARGET_WORDS.match(b.text)]

    def read_lines(self, source: Image.Image) -> list[tuple[str, float]]:
        """OCR lines (text, score) of the sheet in reading order of its best orientation."""
        page_scale = min(1.0, PAGE_SIDE / max(source.size))
        page = _prepare(_scaled(source, page_scale))
        best: tuple[float, int, list[Box]] = (-1.0, 0, [])
        for rot in ROTATIONS:
            boxes = self._run(page.rotate(rot, expand=True) if rot else page)
            total = sum(b.weight for b in boxes if not b.tall)
            log.debug("orientation %d: legibility %.1f", rot, total)
            if total > best[0]:
                best = (total, rot, boxes)
        _, rot, boxes = best
        rotated = source.rotate(rot, expand=True) if rot else source
        blocks = []
        for cluster in _clusters([b for b in boxes if not b.tall]):
            blocks.append((min(b.y0 for b in cluster), min(b.x0 for b in cluster),
                           self._reread(rotated, cluster, page_scale)))
        blocks.sort(key=lambda t: (t[0], t[1]))
        return [(b.text, b.score) for _, _, block in blocks for b in _merge_lines(block)]

    def _reread(self, rotated: Image.Image, cluster: list[Box], page_scale: float) -> list[Box]:
        """Re-reads one text block enlarged; keeps whichever reading is more legible."""
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
        if zoom < 1.15 * 1.0 and src <= 1.0:
            return cluster  # already at a legible size: nothing to gain from another pass
        found = self._run(_prepare(_scaled(crop, zoom)))
        back = 1.0 / (zoom * src)  # crop px -> page px
        found = [Box(b.text, b.score, x0 + b.x0 * back, y0 + b.y0 * back, x0 + b.x1 * back,
                     y0 + b.y1 * back) for b in found if not b.tall]
        if sum(b.weight for b in found) >= sum(b.weight for b in cluster):
            return found
        return cluster


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
    """Joins boxes on one baseline (a caption and its value) into one line, top to bottom."""
    rows: list[list[Box]] = []
    for b in sorted(boxes, key=lambda b: (b.y0 + b.y1) / 2):
        cy = (b.y0 + b.y1) / 2
        for row in rows:
            ref = row[-1]
            if abs(cy - (ref.y0 + ref.y1) / 2) < 0.5 * min(b.height, ref.height):
                row.append(b)
                break
        else:
            rows.append([b])
    merged: list[Box] = []
    for row in rows:
        row.sort(key=lambda b: b.x0)
        text = " ".join(b.text for b in row)
        letters = sum(sum(ch.isalnum() for ch in b.text) for b in row) or 1
        score = sum(b.score * max(1, sum(ch.isalnum() for ch in b.text)) for b in row) / max(
            letters, sum(max(1, sum(ch.isalnum() for ch in b.text)) for b in row)
        )
        merged.append(Box(text, score, min(b.x0 for b in row), min(b.y0 for b in row),
                          max(b.x1 for b in row), max(b.y1 for b in row)))
    return merged
