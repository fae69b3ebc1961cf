"""OpenAI-compatible chat-completions engine: OpenRouter by default, or any local server
(Ollama, LM Studio, vLLM) through `base_url`."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlparse

import httpx

from herbdesk import __version__
from herbdesk.common.redaction import Redactor, map_strings
from herbdesk.extraction.engines.base import (
    Check,
    EngineError,
    EngineSettings,
    ErrorKind,
    Extraction,
    FieldValue,
    SpecimenInput,
    clean_usage,
    plausible_cost,
)
from herbdesk.extraction.engines.bounded import ACCEPT_ENCODING, DecodeError, TooLarge, read_capped
from herbdesk.extraction.engines.deadline import deadline, deadline_transport
from herbdesk.extraction.images import jpeg_bytes, load_image
from herbdesk.extraction.reply import parse_reply, well_formed

DEFAULT_MODEL = "qwen/qwen2.5-vl-72b-instruct:free"
# A Darwin Core reply is a few KB. A body past this is not one, and reading it whole would let
# a broken server or proxy exhaust memory (each worker thread holds its own reply).
MAX_REPLY_BYTES = 4 << 20
_NO_SECRET = Redactor(None)
PREFLIGHT_TIMEOUT_S = 15.0  # each preflight GET, start to end


def _is_openrouter(base_url: str) -> bool:
    return (urlparse(base_url).hostname or "").endswith("openrouter.ai")


def retry_after_seconds(resp: httpx.Response) -> float | None:
    """Seconds to wait from Retry-After (seconds or HTTP date) or X-RateLimit-Reset (ms epoch)."""
    ra = resp.headers.get("retry-after")
    if ra:
        try:
            return max(0.0, float(ra))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(ra).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    return _ratelimit_reset_s(resp)


def _ratelimit_reset_s(resp: httpx.Response) -> float | None:
    """Seconds until X-RateLimit-Reset (ms or s since the epoch, or seconds from now)."""
    reset = resp.headers.get("x-ratelimit-reset")
    if reset:
        try:
            val = float(reset)
            if val > 1e12:  # ms since epoch (OpenRouter)
                val /= 1000.0
            if val > 1e9:
                return max(0.0, val - time.time())
            return max(0.0, val)
        except ValueError:
            pass
    return None


# OpenRouter's words once a free model's daily cap is used up ("Rate limit exceeded:
# free-models-per-day. ...").
_QUOTA_WORDS = ("free-models-per-day",)
# An X-RateLimit window that resets sooner is a burst limit: retried after the reset, with no
# run-wide pause.
QUOTA_MIN_RESET_S = 15 * 60


def says_quota(resp: httpx.Response, message: str) -> bool:
    """Whether the provider says a quota is used up (not merely "slow down"): its free-model
    cap words, or X-RateLimit-Remaining: 0 with a reset at least QUOTA_MIN_RESET_S away. A
    long Retry-After alone, or "daily" in some text, is not enough: any server may send those."""
    if any(w in message.lower() for w in _QUOTA_WORDS):
        return True
    if resp.headers.get("x-ratelimit-remaining", "").strip() != "0":
        return False
    reset = _ratelimit_reset_s(resp)
    return reset is not None and reset >= QUOTA_MIN_RESET_S


def _error_message(resp: httpx.Response, redactor: Redactor = _NO_SECRET) -> str:
    """The server's error text, redacted before it is cut (an echoed key may sit at the cut)."""
    try:
        body = resp.json()
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return redactor.cut(f"HTTP {resp.status_code}: {err['message']}", 500)
    except ValueError:
        pass
    return f"HTTP {resp.status_code}: {redactor.cut(resp.text, 300)}"


def classify_status(
    resp: httpx.Response, context: str, redactor: Redactor = _NO_SECRET
) -> EngineError:
    """Map an HTTP error status to the pipeline's error kinds."""
    msg = f"{context}: {_error_message(resp, redactor)}"
    return _with_quota(resp, classify_code(resp.status_code, msg, retry_after_seconds(resp)))


def _with_quota(resp: httpx.Response, err: EngineError) -> EngineError:
    err.quota = err.kind == ErrorKind.RATE_LIMITED and says_quota(resp, err.message)
    return err


def classify_code(code: int, msg: str, retry_after: float | None = None) -> EngineError:
    """The error kind an HTTP error status `code` means (an error object's code too)."""
    if code in (401, 403):
        return EngineError(ErrorKind.AUTH, msg)
    if code == 402:
        return EngineError(ErrorKind.PAYMENT, msg + " (account balance exhausted)")
    if code == 404:
        return EngineError(ErrorKind.MODEL_NOT_FOUND, msg)
    if code == 429:
        return EngineError(ErrorKind.RATE_LIMITED, msg, retry_after=retry_after)
    if code >= 500:
        return EngineError(ErrorKind.SERVER, msg, retry_after=retry_after)
    if code == 408:
        return EngineError(ErrorKind.TIMEOUT, msg)
    return EngineError(ErrorKind.BAD_REPLY, msg)


