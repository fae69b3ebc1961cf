"""Finding a run's sheets again in a folder: for opened logs whose image paths are missing or
moved (another machine, a renamed drive, the original scripts' logs that record only names).

A sheet is matched by its file name first (cheap: one walk of the folder), and by its content
hash where the name does not settle it: herbdesk's specimen ids are the sha256 of the image
bytes, and the original scripts named files by that hash. Hashing reads whole files, so it is
done only for sheets the names left unmatched or ambiguous, and only for ids that are hashes.

Hashing a folder of large sheets takes minutes: the window runs it on a thread of its own
(herbdesk/ui/locating.py), which `cancelled` stops between files and `progress` reports to.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from herbdesk.extraction.images import scan_images, specimen_id_of

_SHA256 = re.compile(r"[0-9a-f]{64}")

Progress = Callable[[int, int], object]
"""(files hashed, files that may have to be hashed)"""


class LocateCancelled(Exception):
    """The search was cancelled: nothing it found so far is to be used."""


def missing_sheets(rows: Iterable[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """(specimen id, recorded name or path) of each (id, image name, path) whose recorded
    path is no file here: what locate_images is to look for. One stat a row (a slow drive's
    wait for each missing one), so it is part of the search, not of the window's thread."""
    return [
        (sid, image or path) for sid, image, path in rows if not (path and os.path.isfile(path))
    ]


@dataclass
class Located:
    """Specimen id -> the file found for it, and how many were found each way."""

    paths: dict[str, str] = field(default_factory=dict)
    by_name: int = 0
    by_content: int = 0
    wanted: int = 0

    def message(self, folder: Path) -> str:
        how = f"{self.by_name} by file name, {self.by_content} by content"
        return f"Found {len(self.paths)} of {self.wanted} sheet(s) in {folder} ({how})"


def locate_images(
    folder: Path,
    wanted: Iterable[tuple[str, str]],
    cancelled: Callable[[], bool] = lambda: False,
    progress: Progress | None = None,
) -> Located:
    """Find each (specimen id, recorded image name or path) under `folder` (recursive).

    Raises LocateCancelled once `cancelled()` says so (checked after the folder's listing and
    before each file hashed)."""
    want = {sid: PurePath(name.replace("\\", "/")).name.casefold() for sid, name in wanted}
    out = Located(wanted=len(want))
    images = scan_images([folder])
    if cancelled():
        raise LocateCancelled
    by_name: dict[str, list[str]] = {}
    for i in range(len(images)):
        p = str(images[i])
        by_name.setdefault(Path(p).name.casefold(), []).append(p)
    left: dict[str, list[str] | None] = {}  # id -> candidates to hash (None: any file)
    for sid, name in want.items():
        found = by_name.get(name, []) if name else []
        if len(found) == 1:
            out.paths[sid] = found[0]
            out.by_name += 1
        elif _SHA256.fullmatch(sid):
            left[sid] = found or None
    if left:
        paths = [str(images[i]) for i in range(len(images))]
        _by_content(paths, left, out, cancelled, progress or (lambda done, total: None))
    return out


def _by_content(
    images_paths: list[str],
    left: dict[str, list[str] | None],
    out: Located,
    cancelled: Callable[[], bool],
    progress: Progress,
) -> None:
    """Hash the candidates (an ambiguous name's files; else every file not yet matched)."""
    taken = set(out.paths.values())
    hashes: dict[str, str | None] = {}
    # at most: each ambiguous name's files, and every other file if an id has no name match
    to_hash = {p for c in left.values() if c is not None for p in c}
    if any(c is None for c in left.values()):
        to_hash.update(p for p in images_paths if p not in taken)
    total = len(to_hash)

    def digest(p: str) -> str | None:
        if p not in hashes:
            if cancelled():
                raise LocateCancelled
            try:
                hashes[p] = specimen_id_of(Path(p))
            except OSError:
                hashes[p] = None
            progress(len(hashes), total)
        return hashes[p]

    for sid, candidates in list(left.items()):
        if candidates is not None:
            hit = next((p for p in candidates if digest(p) == sid), None)
            if hit is not None:
                out.paths[sid] = hit
                out.by_content += 1
                taken.add(hit)
                del left[sid]
    rest = {sid for sid, c in left.items() if c is None}
    if not rest:
        return
    for p in images_paths:
        if p in taken:
            continue
        h = digest(p)
        if h in rest:
            out.paths[h] = p
            out.by_content += 1
            rest.discard(h)
            if not rest:
                return
