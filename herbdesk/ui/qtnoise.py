"""Qt's and libraries' messages that tell a user nothing they can act on, kept off stderr:
the offscreen platform's missing window-manager hint ("This plugin does not support
propagateSizeHints()", once per window shown), watchdog's note that an emitter it stopped is
stopped. Every entry that starts Qt (the app, the smoke test) installs it."""

from __future__ import annotations

import logging
import sys

NOISE = ("propagateSizeHints",)

_installed = False


def quiet_library_noise() -> None:
    """Install the filter in front of Qt's message handler (once; later calls do nothing)."""
    global _installed
    if _installed:
        return
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    previous = None

    def handler(kind: QtMsgType, context: object, message: str) -> None:
        if any(n in message for n in NOISE):
            return
        if previous is not None:
            previous(kind, context, message)
        else:
            print(message, file=sys.stderr)

    previous = qInstallMessageHandler(handler)
    logging.getLogger("watchdog").setLevel(logging.ERROR)
    _installed = True
