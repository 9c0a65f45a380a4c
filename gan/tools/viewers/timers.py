"""A tab's auto-rerun timers (AutoRerunTimers): one setInterval-style timer per fragment, started and stopped.
Must not build or send messages itself (it calls the send it was given) nor touch the page or the cache."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class AutoRerunTimers:
    """The frontend's handleAutoRerun / setInterval: every ``interval`` seconds ``send(fragment_id)``, whether
    or not the previous fragment run has finished (the browser does not wait either).

    ``send`` raises ConnectionError once the tab is gone, which ends that timer; ``alive`` says whether
    the tab is still open.
    """

    def __init__(self, name: str, send: Callable[[str], Awaitable[object]], alive: Callable[[], bool]):
        self._name = name
        self._send = send
        self._alive = alive
        self._timers: dict[str, tuple[float, asyncio.Task]] = {}  # fragment id -> (interval, task)

    def intervals(self) -> dict[str, float]:
        """The timers running now: fragment id -> interval in seconds."""
        return {fid: interval for fid, (interval, _) in self._timers.items()}

    def start(self, fragment_id: str, interval: float) -> None:
        current = self._timers.get(fragment_id)
        if current is not None and current[0] == interval:
            return  # same interval: the running timer keeps its phase
        self.stop(fragment_id)
        task = asyncio.create_task(self._loop(fragment_id, interval), name=f"{self._name}-timer")
        self._timers[fragment_id] = (interval, task)

    def stop(self, fragment_id: str) -> None:
        entry = self._timers.pop(fragment_id, None)
        if entry is not None:
            entry[1].cancel()

    def stop_all(self) -> None:
        for fid in list(self._timers):
            self.stop(fid)

    async def _loop(self, fragment_id: str, interval: float) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval  # setInterval: first tick one interval after the setup
        while self._alive():
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            try:
                await self._send(fragment_id)
            except ConnectionError:
                return
            # A late tick fires once, then the timer keeps its period (no burst of missed ticks).
            next_at = max(next_at + interval, loop.time())
