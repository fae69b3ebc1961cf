"""Distributed runs on Redis Streams: enqueue a run, many workers, one live view.

Layout per run (all keys under ``herbdesk:run:<run_id>:``, see `keys.RunKeys`):

- ``specimens``  stream, one entry per specimen; consumer group ``workers``
- ``events``     stream of the run's events (``XADD MAXLEN ~ EVENTS_MAXLEN``)
- ``control``    string: the halt/cancel decision (JSON); workers read it before new work
- ``ended``      string: set once (NX) by whoever emits the run's terminal event
- ``results``    hash specimen_id -> raw record (first write wins: recorded once)
- ``stats``      hash of counters folded atomically with each recorded result
- ``seq``/``sequence``  INCR counters: event `seq` and finish `sequence`, monotonic per run
- ``manifest``   string: the run config without secrets (JSON)

Qt-free, like the rest of the core.
"""

from herbdesk.distributed.keys import RunKeys, parse_run_target, redact_url

__all__ = ["RunKeys", "parse_run_target", "redact_url"]