def _error_code(err: dict[str, Any]) -> int | None:
    """An error object's HTTP-like code (`402` or `"402"`), if it has a plausible one."""
    code = err.get("code")
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return code
    return None


def error_in_reply(resp: httpx.Response, err: dict[str, Any], redactor: Redactor) -> EngineError:
    """A 200 whose body is an error object (OpenRouter does this, e.g. for a used-up
    balance): classified by the object's code as that HTTP status would be; without a
    code, a server error (retried)."""
    code = _error_code(err)
    text = redactor.cut(f"provider error: {err.get('message', '')}", 500)
    if code is None:
        return EngineError(ErrorKind.SERVER, text)
    msg = redactor.cut(f"chat/completions: HTTP 200, error {code}: {err.get('message', '')}", 500)
    return _with_quota(resp, classify_code(code, msg, retry_after_seconds(resp)))


def _until(chunks: Iterator[bytes], until: float, limit_s: float) -> Iterator[bytes]:
    """The body's chunks while the deadline holds. The sockets keep it already; this also
    covers a connection httpx opened without them (a proxy from the environment)."""
    for chunk in chunks:
        if time.monotonic() > until:
            raise EngineError(ErrorKind.TIMEOUT, f"reply not complete after {limit_s:g} s")
        yield chunk


