"""The run's state: the one fold of events into what every view shows (Qt-free).

state.py holds RunState and the per-event fold (the reference rules); fold_columns.py folds
runs of scanned specimen lines in numpy columns and chunks.py whole blocks of a log, both into
the same state with the same outcome; load.py opens a log and folds it whole. columns.py and
values.py are the column types and the readers of log values the folds share.
"""
