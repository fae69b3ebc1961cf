"""A real OpenAI-compatible HTTP server on 127.0.0.1 with scripted behaviour, for tests and
benchmarks. Each chat request consumes the next action of the script (then `default`).

Actions (faults are injected on the wire, so the engine's real HTTP code meets them):
  good (a real-looking record that differs per sheet), the junk replies that parse
  (basis_only, placeholders, prompt_example, term_names, boilerplate, identical), fenced
  (code-fenced JSON), garbage (prose), wrong_terms (JSON without Darwin Core
  terms), no_terms (`{}`), partial_terms, empty_choices, malformed (a 200 whose body is not
  JSON), oversize:N (a valid reply padded to N bytes), trickle:S (the good reply dribbled out
  over S seconds), sleep:S (answer after S seconds: a read timeout for short client timeouts),
  reset (headers and half the body, then a TCP reset), 429 (Retry-After: 1), 429:S
  (Retry-After: S), 429-bare (no Retry-After), any other 4xx/5xx code (500, 502, 503, 401,
  402, 404 = model gone), echo_key (401 whose message repeats the Authorization header, as
  some proxies do), echo_at:CODE:N (status CODE whose error message is N filler characters,
  then the Authorization header: an echo near a cut), raw_echo_at:N (a 200 whose non-JSON
  body is N filler characters, then the header), quote_key (a good reply whose field values
  quote the Authorization header, as a confused model might), lone_surrogate (a 502 whose
  message holds the JSON escape of a lone UTF-16 surrogate, `\\ud800`), hostile_error:CODE
  (status CODE whose message is HOSTILE_TEXT: terminal escapes, C1 controls, bidi overrides),
  hostile_fields (a good reply whose values carry HOSTILE_TEXT, as a model quoting a label might),
  usage:JSON (a good
  reply whose `usage` object is the raw JSON text given, e.g. `{"total_tokens": 1e30}`),
  usage_garbage:JSON (the same with prose for content: a paid-for failed specimen),
  dribble_headers:S (the status line and headers one byte every S seconds, then the body),
  429_text:MESSAGE (a 429 with that message and no header), ratelimit:REMAINING:RESET_S (a
  429 with only OpenRouter's X-RateLimit-* headers), quota:S (OpenRouter's used-up free-model
  daily cap, reset in S seconds), error200:CODE (HTTP 200 whose body is
  `{"error": {"code": CODE, ...}}`, as OpenRouter sends for some failures), gzip (a good
  reply, gzip-encoded), gzip_bomb:N (a reply then N spaces, gzip-encoded: ~1,000:1).
`revoke_after=N` refuses every request after N chat requests (a key revoked mid-run);
`echo_auth=True` makes every 401 repeat the Authorization header it got;
`fault_rate`/`fault_actions`/`seed` replace that share of `good` answers by random faults.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import random
import socket
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Good replies differ per sheet, as a real model's do: the record is chosen from these by a
# hash of the request's image (one canned record for every sheet is what the
# identical-records check rightly stops).
_TAXA = (
    ("Carex aurea Nutt.", "wet meadow"), ("Agropyron cristatum (L.) Gaertn.", "dry hillside"),
    ("Coreopsis tinctoria Nutt.", "roadside ditch"), ("Helianthus annuus L.", "waste ground"),
    ("Poa pratensis L.", "lawn edge"), ("Symphyotrichum laeve (L.) A. Love & D. Love", "prairie"),
    ("Artemisia frigida Willd.", "eroded slope"), ("Bouteloua gracilis (Kunth) Lag. ex Griffiths",
    "shortgrass prairie"), ("Solidago canadensis L.", "aspen parkland"),
    ("Rosa arkansana Porter", "sandy bank"), ("Populus tremuloides Michx.", "bluff"),
    ("Elymus trachycaulus (Link) Gould", "coulee"), ("Malva rotundifolia L.", "garden plot"),
    ("Achillea millefolium L.", "pasture"), ("Geum triflorum Pursh", "grassland"),
    ("Anemone patens L.", "south-facing slope"), ("Typha latifolia L.", "slough margin"),
    ("Salix bebbiana Sarg.", "creek bank"), ("Astragalus bisulcatus (Hook.) A. Gray", "badlands"),
    ("Opuntia polyacantha Haw.", "sand hills"),
)  # fmt: skip
# Text that would drive a terminal printed raw: a window title (OSC 0), a disguised link
# (OSC 8), clear-screen and cursor home (CSI), a status query whose answer the terminal types
# back (DECRQSS, CSI 6n), C1 CSI/OSC, bidi overrides and isolates, a CR that rewrites the line.
HOSTILE_TEXT = (
    "\x1b]0;pwned\x07title \x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\ "
    "\x1b[2J\x1b[Hcleared \x1bP$qm\x1b\\ \x1b[6n \x9b31mred\x9bm \x9d0;t\x9c "
    "\u202eevil\u202c \u2066iso\u2069 \rover\x08\x7f \x1bc end"
)
_PEOPLE = ("M. Molloy", "D. E. Wade", "A. J. Breitung", "G. F. Ledingham", "J. H. Hudson",
           "W. P. Fraser", "R. C. Russell", "B. Boivin", "K. M. Pearson", "S. Bowes")  # fmt: skip
_PLACES = (
    ("Swift Current Research Station", "Saskatchewan", "Canada"),
    ("Regina Waterfowl Park", "Saskatchewan", "Canada"),
    ("Cypress Hills, 12 km S of Maple Creek", "Saskatchewan", "Canada"),
    ("Lethbridge, Oldman River valley", "Alberta", "Canada"),
    ("Brandon, Assiniboine River", "Manitoba", "Canada"),
    ("Medicine Hat, Police Point Park", "Alberta", "Canada"),
    ("Grasslands National Park, Frenchman River", "Saskatchewan", "Canada"),
    ("Fargo, Red River bank", "North Dakota", "United States"),
)  # fmt: skip


@functools.lru_cache(maxsize=2)
def gzip_bomb(n: int) -> bytes:
    """One gzip stream of a good reply then `n` spaces (still the same JSON): a small
    download, ~1,000:1, that expands past any cap. Built 1 MiB at a time and cached: call it
    before measuring memory, and the server only sends it."""
    raw = json.dumps(
        {
            "id": "x",
            "model": "test/vision-model",
            "choices": [{"message": {"content": json.dumps(record_for("bomb"))}}],
        }
    ).encode()
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [z.compress(raw)]
    out += [z.compress(b" " * min(1 << 20, n - i)) for i in range(0, n, 1 << 20)]
    return b"".join(out) + z.flush()


def good_fields(body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A real-looking record for the request's sheet: the same sheet gets the same record."""
    return record_for(json.dumps((body or {}).get("messages"), sort_keys=True))