class OpenRouterEngine:
    """Sends each sheet (downscaled JPEG, base64) with the prompt; parses the JSON reply."""

    name = "openrouter"

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.model = settings.model or DEFAULT_MODEL
        self.base_url = settings.base_url.rstrip("/")
        headers = {
            "User-Agent": f"herbdesk/{__version__}",
            "X-Title": "herbdesk",
            "Accept-Encoding": ACCEPT_ENCODING,  # only what read_capped inflates within a cap
        }
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        t = settings.timeout_s
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(t, connect=min(10.0, t)),
            limits=limits,
            transport=deadline_transport(limits),  # `timeout_s` bounds the whole exchange
        )
        self._lock = threading.Lock()
        # every text leaving the engine passes through it (some servers echo credentials)
        self._redactor = Redactor(settings.api_key)

    # -- preflight ---------------------------------------------------------------------
    def preflight(self) -> list[Check]:
        r = self._redactor
        return [Check(c.name, c.ok, r.redact(c.detail)) for c in self._preflight()]

    def _preflight(self) -> list[Check]:
        checks: list[Check] = []
        if not self.settings.prompt_text.strip():
            checks.append(Check("prompt", False, "the prompt is empty"))
            return checks
        if _is_openrouter(self.base_url) and not self.settings.api_key:
            checks.append(
                Check(
                    "api key",
                    False,
                    "no API key: set OPENROUTER_API_KEY or keep one in the OS keyring",
                )
            )
            return checks
        try:
            if _is_openrouter(self.base_url) or self.settings.api_key:
                with deadline(PREFLIGHT_TIMEOUT_S):
                    resp = self._client.get("/key", timeout=PREFLIGHT_TIMEOUT_S)
                if resp.status_code in (401, 403):
                    msg = _error_message(resp, self._redactor)
                    checks.append(Check("api key", False, f"key refused ({msg})"))
                    return checks
                if resp.status_code == 200:
                    checks.append(Check("api key", True, _describe_key(resp)))
                else:  # local servers have no key endpoint: the models call decides
                    checks.append(Check("api key", True, "no key endpoint on this server"))
            with deadline(PREFLIGHT_TIMEOUT_S):
                resp = self._client.get("/models", timeout=PREFLIGHT_TIMEOUT_S)
        except httpx.HTTPError as exc:
            checks.append(Check("endpoint", False, f"{self.base_url} unreachable: {exc}"))
            return checks
        if resp.status_code in (401, 403):
            msg = _error_message(resp, self._redactor)
            checks.append(Check("api key", False, f"key refused ({msg})"))
            return checks
        if resp.status_code != 200:
            msg = _error_message(resp, self._redactor)
            checks.append(Check("endpoint", False, f"GET /models: {msg}"))
            return checks
        checks.append(Check("endpoint", True, f"{self.base_url} answers"))
        try:
            ids = {str(m.get("id")) for m in resp.json().get("data", []) if isinstance(m, dict)}
        except (ValueError, AttributeError):
            ids = set()
        if ids and self.model not in ids:
            checks.append(
                Check("model", False, f"model {self.model!r} not offered by the endpoint")
            )
        else:
            checks.append(Check("model", True, self.model))
        return checks

    # -- extraction --------------------------------------------------------------------
    def _payload(self, specimen: SpecimenInput) -> dict[str, Any]:
        img = load_image(specimen.path, self.settings.max_side, data=specimen.data)
        b64 = base64.b64encode(jpeg_bytes(img)).decode("ascii")
        return {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": self.settings.prompt_text},
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/jpeg;base64,{b64}"},
                        },
                    ],
                }
            ],
        }

    def _post(self, payload: dict[str, Any]) -> httpx.Response:
        """POST with a whole-request deadline and a size cap.

        httpx's timeout bounds each network read, not the request: a server that trickles a
        byte at a time (headers or body) would hold a worker forever. Every socket operation
        of the exchange keeps `timeout_s` from its start (engines/deadline.py), and the body
        is decoded as it arrives, never past the cap (engines/bounded.py); the result is a
        fully read Response.
        """
        limit_s = self.settings.timeout_s
        try:
            with (
                deadline(limit_s) as until,
                self._client.stream("POST", "/chat/completions", json=payload) as resp,
            ):
                encoding = resp.headers.get("content-encoding", "")
                # decoded here, within the cap (httpx would inflate each chunk whole)
                raw = _until(resp.iter_raw(), until, limit_s)
                content = read_capped(raw, encoding, MAX_REPLY_BYTES)
        except TooLarge as exc:
            head = self._redactor.cut(exc.head.decode("utf-8", "replace"), 2000)
            raise EngineError(
                ErrorKind.BAD_REPLY,
                f"reply larger than {MAX_REPLY_BYTES >> 20} MiB: not read",
                raw_text=head,
            ) from None
        except DecodeError as exc:  # as httpx's DecodingError was: retried
            raise EngineError(ErrorKind.NETWORK, f"DecodingError: {exc}") from exc
        except httpx.TimeoutException as exc:
            if time.monotonic() >= until:
                msg = f"reply not complete after {limit_s:g} s"
                raise EngineError(ErrorKind.TIMEOUT, msg) from exc
            raise EngineError(ErrorKind.TIMEOUT, f"request timed out: {exc}") from exc
        except httpx.HTTPError as exc:
            raise EngineError(ErrorKind.NETWORK, f"{type(exc).__name__}: {exc}") from exc
        skip = ("content-encoding", "content-length", "transfer-encoding")
        return httpx.Response(
            resp.status_code,
            headers=[(k, v) for k, v in resp.headers.multi_items() if k.lower() not in skip],
            content=content,
            request=resp.request,
        )

    def extract(self, specimen: SpecimenInput) -> Extraction:
        """One extraction; nothing it returns or raises holds a run of the key's characters or
        a lone surrogate (which no log writer accepts)."""
        r = self._redactor

        def clean(text: str) -> str:
            return r.redact(well_formed(text))

        try:
            result = self._extract(specimen)
        except EngineError as exc:
            exc.message = clean(exc.message)
            exc.args = (exc.message,)
            exc.raw_text = None if exc.raw_text is None else clean(exc.raw_text)
            exc.usage = map_strings(exc.usage, clean)
            raise
        except Exception as exc:  # a bug's message may quote a response: redact it too
            raise EngineError(ErrorKind.INTERNAL, clean(f"{type(exc).__name__}: {exc}")) from None
        result.raw_text = clean(result.raw_text)
        result.fields = {
            t: FieldValue(clean(f.value), f.confidence) for t, f in result.fields.items()
        }
        result.usage = map_strings(result.usage, clean)
        result.model = clean(result.model)
        return result

    def _extract(self, specimen: SpecimenInput) -> Extraction:
        resp = self._post(self._payload(specimen))
        if resp.status_code != 200:
            raise classify_status(resp, "chat/completions", self._redactor)
        try:
            body = resp.json()
        except ValueError as exc:
            raise EngineError(
                ErrorKind.SERVER,
                "response body is not JSON",
                raw_text=self._redactor.cut(resp.text, 2000),
            ) from exc
        if not isinstance(body, dict):
            raise EngineError(ErrorKind.BAD_REPLY, "response is not a JSON object")
        usage = clean_usage(body.get("usage"))  # untrusted numbers: odd ones become None
        cost = plausible_cost(usage.get("cost"))
        if isinstance(body.get("error"), dict):  # some providers answer 200 with an error
            raise error_in_reply(resp, body["error"], self._redactor)
        choices = body.get("choices") or []
        text = ""
        if choices and isinstance(choices[0], dict):
            msg = choices[0].get("message") or {}
            content = msg.get("content") if isinstance(msg, dict) else None
            if isinstance(content, list):  # content parts
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            text = content or ""
        if not text:
            raise EngineError(
                ErrorKind.BAD_REPLY, "reply has no content", usage=usage, cost_usd=cost
            )
        try:
            fields = parse_reply(text)
        except EngineError as exc:
            exc.usage, exc.cost_usd = usage, cost
            raise
        return Extraction(
            fields=fields,
            raw_text=text,
            usage={k: usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")},
            cost_usd=cost,
            model=str(body.get("model") or self.model),
        )

    def close(self) -> None:
        self._client.close()


def _describe_key(resp: httpx.Response) -> str:
    try:
        data = resp.json().get("data", {})
    except (ValueError, AttributeError):
        return "key accepted"
    parts = ["key accepted"]
    if data.get("limit_remaining") is not None:
        parts.append(f"credit left {data['limit_remaining']}")
    if data.get("is_free_tier"):
        parts.append("free tier")
    return ", ".join(parts)
