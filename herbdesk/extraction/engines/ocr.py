"""The offline engine: RapidOCR (PP-OCRv6, ONNX, CPU) plus the rule-based Darwin Core parser.

It needs no network and no API key, so a first run, a demo or a test works anywhere.

Herbarium photographs defeat a plain OCR call in three ways, each handled here:
- labels are often turned 90°: the sheet is read at 0°, 270° and 90° and the most legible
  horizontal text wins;
- typewritten label text on a 1600 px sheet is too small for the recogniser: each block of
  text is read again enlarged from the full-resolution image;
- dot leaders ("Date.........") make the recogniser garble the handwriting written over
  them: the enlarged re-read erases rows of small dark dots first.
Handwriting reads differently at each size, so every line is read at page size and enlarged,
the lines whose two readings disagree (or a form's blank found empty) once more at a second
enlargement, and the most legible reading of each line is kept; how alike its readings were
goes into its confidence. Print reads alike at once, so a typed label costs two readings.

Recognition is the costly step (per pixel five times detection): a label turned 90° is told
from the 0° pass by reading only its upright-standing lines turned each way, and the detector
is not made to enlarge a one-line block to 736 px as RapidOCR's default does.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from herbdesk.extraction.dwc_parser import Line, NameLookup, parse_label
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
# The ONNX files inside the rapidocr 3.x wheel. Passing their paths explicitly keeps
# RapidOCR off its model-download code path altogether.
MODEL_FILES = {
    "Det": "PP-OCRv6_det_small.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}
PAGE_SIDE = 1600  # long side for the orientation pass (the sample sheets' native size)
SOURCE_SIDE = 4000  # long side kept for the enlarged re-read of big scans
ROTATIONS = (0, 270, 90)  # PIL degrees counter-clockwise
# Line heights to enlarge text blocks to. The recogniser's input is 48 px high; handwriting
# reads differently at each size, so two sizes are tried and the better reading kept.
LINE_PX = (30.0, 40.0)
MAX_ZOOM = 3.0
DET_MIN_SIDE = 736  # RapidOCR's default: the detector's input is enlarged to this short side
MAX_DET_ZOOM = 1.5  # ... but by no more than this
MIN_DET_ZOOM = 1.0
TEXT_SCORE = 0.4  # lines read less surely than this are dropped
# Readings of a line this alike (rapidfuzz ratio), or one read this surely, settle it.
SETTLED = 95.0
SURE = 0.98
# A form's blank left empty ("Number......"): the hand that filled it in was not read.
_BLANK = re.compile(r"[^A-Za-z0-9\s]{3,}\s*$")
DOT_RUN = 6  # dots in a row that make a leader
MAX_DOTS = 4000  # dot candidates compared pairwise: bounds memory on speckled scans
MAX_CROP_SIDE = 2000  # RapidOCR shrinks anything longer, which would undo the zoom
# Printed on the colour checker photographed with every sheet: never label text.
_CHECKER = re.compile(r"alibr|checker|classic|^\W*(1?2/?2?2|mm)\W*$", re.I)

Rect = tuple[float, float, float, float]


@dataclass(frozen=True)
class Box:
    """Recognised text with its axis-aligned bounds in page pixels."""

    text: str
    score: float
    x0: float
    y0: float
    x1: float
    y1: float
    block: int = 0  # which text block it belongs to, for reading order
    # How alike the other readings of this line were (0..1, 1 when read once): print reads
    # the same at every size, handwriting does not, so this says when the OCR is unsure.
    agreement: float = 1.0

    @property
    def tall(self) -> bool:
        """Standing on end: text at right angles to this orientation."""
        return (self.y1 - self.y0) > 1.5 * (self.x1 - self.x0)

    @property
    def height(self) -> float:
        return max(1.0, self.y1 - self.y0)

    @property
    def weight(self) -> float:
        """Legibility: confident characters count, dot leaders and punctuation do not."""
        return self.score * sum(ch.isalnum() for ch in self.text)

    @property
    def trust(self) -> float:
        """Rank among readings of one line: a slip in confidence outweighs a few more letters
        (a longer misreading "Aggrotpyron" 0.92 must lose to "Agropyron" 0.95)."""
        return self.score**4 * sum(ch.isalnum() for ch in self.text)


def models_dir() -> Path | None:
    """Where the rapidocr wheel keeps its models, found without importing it."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "models"


