"""Where alerts go: incoming webhooks (Slack, Teams, generic JSON) and e-mail over SMTP.

A channel renders an `AlertMessage` for its destination and delivers it once; a `ChannelSender`
thread per channel adds retries with backoff and a rate limit, so one dead or slow channel
never delays another and never the run. Channels are named only by a redacted `label`
(`webhook https://hooks.slack.com/…`, `email ops@example.org`): webhook URLs embed tokens and
SMTP passwords are secrets like the API key, so neither may reach events, logs or the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import re
import smtplib
import socket
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol
from urllib.parse import urlsplit

from herbdesk import __version__

WEBHOOK_FORMATS = ("slack", "teams", "generic")
SMTP_SECURITY = ("starttls", "ssl", "none")
_TEAMS_HOSTS = ("office.com", "office365.com", "logic.azure.com", "powerplatform.com")
_SLACK_EMOJI = {"error": ":red_circle:", "warning": ":warning:", "success": ":white_check_mark:"}
_TEAMS_COLOR = {"error": "Attention", "warning": "Warning", "success": "Good"}


# ---------------------------------------------------------------- secrets
_SECRETS: set[str] = set()


def redact_url(url: str) -> str:
    """`https://hooks.slack.com/…`: scheme and host only; path, query and userinfo hold tokens."""
    p = urlsplit(url)
    host = p.hostname or "?"
    return f"{p.scheme or 'https'}://{host}{f':{p.port}' if p.port else ''}/…"


def scrub(text: str) -> str:
    """Replace every registered secret (webhook URL, its path, SMTP password) with `…`."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "…")
    return text


def register_secret(secret: str) -> None:
    """Remember a secret so `scrub` (and the httpx log filter) hide it wherever it shows up."""
    if len(secret) >= 4:
        _SECRETS.add(secret)


