"""herbdesk: run and monitor Darwin Core extraction from herbarium specimen images."""

import os
from importlib.metadata import PackageNotFoundError, version

# numpy's OpenBLAS starts a worker thread per core that spins between calls. herbdesk does no
# large linear algebra, and on a two-core machine those spins took ~5% of a core from the log
# scanner and the fold (perf, opening a 1M-event log). Set before numpy is first imported;
# a user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

try:
    __version__ = version("herbdesk")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
