"""Finding specimen images, identifying them by content, and loading them safely."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload

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


class ImageList(Sequence[Path]):
    """Image paths in scan order, held compactly: one list of folders, and per file its
    folder's number and its name (as bytes) in one buffer. A million paths cost tens of MB,
    not the hundreds a list of Path objects would."""

    def __init__(self) -> None:
        self._dirs: list[str] = []
        self._dir_of = array("I")
        self._ends = array("Q")
        self._names = bytearray()

    def _add_dir(self, folder: str) -> int:
        self._dirs.append(folder)
        return len(self._dirs) - 1

    def _add(self, dir_no: int, name: str) -> None:
        self._names += os.fsencode(name)
        self._dir_of.append(dir_no)
        self._ends.append(len(self._names))

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, i: int) -> Path: ...
    @overload
    def __getitem__(self, i: slice) -> list[Path]: ...
    def __getitem__(self, i: int | slice) -> Path | list[Path]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        start = self._ends[i - 1] if i > 0 else 0
        name = os.fsdecode(bytes(self._names[start : self._ends[i]]))
        return Path(self._dirs[self._dir_of[i]], name)

    def name(self, i: int) -> str:
        """The file name of path i, without building the Path."""
        start = self._ends[i - 1] if i > 0 else 0
        return os.fsdecode(bytes(self._names[start : self._ends[i]]))

    def __iter__(self) -> Iterator[Path]:
        return (self[i] for i in range(len(self)))


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _walk(folder: str, out: ImageList, limit: int | None) -> bool:
    """Add the images under `folder` depth-first, each folder's entries by name (the order of
    sorted(rglob)); False once `limit` is reached. Symlinked folders are not followed (as
    rglob); symlinked files are, as before. Unreadable folders are passed over."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return True
    dir_no = -1
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                dir_no = -1  # files after this subfolder's start a new run of the same folder
                if not _walk(e.path, out, limit):
                    return False
                continue
            if not (_is_image_name(e.name) and e.is_file()):
                continue
        except OSError:
            continue
        if dir_no < 0:
            dir_no = out._add_dir(folder)
        out._add(dir_no, e.name)
        if limit is not None and len(out) >= limit:
            return False
    return True


def scan_images(inputs: Iterable[Path], limit: int | None = None) -> ImageList:
    """Image files under the given files/folders (recursive), in sorted order, each once.

    os.scandir, one absolute folder per input (no per-file resolve or stat: a name's type
    comes from the directory entry). With `limit`, the scan stops at that many images. Files
    given twice (a folder and a file in it, or two overlapping folders) are listed once.
    """
    out = ImageList()
    inputs = list(inputs)
    for inp in inputs:
        p = Path(inp)
        if limit is not None and len(out) >= limit:
            break
        if p.is_dir():
            _walk(str(p.resolve()), out, limit)
        elif p.is_file() and _is_image_name(p.name):
            r = p.resolve()
            out._add(out._add_dir(str(r.parent)), r.name)
    return _deduplicated(out) if len(inputs) > 1 else out


def _deduplicated(images: ImageList) -> ImageList:
    """`images` without repeated paths (the first place of each kept); only for several
    inputs, which may overlap (one folder holds no name twice)."""
    seen: set[str] = set()
    dir_nos: dict[str, int] = {}
    out = ImageList()
    for i in range(len(images)):
        folder, name = images._dirs[images._dir_of[i]], images.name(i)
        key = os.path.join(folder, name)
        if key in seen:
            continue
        seen.add(key)
        if folder not in dir_nos:
            dir_nos[folder] = out._add_dir(folder)
        out._add(dir_nos[folder], name)
    return out


def has_images(inputs: Iterable[Path]) -> bool:
    """Whether any image is there (stops at the first one found)."""
    return bool(scan_images(inputs, limit=1))


def no_images_message(inputs: Iterable[Path]) -> str:
    """Why a run has nothing to do, per input (when `has_images` is False): a file of another
    kind, a folder without sheets, or a path that does not exist."""
    kinds = "jpg, jpeg, png, tif or tiff"
    parts = []
    for p in map(Path, inputs):
        if p.is_dir():
            parts.append(f"no {kinds} file under {p}")
        elif p.exists():
            parts.append(f"{p} is not a {kinds} file")
        else:
            parts.append(f"{p} does not exist")
    return "no images found: " + "; ".join(parts)


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


FileStamp = tuple[int, int]  # (size, mtime_ns): what says a file is unchanged since


def stamp_of(st: os.stat_result) -> FileStamp:
    return st.st_size, st.st_mtime_ns


def read_stamped(path: Path) -> tuple[bytes, str, FileStamp]:
    """read_specimen, plus the file's stamp taken before the read: a write during the read
    changes the stamp, so the stamp never vouches for bytes it did not see."""
    with open(path, "rb") as fh:
        stamp = stamp_of(os.fstat(fh.fileno()))
        data = fh.read()
    return data, hashlib.sha256(data).hexdigest(), stamp


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
    except UnidentifiedImageError as exc:  # PIL's message names an internal BytesIO object
        raise EngineError(
            ErrorKind.IMAGE, f"cannot decode image {path.name}: {_what_it_is(path, data)}"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise EngineError(ErrorKind.IMAGE, f"cannot decode image {path.name}: {exc}") from exc
    except Image.DecompressionBombError as exc:
        raise EngineError(ErrorKind.IMAGE, f"image too large: {exc}") from exc
    return rgb


def _what_it_is(path: Path, data: bytes | None) -> str:
    """Why PIL found no image in a file, in a curator's words."""
    head = b""
    if data is not None:
        head = data[:512]
    else:
        with contextlib.suppress(OSError), open(path, "rb") as fh:
            head = fh.read(512)
    if not head:
        return "the file is empty"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and all(ch.isprintable() or ch in "\r\n\t" for ch in text):
        return "the file holds text, not an image (JPEG, PNG or TIFF expected)"
    return "not a JPEG, PNG or TIFF image (the file's first bytes are no image format's)"


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
