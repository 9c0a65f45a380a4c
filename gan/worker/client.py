"""Owns the training worker process seen from the server: WorkerClient spawns, pins and calls it and reads its ticks.
Must not touch a run's state itself: each run's mirror (gan.worker.remote.RemoteTrainer) applies what arrives."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Protocol, runtime_checkable

from gan.core.config import ConfigError
from gan.engine.status import FailureKind, RunStatus
from gan.worker import messages as p
from gan.worker import process as worker
from gan.worker import spawning

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 10.0  # a command the worker has not answered by then: it is stuck, say so (never hang)
SPAWN_TIMEOUT_S = 60.0  # first answer from a fresh worker (imports torch: seconds on a laptop)


@runtime_checkable
class RunMirror(Protocol):
    """The client's side of the link to a run's server-side mirror (gan.worker.remote.RemoteTrainer implements it):
    what the client calls as replies, ticks and the worker's end arrive. The client knows nothing else of it."""

    name: str

    def on_status(self, status: RunStatus, stamp: float) -> None: ...

    def on_tick(self, tick: p.Tick) -> None: ...

    def on_worker_death(self, cause: str, kind: FailureKind = FailureKind.WORKER_DIED) -> None: ...


class WorkerError(RuntimeError):
    """The training worker is gone or not answering; ``kind`` says which (gan.engine.status.FailureKind)."""

    def __init__(self, kind: FailureKind, message: str):
        super().__init__(message)
        self.kind = kind


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " — killed by hand or by the out-of-memory killer" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {code}"


def deliver_reply(cmd: p.Command, reply: p.Reply, run: RunMirror | None):
    """A Reply, whatever carried it (the pipe, a Ray actor call): its status to the run's mirror, its refusal raised
    as the exception the worker raised, else its value."""
    if reply.status is not None and run is not None:
        run.on_status(reply.status, reply.stamp)
    if not reply.ok:
        if reply.error is p.Refusal.CONFIG:
            raise ConfigError(reply.field, reply.message)  # the worker sends the reason alone
        raise (ValueError if reply.error is p.Refusal.VALUE else RuntimeError)(reply.message)
    return reply.value


THREADS_DIR = "/proc/self/task"  # Linux: one entry per thread of this process


def can_pin() -> bool:
    """Core pinning needs Linux: os.sched_setaffinity (absent on macOS and Windows) and /proc to find our threads."""
    return hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity") and os.path.isdir(THREADS_DIR)


def pin_enabled() -> bool:
    """GAN_LIVE_PIN=0 turns core pinning off (see WorkerClient._pin for why it is on)."""
    return os.environ.get("GAN_LIVE_PIN", "1").strip() != "0"


def split_cores(cores: list[int], torch_threads: int) -> tuple[list[int], list[int]] | None:
    """(the server's cores, the training's cores) when a server pins itself beside its presenter's run: the last
    ``torch_threads`` cores train, the others serve. None when that would leave the server no core."""
    take = max(1, torch_threads)
    if len(cores) <= take:
        return None
    return cores[:-take], cores[-take:]


