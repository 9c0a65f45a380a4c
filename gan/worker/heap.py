"""Keeps a long-running process's memory flat: caps glibc's malloc arenas and gives freed memory back.

Why: the server renders for every viewer from Streamlit's script threads. glibc gives each thread that
contends for the heap an arena of its own (up to 8 per core) and returns freed memory to the system only
from the top of each arena, so an hour of refreshes leaves the RSS swinging by tens of MB between samples
and creeping upwards with fragmentation, although Python holds no more objects. Two arenas (the usual
MALLOC_ARENA_MAX=2 for Python servers) and a malloc_trim(0) every TRIM_EVERY_S, which also releases free
pages inside the heap, keep it flat (`python -m gan bench --parts soak`; figures in docs/measurements.md).

Linux with glibc only: elsewhere (macOS, Windows, musl) every function here does nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import threading

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h
ARENAS = 2
TRIM_EVERY_S = 30.0

_started = threading.Lock()
_keeper: threading.Thread | None = None


def _glibc():
    """glibc's C library, or None where there is none (another OS, or a musl libc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 — musl has no malloc_trim: an AttributeError means no glibc
        libc.mallopt  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None


def keep_flat(every_s: float = TRIM_EVERY_S, arenas: int = ARENAS) -> bool:
    """Cap the arenas and start one daemon thread that trims every ``every_s`` (once per process; later
    calls do nothing). False where this libc offers neither."""
    global _keeper
    libc = _glibc()
    if libc is None:
        return False
    with _started:
        if _keeper is not None:
            return True
        if not libc.mallopt(M_ARENA_MAX, arenas):
            log.info("mallopt(M_ARENA_MAX, %d) refused; trimming only", arenas)
        stop = threading.Event()  # never set: the keeper lives as long as the process

        def run() -> None:
            while not stop.wait(every_s):
                libc.malloc_trim(0)

        _keeper = threading.Thread(target=run, name="gan-heap-keeper", daemon=True)
        _keeper.start()
        return True
