"""Finding specimen images, identifying them by content, and loading them safely."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from herbdesk.extraction.engines.base import EngineError, ErrorKind
from herbdesk.extraction.pixels import PixelBudget

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"})
# Guards against decompression bombs while allowing large herbarium scans (~ 20k x 15k px).
Image.MAX_IMAGE_PIXELS = 400_000_000
# Pillow only raises above twice its limit; herbdesk refuses anything past the largest real
# scan from the header alone, before a single pixel is decoded (a 20k x 20k PNG is 1.2 GB RGB).
MAX_PIXELS = 20_000 * 15_000
# Decoded pixels in flight across all workers of the process: one largest sheet's worth, so
# peak memory no longer grows with the concurrency (extraction/pixels.py).
DECODE_BUDGET = PixelBudget(MAX_PIXELS)


def scan_images(inputs: Iterable[Path]) -> list[Path]:
    """Image files under the given files/folders (recursive), sorted, without duplicates."""
    found: dict[Path, None] = {}
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if (
                    f.is_file()
                    and f.suffix.lower() in IMAGE_SUFFIXES
                    and not f.name.startswith(".")
                ):
                    found[f.resolve()] = None
        elif p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            found[p.resolve()] = None
    return list(found)


def specimen_id_of(path: Path) -> str:
    """sha256 hex of the image bytes: the same sheet has the same id wherever it lies."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_specimen(path: Path) -> tuple[bytes, str]:
    """The image's bytes and their sha256 (its specimen id), from one read."""
    data = Path(path).read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def load_image(path: Path, max_side: int | None = None, data: bytes | None = None) -> Image.Image:
    """Decode an image fully (EXIF orientation applied, RGB), optionally downscaled.

    With `data`, those bytes are decoded (`path` only names the sheet in messages).
    Raises EngineError(image_error) for a missing, truncated or undecodable file.
    """
    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as opened:
            w, h = opened.size
            if w * h > MAX_PIXELS:
                raise EngineError(
                    ErrorKind.IMAGE,
                    f"image too large: {path.name} is {w} x {h} px (limit {MAX_PIXELS:,} px)",
                )
            with DECODE_BUDGET.hold(w * h):  # the full-size copies live only in here
                rgb = _decode(opened, max_side)
                opened.close()
    except FileNotFoundError as exc:
        raise EngineError(ErrorKind.IMAGE, f"image not found: {path}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise EngineError(ErrorKind.IMAGE, f"cannot decode image {path.name}: {exc}") from exc
    except Image.DecompressionBombError as exc:
        raise EngineError(ErrorKind.IMAGE, f"image too large: {exc}") from exc
    return rgb


def _decode(opened: Image.Image, max_side: int | None) -> Image.Image:
    """Decoded, turned upright, RGB and downscaled: every full-size copy is gone on return."""
    opened.load()
    im: Image.Image = ImageOps.exif_transpose(opened) or opened
    rgb = im.convert("RGB")
    del im
    if max_side and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return rgb


def jpeg_bytes(img: Image.Image, quality: int = 88) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()