class _ScrubFilter(logging.Filter):
    """httpx logs `HTTP Request: POST <full url>` at INFO: that line would carry the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            try:
                text = record.getMessage()
            except (TypeError, ValueError):  # a malformed record: leave it to logging
                return True
            record.msg, record.args = scrub(text), ()
        return True


logging.getLogger("httpx").addFilter(_ScrubFilter())


def detect_format(url: str) -> str:
    """Teams (connectors and Workflows) for Microsoft hosts, else Slack (Mattermost reads it)."""
    host = (urlsplit(url).hostname or "").lower()
    return "teams" if any(host == h or host.endswith("." + h) for h in _TEAMS_HOSTS) else "slack"


# ---------------------------------------------------------------- the message
@dataclass(frozen=True)
class AlertMessage:
    """What happened, in which run, the key numbers and where the log is; rendered per channel."""

    kind: str  # halted | checkpoint_failed | warning | completed | cancelled | stalled | ...
    severity: str  # error | warning | success | info
    title: str
    summary: str
    run_id: str
    run_dir: str
    host: str
    facts: tuple[tuple[str, str], ...] = ()
    errors: tuple[Mapping[str, str], ...] = ()
    numbers: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None
    event_type: str | None = None
    event_seq: int | None = None
    timestamp: str = ""
    suppressed: int = 0
    note: str = ""

    @property
    def log_path(self) -> str:
        return f"{self.run_dir.rstrip('/')}/events.jsonl"

    def error_lines(self) -> list[str]:
        return [
            f"{e.get('image', '?')}: {e.get('kind', '?')}: {e.get('message', '')}"
            for e in self.errors
        ]

    def plain_text(self) -> str:
        """The e-mail body and the fallback text of every webhook format."""
        width = max((len(k) for k, _ in self.facts), default=0) + 2
        lines = [self.summary, ""]
        lines += [f"{k + ':':<{width}}{v}" for k, v in self.facts]
        if self.errors:
            lines += ["", "Last errors:"] + [f"  - {e}" for e in self.error_lines()]
        if self.note:
            lines += ["", self.note]
        lines += [
            "",
            f"Log: {self.log_path} (host {self.host})",
            f"Details: herbdesk summary {self.run_dir}",
        ]
        return "\n".join(lines)

    def generic(self) -> dict[str, Any]:
        """The documented `generic` webhook object (see the README's Alerts section)."""
        return {
            "source": "herbdesk",
            "version": 1,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "summary": self.summary,
            "text": self.plain_text(),
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "log": self.log_path,
            "host": self.host,
            "event": {"type": self.event_type, "seq": self.event_seq, "timestamp": self.timestamp}
            if self.event_type
            else None,
            "numbers": dict(self.numbers),
            "reason": self.reason,
            "last_errors": [dict(e) for e in self.errors],
            "suppressed": self.suppressed,
        }


def held_text(held: list[AlertMessage]) -> str:
    """`3 alert(s): warning ×3; the latest: <title>`."""
    what = ", ".join(f"{k} ×{n}" for k, n in Counter(m.kind for m in held).most_common())
    return f"{len(held)} alert(s): {what}; the latest: {held[-1].title}"


def suppressed_summary(held: list[AlertMessage], limit: int, window_min: float) -> AlertMessage:
    """One message standing for the alerts the rate limit held back."""
    last = held[-1]
    return replace(
        last,
        kind="suppressed",
        severity="warning",
        title=f"herbdesk run {last.run_id}: {len(held)} more alerts suppressed",
        summary=f"The rate limit ({limit} per {window_min:g} min) held back {held_text(held)}",
        event_type=None,
        event_seq=None,
        suppressed=len(held),
    )


# ---------------------------------------------------------------- channels
class DeliveryError(Exception):
    """A failed delivery; `retryable` for timeouts, 5xx, 429 and dropped connections."""

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(scrub(message))
        self.retryable = retryable
        self.retry_after = retry_after


class Channel(Protocol):
    label: str

    def send(self, msg: AlertMessage) -> None: ...

    def close(self) -> None: ...


def _slack_escape(text: str) -> str:
    """Slack's control characters: unescaped, `<!channel>` pings everyone and
    `<http://evil|click>` disguises a link. Server errors quoted in alerts may hold either."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Adaptive Card and connector markdown: links, emphasis, code, tags and entities (connector
# cards read HTML too). `(` needs no escape once `[` and `]` have one.
_TEAMS_SPECIAL = re.compile(r"([\\`*_~\[\]<>&])")


def _teams_escape(text: str) -> str:
    """Backslash before each markdown/HTML character: `[click](http://evil)` stays text."""
    return _TEAMS_SPECIAL.sub(r"\\\1", text)


_HEADER_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def _header(text: str) -> str:
    """One line for a mail header: a CR/LF from a server text must not start a header."""
    return _HEADER_BREAKS.sub(" ", text).strip()


def _md(text: str) -> dict[str, Any]:
    """A Slack mrkdwn text object, escaped and within Slack's 3000-character limit."""
    return {"type": "mrkdwn", "text": _slack_escape(text)[:3000]}


def slack_payload(msg: AlertMessage) -> dict[str, Any]:
    """`text` is the notification/fallback (and all Mattermost shows); `blocks` the rich view."""
    icon = _SLACK_EMOJI.get(msg.severity, ":information_source:")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _slack_escape(msg.title)[:150]}},
        {"type": "section", "text": _md(f"{icon} {msg.summary}")},
    ]
    if msg.facts:
        fields = [_md(f"*{k}*\n{v}") for k, v in msg.facts[:10]]
        blocks.append({"type": "section", "fields": fields})
    if msg.errors:
        errs = "\n".join(f"• {e}" for e in msg.error_lines())
        blocks.append({"type": "section", "text": _md(f"*Last errors*\n{errs}")})
    if msg.note:
        blocks.append({"type": "section", "text": _md(msg.note)})
    log = _md(f"Log: {msg.log_path} on {msg.host}")
    blocks.append({"type": "context", "elements": [log]})
    return {"text": _slack_escape(f"{msg.title}\n{msg.plain_text()}"), "blocks": blocks}


def _tb(text: str, **style: Any) -> dict[str, Any]:
    """An Adaptive Card TextBlock, its markdown escaped."""
    return {"type": "TextBlock", "text": _teams_escape(text), "wrap": True, **style}


def teams_payload(msg: AlertMessage) -> dict[str, Any]:
    """An Adaptive Card in the `message` envelope that Teams Workflows and incoming webhooks
    take; top-level `summary`/`text` give older connectors a plain fallback."""
    color = _TEAMS_COLOR.get(msg.severity, "Default")
    body = [_tb(msg.title, weight="Bolder", size="Medium", color=color), _tb(msg.summary)]
    if msg.facts:
        facts = [{"title": _teams_escape(k), "value": _teams_escape(v)} for k, v in msg.facts]
        body.append({"type": "FactSet", "facts": facts})
    if msg.errors:
        body += [_tb("Last errors", weight="Bolder")]
        body += [_tb(e, isSubtle=True) for e in msg.error_lines()]
    if msg.note:
        body.append(_tb(msg.note))
    body.append(_tb(f"Log: {msg.log_path} on {msg.host}", isSubtle=True, size="Small"))
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard", "version": "1.4", "body": body}  # fmt: skip
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive",
                  "contentUrl": None, "content": card}  # fmt: skip
    return {"type": "message", "summary": msg.title, "text": _teams_escape(msg.title),
            "attachments": [attachment]}  # fmt: skip


