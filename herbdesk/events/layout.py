"""The names of a run directory's files: the event log and what the pipeline writes beside it.

Here, at the bottom, because every layer finds a run's log by them: the pipeline writes them,
the fold, the tail and the alerts read them.
"""

EVENTS = "events.jsonl"
RAW = "raw.jsonl"
METRICS = "metrics.jsonl"
RUN_JSON = "run.json"
CSV = "occurrences.csv"
