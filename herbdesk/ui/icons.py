"""The app icon, from package data (works from pip installs and PyInstaller bundles)."""

from __future__ import annotations

from PySide6.QtGui import QIcon

from herbdesk.common.assets import resource_path


def app_icon() -> QIcon:
    icon = QIcon()
    icons = resource_path("icons")
    for size in (16, 32, 48, 64, 128, 256):
        png = icons / f"herbdesk-{size}.png"
        if png.exists():
            icon.addFile(str(png))
    svg = icons / "herbdesk.svg"
    if svg.exists():
        icon.addFile(str(svg))
    return icon
