"""Owns a lab's participant worker processes: how participants' runs share the CPU (gan.workshop.lab).
Must not decide who trains: the lab picks, this only spawns, places and ends the processes.

Why several runs per worker and one worker per core (measured by `python -m gan bench --parts lab`, figures in
docs/measurements.md): each run trains in a thread of its worker with one torch thread, so a worker keeps one core
busy; one process per run would cost ~150 MB more each for the same images per second, and one process for all
of them would leave every core but one idle (the GIL). The workers run at a lower priority (``nice``) than the
presenter's worker, so the presenter's run keeps its speed however many participants train.
"""

from __future__ import annotations

import os
import threading

from gan.worker.client import WorkerClient

# Participants yield to the presenter (nice 0): CFS weight 110 per thread vs 1024. Measured: at nice 5 (weight 335,
# and each of a worker's four run threads counts) the presenter kept 0.34x of its solo speed beside 8 runs.
LAB_NICE = 10


def machine_cores() -> set[int]:
    """Every core this machine lets us use (the server itself may be pinned to fewer, beside the presenter's
    worker)."""
    count = os.cpu_count() or 1
    return set(range(count))


def default_workers() -> int:
    return len(machine_cores())


class WorkerPool:
    """``size`` warm worker processes, each hosting any number of runs; thread-safe."""

    def __init__(self, size: int, torch_threads: int = 1, nice: int = LAB_NICE):
        if size < 1:
            raise ValueError(f"a worker pool needs at least one worker, got {size}")
        self.size, self.torch_threads, self.nice = size, torch_threads, nice
        self._lock = threading.Lock()
        self._clients: list[WorkerClient] = []

    def start(self) -> WorkerPool:
        """Spawn every worker now (each imports torch: seconds), so a participant's Start finds them warm."""
        with self._lock:
            while len(self._clients) < self.size:
                client = WorkerClient(torch_threads=self.torch_threads, pin=False, nice=self.nice,
                                      cores=machine_cores())
                self._clients.append(client)
            clients = list(self._clients)
        for client in clients:
            client.ensure_started()
        return self

    @property
    def clients(self) -> list[WorkerClient]:
        with self._lock:
            return list(self._clients)

    def pick(self, load) -> WorkerClient:
        """The worker with the least ``load(client)`` (the lab counts its live runs there); the first on a tie."""
        clients = self.clients or self.start().clients
        return min(clients, key=load)

    def pids(self) -> list[int]:
        return [c.pid for c in self.clients if c.pid is not None]

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.shutdown(timeout)
