"""A wall-clock deadline for a whole HTTP exchange: connect, send, headers and body.

httpx's timeouts bound each network read, so a server sending one byte a second holds a
request indefinitely (httpx has no total timeout). Here every socket operation of the calling
thread gets at most the time left before its deadline: past it, the read fails as a timeout
and httpcore drops the connection. Only the network layer is swapped (httpcore's public
NetworkBackend interface); HTTP parsing, pooling and keep-alive stay httpx's own.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

_local = threading.local()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Within the block, this thread's requests must be done `seconds` from now; yields the
    monotonic time of the deadline."""
    until = time.monotonic() + seconds
    outer = getattr(_local, "until", None)
    _local.until = until if outer is None else min(until, outer)
    try:
        yield until
    finally:
        _local.until = outer


def _left(timeout: float | None, exc: type[Exception]) -> float | None:
    """`timeout` cut to the time left before this thread's deadline; raises `exc` if past."""
    until = getattr(_local, "until", None)
    if until is None:
        return timeout
    left = until - time.monotonic()
    if left <= 0:
        raise exc("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        t = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, t))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        t = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, t, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        t = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, t, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def deadline_transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    """httpx's own transport whose sockets keep each thread's `deadline`.

    httpx offers no way to pass a network backend, so its connection pool is rebuilt with
    one (`_pool` is where every httpx release since 0.18 keeps it). Proxies from the
    environment are mounted by httpx with its plain transports: through one, only the body's
    chunks are checked against the deadline (engines/openrouter.py).
    """
    transport = httpx.HTTPTransport(limits=limits)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_Backend(),
    )
    return transport
