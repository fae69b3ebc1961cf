"""Files shipped with herbdesk (prompts, sample sheets, icons), found the same way from a pip
install, an editable checkout and a PyInstaller bundle."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """A real filesystem path to a packaged resource (package data is never zipped here)."""
    ref = files("herbdesk.resources").joinpath(*parts)
    with as_file(ref) as p:
        return Path(p)


def default_prompt_path() -> Path:
    return resource_path("prompts", "darwin_core.txt")


def sample_specimens_dir() -> Path:
    return resource_path("specimens")