def pin_threads(cores: set, pid: int | str = "self") -> None:
    """sched_setaffinity for every thread of process ``pid`` (this one by default; pid 0 would mean the calling
    thread only): the server beside a training process, or a Ray actor that already runs threads. Threads started
    later inherit the mask of the thread that starts them."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except ProcessLookupError:
            pass  # the thread ended meanwhile


class RunTable:
    """The runs a client's process (or actor) hosts, by name: whom each tick and reply is for. Shared by
    WorkerClient and gan.worker.ray_client.RayClient; the subclass sets up nothing for it."""

    def __init__(self):
        self._runs: dict[str, RunMirror] = {}
        self._runs_lock = threading.Lock()

    def run_count(self) -> int:
        """How many runs it hosts now (a lab's pool puts the next run on the least busy worker)."""
        with self._runs_lock:
            return len(self._runs)

    def register(self, run: RunMirror) -> None:
        with self._runs_lock:
            self._runs[run.name] = run

    def forget(self, name: str) -> None:
        with self._runs_lock:
            self._runs.pop(name, None)

    def _run(self, name: str) -> RunMirror | None:
        with self._runs_lock:
            return self._runs.get(name)

    def _deliver_tick(self, tick: p.Tick) -> None:
        """Hand a tick to its run's mirror; one that fails to apply is logged, never ends the reader."""
        run = self._run(tick.name)
        if run is not None:
            try:
                run.on_tick(tick)
            except Exception:  # noqa: BLE001
                log.exception("could not apply a tick of run %s", tick.name)


class WorkerClient(RunTable):
    """One training process and the pipes to it. Thread-safe; one command at a time.

    Spawns gan.worker.process in its own process (kept warm, so Start answers in well under a second), sends it
    gan.worker.messages commands with a timeout (the server never hangs on a stuck worker) and reads its ticks
    in one thread, handing each to its run's mirror. A worker that dies marks its runs failed with the cause.
    """

    def __init__(self, torch_threads: int = 1, preload: str | None = "mnist5k", pin: bool | None = None,
                 nice: int = 0, cores: set | None = None):
        self.torch_threads = torch_threads
        self.nice = nice  # a lab participant's worker runs below the presenter's (gan.worker.pool)
        self.cores = cores  # unpinned, on these cores (a lab worker: every core, not only the server's)
        self.preload = preload
        self.pin = pin_enabled() if pin is None else pin
        self.call_timeout = CALL_TIMEOUT_S  # per client, read at each call (tests shorten it for a frozen worker)
        self.pinned: tuple | None = None  # (server cores, worker cores) once pinned
        self._unpinned: set = set()
        self._lock = threading.Lock()  # one command in flight; also guards spawning
        super().__init__()
        self._proc = None
        self._cmd = None
        self._next_id = 0
        self._answered = False
        self.spawns = 0

    # --- process ------------------------------------------------------------------------------------
    def ensure_started(self) -> None:
        with self._lock:
            self._ensure_started_locked()

    def _ensure_started_locked(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return

        # spawn, not fork: the server has threads (fork would copy their locks mid-use) and torch state.
        ctx = spawning.context()
        cmd_parent, cmd_child = ctx.Pipe(duplex=True)
        tick_read, tick_write = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=worker.main, name="gan-live-worker", daemon=True,
                           args=(cmd_child, tick_write, os.getpid(), self.torch_threads, self.preload, self.nice))
        # The child starts without our __main__ (gan.worker.spawning): here that may be a Streamlit page, which a
        # child would run again, building a registry and spawning anew.
        proc.start()
        self._pin(proc.pid)
        cmd_child.close()  # our copies of the child's ends: closed, so the child's death reads as EOF
        tick_write.close()
        self._proc, self._cmd = proc, cmd_parent
        self._answered = False
        self.spawns += 1
        threading.Thread(target=self._read_ticks, args=(proc, tick_read), daemon=True,
                         name=f"gan-worker-ticks-{proc.pid}").start()

    def _pin(self, worker_pid: int) -> None:
        """Give training cores of its own (Linux): the worker gets the last torch_threads cores, the
        server keeps the others. Without this the scheduler moves the server's refresh work (30 viewers:
        ~0.2 cores) onto the training core now and then, and the training step, latency-bound at these
        sizes, loses ~20 % (measured: 0.81x at 30 viewers unpinned). GAN_LIVE_PIN=0 turns it off. Elsewhere
        (macOS, Windows: no sched_setaffinity, no /proc) both run unpinned and the OS schedules them."""
        if self.cores is not None and can_pin():
            try:  # spawned from a server pinned beside the presenter's worker: give it every core back
                os.sched_setaffinity(worker_pid, self.cores)
            except OSError as exc:
                log.info("could not set the lab worker's cores: %s", exc)
            return
        if not self.pin or not can_pin():
            return
        try:
            cores = sorted(os.sched_getaffinity(0))
            split = split_cores(cores, self.torch_threads)
            if split is None:
                return  # no core to spare: leave the scheduler alone
            serve, train = split
            os.sched_setaffinity(worker_pid, set(train))
            pin_threads(set(serve))
            if self.pinned is None:
                self._unpinned = set(cores)  # given back by shutdown (a test process goes on after us)
            self.pinned = (serve, train)
        except OSError as exc:  # not allowed here (a container's cpuset): run unpinned
            log.info("could not pin the training worker: %s", exc)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every run and end the process (the registry's close, tests' fixtures)."""
        with self._lock:
            proc, conn = self._proc, self._cmd
            self._proc = self._cmd = None
        if proc is None:
            return
        try:
            conn.send((0, p.Shutdown()))
        except (OSError, EOFError):
            pass
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join(2.0)
        conn.close()
        if self.pinned is not None:
            try:
                pin_threads(self._unpinned)
            except OSError:
                pass
            self.pinned = None

    # --- commands -------------------------------------------------------------------------------------
    def call(self, cmd: p.Command, timeout: float | None = None):
        """Send one command and wait for its Reply (up to ``timeout``, else call_timeout s); raise what the worker
        raised, or WorkerError: WORKER_UNRESPONSIVE when no reply came in time (the command stays sent: a busy
        worker still applies it, and its late reply is dropped by request id), WORKER_DIED when the process ended."""
        timeout = self.call_timeout if timeout is None else timeout
        with self._lock:
            self._ensure_started_locked()
            proc, conn = self._proc, self._cmd
            self._next_id += 1
            rid = self._next_id
            first = not self._answered  # a fresh worker first imports torch: give it longer
            waited = max(timeout, SPAWN_TIMEOUT_S) if first else timeout
            deadline = time.monotonic() + waited
            try:
                conn.send((rid, cmd))
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0 or not conn.poll(left):
                        raise WorkerError(FailureKind.WORKER_UNRESPONSIVE,
                                          f"the training worker did not answer {type(cmd).__name__} within "
                                          f"{waited:.0f} s")
                    reply = conn.recv()
                    if reply.request_id == rid:
                        break  # an older reply belongs to a call that timed out: dropped
            except (EOFError, OSError, BrokenPipeError):
                proc.join(1.0)
                raise WorkerError(FailureKind.WORKER_DIED,
                                  f"the training worker {_describe_exit(proc.exitcode)}") from None
            self._answered = True
        return deliver_reply(cmd, reply, self._run(cmd.name) if reply.status is not None else None)

    # --- ticks ------------------------------------------------------------------------------------------
    @staticmethod
    def waiting_for() -> str | None:
        """Why a run waits for a slot before its process can take it (never, for the local worker: None)."""
        return None

    def _read_ticks(self, proc, conn) -> None:
        """The one reader of the tick pipe: mirrors each run; on EOF the worker is dead."""
        while True:
            try:
                tick = conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # noqa: BLE001 — a tick we cannot read must not end the mirror
                log.exception("unreadable tick from the training worker")
                continue
            self._deliver_tick(tick)
        conn.close()
        proc.join(2.0)
        if self._proc is not proc and self._proc is not None:
            return  # replaced already (shutdown, respawn)
        cause = f"The training process {_describe_exit(proc.exitcode)}"
        if self._proc is proc:
            log.warning("%s; the next Start spawns a new one", cause)
        with self._runs_lock:
            runs = list(self._runs.values())
        for run in runs:
            run.on_worker_death(cause)
