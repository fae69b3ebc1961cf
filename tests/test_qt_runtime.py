"""Guards against a Qt binding that corrupts Python's refcounts (PySide6 6.12.0 on 3.11 did:
every void call and Python-side emit dropped a reference to None or True until the process
aborted)."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
label = QLabel()
class Emitter(QObject):
    fired = Signal()
e = Emitter()
n0, t0 = sys.getrefcount(None), sys.getrefcount(True)
for _ in range(100):
    label.setText("x")
    e.fired.emit()
print(sys.getrefcount(None) - n0, sys.getrefcount(True) - t0)
"""


def test_qt_calls_do_not_leak_references_to_singletons() -> None:
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    none_delta, true_delta = (int(x) for x in r.stdout.split())
    assert abs(none_delta) < 20 and abs(true_delta) < 20, (
        f"the Qt binding leaks singleton references (None {none_delta}, True {true_delta}); "
        "pin another PySide6 release"
    )
