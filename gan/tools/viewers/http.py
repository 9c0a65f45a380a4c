"""A tab's plain HTTP GETs: http_get (one GET, its HttpResult) and MediaFetcher (each new /media URL once).
Must not touch the websocket, a Viewer or its page: URLs in, results handed to the callback given."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class HttpResult:
    status: int
    size: int
    seconds: float


async def http_get(url: str, timeout: float = 10.0) -> HttpResult:
    """GET url (http only) over a fresh connection; status 0 when it failed or timed out."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    t0 = time.monotonic()
    writer = None
    try:
        deadline = t0 + timeout
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        await asyncio.wait_for(writer.drain(), max(0.01, deadline - time.monotonic()))
        # Connection: close, so EOF ends the response
        data = await asyncio.wait_for(reader.read(), max(0.01, deadline - time.monotonic()))
        status_line = data.split(b"\r\n", 1)[0].split()
        status = int(status_line[1]) if len(status_line) >= 2 and status_line[1].isdigit() else 0
        return HttpResult(status, len(data), time.monotonic() - t0)
    except (OSError, asyncio.TimeoutError):
        return HttpResult(0, 0, time.monotonic() - t0)
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):  # the peer may already be gone
                await asyncio.wait_for(writer.wait_closed(), 1.0)


class MediaFetcher:
    """Fetches images over HTTP once per new ``/media/...`` URL, as a browser does, without waiting for them.

    ``done(url, result)`` is called after each fetch; ``cancel_all()`` drops the fetches still under way.
    """

    def __init__(self, http_base: str, done: Callable[[str, HttpResult], None]):
        self._http_base = http_base
        self._done = done
        self._seen: set[str] = set()
        self._tasks: set[asyncio.Task] = set()  # kept referenced until done

    def fetch(self, url: str) -> None:
        if not url or url in self._seen or url.startswith("data:"):
            return
        if len(self._seen) > 1000:  # bounded: a long run produces many grid URLs
            self._seen.clear()
        self._seen.add(url)
        full = url if url.startswith("http") else self._http_base + (url if url.startswith("/") else "/" + url)
        task = asyncio.create_task(self._fetch(full))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_all(self) -> None:
        for t in list(self._tasks):
            t.cancel()

    async def _fetch(self, url: str) -> None:
        self._done(url, await http_get(url, timeout=10.0))