class WebhookChannel:
    """POST to an incoming webhook through httpx with a timeout; statuses mapped to retries."""

    def __init__(self, url: str, fmt: str = "slack", timeout_s: float = 10.0) -> None:
        if fmt not in WEBHOOK_FORMATS:
            raise ValueError(f"webhook format must be one of {', '.join(WEBHOOK_FORMATS)}")
        p = urlsplit(url)
        if p.scheme not in ("http", "https") or not p.hostname:
            raise ValueError(f"not an http(s) webhook URL: {redact_url(url)}")
        self._url = url
        register_secret(url)
        register_secret(url.split(p.netloc, 1)[-1])  # path+query carry the token
        self.format = fmt
        self.timeout_s = timeout_s
        self.label = f"webhook {redact_url(url)}"
        self._client: Any = None

    def payload(self, msg: AlertMessage) -> dict[str, Any]:
        if self.format == "teams":
            return teams_payload(msg)
        if self.format == "generic":
            return msg.generic()
        return slack_payload(msg)

    def send(self, msg: AlertMessage) -> None:
        import httpx  # imported here: `herbdesk run --help` stays fast

        if self._client is None:
            self._client = httpx.Client(
                timeout=httpx.Timeout(self.timeout_s, connect=min(5.0, self.timeout_s)),
                headers={"User-Agent": f"herbdesk/{__version__}"},
            )
        try:
            r = self._client.post(self._url, json=self.payload(msg))
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"timed out after {self.timeout_s:g}s", True) from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", True) from exc
        if 200 <= r.status_code < 300:
            return
        retry_after: float | None = None
        with contextlib.suppress(ValueError):
            retry_after = float(r.headers.get("Retry-After", ""))
        retryable = r.status_code in (408, 429) or r.status_code >= 500
        raise DeliveryError(f"HTTP {r.status_code}: {r.text[:200].strip()}", retryable, retry_after)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


@dataclass
class SmtpSettings:
    """The mail server; the password is looked up separately and never stored in config."""

    host: str = ""
    port: int | None = None
    security: str = "starttls"
    user: str | None = None
    sender: str | None = None
    password_env: str = "HERBDESK_SMTP_PASSWORD"
    timeout_s: float = 15.0

    def validate(self) -> None:
        if self.security not in SMTP_SECURITY:
            raise ValueError(f"SMTP security must be one of {', '.join(SMTP_SECURITY)}")
        if not self.host:
            raise ValueError("e-mail alerts need an SMTP server: --smtp-host or [alerts.smtp] host")

    @property
    def effective_port(self) -> int:
        return self.port or {"ssl": 465, "starttls": 587}.get(self.security, 25)

    @property
    def from_address(self) -> str:
        if self.sender:
            return self.sender
        if self.user and "@" in self.user:
            return self.user
        return f"herbdesk@{socket.getfqdn()}"


