"""Can the window open here? Said in herbdesk's words before Qt aborts with its own.

Without a display Qt prints a hint about xcb-cursor0 and aborts, whatever is missing; with a
display but without the libraries its X11 platform loads, the same. Checked first: no display
at all, or which of those libraries (and their Debian/Ubuntu packages) are missing. Qt-free.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

# what Qt 6's xcb platform plugin (libqxcb.so, libQt6XcbQpa.so.6) loads, and the package of each
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-util.so.1": "libxcb-util1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}

ALTERNATIVES = (
    "Meanwhile: `herbdesk run IMAGES` runs headless with live progress in the terminal; "
    "`herbdesk open RUN --screenshot shot.png` renders the window without a display; "
    "`QT_QPA_PLATFORM=offscreen herbdesk app …` starts the window invisibly (for scripts)."
)


def _loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def display_problem(
    env: Mapping[str, str] | None = None,
    platform: str = sys.platform,
    loadable: Callable[[str], bool] = _loadable,
) -> str | None:
    """Why the window cannot open on this machine, or None (also None where Qt's platform
    is chosen by the user, or on macOS and Windows, whose platforms need nothing extra)."""
    env = os.environ if env is None else env
    if not platform.startswith("linux"):
        return None
    chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen and not chosen.startswith("xcb"):
        return None  # offscreen, wayland, vnc…: the user's choice, Qt's own messages
    if not chosen and env.get("WAYLAND_DISPLAY"):
        return None  # Qt prefers Wayland there
    if not env.get("DISPLAY"):
        return (
            "herbdesk: the window cannot open: there is no display here (DISPLAY and "
            "WAYLAND_DISPLAY are unset; over ssh use `ssh -X`, or run a desktop session). "
            + ALTERNATIVES
        )
    missing = [so for so in XCB_LIBRARIES if not loadable(so)]
    if not missing:
        return None
    packages = " ".join(XCB_LIBRARIES[so] for so in missing)
    return (
        "herbdesk: the window cannot open: Qt's X11 platform needs libraries that are not "
        f"installed: {', '.join(missing)}. On Debian/Ubuntu: sudo apt install {packages}. "
        + ALTERNATIVES
    )
