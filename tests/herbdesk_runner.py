"""`herbdesk` with the fast fake engine registered: `python tests/herbdesk_runner.py run ...`.

Entry points cannot be added without reinstalling, so this script puts the engine into the
built-in table and then hands over to the real CLI, exit code and all.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastengine import ENGINE_NAME, ENGINE_SPEC

from herbdesk.cli import main
from herbdesk.extraction import engines

if __name__ == "__main__":
    engines._BUILTIN[ENGINE_NAME] = ENGINE_SPEC
    sys.exit(main())