class EmailChannel:
    """One plain-text mail per alert to one address, over a fresh SMTP session each time
    (alerts are rare; a kept-open session would only time out between them)."""

    def __init__(self, to: str, smtp: SmtpSettings, password: str | None = None) -> None:
        if "@" not in to or _header(to) != to:
            raise ValueError(f"not an e-mail address: {to!r}")
        smtp.validate()
        self.to = to
        self.smtp = smtp
        self._password = password
        if password:
            register_secret(password)
        self.label = f"email {to}"

    def build(self, msg: AlertMessage) -> EmailMessage:
        m = EmailMessage()
        m["Subject"] = _header(msg.title)
        m["From"] = _header(self.smtp.from_address)
        m["To"] = self.to
        m["Date"] = formatdate(localtime=True)
        m["Message-ID"] = make_msgid(domain="herbdesk.local")
        m["X-Herbdesk-Run"] = _header(msg.run_id)
        m.set_content(msg.plain_text())
        return m

    def send(self, msg: AlertMessage) -> None:
        s = self.smtp
        ctx = ssl.create_default_context()
        try:
            server: smtplib.SMTP
            if s.security == "ssl":
                server = smtplib.SMTP_SSL(
                    s.host, s.effective_port, timeout=s.timeout_s, context=ctx
                )
            else:
                server = smtplib.SMTP(s.host, s.effective_port, timeout=s.timeout_s)
            with server:
                if s.security == "starttls":
                    server.starttls(context=ctx)
                if s.user:
                    server.login(s.user, self._password or "")
                server.send_message(self.build(msg))
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(
                f"the server does not support it: {exc} (try --smtp-security)", False
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc.recipients}", False) from exc
        except smtplib.SMTPResponseException as exc:
            text = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            raise DeliveryError(
                f"{type(exc).__name__} {exc.smtp_code}: {text}", 400 <= exc.smtp_code < 500
            ) from exc
        except ssl.SSLError as exc:
            raise DeliveryError(f"TLS failed: {exc}", False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", True) from exc

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- delivery
@dataclass(frozen=True)
class Pending:
    """One alert waiting for one channel. `final` alerts (the run ended) bypass the limit."""

    key: str
    message: AlertMessage
    final: bool = False


Report = Callable[[str, dict[str, Any]], None]  # ("sent" | "failed", data)
_STOP = object()


class ChannelSender:
    """The delivery thread of one channel: retries with backoff, a sliding-window rate limit,
    and a summary of what the limit held back (sent when the window frees up, or at the end)."""

    def __init__(
        self,
        channel: Channel,
        report: Report,
        *,
        max_attempts: int = 4,
        backoff_s: float = 2.0,
        rate_limit: int = 5,
        rate_window_s: float = 600.0,
    ) -> None:
        self.channel = channel
        self._report = report
        self._max_attempts = max(1, max_attempts)
        self._backoff_s = backoff_s
        self._limit = rate_limit
        self._window_s = rate_window_s
        self._queue: queue.Queue[Any] = queue.Queue()
        self._sent_at: deque[float] = deque()
        self._held: list[AlertMessage] = []
        self.abort = threading.Event()
        self._pending = 0  # queued or in delivery: what close() reports as not delivered
        self._pending_lock = threading.Lock()
        self.thread = threading.Thread(
            target=self._run, name=f"herbdesk-alerts-{channel.label.split()[0]}", daemon=True
        )

    @property
    def pending(self) -> int:
        return self._pending

    def put(self, item: Pending) -> None:
        with self._pending_lock:
            self._pending += 1
        self._queue.put(item)

    def stop(self) -> None:
        """Deliver what is queued (and the suppressed summary), then end the thread."""
        self._queue.put(_STOP)

    def _run(self) -> None:
        tick = max(1.0, min(30.0, self._window_s / 10))
        try:
            while True:
                try:
                    item = self._queue.get(timeout=tick)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    if self._held and not self.abort.is_set():
                        self._send_summary()
                    return
                if item is not None:
                    self._handle(item)
                elif self._held and self._room():
                    self._send_summary()
        finally:
            self.channel.close()

    def _room(self) -> bool:
        now = time.monotonic()
        while self._sent_at and now - self._sent_at[0] > self._window_s:
            self._sent_at.popleft()
        return self._limit <= 0 or len(self._sent_at) < self._limit

    def _handle(self, item: Pending) -> None:
        try:
            if self.abort.is_set():
                self._fail(item.message, 0, "not delivered before exit")
                return
            msg = item.message
            if not item.final and not self._room():
                self._held.append(msg)
                return
            if item.final and self._held:  # fold the held-back count into the last word
                n = len(self._held)
                note = f"The rate limit held back {held_text(self._held)}."
                msg = replace(msg, suppressed=n, note=note)
                self._held = []
            self._deliver(msg)
        finally:
            with self._pending_lock:
                self._pending -= 1

    def _send_summary(self) -> None:
        held, self._held = self._held, []
        self._deliver(suppressed_summary(held, self._limit, self._window_s / 60))

    def _deliver(self, msg: AlertMessage) -> None:
        self._sent_at.append(time.monotonic())
        attempt = 0
        while True:
            attempt += 1
            try:
                self.channel.send(msg)
            except DeliveryError as exc:
                err: DeliveryError = exc
            except Exception as exc:  # a bug in a channel must not kill the thread
                err = DeliveryError(f"{type(exc).__name__}: {exc}", False)
            else:
                self._report("sent", self._data(msg, attempt))
                return
            if not err.retryable or attempt >= self._max_attempts:
                self._fail(msg, attempt, str(err))
                return
            delay = (
                err.retry_after
                if err.retry_after is not None
                else (self._backoff_s * 2 ** (attempt - 1) * random.uniform(0.75, 1.0))
            )
            if self.abort.wait(min(delay, 60.0)):
                self._fail(msg, attempt, f"{err} (gave up at exit)")
                return

    def _fail(self, msg: AlertMessage, attempts: int, error: str) -> None:
        self._report("failed", {**self._data(msg, attempts), "error": scrub(error)})

    def _data(self, msg: AlertMessage, attempts: int) -> dict[str, Any]:
        data: dict[str, Any] = {
            "alert": msg.kind,
            "channel": self.channel.label,
            "on_seq": msg.event_seq,
            "attempts": attempts,
            "title": msg.title,
        }
        if msg.suppressed:
            data["suppressed"] = msg.suppressed
        return data


def start_senders(senders: Iterable[ChannelSender]) -> None:
    for s in senders:
        s.thread.start()
