"""Events: types, codec, log writer and reader, and the bus (Qt-free)."""

from herbdesk.events.bus import EventBus
from herbdesk.events.codec import BadLine, decode, encode
from herbdesk.events.reader import ReadStats, iter_events, read_events
from herbdesk.events.types import Event, EventType, HaltReason
from herbdesk.events.writer import EventLogWriter, JsonlAppender

__all__ = [
    "BadLine",
    "Event",
    "EventBus",
    "EventLogWriter",
    "EventType",
    "HaltReason",
    "JsonlAppender",
    "ReadStats",
    "decode",
    "encode",
    "iter_events",
    "read_events",
]
