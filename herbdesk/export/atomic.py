"""Writing an export all at once or not at all, and never over a file without --force."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from herbdesk.export.source import ExportError


def check_target(out: Path, force: bool) -> None:
    """ExportError if `out` cannot be written: its folder missing, a folder, or existing."""
    parent = out.parent
    if not parent.is_dir():
        raise ExportError(f"folder {parent} does not exist")
    if out.is_dir():
        raise ExportError(f"{out} is a folder: name the file to write")
    if (out.exists() or out.is_symlink()) and not force:
        raise ExportError(f"{out} exists; pass --force to replace it")


@contextlib.contextmanager
def atomic_output(out: Path, force: bool) -> Iterator[Path]:
    """Yields a temporary path beside `out`; on success it becomes `out` in one step.

    Without `force` the temporary file is hard-linked into place, which fails if `out` came
    into being meanwhile (no check-then-write race); with it, os.replace swaps it in. On any
    error the temporary file is removed and `out` is left as it was.
    """
    check_target(out, force)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if force:
            os.replace(tmp, out)
        else:
            try:
                os.link(tmp, out)
            except FileExistsError as exc:
                raise ExportError(f"{out} exists; pass --force to replace it") from exc
            except OSError:  # a file system without hard links: check, then rename
                if out.exists():
                    raise ExportError(f"{out} exists; pass --force to replace it") from None
                os.replace(tmp, out)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