def record_for(key: str) -> dict[str, Any]:
    """The record a good model would give for the sheet `key` stands for (deterministic)."""
    rng = random.Random(hashlib.sha256(key.encode()).digest())
    name, habitat = rng.choice(_TAXA)
    locality, province, country = rng.choice(_PLACES)
    year = rng.randint(1921, 1995)
    return {
        "catalogNumber": {"value": f"{rng.randint(1, 99999):06d}", "confidence": 0.9},
        "scientificName": {"value": name, "confidence": round(rng.uniform(0.75, 0.97), 2)},
        "eventDate": {
            "value": f"{year}-{rng.randint(5, 9):02d}-{rng.randint(1, 28):02d}",
            "confidence": round(rng.uniform(0.7, 0.95), 2),
        },
        "recordedBy": {"value": rng.choice(_PEOPLE), "confidence": round(rng.uniform(0.6, 0.9), 2)},
        "recordNumber": {"value": str(rng.randint(10, 4999)), "confidence": 0.8},
        "locality": {"value": locality, "confidence": 0.85},
        "habitat": {"value": habitat, "confidence": 0.8},
        "stateProvince": {"value": province, "confidence": 0.9},
        "country": {"value": country, "confidence": 0.95},
    }


# Replies that parse but carry junk (the quality gate's cases).
JUNK_REPLIES: dict[str, Any] = {
    "basis_only": {"basisOfRecord": {"value": "PreservedSpecimen", "confidence": 0.99}},
    "placeholders": {
        "scientificName": {"value": "-", "confidence": 0.9},
        "eventDate": {"value": "?", "confidence": 0.9},
        "recordedBy": {"value": "not visible", "confidence": 0.9},
        "locality": {"value": "<string>", "confidence": 0.9},
    },
    "prompt_example": {
        "scientificName": {"value": "Malva neglecta Wallr.", "confidence": 0.9},
        "eventDate": {"value": "1984-09-08", "confidence": 0.85},
    },
    "term_names": {
        "scientificName": {"value": "scientificName", "confidence": 0.9},
        "eventDate": {"value": "eventDate", "confidence": 0.9},
        "locality": {"value": "locality", "confidence": 0.9},
    },
    "boilerplate": None,  # varied label text in the name, impossible dates: see junk_fields
}
_BOILER = ("Identified by", "Checked by", "Duplicate confirmed", "Calibrite colorchecker",
           "Plants of Saskatchewan", "Host")  # fmt: skip


