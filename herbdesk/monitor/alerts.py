"""Alerts: someone hears about a failing, stalled or finished run where they are.

`AlertsConsumer` is a bus consumer. Handlers run on the pipeline's threads, so it only composes
a message and enqueues it; a sender thread per channel (herbdesk.monitor.alert_channels)
delivers with retries and a rate limit. Outcomes become `alert.sent` / `alert.failed` events and
a line on stderr. The pipeline closes its log right after the terminal event, so outcomes of
alerts about the end of the run are appended after that event when the consumer closes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herbdesk.events.bus import EventBus
from herbdesk.events.types import TERMINAL_EVENT_TYPES, Event, EventType, HaltReason
from herbdesk.monitor import ending, projection
from herbdesk.monitor.alert_channels import (
    WEBHOOK_FORMATS,
    AlertMessage,
    Channel,
    ChannelSender,
    EmailChannel,
    Pending,
    SmtpSettings,
    WebhookChannel,
    detect_format,
    register_secret,
    start_senders,
)
from herbdesk.monitor.goon import go_on
from herbdesk.monitor.projection import ProjectionFold

ALERT_KINDS: dict[str, str] = {
    "checkpoint_failed": "the early checkpoint failed (the run halts)",
    "halted": "the run halted for any reason",
    "warning": "a validation warning (low success rate)",
    "completed": "the run completed",
    "stalled": "no event for --stall-minutes while running",
    "cancelled": "the run was cancelled",
    "checkpoint_passed": "the early checkpoint passed",
    "paused": "the run paused itself (an API quota used up, or its --budget reached)",
}
DEFAULT_ALERTS = frozenset(
    {"checkpoint_failed", "halted", "warning", "completed", "stalled", "paused"}
)
_ALIASES = {
    EventType.EXTRACTION_FAILED: "halted",
    EventType.EXTRACTION_COMPLETED: "completed",
    EventType.EXTRACTION_CANCELLED: "cancelled",
    EventType.VALIDATION_WARNING: "warning",
}
_HALT_TEXT = {
    HaltReason.PREFLIGHT_FAILED: "preflight failed, nothing attempted",
    HaltReason.EARLY_VALIDATION_FAILED: "checkpoint failed",
    HaltReason.CONSECUTIVE_FAILURES: "too many failures in a row",
    HaltReason.EARLY_QUALITY_FAILED: "quality checkpoint failed: the records are junk",
    HaltReason.IDENTICAL_RECORDS: "different sheets gave the same record",
    HaltReason.DEGRADED: "the run degraded after the checkpoint",
    HaltReason.GOLD_FAILED: "known-answer sheets answered wrong",
    HaltReason.FATAL_ERROR: "fatal error",
    HaltReason.INTERNAL_ERROR: "internal error",
    HaltReason.BUDGET: "paused at its budget",
}
SMTP_KEYRING_SERVICE = "herbdesk"


def parse_alert_events(values: Iterable[str]) -> frozenset[str]:
    """`halted,completed` or event types; `all` for every kind."""
    out: set[str] = set()
    for value in values:
        for name in (v.strip() for v in value.split(",")):
            if not name:
                continue
            if name == "all":
                out |= set(ALERT_KINDS)
            elif name in ALERT_KINDS or name in _ALIASES:
                out.add(_ALIASES.get(name, name))
            else:
                raise ValueError(
                    f"unknown alert event {name!r}; choose from {', '.join(ALERT_KINDS)} or all"
                )
    return frozenset(out)


@dataclass
class WebhookTarget:
    url: str
    format: str | None = None  # None: teams for Microsoft hosts, else slack


# the keys of the config file's [alerts] table (herbdesk/cli/configfile.py checks their types)
ALERT_KEYS = frozenset(
    {
        "webhooks",
        "emails",
        "smtp",
        "events",
        "stall_minutes",
        "rate_limit",
        "rate_window_minutes",
        "max_attempts",
        "retry_backoff_s",
        "timeout_s",
    }
)


@dataclass
class AlertConfig:
    """Where alerts go and which events raise them; never holds the SMTP password."""

    webhooks: list[WebhookTarget] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    events: frozenset[str] = DEFAULT_ALERTS
    stall_minutes: float = 15.0  # 0 disables; floats allowed (tests use 0.01)
    rate_limit: int = 5  # per channel per window; 0 = no limit
    rate_window_minutes: float = 10.0
    max_attempts: int = 4
    retry_backoff_s: float = 2.0
    timeout_s: float = 10.0
    flush_timeout_s: float = 10.0

    @property
    def has_channels(self) -> bool:
        return bool(self.webhooks or self.emails)

    def validate(self) -> None:
        if self.stall_minutes < 0 or self.rate_limit < 0 or self.rate_window_minutes <= 0:
            raise ValueError("stall_minutes and rate_limit must be >= 0, the window > 0")
        if self.max_attempts < 1 or self.timeout_s <= 0:
            raise ValueError("alert max_attempts must be >= 1 and timeout_s > 0")
        for w in self.webhooks:
            if w.format is not None and w.format not in WEBHOOK_FORMATS:
                raise ValueError(f"webhook format must be one of {', '.join(WEBHOOK_FORMATS)}")
        if self.emails:
            self.smtp.validate()

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> AlertConfig:
        """The `[alerts]` table of a --config TOML file (see the README)."""
        unknown = set(table) - ALERT_KEYS
        if unknown:
            raise ValueError(f"unknown keys in [alerts]: {', '.join(sorted(unknown))}")
        cfg = cls()
        for item in table.get("webhooks", []):
            spec = {"url": item} if isinstance(item, str) else dict(item)
            url = spec.get("url") or _from_env(spec.get("url_env"), "webhook url_env")
            cfg.webhooks.append(WebhookTarget(resolve_url(str(url)), spec.get("format")))
        cfg.emails = [str(e) for e in table.get("emails", [])]
        smtp = dict(table.get("smtp", {}))
        if "password" in smtp:
            raise ValueError(
                "no SMTP password in the config file: put it in "
                "$HERBDESK_SMTP_PASSWORD (or password_env) or the OS keyring"
            )
        if "from" in smtp:
            smtp["sender"] = smtp.pop("from")
        try:
            cfg.smtp = SmtpSettings(**smtp)
        except TypeError as exc:
            raise ValueError(f"[alerts.smtp]: {exc}") from exc
        if "events" in table:
            cfg.events = parse_alert_events(table["events"])
        for key in ("stall_minutes", "rate_window_minutes", "retry_backoff_s", "timeout_s"):
            if key in table:
                setattr(cfg, key, float(table[key]))
        for key in ("rate_limit", "max_attempts"):
            if key in table:
                setattr(cfg, key, int(table[key]))
        return cfg

    def build_channels(self, smtp_password: str | None = None) -> list[Channel]:
        chans: list[Channel] = []
        seen: set[str] = set()
        for w in self.webhooks:
            if w.url not in seen:
                seen.add(w.url)
                chans.append(
                    WebhookChannel(w.url, w.format or detect_format(w.url), self.timeout_s)
                )
        chans += [EmailChannel(e, self.smtp, smtp_password) for e in self.emails]
        return chans


def _from_env(name: Any, what: str) -> str:
    value = os.environ.get(str(name or ""), "").strip()
    if not value:
        raise ValueError(f"{what}: ${name} is not set")
    return value


def resolve_url(url: str) -> str:
    """`env:NAME` keeps the webhook URL out of argv (visible to every user of the machine)."""
    url = _from_env(url[4:], "--alert-webhook") if url.startswith("env:") else url.strip()
    register_secret(url)
    return url


def smtp_password(smtp: SmtpSettings) -> str | None:
    """From the named environment variable, else the OS keyring (as common/apikeys.py does)."""
    if not smtp.user:
        return None
    pw = os.environ.get(smtp.password_env, "")
    if pw:
        return pw
    try:
        import keyring

        stored = keyring.get_password(SMTP_KEYRING_SERVICE, f"smtp:{smtp.user}@{smtp.host}")
    except Exception:  # no keyring backend on a headless server
        return None
    return stored or None


# ---------------------------------------------------------------- the consumer
class AlertsConsumer:
    """Turns run events into alerts; sends them off the pipeline's path, at most once each."""

    def __init__(
        self,
        config: AlertConfig,
        channels: list[Channel] | None = None,
        *,
        smtp_password: str | None = None,
        notify: Callable[[str], None] | None = None,
        quiet: bool = False,
    ) -> None:
        self.config = config
        chans = channels if channels is not None else config.build_channels(smtp_password)
        self._senders = [
            ChannelSender(
                ch,
                self._record,
                max_attempts=config.max_attempts,
                backoff_s=config.retry_backoff_s,
                rate_limit=config.rate_limit,
                rate_window_s=config.rate_window_minutes * 60,
            )
            for ch in chans
        ]
        self._notify = notify or _print_stderr
        self._quiet = quiet
        self._lock = threading.RLock()
        self._keys: set[str] = set()
        self._bus: EventBus | None = None
        self._run_dir = Path(".")
        self._host = socket.gethostname()
        self._late: list[tuple[str, dict[str, Any]]] = []
        self._terminal_seen = False  # written under the bus lock (in the handler)
        self._log_outlives_end = False
        self._broker = ""  # a distributed run's broker (redacted): how it goes on says it
        self._closed = False
        self._stop = threading.Event()
        self._stall_thread: threading.Thread | None = None
        # what the messages say
        self._running = self._paused = False
        self._paused_for: set[str] = set()
        self._last_mono = time.monotonic()
        self._last_seq, self._last_type, self._last_ts = 0, "", ""
        self._stalled_seq = -1
        self._metrics: dict[str, Any] = {}
        self._ahead = ProjectionFold()  # cost and time ahead, said in alerts of a running run
        # the window keeps a budget-paused run waiting for a raise; a headless run ends there
        self.holds_at_budget = False
        self._run_conf: dict[str, Any] = {}
        self._errors: deque[dict[str, str]] = deque(maxlen=3)

    @property
    def channel_labels(self) -> list[str]:
        return [s.channel.label for s in self._senders]

    def attach(self, bus: EventBus, run_dir: Path, *, log_outlives_end: bool = False) -> None:
        """Subscribe and start the sender (and stall-watch) threads. `log_outlives_end`: the
        bus's log takes events after the run's end (a distributed run's stream), so outcomes
        go there rather than being appended to run_dir's events.jsonl at close."""
        self._bus, self._run_dir = bus, Path(run_dir).resolve()
        self._log_outlives_end = log_outlives_end
        bus.subscribe(self, "alerts")
        start_senders(self._senders)
        if "stalled" in self.config.events and self.config.stall_minutes > 0:
            self._stall_thread = threading.Thread(
                target=self._watch_stall, name="herbdesk-alerts-stall", daemon=True
            )
            self._stall_thread.start()
        if not self._quiet:
            self._notify(
                f"alerts ({', '.join(sorted(self.config.events))}) → "
                + ", ".join(self.channel_labels)
            )

    # -- the bus handler: compose and enqueue, nothing slower
    def __call__(self, ev: Event) -> None:
        et = ev.event_type
        if et.startswith("alert."):
            return
        d = ev.data
        events = self.config.events
        with self._lock:
            self._last_mono, self._last_seq = time.monotonic(), ev.seq
            self._last_type, self._last_ts = et, ev.timestamp
            if ev.metrics:
                self._metrics = dict(ev.metrics)
            self._ahead.on_event(ev)
            if et == EventType.EXTRACTION_STARTED:
                self._running, self._paused = True, False
                self._paused_for.clear()
                self._run_conf = dict(d.get("config") or {})
                self._broker = str(d.get("broker") or "")
                self._metrics.setdefault("total", d.get("total"))
            elif et in (EventType.EXTRACTION_PAUSED, EventType.EXTRACTION_RESUMED):
                why = str(d.get("reason") or "user")  # user and quota pauses are independent
                if et == EventType.EXTRACTION_PAUSED:
                    self._paused_for.add(why)
                else:
                    self._paused_for.discard(why)
                self._paused = bool(self._paused_for)
                if et == EventType.EXTRACTION_PAUSED and why == "quota" and "paused" in events:
                    self._alert(
                        f"seq:{ev.seq}",
                        "paused",
                        "warning",
                        f"run {ev.run_id}: paused until {d.get('until')} (API quota used up)",
                        str(d.get("message", "")),
                        ev,
                    )
                elif et == EventType.EXTRACTION_PAUSED and why == "budget" and "paused" in events:
                    # a headless run then ends for it: this alert says it all (key "halt")
                    self._alert(
                        "halt" if not self.holds_at_budget else f"seq:{ev.seq}",
                        "paused",
                        "warning",
                        f"run {ev.run_id}: paused at its budget "
                        f"({_money(d.get('cost_usd'))} of {_money(d.get('budget_usd'))})",
                        str(d.get("message", "")),
                        ev,
                        reason="budget",
                        note=f"Continue with: herbdesk run --resume {self._run_dir} "
                        + (f"--broker {self._broker} " if self._broker else "")
                        + "--budget HIGHER",
                        final=not self.holds_at_budget,
                    )
            elif et == EventType.SPECIMEN_FAILED:
                err = d.get("error") or {}
                self._errors.append(
                    {
                        "image": str(d.get("image", "?")),
                        "kind": str(err.get("kind", "?")),
                        "message": str(err.get("message", ""))[:200],
                    }
                )
            elif et == EventType.VALIDATION_CHECKPOINT:
                self._on_checkpoint(ev)
            elif et == EventType.VALIDATION_WARNING and "warning" in events:
                self._alert(
                    f"seq:{ev.seq}",
                    "warning",
                    "warning",
                    f"run {ev.run_id}: low success rate ({float(d.get('success_rate', 0)):.0%} "
                    f"after {d.get('at')} specimens)",
                    f"{d.get('message', '')}. The run goes on.",
                    ev,
                )
            elif et in TERMINAL_EVENT_TYPES:
                self._running = False
                self._terminal_seen = True
                self._on_terminal(ev)

    def _on_checkpoint(self, ev: Event) -> None:
        d = ev.data
        n, rate = d.get("checkpoint"), float(d.get("success_rate", 0))
        if d.get("status") == "failed":
            # a failed checkpoint is the halt: say so now rather than after in-flight work ends
            if {"checkpoint_failed", "halted"} & self.config.events:
                self._alert(
                    "halt",
                    "halted",
                    "error",
                    f"run {ev.run_id} halted at checkpoint {n} (success rate {rate:.0%})",
                    f"The run halted at checkpoint {n}: success rate {rate:.0%} "
                    f"({d.get('succeeded')}/{n} succeeded) is below the "
                    f"{float(d.get('threshold', 0)):.0%} threshold. Nothing new starts; "
                    "specimens in flight finish.",
                    ev,
                    reason=HaltReason.EARLY_VALIDATION_FAILED,
                    note=f"Continue with: herbdesk run --resume {self._run_dir}",
                    final=True,
                )
        elif "checkpoint_passed" in self.config.events:
            self._alert(
                f"seq:{ev.seq}",
                "checkpoint_passed",
                "success",
                f"run {ev.run_id} passed checkpoint {n} (success rate {rate:.0%})",
                f"Checkpoint {n} passed with a success rate of {rate:.0%}; the run goes on"
                + (f": {ahead}." if (ahead := self._ahead_sentence()) else "."),
                ev,
            )

    def _on_terminal(self, ev: Event) -> None:
        d, events = ev.data, self.config.events
        rate = float(d.get("success_rate", 0))
        counts = (
            f"{d.get('processed')} processed, {d.get('succeeded')} succeeded, "
            f"{d.get('failed')} failed ({rate:.0%})"
        )
        resume = go_on("cancelled", self._run_dir)
        if ending.paused_at_budget(d.get("status"), d.get("reason")):
            # no failure: a pause (amber) that a higher budget goes on from; one alert, keyed
            # as the pause's own (a headless run's pause alert already said it)
            if {"paused", "halted"} & events:
                budget = self._run_conf.get("budget_usd")
                self._alert(
                    "halt",
                    "paused",
                    "warning",
                    f"run {ev.run_id}: paused at its budget",
                    "The run paused at its budget: "
                    + ending.budget_pause_text(
                        d.get("processed"),
                        d.get("succeeded"),
                        d.get("failed"),
                        self._ahead.spent,
                        budget,
                    )
                    + ". Nothing new starts; it is resumable.",
                    ev,
                    reason=HaltReason.BUDGET,
                    note=f"Continue with: herbdesk run --resume {self._run_dir} "
                    + (f"--broker {self._broker} " if self._broker else "")
                    + "--budget HIGHER",
                    final=True,
                )
        elif ev.event_type == EventType.EXTRACTION_FAILED and "halted" in events:
            reason = str(d.get("reason") or "")
            resume = go_on(reason, self._run_dir)
            self._alert(
                "halt",
                "halted",
                "error",
                f"run {ev.run_id} halted: {_HALT_TEXT.get(reason, reason)}",
                f"{d.get('message', '')}. {counts}.",
                ev,
                reason=reason,
                note=resume,
                final=True,
            )
        elif ev.event_type == EventType.EXTRACTION_COMPLETED and "completed" in events:
            below = d.get("verdict") == "below_threshold"
            usable = d.get("usable_rate")
            uses = f", {usable:.0%} usable" if isinstance(usable, (int, float)) else ""
            self._alert(
                f"seq:{ev.seq}",
                "completed",
                "error" if below else ("success" if rate >= 0.5 else "warning"),
                f"run {ev.run_id} "
                + ("finished BELOW THRESHOLD" if below else "completed")
                + f": {d.get('succeeded')}/{d.get('processed')} succeeded ({rate:.0%}){uses}",
                (f"{d.get('verdict_message')}. " if below else "")
                + f"The run completed in {_duration(d.get('duration_s'))}: {counts}.",
                ev,
                final=True,
            )
        elif ev.event_type == EventType.EXTRACTION_CANCELLED and "cancelled" in events:
            self._alert(
                f"seq:{ev.seq}",
                "cancelled",
                "warning",
                f"run {ev.run_id} cancelled",
                f"{_sentence(str(d.get('message') or 'stopped'))}: {counts}.",
                ev,
                note=resume,
                final=True,
            )

    def _ahead_sentence(self) -> str:
        now = time.time()
        return projection.sentence(self._ahead.projection(now), now) if self._running else ""

    def _message(
        self,
        kind: str,
        severity: str,
        title: str,
        summary: str,
        ev: Event | None,
        *,
        reason: str | None = None,
        note: str = "",
    ) -> AlertMessage:
        m = self._metrics
        d = ev.data if ev is not None else {}
        processed = d.get("processed", m.get("total_processed", 0))
        succeeded = d.get("succeeded", m.get("success_count", 0))
        failed = d.get("failed", m.get("failed_count", 0))
        rate = float(d.get("success_rate", m.get("success_rate", 0.0)) or 0.0)
        numbers = {
            "total": m.get("total"),
            "processed": processed,
            "succeeded": succeeded,
            "failed": failed,
            "success_rate": rate,
            "cost_usd": m.get("cost_usd"),
            "elapsed_s": m.get("elapsed_seconds"),
        }
        run_id = ev.run_id if ev is not None else (self._bus.run_id if self._bus else "")
        facts = [
            ("Run", run_id),
            ("Processed", f"{processed} of {m.get('total') or '?'}"),
            ("Succeeded / failed", f"{succeeded} / {failed}"),
            ("Success rate", f"{rate:.0%}"),
        ]
        if reason:
            facts.append(("Reason", reason))
        if self._run_conf.get("engine"):
            model = self._run_conf.get("model")
            facts.append(
                ("Engine", f"{self._run_conf['engine']}" + (f" ({model})" if model else ""))
            )
        if m.get("cost_usd"):
            facts.append(("Cost", f"${float(m['cost_usd']):.4f}"))
        now = time.time()
        ahead = self._ahead.projection(now) if self._running else None
        if ahead is not None:
            numbers["projection"] = ahead.to_dict(now)
            if total := projection.cost_text(ahead):
                facts.append(("Projected total", total))
            if left := projection.time_text(ahead, now):
                facts.append(("Time left", left))
        facts.append(("Host", self._host))
        return AlertMessage(
            kind=kind,
            severity=severity,
            title=f"herbdesk: {title}",
            summary=summary,
            run_id=run_id,
            run_dir=str(self._run_dir),
            host=self._host,
            facts=tuple(facts),
            errors=tuple(self._errors) if kind != "completed" or failed else (),
            numbers=numbers,
            reason=reason,
            event_type=ev.event_type if ev else None,
            event_seq=ev.seq if ev else None,
            timestamp=ev.timestamp if ev else self._last_ts,
            note=note,
        )

    def _alert(
        self,
        key: str,
        kind: str,
        severity: str,
        title: str,
        summary: str,
        ev: Event | None,
        *,
        final: bool = False,
        reason: str | None = None,
        note: str = "",
    ) -> None:
        self._enqueue(
            key, self._message(kind, severity, title, summary, ev, reason=reason, note=note), final
        )

    def _enqueue(self, key: str, msg: AlertMessage, final: bool = False) -> None:
        with self._lock:
            if key in self._keys or self._closed:  # nothing is sent twice for one event
                return
            self._keys.add(key)
        for s in self._senders:
            s.put(Pending(key, msg, final))

    def _watch_stall(self) -> None:
        stall_s = self.config.stall_minutes * 60
        while not self._stop.wait(max(0.05, min(5.0, stall_s / 4))):
            with self._lock:
                quiet = time.monotonic() - self._last_mono
                if (
                    not self._running
                    or self._paused
                    or quiet < stall_s
                    or self._stalled_seq == self._last_seq
                ):
                    continue
                self._stalled_seq = self._last_seq
                run_id = self._bus.run_id if self._bus else ""
                msg = self._message(
                    "stalled",
                    "warning",
                    f"run {run_id} stalled: no event for {_duration(quiet)}",
                    f"The run has been silent for {_duration(quiet)} (last event: "
                    f"{self._last_type} at {self._last_ts}). The process may be hung, the API "
                    "unresponsive or the machine asleep.",
                    None,
                )
                self._enqueue(f"stall:{self._last_seq}", msg)

    # -- outcomes, from the sender threads
    def _record(self, outcome: str, data: dict[str, Any]) -> None:
        etype = EventType.ALERT_SENT if outcome == "sent" else EventType.ALERT_FAILED
        if outcome == "failed":
            self._notify(
                f"ALERT NOT DELIVERED: {data['alert']} → {data['channel']} after "
                f"{data['attempts']} attempt(s): {data.get('error')}"
            )
        elif not self._quiet:
            self._notify(f"alert sent: {data['alert']} → {data['channel']}")
        # Under the bus lock, the handler's `_terminal_seen` is final: before the terminal
        # event the log is open; after it, the pipeline is closing it and we append later.
        bus = self._bus
        with getattr(bus, "_lock", None) or contextlib.nullcontext():
            open_log = not self._terminal_seen or self._log_outlives_end
            if bus is not None and open_log and not self._closed:
                try:
                    bus.emit(etype, data=data)
                except Exception as exc:  # a full disk must not kill the sender thread
                    self._notify(f"could not record {etype}: {exc}")
                return
            if not self._closed:
                self._late.append((etype, data))

    def close(self, timeout: float | None = None) -> None:
        """Flush pending alerts (bounded wait), then append late outcomes to the log."""
        if self._closed:
            return
        self._stop.set()
        deadline = time.monotonic() + (self.config.flush_timeout_s if timeout is None else timeout)
        live = [s for s in self._senders if s.thread.is_alive()]
        for s in live:
            s.stop()
        for s in live:
            s.thread.join(max(0.0, deadline - time.monotonic()))
        for s in live:
            if s.thread.is_alive():
                s.abort.set()  # stop waiting between retries; what is left is recorded failed
                s.thread.join(0.5)
            if s.thread.is_alive() and s.pending:
                self._notify(
                    f"ALERT NOT DELIVERED: {s.pending} alert(s) to {s.channel.label} "
                    "still in flight at exit"
                )
        bus = self._bus
        with getattr(bus, "_lock", None) or contextlib.nullcontext():
            self._closed = True
            late, self._late = self._late, []
        if bus is not None:
            bus.unsubscribe(self)
            if late:
                self._append_late(bus, late)

    def _append_late(self, bus: EventBus, late: list[tuple[str, dict[str, Any]]]) -> None:
        from herbdesk.events.layout import EVENTS
        from herbdesk.events.writer import EventLogWriter

        path = self._run_dir / EVENTS
        try:
            if not path.exists():  # a bus without a log file (tests, embedding)
                for etype, data in late:
                    bus.emit(etype, data=data)
                return
            writer = EventLogWriter(path)
            try:  # continue the numbering where the pipeline's bus stopped
                tail = EventBus(bus.run_id, writer, start_seq=bus.last_seq)
                for etype, data in late:
                    tail.emit(etype, data=data)
            finally:
                writer.close()
        except Exception as exc:
            self._notify(f"could not record alert outcomes in {path}: {exc}")


def _money(value: Any) -> str:
    """A figure from an event as the one money formatter writes it; "?" when it is none."""
    try:
        return projection.money(float(value))
    except (TypeError, ValueError):
        return "?"


def _duration(seconds: Any) -> str:
    """A duration from an event as the one duration formatter writes it; "?" when none."""
    try:
        return projection.duration(float(seconds))
    except (TypeError, ValueError, OverflowError):
        return "?"


def _print_stderr(text: str) -> None:
    from herbdesk.common.termtext import clean_text

    print(clean_text(text, multiline=True), file=sys.stderr, flush=True)  # quotes servers


def _sentence(text: str) -> str:
    """`text` begun with a capital (str.capitalize would lower "SIGTERM")."""
    return text[:1].upper() + text[1:]