def _rapidocr_params(threads: int | None) -> dict[str, Any]:
    models = models_dir()
    if models is None:
        raise EngineError(ErrorKind.CONFIG, "rapidocr is not installed")
    params: dict[str, Any] = {
        "Global.log_level": "error",  # INFO logs every model load, WARNING every blank page
        "Global.text_score": TEXT_SCORE,
        "Global.max_side_len": MAX_CROP_SIDE,
        # Faint ballpoint on a dotted line needs a more permissive detector than print.
        "Det.thresh": 0.2,
        "Det.box_thresh": 0.4,
        # The detector sees what _run gives it: the enlargement is decided there.
        "Det.limit_type": "max",
        "Det.limit_side_len": MAX_CROP_SIDE,
    }
    if threads:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
    for task, fname in MODEL_FILES.items():
        path = models / fname
        if not path.is_file():
            raise EngineError(ErrorKind.CONFIG, f"rapidocr model missing: {path}")
        params[f"{task}.model_path"] = str(path)
    return params


class OcrEngine:
    """Offline Darwin Core extraction: OCR in the best orientation, then label rules."""

    name = "ocr"
    reports_cost = False  # offline: nothing is paid, so a --budget cannot stop it

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.model = MODEL_NAME
        threads = settings.extra.get("ocr_threads")
        self._threads = int(threads) if threads else None
        self._local = threading.local()
        self._names: NameLookup | None = None
        self._names_lock = threading.Lock()

    def _checklist(self) -> NameLookup | None:
        """The names checklist (`extra["checklist"]`, a path), loaded once on first use."""
        path = self.settings.extra.get("checklist")
        if not path:
            return None
        with self._names_lock:
            if self._names is None:
                from herbdesk.quality.checklist import Checklist, ChecklistError

                try:
                    self._names = Checklist.load(Path(path))
                except (OSError, ChecklistError) as exc:
                    raise EngineError(ErrorKind.CONFIG, f"checklist {path}: {exc}") from exc
            return self._names

    def preflight(self) -> list[Check]:
        """Imports, the shipped model files and one tiny inference; never raises or downloads."""
        checks: list[Check] = []
        for mod in ("rapidocr", "onnxruntime"):
            ok = importlib.util.find_spec(mod) is not None
            checks.append(Check(f"import {mod}", ok, "installed" if ok else "not installed"))
        models = models_dir()
        for task, fname in MODEL_FILES.items():
            ok = models is not None and (models / fname).is_file()
            detail = str(models / fname) if ok and models else f"{fname} not in the rapidocr wheel"
            checks.append(Check(f"{task.lower()} model", ok, detail))
        if not all(c.ok for c in checks):
            checks.append(Check("engine init", False, "skipped: a dependency is missing"))
            return checks
        try:
            import cv2  # a rapidocr dependency, so only imported once rapidocr is known present

            t0 = time.perf_counter()
            sample = np.full((48, 200, 3), 255, dtype=np.uint8)
            cv2.putText(sample, "Herbarium", (8, 34), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
            read = " ".join(b.text for b in self._run(Image.fromarray(sample)))
            elapsed = time.perf_counter() - t0
            checks.append(Check("engine init", bool(read), f"read {read!r} in {elapsed:.1f} s"))
        except Exception as exc:  # preflight reports, it never raises
            checks.append(Check("engine init", False, f"{type(exc).__name__}: {exc}"))
        return checks

    def extract(self, specimen: SpecimenInput) -> Extraction:
        source = load_image(specimen.path, max_side=SOURCE_SIDE, data=specimen.data)
        try:
            rows = self.read_boxes(source)
        except EngineError:
            raise
        except Exception as exc:  # an onnxruntime or OpenCV failure on this image
            raise EngineError(
                ErrorKind.INTERNAL, f"OCR failed: {type(exc).__name__}: {exc}"
            ) from exc
        raw_text = "\n".join(r.text for r in rows)
        lines = [Line(r.text, r.score, r.agreement, (r.x0, r.y0, r.x1, r.y1)) for r in rows]
        fields = parse_label(lines, self._checklist())
        if set(fields) <= {"basisOfRecord"}:  # inferred for any sheet: not a finding
            raise EngineError(
                ErrorKind.NO_FIELDS,
                "no Darwin Core term recognised in the OCR text",
                raw_text=raw_text,
            )
        return Extraction(
            fields=fields, raw_text=raw_text, usage={}, cost_usd=None, model=self.model
        )

    def close(self) -> None:
        """Releases every thread's recogniser (the per-thread slots go with the old local)."""
        self._local = threading.local()

    # -- reading ---------------------------------------------------------------------------

    def read_lines(self, source: Image.Image) -> list[tuple[str, float]]:
        """OCR lines (text, score) of the sheet, in reading order of its best orientation."""
        return [(r.text, round(r.score, 4)) for r in self.read_boxes(source)]

    def read_boxes(self, source: Image.Image) -> list[Box]:
        """OCR lines with their bounds in the best orientation's page pixels, in reading
        order: the label parser finds a caption's value right of or below it by these."""
        page_scale = min(1.0, PAGE_SIDE / max(source.size))
        page = _gray(_scaled(source, page_scale))
        rot, found = self._orient(page)
        rotated = source.rotate(rot, expand=True) if rot else source
        candidates: list[Box] = []  # every reading of every line
        reread: list[Rect] = []
        clusters = _clusters([b for b in found if not b.tall])
        for n, cluster in enumerate(sorted(clusters, key=lambda c: -sum(b.weight for b in c))):
            cluster = [_with_block(b, n) for b in cluster]
            candidates += _merge_lines(cluster)
            covered = any(all(_inside(b, r) for b in cluster) for r in reread)
            if covered or sum(b.weight for b in cluster) < 3:
                continue  # re-read already, or a speck
            if len(cluster) <= 2 and min(b.score for b in cluster) >= 0.95:
                continue  # a stamp or slip read surely at page size: enlarging adds nothing
            doubtful: list[Box] | None = None  # lines to read again: all, the first time
            for line_px in LINE_PX:
                rect, lines = self._reread(rotated, cluster, page_scale, line_px, doubtful)
                enlarged = _merge_lines([_with_block(b, n) for b in lines])
                candidates += enlarged
                doubtful = _doubtful(_merge_lines(cluster), enlarged)
                if not doubtful:
                    break  # print: read alike at page size and enlarged, a third adds nothing
            reread.append(rect)
        rows = _best_readings(candidates)
        # A stamp or slip at right angles to the label: RapidOCR turned those crops itself.
        rows += [
            _with_block(b, len(clusters) + i)
            for i, b in enumerate(found)
            if b.tall and b.score >= 0.8
        ]
        first: dict[int, tuple[float, float]] = {}  # block -> top-left, to read blocks in order
        for r in rows:
            y, x = first.get(r.block, (r.y0, r.x0))
            first[r.block] = (min(y, r.y0), min(x, r.x0))
        rows.sort(key=lambda r: (first[r.block], (r.y0 + r.y1) / 2))
        return rows

    def _orient(self, page: Image.Image) -> tuple[int, list[Box]]:
        """The rotation whose horizontal text is most legible, with what it read there.

        The sheet is read once as it is; only when much of its text stands on end are those
        lines read turned each way (recognition only, no second page pass) to find which way
        the label is turned, and the sheet is read again turned that way."""
        found = self._run(page)
        legibility = sum(b.weight for b in found if not b.tall)
        tall = [b for b in found if b.tall]
        if sum(b.weight for b in tall) < 0.5 * legibility:
            return 0, found  # turning the sheet helps only text standing on end
        best = (legibility, 0)
        for rot in ROTATIONS[1:]:
            crops = [
                np.asarray(page.crop((b.x0, b.y0, b.x1, b.y1)).rotate(rot, expand=True))
                for b in tall
            ]
            turned = sum(
                score * sum(ch.isalnum() for ch in text) for text, score in self._recognise(crops)
            )
            log.debug("rotation %d: legibility %.1f (upright %.1f)", rot, turned, legibility)
            if turned > best[0]:
                best = (turned, rot)
        if best[1] == 0:
            return 0, found
        return best[1], self._run(page.rotate(best[1], expand=True))

    def _reread(
        self,
        rotated: Image.Image,
        cluster: list[Box],
        page_scale: float,
        line_px: float,
        only: list[Box] | None = None,
    ) -> tuple[Rect, list[Box]]:
        """Reads one block again, enlarged from the source and without dot leaders; with
        ``only`` (page pixels) just the lines found within those."""
        line_h = float(np.median([b.height for b in cluster]))
        left, right = min(b.x0 for b in cluster), max(b.x1 for b in cluster)
        # Pass one often finds a caption but not the faint handwriting to its right.
        pad_x = max(1.5 * line_h, right - left)
        rect = (
            max(0.0, left - 1.5 * line_h),
            max(0.0, min(b.y0 for b in cluster) - 1.5 * line_h),
            right + pad_x,
            max(b.y1 for b in cluster) + 1.5 * line_h,
        )
        src = 1.0 / page_scale  # page px -> source px
        crop = rotated.crop(
            (
                round(rect[0] * src),
                round(rect[1] * src),
                min(rotated.width, round(rect[2] * src)),
                min(rotated.height, round(rect[3] * src)),
            )
        )
        zoom = min(MAX_ZOOM, line_px / (line_h * src), MAX_CROP_SIDE / max(crop.size))
        img = _without_dots(_gray(_scaled(crop, zoom)), dot_px=0.3 * line_h * src * zoom)
        back = 1.0 / (zoom * src)  # crop px -> page px

        def wanted(b: Box) -> bool:
            cx, cy = rect[0] + (b.x0 + b.x1) / 2 * back, rect[1] + (b.y0 + b.y1) / 2 * back
            return only is None or any(
                o.x0 <= cx <= o.x1 and o.y0 - 0.5 * o.height <= cy <= o.y1 + 0.5 * o.height
                for o in only
            )

        lines = [
            Box(
                b.text,
                b.score,
                rect[0] + b.x0 * back,
                rect[1] + b.y0 * back,
                rect[0] + b.x1 * back,
                rect[1] + b.y1 * back,
            )
            for b in self._run(img, wanted)
            if not b.tall
        ]
        return rect, lines

    def _ocr(self) -> Any:
        """This thread's RapidOCR, made on first use: workers never share ONNX sessions."""
        ocr = getattr(self._local, "ocr", None)
        if ocr is None:
            from rapidocr import RapidOCR

            ocr = RapidOCR(params=_rapidocr_params(self._threads))
            self._local.ocr = ocr
        return ocr

    def _run(self, img: Image.Image, wanted: Callable[[Box], bool] | None = None) -> list[Box]:
        """Detection, then recognition of each line found, in img pixels.

        The detector wants the short side at DET_MIN_SIDE or more; RapidOCR's own rule
        enlarges a one-line block to that (a 160 px strip to 736 px: 20 times the pixels),
        so here the enlargement is capped at MAX_DET_ZOOM and the lines are cut from img."""
        arr = np.asarray(img)
        ocr = self._ocr()
        zoom = min(MAX_DET_ZOOM, max(MIN_DET_ZOOM, DET_MIN_SIDE / max(1, min(arr.shape[:2]))))
        det_in = arr if zoom == 1.0 else _resized(arr, zoom)
        det = ocr(det_in, use_det=True, use_cls=False, use_rec=False)
        found = getattr(det, "boxes", None)
        if found is None or len(found) == 0:
            return []
        from rapidocr.utils.process_img import get_rotate_crop_image

        quads = [np.asarray(q, dtype=np.float32) / zoom for q in found]
        if wanted is not None:  # only these lines are read: recognition is the costly part
            quads = [q for q in quads if wanted(Box("", 0.0, *q.min(axis=0), *q.max(axis=0)))]
            if not quads:
                return []
        crops = [get_rotate_crop_image(arr, q.copy()) for q in quads]
        upright, _ = ocr.cls_and_rotate(crops)  # a line upside down is turned the right way
        out: list[Box] = []
        for (text, score), pts in zip(self._recognise(upright), quads, strict=True):
            box = Box(
                text,
                score,
                float(pts[:, 0].min()),
                float(pts[:, 1].min()),
                float(pts[:, 0].max()),
                float(pts[:, 1].max()),
            )
            if text and score >= TEXT_SCORE and not _CHECKER.search(text):
                out.append(box)
        return out

    def _recognise(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """Recognition only (no detection) of line images, in one batched call."""
        if not crops:
            return []
        res = self._ocr().recognize_txt(crops)
        txts, scores = res.txts or (), res.scores or ()
        return [(str(t).strip(), float(sc)) for t, sc in zip(txts, scores, strict=True)]


# -- image helpers --------------------------------------------------------------------------


def _scaled(img: Image.Image, factor: float) -> Image.Image:
    if abs(factor - 1.0) < 0.05:
        return img
    size = (max(1, round(img.width * factor)), max(1, round(img.height * factor)))
    return img.resize(size, Image.Resampling.LANCZOS)


def _resized(arr: np.ndarray, factor: float) -> np.ndarray:
    """The detector's enlargement, done as RapidOCR does it (bilinear)."""
    import cv2

    h, w = arr.shape[:2]
    return cv2.resize(arr, (max(1, round(w * factor)), max(1, round(h * factor))))


def _gray(img: Image.Image) -> Image.Image:
    """Red channel, contrast-stretched: blue and black ink turn dark, cream paper white."""
    red = ImageOps.autocontrast(img.getchannel("R"), cutoff=1)
    return Image.merge("RGB", (red, red, red))


def _without_dots(img: Image.Image, dot_px: float) -> Image.Image:
    """Erases dot leaders: runs of DOT_RUN small, square dark blobs on one baseline.

    A run is required because broken typewriter letters also leave small dark blobs.
    """
    import cv2

    gray = np.asarray(img.getchannel("R")).copy()
    count, labels, stats, centres = cv2.connectedComponentsWithStats(
        (gray < 140).astype(np.uint8), connectivity=8
    )
    w, h = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    side = max(3.0, dot_px)
    small = (
        (w <= side)
        & (h <= side)
        & (w >= 2)
        & (h >= 2)
        & (stats[:, cv2.CC_STAT_AREA] >= 0.45 * w * h)
        & (np.abs(w - h) <= max(2.0, side / 3))
    )
    small[0] = False  # the background
    idx = np.flatnonzero(small)
    if not DOT_RUN <= idx.size <= MAX_DOTS:
        return img  # no leaders, or speckle too dense to compare pairwise
    c = centres[idx]
    dx = np.abs(c[:, None, 0] - c[None, :, 0])
    dy = np.abs(c[:, None, 1] - c[None, :, 1])
    linked = (dy <= max(2.5, side / 4)) & (dx > 0) & (dx <= 4 * side)
    pairs = zip(*np.nonzero(np.triu(linked)), strict=True)
    roots = np.array(_groups(idx.size, ((int(i), int(j)) for i, j in pairs)))
    sizes = np.bincount(roots, minlength=idx.size)
    erase = np.zeros(count, dtype=bool)
    erase[idx[sizes[roots] >= DOT_RUN]] = True
    mask = cv2.dilate(erase[labels].astype(np.uint8), np.ones((5, 5), np.uint8))
    gray[mask > 0] = 255
    return Image.fromarray(gray).convert("RGB")


# -- layout helpers -------------------------------------------------------------------------


def _with_block(b: Box, block: int) -> Box:
    return replace(b, block=block)


def _inside(box: Box, rect: Rect) -> bool:
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    return rect[0] <= cx <= rect[2] and rect[1] <= cy <= rect[3]


def _clusters(boxes: list[Box]) -> list[list[Box]]:
    """Groups boxes within a couple of line heights of each other: a label, a stamp, a slip."""

    def near(a: Box, b: Box) -> bool:
        m = 2.0 * max(a.height, b.height)
        return a.x0 - m <= b.x1 and b.x0 - m <= a.x1 and a.y0 - m <= b.y1 and b.y0 - m <= a.y1

    pairs = ((i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)))
    roots = _groups(len(boxes), ((i, j) for i, j in pairs if near(boxes[i], boxes[j])))
    groups: dict[int, list[Box]] = {}
    for r, b in zip(roots, boxes, strict=True):
        groups.setdefault(r, []).append(b)
    return list(groups.values())


def _groups(n: int, pairs: Iterable[tuple[int, int]]) -> list[int]:
    """Connected components (union-find): a representative index for each of n items."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        parent[root(i)] = root(j)
    return [root(i) for i in range(n)]


def _overlap_y(a: Box, b: Box) -> float:
    return (min(a.y1, b.y1) - max(a.y0, b.y0)) / min(a.height, b.height)


def _overlap_x(a: Box, b: Box) -> float:
    return (min(a.x1, b.x1) - max(a.x0, b.x0)) / max(1.0, min(a.x1 - a.x0, b.x1 - b.x0))


def _same_row(a: Box, b: Box) -> bool:
    """Side by side on one line; a typed value often sits a little above its caption."""
    return _overlap_y(a, b) >= 0.25 and _overlap_x(a, b) <= 0.2


def _merge_lines(boxes: list[Box]) -> list[Box]:
    """Joins boxes on one line (a caption and its value) into one row.

    Pairs are joined best-overlap first, so a raised value goes to the caption it sits on
    rather than to the line above that it merely touches.
    """
    rows: list[list[int]] = [[i] for i in range(len(boxes))]
    row_of = list(range(len(boxes)))
    pairs = sorted(
        (
            (_overlap_y(a, b), i, j)
            for i, a in enumerate(boxes)
            for j, b in enumerate(boxes)
            if i < j and _same_row(a, b)
        ),
        reverse=True,
    )
    for _, i, j in pairs:
        ri, rj = row_of[i], row_of[j]
        if ri != rj and all(_same_row(boxes[p], boxes[q]) for p in rows[ri] for q in rows[rj]):
            for q in rows[rj]:
                row_of[q] = ri
            rows[ri] += rows[rj]
            rows[rj] = []
    merged: list[Box] = []
    for members in filter(None, rows):
        row = sorted((boxes[i] for i in members), key=lambda b: b.x0)
        sizes = [max(1, sum(ch.isalnum() for ch in b.text)) for b in row]
        score = sum(b.score * n for b, n in zip(row, sizes, strict=True)) / sum(sizes)
        merged.append(
            Box(
                " ".join(b.text for b in row),
                score,
                row[0].x0,
                min(b.y0 for b in row),
                max(b.x1 for b in row),
                max(b.y1 for b in row),
                row[0].block,
            )
        )
    return merged


def _best_readings(candidates: list[Box]) -> list[Box]:
    """Of lines read more than once, the most trusted reading (non-maximum suppression),
    with how alike the readings it won over were."""
    kept: list[Box] = []
    others: list[list[str]] = []
    for row in sorted(candidates, key=lambda b: -b.trust):
        same = [
            n for n, k in enumerate(kept) if _overlap_y(row, k) >= 0.7 and _overlap_x(row, k) > 0.3
        ]
        if not same:
            kept.append(row)
            others.append([])
        elif row.x1 - row.x0 >= 0.6 * (kept[same[0]].x1 - kept[same[0]].x0):
            others[same[0]].append(row.text)  # a reading of the caption alone says nothing
    return [
        replace(k, agreement=_agreement(k.text, alt)) for k, alt in zip(kept, others, strict=True)
    ]


def _doubtful(at_page: list[Box], enlarged: list[Box]) -> list[Box]:
    """Lines of a block still in doubt after two readings, to be read a third time: an
    enlarged reading that the page reading of its line does not match (on letters and
    digits) unless read surely, and a page reading that no enlarged one contains. Print reads
    alike each time, so a print label is read twice, handwriting three times."""
    from rapidfuzz import fuzz

    def key(b: Box) -> str:
        plain = unicodedata.normalize("NFKD", b.text).encode("ascii", "ignore").decode()
        return re.sub(r"[^A-Za-z0-9]", "", plain).lower()

    def near(a: Box, b: Box) -> bool:
        return _overlap_y(a, b) >= 0.5 and _overlap_x(a, b) > 0.3

    out = [r for r in at_page + enlarged if _BLANK.search(r.text)]  # its value not read
    out += [
        r
        for r in enlarged
        if r.score < SURE
        and not any(near(r, p) and fuzz.ratio(key(r), key(p)) >= SETTLED for p in at_page)
    ]
    out += [
        p
        for p in at_page
        if key(p)
        and p not in out
        and not any(near(p, r) and fuzz.partial_ratio(key(p), key(r)) >= SETTLED for r in enlarged)
    ]
    return out


def _agreement(text: str, readings: list[str]) -> float:
    """Mean similarity (0..1) of the other readings to the kept one, on letters and digits
    only (dot leaders come and go with the enlargement)."""
    from rapidfuzz import fuzz

    if not readings:
        return 1.0
    key = re.sub(r"[^A-Za-z0-9]", "", text).lower()
    sims = [fuzz.ratio(key, re.sub(r"[^A-Za-z0-9]", "", r).lower()) / 100 for r in readings]
    return round(sum(sims) / len(sims), 3)
