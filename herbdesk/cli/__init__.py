"""herbdesk's terminal front end: the `herbdesk` command and its subcommands.

main.py parses and dispatches; exitcodes.py holds the only copy of the exit codes and of the
mapping from a run's end to its code; runconfig.py is the one builder of a RunConfig from flags,
the config file (configfile.py) and a resumed run; run.py, tail.py, summary.py, export.py,
distributed.py, smoke.py and app.py are the subcommands; progress.py is the live terminal view.
"""

from herbdesk.cli.main import main

__all__ = ["main"]
