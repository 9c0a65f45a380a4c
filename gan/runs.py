"""The process-wide run registry: the dashboard's runs live here, not in one browser's session.

A Streamlit server is one process with one script thread per browser tab. If a tab owned the
Trainer, a reload would orphan it and a second tab would start a second one. So the pages ask one
RunRegistry (held by st.cache_resource) for the current run; reloads, tabs and page switches all
reattach to the same Trainer. A cap on concurrently live runs (default 1, env GAN_LIVE_MAX_RUNS)
keeps a shared laptop from ever training twice by accident. No streamlit here: testable headless.
"""

import io
import os
import threading

import torch

from gan.config import Config
from gan.trainer import LIVE_STATES, Trainer

DEFAULT_MAX_RUNS = 1
# The dashboard shares the CPU with the Streamlit server and the browser that draws the charts.
# Measured on the 2-core workshop box (see README / issue 4): 1 torch thread keeps the server and
# the browser responsive; GAN_LIVE_TORCH_THREADS overrides it (0 = leave torch's default).
DEFAULT_TORCH_THREADS = 1


class RunLimitError(RuntimeError):
    """Starting another run would exceed the cap on concurrently live runs."""


def max_runs_from_env() -> int:
    raw = os.environ.get("GAN_LIVE_MAX_RUNS", "")
    try:
        value = int(raw) if raw.strip() else DEFAULT_MAX_RUNS
    except ValueError:
        raise ValueError(f"GAN_LIVE_MAX_RUNS must be a whole number >= 1, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"GAN_LIVE_MAX_RUNS must be a whole number >= 1, got {raw!r}")
    return value


def torch_threads_from_env() -> int:
    raw = os.environ.get("GAN_LIVE_TORCH_THREADS", "")
    try:
        return max(0, int(raw)) if raw.strip() else DEFAULT_TORCH_THREADS
    except ValueError:
        return DEFAULT_TORCH_THREADS


class RunRegistry:
    """Named Trainers, the newest one 'current'. All methods are safe from any thread."""

    def __init__(self, max_runs: int | None = None, torch_threads: int | None = None):
        self.max_runs = max_runs_from_env() if max_runs is None else int(max_runs)
        if self.max_runs < 1:
            raise ValueError("max_runs must be >= 1")
        self.torch_threads = torch_threads_from_env() if torch_threads is None else int(torch_threads)
        self._lock = threading.Lock()  # two tabs pressing Start at once must not both pass the cap
        self._runs: dict[str, Trainer] = {}
        self._current: str | None = None
        self._counter = 0

    def live_runs(self) -> list[Trainer]:
        with self._lock:
            return [t for t in self._runs.values() if t.is_alive() or t.state in LIVE_STATES]

    def start(self, config: Config, *, paused: bool = False, name: str | None = None) -> Trainer:
        """Create, register and start a Trainer; raises RunLimitError when the cap is reached."""
        with self._lock:
            live = [t for t in self._runs.values() if t.is_alive() or t.state in LIVE_STATES]
            if len(live) >= self.max_runs:
                names = ", ".join(f"{t.name} (step {t.step_count}, {t.state})" for t in live)
                raise RunLimitError(
                    f"{len(live)} run(s) already live, the limit is {self.max_runs}: {names}. "
                    "Stop it first (or raise GAN_LIVE_MAX_RUNS to allow more at once).")
            self._counter += 1
            name = name or f"run-{self._counter}"
            if self.torch_threads > 0:
                # Process-wide in torch: intra-op threads for every run in this server.
                torch.set_num_threads(self.torch_threads)
            trainer = Trainer(config, dataset_fallback=True, name=name)
            self._runs[name] = trainer
            self._current = name
            trainer.start(paused=paused)  # inside the lock: the cap counts it before anyone else looks
            return trainer

    def current(self) -> Trainer | None:
        with self._lock:
            return self._runs.get(self._current) if self._current else None

    def get(self, name: str) -> Trainer | None:
        with self._lock:
            return self._runs.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._runs)

    def reset(self, timeout: float = 5.0) -> None:
        """Stop every run and forget them all: the dashboard is back to 'no run'."""
        self.stop_all(timeout)
        with self._lock:
            self._runs.clear()
            self._current = None

    def stop_all(self, timeout: float = 5.0) -> bool:
        """Stop and join every run; True when all threads ended within the timeout."""
        with self._lock:
            runs = list(self._runs.values())
        stopped = [t.stop(timeout) for t in runs]  # stop every one, even after a failure
        return all(stopped)


# --- downloads (the Samples page) ------------------------------------------------------------------
def checkpoint_bytes(trainer: Trainer) -> bytes:
    """The whole run as a checkpoint file's bytes (gan.checkpoint.load_checkpoint reads them back).

    Taken at a step boundary (state_dict holds the step lock), so it is consistent while training runs.
    """
    if trainer.G is None:
        raise RuntimeError("this run has no models yet (still loading, or it failed before the first step)")
    buf = io.BytesIO()
    torch.save(trainer.state_dict(), buf)
    return buf.getvalue()


def history_csv(trainer: Trainer) -> bytes:
    """Per-step scalars as CSV: full resolution for recent steps, mean/min/max rows for older buckets."""
    return trainer.history.snapshot(with_grids=False).scalars.to_csv(index=False).encode()
