"""`python -m herbdesk` runs the same entry point as the `herbdesk` console script."""

import sys

from herbdesk.cli import main

sys.exit(main())
