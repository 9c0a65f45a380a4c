"""Many viewers at once, like a room arriving: open_viewers, close_viewers, wait_all.
Must not touch a Viewer's internals (only connect, close, wait_until, connected) nor measure anything."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from gan.tools.viewers.viewer import Viewer


async def open_viewers(base_url: str, n: int, query: str = "", *, prefix: str = "viewer", concurrency: int = 20,
                       timeout: float = 60.0, spread_s: float = 0.0, **kwargs) -> tuple[list[Viewer], list[str]]:
    """Connect n viewers (at most ``concurrency`` handshakes at once, like a room arriving); returns
    the connected ones and one line per viewer that failed (those are already closed). ``spread_s``: the
    arrivals evenly spread over that many seconds (a page's refresh timer starts when it opens, so tabs opened
    at one moment refresh together, and a room's tabs, opened over minutes, at every phase of the second)."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(i: int) -> Viewer:
        viewer = Viewer(base_url, query, name=f"{prefix}-{i}", **kwargs)
        await asyncio.sleep(spread_s * i / max(1, n))  # an arrival time, not a wait for anything
        async with gate:
            try:
                return await viewer.connect(timeout=timeout)
            except BaseException:
                await viewer.close(2.0)
                raise

    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    ok = [r for r in results if isinstance(r, Viewer)]
    failed = [f"{type(r).__name__}: {r}" for r in results if not isinstance(r, Viewer)]
    return ok, failed


async def close_viewers(viewers: list[Viewer], timeout: float = 10.0) -> None:
    """Close them all concurrently; bounded, never raises."""
    if viewers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*(v.close(timeout) for v in viewers), return_exceptions=True),
                                   timeout + 5.0)


async def wait_all(viewers: list[Viewer], predicate: Callable[[Viewer], bool], timeout: float,
                   since: float | None = None) -> float | None:
    """Seconds from ``since`` (default: now) until every still-connected viewer satisfies predicate,
    i.e. until the last one does; None on timeout.

    A viewer that disconnects while waiting no longer counts; its closed_reason says why.
    """
    t0 = time.monotonic() if since is None else since
    done_at: list[float] = []

    async def one(v: Viewer) -> bool:
        ok = await v.wait_until(predicate, timeout)
        done_at.append(time.monotonic())
        return ok or not v.connected

    results = await asyncio.gather(*(one(v) for v in viewers))
    return max(done_at, default=t0) - t0 if all(results) else None