def junk_fields(action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    if action == "identical":  # a stuck model: one plausible record for every sheet
        return {
            "scientificName": {"value": "Carex aurea Nutt.", "confidence": 0.93},
            "eventDate": {"value": "1961-06-08", "confidence": 0.9},
            "recordedBy": {"value": "D. E. Wade", "confidence": 0.9},
            "locality": {"value": "Regina Waterfowl Park", "confidence": 0.9},
        }
    if action == "boilerplate":
        rng = random.Random(json.dumps((body or {}).get("messages"), sort_keys=True))
        return {
            "scientificName": {"value": rng.choice(_BOILER), "confidence": 0.9},
            "eventDate": {"value": rng.choice(("2809", "0195", "1222", "3011")), "confidence": 0.8},
            "recordedBy": {"value": rng.choice(("Collector", "det.", "Coll.")), "confidence": 0.7},
        }
    return dict(JUNK_REPLIES[action])


JUNK_ACTIONS = frozenset({*JUNK_REPLIES, "identical"})


@dataclass
class FakeApiState:
    script: deque[str] = field(default_factory=deque)
    default: str = "good"
    models: list[str] = field(default_factory=lambda: ["test/vision-model"])
    valid_key: str | None = "sk-test-good"
    delay_s: float = 0.0
    reply_text: str | None = None  # overrides the good reply's content
    # what each chat request's reply charges (`usage.cost`), taken in turn and cycled: a
    # constant price, or one that varies from sheet to sheet
    costs: tuple[float, ...] = (0.0012,)
    chat_requests: int = 0
    auth_headers: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    max_in_flight: int = 0
    revoke_after: int | None = None  # chat requests served before the key stops working
    refused: int = 0  # chat requests answered 401 because the key was revoked
    fault_rate: float = 0.0
    fault_actions: tuple[str, ...] = ("500", "502", "503", "429:0", "reset", "malformed")
    seed: int = 0
    echo_auth: bool = False  # 401 messages repeat the Authorization header (a leaky proxy)
    served: list[str] = field(default_factory=list)  # the action each chat request got
    dribbled: list[tuple[int, int]] = field(default_factory=list)  # dribble_headers: sent, of
    arrivals: list[float] = field(default_factory=list)  # monotonic time of each chat request
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle's algorithm the body then waits for
    # the client's delayed ACK (~40 ms on Linux), which added that much to every request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _authorized(self) -> bool:
        st = self.server.state
        auth = self.headers.get("Authorization", "")
        with st.lock:
            st.auth_headers.append(auth)
            st.paths.append(self.path)
        return st.valid_key is None or auth == f"Bearer {st.valid_key}"

    def _refuse(self, message: str) -> None:
        if self.server.state.echo_auth:
            message += f" (got {self.headers.get('Authorization', '')})"
        self._send(401, {"error": {"code": 401, "message": message}})

    def do_GET(self) -> None:
        st = self.server.state
        if not self._authorized():
            self._refuse("No auth credentials found")
        elif self.path.endswith("/key"):
            self._send(
                200,
                {
                    "data": {
                        "label": "test",
                        "limit": None,
                        "limit_remaining": 10.0,
                        "is_free_tier": False,
                    }
                },
            )
        elif self.path.endswith("/models"):
            self._send(200, {"data": [{"id": m} for m in st.models]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        st = self.server.state
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.path.endswith("/chat/completions"):
            self._send(404, {"error": {"message": "not found"}})
            return
        if not self._authorized():
            self._refuse("User not found.")
            return
        with st.lock:
            revoked = st.revoke_after is not None and st.chat_requests >= st.revoke_after
            if revoked:
                st.refused += 1
        if revoked:
            self._refuse("Key revoked")
            return
        with st.lock:
            cost = st.costs[st.chat_requests % len(st.costs)]
            st.chat_requests += 1
            st.arrivals.append(time.monotonic())
            action = st.script.popleft() if st.script else st.default
            if action == "good" and st.fault_rate and st.rng.random() < st.fault_rate:
                action = st.rng.choice(st.fault_actions)
            st.served.append(action)
            st.in_flight += 1
            st.max_in_flight = max(st.max_in_flight, st.in_flight)
        try:
            if st.delay_s:
                time.sleep(st.delay_s)
            self._act(action, body, cost)
        finally:
            with st.lock:
                st.in_flight -= 1

    def _act(self, action: str, body: dict[str, Any], cost: float = 0.0012) -> None:
        st = self.server.state
        if body.get("model") not in st.models:
            self._send(
                404, {"error": {"code": 404, "message": f"model {body.get('model')} not found"}}
            )
            return
        usage = {
            "prompt_tokens": 1200,
            "completion_tokens": 150,
            "total_tokens": 1350,
            "cost": cost,
        }
        if action == "good" or action in JUNK_ACTIONS:
            fields = good_fields(body) if action == "good" else junk_fields(action, body)
            content = st.reply_text or json.dumps(fields)
            self._send(
                200,
                {
                    "id": "x",
                    "model": body.get("model"),
                    "usage": usage,
                    "choices": [{"message": {"role": "assistant", "content": content}}],
                },
            )
        elif action == "fenced":
            content = "Here you go:\n```json\n" + json.dumps(good_fields(body)) + "\n```"
            self._send(
                200,
                {
                    "model": body.get("model"),
                    "usage": usage,
                    "choices": [{"message": {"content": content}}],
                },
            )
        elif action == "garbage":
            self._send(
                200,
                {
                    "model": body.get("model"),
                    "usage": usage,
                    "choices": [{"message": {"content": "I cannot read this label."}}],
                },
            )
        elif action == "429":
            self._send(
                429,
                {"error": {"code": 429, "message": "Rate limit exceeded"}},
                {"Retry-After": "1"},
            )
        elif action == "500":
            self._send(500, {"error": {"code": 500, "message": "Internal Server Error"}})
        elif action == "402":
            self._send(402, {"error": {"code": 402, "message": "Insufficient credits"}})
        elif action == "401":
            self._send(401, {"error": {"code": 401, "message": "Key revoked"}})
        elif action.startswith("sleep:"):
            time.sleep(float(action.split(":", 1)[1]))
            self._act("good", body, cost)
        else:
            self._fault(action, body, usage)

    def _good_body(self, body: dict[str, Any], content: str, usage: dict[str, Any]) -> bytes:
        return json.dumps(
            {
                "id": "x",
                "model": body.get("model"),
                "usage": usage,
                "choices": [{"message": {"role": "assistant", "content": content}}],
            }
        ).encode()

    def _fault(self, action: str, body: dict[str, Any], usage: dict[str, Any]) -> None:
        name, _, arg = action.partition(":")
        reply = {"model": body.get("model"), "usage": usage}
        if name == "wrong_terms":
            content = json.dumps({"species_guess": "a mallow", "when": "1984", "who": "Malley"})
            self._send(200, {**reply, "choices": [{"message": {"content": content}}]})
        elif name == "no_terms":
            self._send(200, {**reply, "choices": [{"message": {"content": "{}"}}]})
        elif name == "partial_terms":
            content = json.dumps({"scientificName": good_fields(body)["scientificName"], "x": 1})
            self._send(200, {**reply, "choices": [{"message": {"content": content}}]})
        elif name == "empty_choices":
            self._send(200, {**reply, "choices": []})
        elif name == "malformed":
            self._send(200, b'{"id": "x", "choices": [{"message": {"content": "{\\"scient')
        elif name == "oversize":
            pad = " " * max(0, int(arg) - 600)
            self._send(200, self._good_body(body, json.dumps(good_fields(body)) + pad, usage))
        elif name == "trickle":
            self._trickle(self._good_body(body, json.dumps(good_fields(body)), usage), float(arg))
        elif name == "error200":  # a 200 carrying an error object with code `arg`
            code: Any = int(arg) if arg.isdigit() else arg
            msg = f"provider said {arg}"
            self._send(200, {"error": {"code": code, "message": msg}}, {"Retry-After": "0"})
        elif name == "gzip_bomb":  # a good reply padded to `arg` bytes, sent gzip-encoded
            self._send(200, gzip_bomb(int(arg)), {"Content-Encoding": "gzip"})
        elif name == "gzip":  # a good reply, gzip-encoded (as most real APIs send it)
            raw = self._good_body(body, json.dumps(good_fields(body)), usage)
            self._send(200, gzip.compress(raw), {"Content-Encoding": "gzip"})
        elif name == "dribble_headers":
            self._dribble_headers(self._good_body(body, json.dumps(good_fields(body)), usage), arg)
        elif name == "reset":
            self._reset_mid_body(self._good_body(body, json.dumps(good_fields(body)), usage))
        elif name == "429-bare":
            self._send(429, {"error": {"code": 429, "message": "Rate limit exceeded"}})
        elif name == "429":
            limited = {"error": {"code": 429, "message": "Rate limit exceeded"}}
            self._send(429, limited, {"Retry-After": arg})
        elif name == "429_text":  # a 429 with `arg` for its message and no other hint
            self._send(429, {"error": {"code": 429, "message": arg}})
        elif name == "ratelimit":  # ratelimit:REMAINING:RESET_S, X-RateLimit-* headers only
            remaining, _, reset_s = arg.partition(":")
            headers = {
                "X-RateLimit-Limit": "200",
                "X-RateLimit-Remaining": remaining,
                "X-RateLimit-Reset": str(int((time.time() + float(reset_s)) * 1000)),
            }
            self._send(429, {"error": {"code": 429, "message": "Rate limit exceeded"}}, headers)
        elif name == "quota":  # OpenRouter's answer once a free model's daily cap is used up
            msg = (
                "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free "
                "model requests per day"
            )
            reset_ms = int((time.time() + float(arg or "0")) * 1000)
            headers = {
                "X-RateLimit-Limit": "50",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset_ms),
            }
            self._send(429, {"error": {"code": 429, "message": msg}}, headers)
        elif name == "echo_key":
            auth = self.headers.get("Authorization", "")
            self._send(401, {"error": {"code": 401, "message": f"Invalid credentials: {auth}"}})
        elif name == "echo_at":
            code, _, n = arg.partition(":")
            msg = "x" * int(n) + self.headers.get("Authorization", "")
            self._send(int(code), {"error": {"code": int(code), "message": msg}})
        elif name == "raw_echo_at":
            self._send(200, ("x" * int(arg) + self.headers.get("Authorization", "")).encode())
        elif name == "lone_surrogate":
            self._send(502, {"error": {"code": 502, "message": "upstream said \ud800 then left"}})
        elif name == "hostile_error":
            self._send(int(arg), {"error": {"code": int(arg), "message": HOSTILE_TEXT}})
        elif name == "hostile_fields":
            fields = {
                **good_fields(body),
                "scientificName": {"value": HOSTILE_TEXT, "confidence": 0.9},
                "locality": {"value": HOSTILE_TEXT, "confidence": 0.9},
            }
            self._send(200, self._good_body(body, json.dumps(fields), usage))
        elif name in ("usage", "usage_garbage"):  # `usage` is the raw JSON text `arg`
            text = "I cannot read this label." if name == "usage_garbage" else None
            content = json.dumps(text or json.dumps(good_fields(body)))
            model = json.dumps(body.get("model"))
            raw = (
                f'{{"id": "x", "model": {model}, "usage": {arg}, '
                f'"choices": [{{"message": {{"role": "assistant", "content": {content}}}}}]}}'
            )
            self._send(200, raw.encode())
        elif name == "quote_key":
            auth = self.headers.get("Authorization", "")
            fields = {
                **good_fields(body),
                "locality": {"value": f"near {auth} hill", "confidence": 1},
            }
            fields["recordedBy"] = {"value": auth[7:40], "confidence": 0.5}
            self._send(200, self._good_body(body, json.dumps(fields) + " " + auth, usage))
        elif name == "404":
            msg = f"model {body.get('model')} not found"
            self._send(404, {"error": {"code": 404, "message": msg}})
        elif name.isdigit() and 400 <= int(name) <= 599:
            self._send(int(name), {"error": {"code": int(name), "message": f"HTTP {name}"}})
        else:
            raise ValueError(f"unknown action {action}")

    def _trickle(self, raw: bytes, seconds: float, pieces: int = 10) -> None:
        """A slow but live server: the body arrives in pieces spread over `seconds`."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        step = max(1, len(raw) // pieces)
        for i in range(0, len(raw), step):
            time.sleep(seconds / pieces)
            self.wfile.write(raw[i : i + step])
            self.wfile.flush()

    def _dribble_headers(self, raw: bytes, interval: str) -> None:
        """Status line and headers one byte per `interval` seconds on the raw socket (each
        byte well within any read timeout), then the body at once. Records how many header
        bytes went out before the client hung up, and how many there were."""
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"X-Padding: {'p' * 40}\r\nContent-Length: {len(raw)}\r\n\r\n"
        ).encode()
        st = self.server.state
        sent = 0
        try:
            for i in range(len(head)):
                time.sleep(float(interval))
                self.connection.sendall(head[i : i + 1])
                sent += 1
            self.connection.sendall(raw)
        except OSError:
            self.close_connection = True
        finally:
            with st.lock:
                st.dribbled.append((sent, len(head)))

    def _reset_mid_body(self, raw: bytes) -> None:
        """Announce the whole body, send half of it, then abort the connection (RST)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw[: len(raw) // 2])
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: sixteen workers connecting at once had some
    # SYNs dropped and retried a second later (TCP's initial timeout), so a concurrency-16 run
    # sometimes started six workers a second late and needed one more round of requests. A real
    # API accepts them; so does this one now.
    request_queue_size = 128
    state: FakeApiState

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-reply (cancelled runs, timeouts) are expected here


class FakeApi:
    """Start with `with FakeApi() as api:`; `api.base_url` ends in /api/v1."""

    def __init__(self, script: Iterable[str] = (), default: str = "good", **kw: Any) -> None:
        self.state = FakeApiState(script=deque(script), default=default, **kw)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        # a short poll interval: shutdown() waits up to one interval, and every test stops one
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/v1"

    def __enter__(self) -> FakeApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
