"""Alerts against real local listeners: an HTTP server for webhooks and an SMTP server (aiosmtpd).

Unit-level tests drive the consumer with a bare EventBus; end-to-end tests run the pipeline
against the fake API, in process and as `herbdesk run` subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fakeapi import FakeApi
from helpers import api_config, events_of

from herbdesk.cli.alerts import build_alerts
from herbdesk.cli.main import _build_parser
from herbdesk.events.bus import EventBus
from herbdesk.events.types import Event, EventType
from herbdesk.extraction.pipeline import Pipeline
from herbdesk.monitor.alert_channels import EmailChannel, SmtpSettings, WebhookChannel
from herbdesk.monitor.alerts import AlertConfig, AlertsConsumer

# the test SMTP server takes AUTH without TLS on purpose (loopback only)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

TOKEN = "T0HOOK/B0HOOK/xoxb-SECRET-webhook-token-1234567890"
SMTP_USER, SMTP_PASSWORD = "alerts@example.org", "smtp-PASSWORD-secret-0987"


# ---------------------------------------------------------------- local listeners
class Hook:
    """A webhook receiver on 127.0.0.1: records JSON posts, answers from a script of statuses."""

    def __init__(self, script: Iterable[int] = (), default: int = 200, delay: float = 0.0):
        self.script = list(script)
        self.default = default
        self.delay = delay
        self.posts: list[dict[str, Any]] = []
        self.requests = 0
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                time.sleep(hook.delay)
                with hook.lock:
                    hook.requests += 1
                    status = hook.script.pop(0) if hook.script else hook.default
                    if status == 200:
                        hook.posts.append(
                            {"path": self.path, "body": json.loads(body), "t": time.time()}
                        )
                # a failing server that echoes the URL, as some do: it must not leak from us
                reply = b"ok" if status == 200 else f"no such hook {self.path}".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, name: str = "slack") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/{name}/{TOKEN}"

    def bodies(self, name: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [p["body"] for p in self.posts if name is None or f"/{name}/" in p["path"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """aiosmtpd on 127.0.0.1 requiring AUTH with SMTP_USER/SMTP_PASSWORD."""

    def __init__(self) -> None:
        self.mails: list[tuple[Message, float]] = []
        self.logins: list[tuple[bytes, bytes]] = []
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._auth,
            auth_required=True,
            auth_require_tls=False,
        )
        self.controller.start()

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if isinstance(data, LoginPassword):
            self.logins.append((data.login, data.password))
        return AuthResult(success=ok, handled=False)  # False: aiosmtpd answers 535

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((message_from_bytes(envelope.content), time.time()))
        return "250 OK"

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture()
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


@pytest.fixture()
def mailbox() -> Iterator[Mailbox]:
    m = Mailbox()
    yield m
    m.close()


def wait_for(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def smtp_settings(mailbox: Mailbox) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=mailbox.port, security="none", user=SMTP_USER)


def consumer_on_bus(
    tmp_path: Path, channels: list[Any], **cfg: Any
) -> tuple[AlertsConsumer, EventBus, list[Event], list[str]]:
    """A consumer on a bare bus (no log file): recorded outcomes arrive on the bus."""
    bus = EventBus("run-test")
    seen: list[Event] = []
    bus.subscribe(seen.append, "collect")
    notes: list[str] = []
    cfg.setdefault("retry_backoff_s", 0.01)
    alerts = AlertsConsumer(AlertConfig(**cfg), channels, notify=notes.append)
    alerts.attach(bus, tmp_path)
    return alerts, bus, seen, notes


def emit_failing_run(bus: EventBus, terminal: bool = True) -> None:
    """What the pipeline emits for a run whose first five specimens fail."""
    bus.emit(
        EventType.EXTRACTION_STARTED,
        data={"total": 30, "config": {"engine": "openrouter", "model": "test/vision-model"}},
    )
    for i in range(1, 6):
        bus.emit(
            EventType.SPECIMEN_FAILED,
            specimen_id=f"{i:064x}",
            sequence=i,
            data={
                "image": f"sheet_{i:04d}.jpg",
                "success": False,
                "error": {"kind": "bad_reply", "message": "no JSON object in the reply"},
            },
            metrics={
                "total": 30,
                "total_processed": i,
                "success_count": 0,
                "failed_count": i,
                "success_rate": 0.0,
            },
        )
    bus.emit(
        EventType.VALIDATION_CHECKPOINT,
        data={
            "checkpoint": 5,
            "status": "failed",
            "success_rate": 0.0,
            "threshold": 0.5,
            "succeeded": 0,
            "failed": 5,
        },
    )
    if not terminal:
        return
    bus.emit(
        EventType.EXTRACTION_FAILED,
        data={
            "status": "failed",
            "reason": "early_validation_failed",
            "processed": 6,
            "message": "checkpoint 5 failed: success rate 0% is below 50% (0/5 succeeded)",
            "succeeded": 0,
            "failed": 6,
            "success_rate": 0.0,
            "duration_s": 1.5,
        },
    )


def body_of(mail: Message) -> str:
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def alert_events(events: Iterable[Event], etype: str = EventType.ALERT_SENT) -> list[Event]:
    return [e for e in events if e.event_type == etype]


# ---------------------------------------------------------------- payloads and channels
def test_each_webhook_format_gets_one_halted_message(tmp_path: Path, hook: Hook) -> None:
    channels = [WebhookChannel(hook.url(f), f, 5.0) for f in ("slack", "teams", "generic")]
    alerts, bus, seen, _ = consumer_on_bus(tmp_path, channels)
    emit_failing_run(bus)
    bus.emit(EventType.VALIDATION_WARNING, data={"at": 50, "success_rate": 0.1, "message": "x"})
    assert wait_for(lambda: len(hook.posts) >= 4)
    alerts.close()
    slack, teams, generic = (hook.bodies(f) for f in ("slack", "teams", "generic"))
    assert (
        len(slack) == len(teams) == 2
    )  # the halt (once, not again at extraction.failed) + warning

    s = slack[0]
    assert "halted at checkpoint 5" in s["text"] and "Success rate:" in s["text"]
    assert s["blocks"][0]["type"] == "header" and "checkpoint 5" in s["blocks"][0]["text"]["text"]
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in s["blocks"][2]["fields"]}
    assert fields["*Success rate*"] == "0%" and fields["*Processed*"] == "5 of 30"
    assert "sheet_0005.jpg: bad_reply" in s["blocks"][3]["text"]["text"]
    assert str(tmp_path.resolve()) in s["blocks"][-1]["elements"][0]["text"]

    t = teams[0]
    assert t["type"] == "message" and "checkpoint 5" in t["summary"]
    card = t["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"
    facts = {f["title"]: f["value"] for f in card["content"]["body"][2]["facts"]}
    assert facts["Success rate"] == "0%" and facts["Engine"] == "openrouter (test/vision-model)"

    g = generic[0]
    assert (g["source"], g["kind"], g["severity"], g["reason"]) == (
        "herbdesk",
        "halted",
        "error",
        "early_validation_failed",
    )
    assert g["run_id"] == "run-test" and g["host"] == socket.gethostname()
    assert g["event"]["type"] == EventType.VALIDATION_CHECKPOINT
    assert g["numbers"]["processed"] == 5 and g["numbers"]["success_rate"] == 0.0
    assert g["last_errors"][-1] == {
        "image": "sheet_0005.jpg",
        "kind": "bad_reply",
        "message": "no JSON object in the reply",
    }
    assert g["log"] == f"{tmp_path.resolve()}/events.jsonl"
    assert generic[1]["kind"] == "warning"

    sent = alert_events(seen)
    assert sorted(e.data["alert"] for e in sent) == ["halted"] * 3 + ["warning"] * 3
    assert all(TOKEN not in json.dumps(e.to_dict()) for e in seen)
    assert {e.data["channel"] for e in sent} == {
        f"webhook http://127.0.0.1:{hook.server.server_address[1]}/…"
    }


def test_teams_urls_are_detected_and_secrets_stay_out_of_config_errors() -> None:
    args = _build_parser().parse_args(
        ["run", "x", "--alert-webhook", "https://example.webhook.office.com/webhookb2/abc/def"]
    )
    alerts = build_alerts(args, {})
    assert alerts is not None
    assert alerts.channel_labels == ["webhook https://example.webhook.office.com/…"]
    assert alerts.config.events == {
        "checkpoint_failed",
        "halted",
        "warning",
        "completed",
        "stalled",
        "paused",
    }
    assert build_alerts(_build_parser().parse_args(["run", "x"]), {}) is None
    with pytest.raises(ValueError, match="SMTP password"):
        build_alerts(args, {"alerts": {"smtp": {"host": "h", "password": "pw"}}})
    with pytest.raises(ValueError, match="need an SMTP server"):
        build_alerts(_build_parser().parse_args(["run", "x", "--alert-email", "a@b.org"]), {})
    with pytest.raises(ValueError, match="unknown alert event"):
        build_alerts(
            _build_parser().parse_args(
                ["run", "x", "--alert-webhook", "http://h/x", "--alert-on", "halted,bogus"]
            ),
            {},
        )


def test_email_goes_through_smtp_with_auth(tmp_path: Path, mailbox: Mailbox) -> None:
    channel = EmailChannel("ops@example.org", smtp_settings(mailbox), SMTP_PASSWORD)
    alerts, bus, seen, notes = consumer_on_bus(tmp_path, [channel])
    emit_failing_run(bus)
    assert wait_for(lambda: len(mailbox.mails) == 1)
    alerts.close()
    mail, _ = mailbox.mails[0]
    assert mailbox.logins == [(SMTP_USER.encode(), SMTP_PASSWORD.encode())]
    assert mail["To"] == "ops@example.org" and mail["From"] == SMTP_USER
    assert mail["Subject"] == "herbdesk: run run-test halted at checkpoint 5 (success rate 0%)"
    body = body_of(mail)
    assert "success rate 0% (0/5 succeeded) is below the 50% threshold" in body
    assert f"Log: {tmp_path.resolve()}/events.jsonl (host {socket.gethostname()})" in body
    assert len(mailbox.mails) == 1  # the later extraction.failed is the same incident
    assert [e.data["channel"] for e in alert_events(seen)] == ["email ops@example.org"]
    assert not any(SMTP_PASSWORD in n for n in notes)


EVIL = "<!channel> <http://evil.example|click here> & **bold** [click](http://evil.example)"


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def test_server_text_cannot_inject_markup_or_mail_headers(
    tmp_path: Path, hook: Hook, mailbox: Mailbox
) -> None:
    """Server errors and halt reasons reach every channel as text: Slack gets &, <, > escaped in
    `text` and every block, Teams gets markdown escaped, mail gets a one-line subject."""
    channels = [
        WebhookChannel(hook.url("slack"), "slack", 5.0),
        WebhookChannel(hook.url("teams"), "teams", 5.0),
        EmailChannel("ops@example.org", smtp_settings(mailbox), SMTP_PASSWORD),
    ]
    alerts, bus, seen, _ = consumer_on_bus(tmp_path, channels)
    bus.emit(EventType.EXTRACTION_STARTED, data={"total": 3})
    bus.emit(
        EventType.SPECIMEN_FAILED,
        specimen_id="0" * 64,
        sequence=1,
        data={"image": "a.jpg", "success": False, "error": {"kind": "x", "message": EVIL}},
    )
    reason = f"{EVIL}\r\nBcc: victim@example.org\nX-Evil: 1"
    bus.emit(
        EventType.EXTRACTION_FAILED,
        data={"status": "failed", "reason": reason, "message": EVIL, "processed": 1},
    )
    assert wait_for(lambda: len(hook.posts) >= 2 and len(mailbox.mails) >= 1)
    alerts.close()
    assert not alert_events(seen, EventType.ALERT_FAILED)
    (slack,) = hook.bodies("slack")
    texts = _strings(slack)
    assert "&lt;!channel&gt; &lt;http://evil.example|click here&gt; &amp; " in slack["text"]
    for t in texts:
        assert "<" not in t and ">" not in t, t
        assert t.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0, t
    (teams,) = hook.bodies("teams")
    for t in [*_strings(teams["attachments"][0]["content"]["body"]), teams["text"]]:
        assert "[click](" not in t and "**bold**" not in t and "<!channel>" not in t, t
    assert any("\\[click\\](http://evil.example)" in t for t in _strings(teams))
    mail, _ = mailbox.mails[0]
    assert mail["Bcc"] is None and mail["X-Evil"] is None
    subject = re.sub(r"\r?\n[ \t]", " ", mail["Subject"])  # undo the header's folding
    assert "\n" not in subject and "\r" not in subject
    assert "Bcc: victim@example.org" in subject  # kept, on one line
    assert EVIL in body_of(mail)  # plain text: shown as it is


def test_wrong_smtp_password_is_recorded_not_retried(tmp_path: Path, mailbox: Mailbox) -> None:
    channel = EmailChannel("ops@example.org", smtp_settings(mailbox), "wrong-password-123")
    alerts, bus, seen, notes = consumer_on_bus(tmp_path, [channel])
    emit_failing_run(bus)
    alerts.close()
    (failed,) = alert_events(seen, EventType.ALERT_FAILED)
    assert failed.data["attempts"] == 1 and "535" in failed.data["error"]
    assert "wrong-password-123" not in json.dumps(failed.to_dict()) + "".join(notes)
    assert any("ALERT NOT DELIVERED" in n for n in notes)


# ---------------------------------------------------------------- delivery guarantees
def test_a_flaky_listener_gets_the_alert_once_after_retries(tmp_path: Path) -> None:
    hook = Hook(script=[500, 500])
    try:
        alerts, bus, seen, _ = consumer_on_bus(tmp_path, [WebhookChannel(hook.url(), "slack")])
        emit_failing_run(bus, terminal=False)
        # mid-run, the outcome is recorded on the bus as soon as it is known
        assert wait_for(lambda: len(alert_events(seen)) == 1)
        alerts.close()
        assert hook.requests == 3 and len(hook.posts) == 1
        (sent,) = alert_events(seen)
        assert sent.data["attempts"] == 3 and sent.data["alert"] == "halted"
        assert not alert_events(seen, EventType.ALERT_FAILED)
    finally:
        hook.close()


def test_an_event_seen_twice_alerts_once(tmp_path: Path, hook: Hook) -> None:
    alerts, bus, _, _ = consumer_on_bus(tmp_path, [WebhookChannel(hook.url(), "generic")])
    ev = bus.emit(EventType.VALIDATION_WARNING, data={"at": 50, "success_rate": 0.2})
    alerts(ev)  # delivered again (a replay, a second subscription): same seq, same channel
    alerts.close()
    assert len(hook.posts) == 1


def test_rate_limit_holds_a_flood_back_and_says_so(tmp_path: Path, hook: Hook) -> None:
    alerts, bus, _, _ = consumer_on_bus(
        tmp_path,
        [WebhookChannel(hook.url(), "generic")],
        rate_limit=3,
        events=frozenset({"warning", "completed"}),
    )
    bus.emit(EventType.EXTRACTION_STARTED, data={"total": 1000})
    for i in range(20):
        bus.emit(EventType.VALIDATION_WARNING, data={"at": 50 * (i + 1), "success_rate": 0.5})
    assert wait_for(lambda: len(hook.posts) == 3)
    time.sleep(0.2)
    assert len(hook.posts) == 3
    bus.emit(
        EventType.EXTRACTION_COMPLETED,
        data={"processed": 1000, "succeeded": 500, "failed": 500, "success_rate": 0.5},
    )
    alerts.close()
    kinds = [b["kind"] for b in hook.bodies()]
    assert kinds == ["warning"] * 3 + ["completed"]  # the last word is never rate-limited
    last = hook.bodies()[-1]
    assert last["suppressed"] == 17 and "17 alert(s): warning ×17" in last["text"]

    # without a final message the held-back count goes out as a summary at close
    hook.posts.clear()
    alerts, bus, _, _ = consumer_on_bus(
        tmp_path, [WebhookChannel(hook.url(), "slack")], rate_limit=2
    )
    for i in range(6):
        bus.emit(EventType.VALIDATION_WARNING, data={"at": i, "success_rate": 0.5})
    alerts.close()
    texts = [b["text"] for b in hook.bodies()]
    assert len(texts) == 3 and "4 more alerts suppressed" in texts[-1]


def test_stall_alert_fires_once_per_silence(tmp_path: Path, hook: Hook) -> None:
    alerts, bus, _, _ = consumer_on_bus(
        tmp_path, [WebhookChannel(hook.url(), "generic")], stall_minutes=0.005
    )  # 0.3 s
    bus.emit(EventType.EXTRACTION_STARTED, data={"total": 3})
    bus.emit(EventType.SPECIMEN_PROCESSING, specimen_id="a" * 64, data={"image": "x.jpg"})
    assert wait_for(lambda: len(hook.posts) == 1, timeout=3)
    time.sleep(0.5)  # still silent: no second alert for the same silence
    assert len(hook.posts) == 1
    body = hook.bodies()[0]
    assert body["kind"] == "stalled" and "last event: specimen.processing" in body["summary"]
    bus.emit(EventType.EXTRACTION_PAUSED)  # a paused run is quiet on purpose
    time.sleep(0.5)
    alerts.close()
    assert len(hook.posts) == 1


def test_a_quota_pause_is_announced_once_and_the_run_still_completes(
    tmp_path: Path, many_images: Callable[[int], Path], hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    from herbdesk.extraction import limits

    monkeypatch.setattr(limits, "RESET_MARGIN_S", 0.1)
    # two workers' requests in flight at once both meet the quota: one pause, one alert
    with FakeApi(script=["quota:1", "quota:1"], delay_s=0.2) as api:
        p = Pipeline(api_config(many_images(4), tmp_path / "runs", api.base_url, concurrency=2))
        cfg = AlertConfig(events=frozenset({"paused", "completed"}), retry_backoff_s=0.01)
        alerts = AlertsConsumer(cfg, [WebhookChannel(hook.url(), "generic")], notify=print)
        alerts.attach(p.bus, p.run_dir)
        outcome = p.run()
        alerts.close(timeout=10)
    assert outcome.status == "completed"
    kinds = [b["kind"] for b in hook.bodies()]
    assert kinds == ["paused", "completed"], kinds
    paused = hook.bodies()[0]
    assert "API quota used up" in paused["title"] and "goes on by itself" in paused["text"]


def test_a_dead_listener_never_slows_the_run(
    tmp_path: Path, many_images: Callable[[int], Path]
) -> None:
    """Every post fails slowly; the run still ends on time and the failures are on record."""
    dead = Hook(default=500, delay=0.4)
    notes: list[str] = []
    try:
        with FakeApi() as api:
            p = Pipeline(api_config(many_images(8), tmp_path / "runs", api.base_url))
            cfg = AlertConfig(
                events=frozenset({"checkpoint_passed", "completed"}),
                max_attempts=3,
                retry_backoff_s=0.1,
            )
            alerts = AlertsConsumer(cfg, [WebhookChannel(dead.url(), "slack")], notify=notes.append)
            alerts.attach(p.bus, p.run_dir)
            t0 = time.monotonic()
            outcome = p.run()
            run_s = time.monotonic() - t0
        t1 = time.monotonic()
        alerts.close(timeout=10)
        assert outcome.status == "completed"
        assert run_s < 1.2  # two alerts x 3 attempts x 0.4 s would take 2.4 s or more
        assert time.monotonic() - t1 < 10
    finally:
        dead.close()
    evs = events_of(outcome.run_dir)
    failed = alert_events(evs, EventType.ALERT_FAILED)
    assert sorted(e.data["alert"] for e in failed) == ["checkpoint_passed", "completed"]
    assert all(e.data["attempts"] == 3 and "HTTP 500" in e.data["error"] for e in failed)
    assert all(TOKEN not in e.data["error"] for e in failed)  # the echoed URL was scrubbed
    assert [e.seq for e in evs] == list(range(1, len(evs) + 1))  # appended without a gap
    assert sum(1 for n in notes if n.startswith("ALERT NOT DELIVERED")) == 2


def test_httpx_log_lines_do_not_carry_the_token(
    tmp_path: Path, hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    alerts, bus, _, _ = consumer_on_bus(tmp_path, [WebhookChannel(hook.url(), "slack")])
    emit_failing_run(bus)
    alerts.close()
    assert len(hook.posts) == 1
    assert "HTTP Request: POST" in caplog.text and TOKEN not in caplog.text


# ---------------------------------------------------------------- `herbdesk run`, end to end
def _herbdesk(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "120", **env}
    return subprocess.run(
        [sys.executable, "-m", "herbdesk", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


def _ts(event: Event) -> float:
    return datetime.fromisoformat(event.timestamp.replace("Z", "+00:00")).timestamp()


def _assert_no_secret_anywhere(run_dir: Path, output: str) -> None:
    for secret in (TOKEN, SMTP_PASSWORD, "xoxb-SECRET"):
        assert secret not in output
        for f in run_dir.rglob("*"):
            if f.is_file():
                assert secret.encode() not in f.read_bytes(), f"{secret} leaked into {f}"


def test_failing_run_sends_one_halted_alert_per_channel(
    tmp_path: Path, many_images: Callable[[int], Path], hook: Hook, mailbox: Mailbox
) -> None:
    with FakeApi(default="garbage") as api:
        r = _herbdesk(
            "run",
            str(many_images(30)),
            "--engine",
            "openrouter",
            "--model",
            "test/vision-model",
            "--base-url",
            api.base_url,
            "--out",
            str(tmp_path / "runs"),
            "--run-id",
            "bad",
            "--concurrency",
            "2",
            "--alert-webhook",
            hook.url(),
            "--alert-email",
            "ops@example.org",
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            str(mailbox.port),
            "--smtp-security",
            "none",
            "--smtp-user",
            SMTP_USER,
            env={"OPENROUTER_API_KEY": "sk-test-good", "HERBDESK_SMTP_PASSWORD": SMTP_PASSWORD},
        )
    assert r.returncode == 4, r.stderr
    run_dir = tmp_path / "runs" / "bad"
    assert len(hook.posts) == 1 and len(mailbox.mails) == 1
    text = hook.bodies()[0]["text"]
    assert "halted at checkpoint 5" in text and "success rate 0%" in text
    mail, mail_t = mailbox.mails[0]
    assert "halted at checkpoint 5" in mail["Subject"]
    assert "Success rate:" in body_of(mail)
    evs = events_of(run_dir)
    (checkpoint,) = [e for e in evs if e.event_type == EventType.VALIDATION_CHECKPOINT]
    assert hook.posts[0]["t"] - _ts(checkpoint) < 3 and mail_t - _ts(checkpoint) < 3
    sent = alert_events(evs)
    assert sorted(e.data["channel"].split()[0] for e in sent) == ["email", "webhook"]
    assert all(e.data["alert"] == "halted" for e in sent)
    assert "alert sent: halted → webhook http://127.0.0.1:" in r.stderr
    _assert_no_secret_anywhere(run_dir, r.stdout + r.stderr)


def test_good_run_sends_one_completion_message_from_the_config_file(
    tmp_path: Path, many_images: Callable[[int], Path], hook: Hook
) -> None:
    conf = tmp_path / "run.toml"
    conf.write_text(
        '[alerts]\nwebhooks = [{ url_env = "TEAM_HOOK", format = "generic" }]\n'
        'events = ["halted", "completed"]\n'
    )
    with FakeApi() as api:
        r = _herbdesk(
            "run",
            str(many_images(6)),
            "--engine",
            "openrouter",
            "--model",
            "test/vision-model",
            "--base-url",
            api.base_url,
            "--out",
            str(tmp_path / "runs"),
            "--run-id",
            "good",
            "--config",
            str(conf),
            env={"OPENROUTER_API_KEY": "sk-test-good", "TEAM_HOOK": hook.url()},
        )
    assert r.returncode == 0, r.stderr
    (body,) = hook.bodies()
    assert body["kind"] == "completed" and body["numbers"]["succeeded"] == 6
    assert "completed: 6/6 succeeded (100%)" in body["title"]
    assert [e.data["alert"] for e in alert_events(events_of(tmp_path / "runs" / "good"))] == [
        "completed"
    ]
    _assert_no_secret_anywhere(tmp_path / "runs" / "good", r.stdout + r.stderr)


def test_alert_usage_errors_exit_2_before_a_run_dir_exists(
    tmp_path: Path, many_images: Callable[[int], Path]
) -> None:
    r = _herbdesk(
        "run",
        str(many_images(1)),
        "--out",
        str(tmp_path / "runs"),
        "--alert-email",
        "ops@example.org",
        env={},
    )
    assert r.returncode == 2 and "SMTP server" in r.stderr
    r = _herbdesk(
        "run",
        str(many_images(1)),
        "--out",
        str(tmp_path / "runs"),
        "--alert-webhook",
        "env:NOT_SET_ANYWHERE",
        env={},
    )
    assert r.returncode == 2 and "NOT_SET_ANYWHERE is not set" in r.stderr
    assert not (tmp_path / "runs").exists()


def test_a_run_finishing_below_threshold_alerts_as_an_error(tmp_path: Path, hook: Hook) -> None:
    alerts, bus, _, _ = consumer_on_bus(tmp_path, [WebhookChannel(hook.url(), "generic")])
    bus.emit(
        EventType.EXTRACTION_COMPLETED,
        data={"status": "completed", "processed": 10, "succeeded": 10, "failed": 0,
              "success_rate": 1.0, "usable_rate": 0.1, "verdict": "below_threshold",
              "verdict_message": "finished below threshold: 10% of records usable < 50%"},
    )  # fmt: skip
    alerts.close()
    (post,) = hook.posts
    text = json.dumps(post)
    assert "BELOW THRESHOLD" in text and "10% usable" in text and '"error"' in text


def test_a_budget_pause_alerts_amber_as_a_pause_with_the_final_spend(
    tmp_path: Path, many_images: Any
) -> None:
    """Subscribed to `halted` only, a headless run's end at its budget was a red "halted"
    alert. It is one amber `paused` alert: the final spend (the specimens in flight at the
    pause finished) and how to go on."""
    hook = Hook()
    try:
        with FakeApi(costs=(0.004,), delay_s=0.05) as api:
            cfg = api_config(
                many_images(8), tmp_path / "runs", api.base_url, concurrency=4, budget_usd=0.01
            )
            p = Pipeline(cfg)
            alerts = AlertsConsumer(
                AlertConfig(events=frozenset({"halted"}), retry_backoff_s=0.01),
                [WebhookChannel(hook.url(), "generic")],
                notify=lambda _: None,
            )
            alerts.attach(p.bus, p.run_dir)
            outcome = p.run()
            alerts.close(timeout=10)
        assert outcome.reason == "budget"
        (body,) = hook.bodies()
    finally:
        hook.close()
    assert (body["kind"], body["severity"], body["reason"]) == ("paused", "warning", "budget")
    assert "paused at its budget" in body["title"] and "halted" not in body["title"]
    assert "2 processed, 2 succeeded, 0 failed; spent $0.0080 of $0.0100" in body["text"]
    assert f"herbdesk run --resume {p.run_dir} --budget HIGHER" in body["text"]
