"""The server side of the training worker: a client that owns the process, and Trainer-shaped proxies.

``WorkerClient`` spawns gan.engine.worker in its own process (kept warm, so Start answers in well under a
second), sends it gan.engine.protocol commands with a timeout (the server never hangs on a stuck worker) and
reads its ticks in one thread, which keeps each run's mirror History and status. ``RemoteTrainer``
has the Trainer's public interface, so pages, the registry, the metrics monitor and snapshots use
either without knowing where training happens. A worker that dies marks its runs failed with the
cause; the mirrors keep the charts. No streamlit here.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import types
from dataclasses import replace

from gan.engine import protocol as p
from gan.engine.config import Config, ConfigError
from gan.engine.history import History
from gan.engine.protocol import FailureKind, PauseCause, RunState, RunStatus

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 10.0  # a command the worker has not answered by then: it is stuck, say so (never hang)
SPAWN_TIMEOUT_S = 60.0  # first answer from a fresh worker (imports torch: seconds on a laptop)
SILENT_S = 10.0  # a running run that sent no tick for this long: the page says so (frozen or swamped worker)
_spawn_lock = threading.Lock()  # __main__ is swapped while a worker is spawned (see WorkerClient)


class WorkerError(RuntimeError):
    """The training worker is gone or not answering; ``kind`` says which (gan.engine.protocol.FailureKind)."""

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


def _pin_threads(cores: set) -> None:
    """sched_setaffinity for every thread of this process (pid 0 would mean the calling thread only);
    threads started later inherit the mask of the thread that starts them."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except ProcessLookupError:
            pass  # the thread ended meanwhile


class WorkerClient:
    """One training process and the pipes to it. Thread-safe; one command at a time."""

    def __init__(self, torch_threads: int = 1, preload: str | None = "mnist5k", pin: bool | None = None):
        self.torch_threads = torch_threads
        self.preload = preload
        self.pin = os.environ.get("GAN_LIVE_PIN", "1").strip() != "0" if pin is None else pin
        self.pinned: tuple | None = None  # (server cores, worker cores) once pinned
        self._unpinned: set = set()
        self._lock = threading.Lock()  # one command in flight; also guards spawning
        self._runs: dict[str, RemoteTrainer] = {}
        self._runs_lock = threading.Lock()
        self._proc = None
        self._cmd = None
        self._next_id = 0
        self._answered = False
        self.spawns = 0
        self.last_death: str = ""  # why the previous worker ended, for logs and tests

    # --- process ------------------------------------------------------------------------------------
    def ensure_started(self) -> None:
        with self._lock:
            self._ensure_started_locked()

    def _ensure_started_locked(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        from gan.engine import worker

        # spawn, not fork: the server has threads (fork would copy their locks mid-use) and torch state.
        ctx = multiprocessing.get_context("spawn")
        cmd_parent, cmd_child = ctx.Pipe(duplex=True)
        tick_read, tick_write = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=worker.main, name="gan-live-worker", daemon=True,
                           args=(cmd_child, tick_write, os.getpid(), self.torch_threads, self.preload))
        # spawn re-imports the parent's __main__ in the child. Here that may be a Streamlit page (AppTest
        # runs a page as __main__), a user's unguarded script or the CLI: none belongs in the worker, and a
        # page would build a registry and spawn again. For the moment of start(), __main__ is a bare module.
        with _spawn_lock:
            main = sys.modules.get("__main__")
            sys.modules["__main__"] = types.ModuleType("__main__")
            try:
                proc.start()
            finally:
                if main is not None:
                    sys.modules["__main__"] = main
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
        sizes, loses ~20 % (measured: 0.81x at 30 viewers unpinned). GAN_LIVE_PIN=0 turns it off."""
        if not self.pin or not hasattr(os, "sched_setaffinity"):
            return
        try:
            cores = sorted(os.sched_getaffinity(0))
            take = max(1, self.torch_threads)
            if len(cores) <= take:
                return  # no core to spare: leave the scheduler alone
            os.sched_setaffinity(worker_pid, set(cores[-take:]))
            _pin_threads(set(cores[:-take]))
            if self.pinned is None:
                self._unpinned = set(cores)  # given back by shutdown (a test process goes on after us)
            self.pinned = (cores[:-take], cores[-take:])
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
                _pin_threads(self._unpinned)
            except OSError:
                pass
            self.pinned = None

    # --- commands -------------------------------------------------------------------------------------
    def call(self, cmd: p.Command, timeout: float = CALL_TIMEOUT_S):
        """Send one command and wait for its Reply; raise what the worker raised, or WorkerError."""
        with self._lock:
            self._ensure_started_locked()
            proc, conn = self._proc, self._cmd
            self._next_id += 1
            rid = self._next_id
            first = not self._answered  # a fresh worker first imports torch: give it longer
            deadline = time.monotonic() + (max(timeout, SPAWN_TIMEOUT_S) if first else timeout)
            try:
                conn.send((rid, cmd))
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0 or not conn.poll(left):
                        raise WorkerError(FailureKind.WORKER_UNRESPONSIVE,
                                          f"the training worker did not answer {type(cmd).__name__} within "
                                          f"{timeout:.0f} s")
                    reply = conn.recv()
                    if reply.request_id == rid:
                        break  # an older reply belongs to a call that timed out: dropped
            except (EOFError, OSError, BrokenPipeError):
                proc.join(1.0)
                raise WorkerError(FailureKind.WORKER_DIED,
                                  f"the training worker {_describe_exit(proc.exitcode)}") from None
            self._answered = True
        if reply.status is not None:
            run = self._run(cmd.name)
            if run is not None:
                run._set_status(reply.status, reply.stamp)
        if not reply.ok:
            if reply.error == "ConfigError":
                raise ConfigError(reply.field, reply.message.split(": ", 1)[-1])
            raise (ValueError if reply.error == "ValueError" else RuntimeError)(reply.message)
        return reply.value

    # --- runs and ticks ---------------------------------------------------------------------------------
    def register(self, run: RemoteTrainer) -> None:
        with self._runs_lock:
            self._runs[run.name] = run

    def forget(self, name: str) -> None:
        with self._runs_lock:
            self._runs.pop(name, None)

    def _run(self, name: str) -> RemoteTrainer | None:
        with self._runs_lock:
            return self._runs.get(name)

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
            run = self._run(tick.name)
            if run is not None:
                try:
                    run._apply_tick(tick)
                except Exception:  # noqa: BLE001
                    log.exception("could not apply a tick of run %s", tick.name)
        conn.close()
        proc.join(2.0)
        if self._proc is not proc and self._proc is not None:
            return  # replaced already (shutdown, respawn)
        cause = f"The training process {_describe_exit(proc.exitcode)}"
        self.last_death = cause
        if self._proc is proc:
            log.warning("%s; the next Start spawns a new one", cause)
        with self._runs_lock:
            runs = list(self._runs.values())
        for run in runs:
            run._worker_died(cause)


class RemoteTrainer:
    """A Trainer whose thread runs in the worker process. Same public interface as gan.engine.trainer.Trainer."""

    def __init__(self, client: WorkerClient, config: Config, *, name: str = "run", dataset_fallback: bool = True,
                 resume_state: dict | None = None, autosave_dir: str = "", autosave_root: str = ""):
        self.client = client
        self.config = config
        self.name = name
        self.dataset_fallback = dataset_fallback
        self.history = History()  # the mirror every page reads
        self.device = config.resolved_device()
        self.model_kind = config.resolved_model()
        self.last_manual_step: dict | None = None
        self.last_stats: dict | None = None
        self._resume_state = resume_state
        self.autosave_dir, self.autosave_root = autosave_dir, autosave_root
        self._actions: list[tuple[int, str, object]] = []
        self._max_rate: float | None = None
        self._started = False
        self._spawn = -1  # WorkerClient.spawns when started: a later spawn is another process
        self._last_tick = time.monotonic()
        self._has_models = False
        self._data = None
        self._lock = threading.Lock()
        step = int(resume_state["step"]) if resume_state else 0
        # What the page shows until the worker's first status arrives: the config's settings.
        self._status = RunStatus(
            name=name, state=RunState.IDLE, step=step, device=self.device, model=self.model_kind,
            dataset=config.dataset, loss=resume_state["loss"] if resume_state else config.loss,
            lr_g=config.lr_g, lr_d=config.lr_d, d_steps=config.d_steps,
        )
        # When _status was taken in the worker (time.monotonic(), a system-wide clock): replies and ticks
        # come on two pipes, so an older one can arrive last; only a newer stamp replaces the status.
        # Below any real stamp: -1 the placeholder above, -0.5 "loading" set by start().
        self._stamp = -1.0

    @classmethod
    def from_trainer(cls, client: WorkerClient, trainer) -> RemoteTrainer:
        """The remote twin of an unstarted local Trainer (a branch of a snapshot, an uploaded checkpoint)."""
        saver = trainer.autosave
        remote = cls(client, trainer.config, name=trainer.name, dataset_fallback=trainer.dataset_fallback,
                     resume_state=trainer.resume_state, autosave_dir=str(saver.run_dir) if saver else "",
                     autosave_root=str(saver.root) if saver else "")
        for after_step, kind, value in trainer.scheduled:
            remote.schedule(after_step, kind, value)
        return remote

    # --- commands (any thread) -----------------------------------------------------------------------
    def start(self, paused: bool = False, stop_at_step: int | None = None) -> None:
        if stop_at_step is not None:
            raise ValueError("stop_at_step is for the in-process Trainer (CLI, bench)")
        with self._lock:
            if self._started:
                raise RuntimeError("this run was already started; use resume, or reset for a new run")
            self._started = True
        self.client.register(self)
        resume = None
        if self._resume_state is not None:
            buf = io.BytesIO()
            import torch

            torch.save(self._resume_state, buf)
            resume = buf.getvalue()
            self.history.load_state_dict(self._resume_state["history"])  # charts at once, before the first tick
        self._set_status(replace(self._status, state=RunState.LOADING), -0.5)
        self.client.ensure_started()
        self._spawn = self.client.spawns  # the worker process this run lives in
        try:
            self.client.call(p.Start(self.name, self.config.to_dict(), paused, tuple(self._actions), resume,
                                     self.dataset_fallback, self._max_rate, self.autosave_dir,
                                     self.autosave_root))
        except WorkerError as exc:
            self._worker_died(str(exc))
            raise

    def pause(self, reason: str = "") -> None:
        self._call(p.Pause(self.name, reason))

    def resume(self) -> None:
        self._call(p.Resume(self.name))

    def step(self, n: int = 1, which: str = "both") -> None:
        if which not in ("both", "d", "g"):
            raise ValueError("which must be both, d or g")
        if not 1 <= int(n) <= 10_000:
            raise ValueError("n must be in [1, 10000]")
        self._call(p.Step(self.name, int(n), which))

    def stop(self, timeout: float = 1.0, clean: bool = True) -> bool:
        """Stop the run in the worker; True when its thread ended within the timeout (or nothing runs)."""
        if not self._started or not self.is_alive():
            return True
        try:
            stopped = self._call(p.Stop(self.name, timeout, clean), timeout=timeout + CALL_TIMEOUT_S)
        except WorkerError:
            return True  # the process is gone, so is the run
        return True if stopped is None else bool(stopped)

    def forget(self, timeout: float = 5.0) -> None:
        """Reset: stop the run and drop it from the worker and the tick reader."""
        self.client.forget(self.name)
        if self._started and self.client.alive():
            try:
                self.client.call(p.Forget(self.name, timeout), timeout=timeout + CALL_TIMEOUT_S)
            except WorkerError:
                pass

    def set_loss(self, name: str) -> None:
        from gan.engine.losses import get_loss

        get_loss(name)  # ValueError for an unknown loss, here, before anything is sent
        self._call(p.SetLoss(self.name, name))

    def set_lr(self, lr_g: float | None = None, lr_d: float | None = None) -> None:
        Config(lr_g=lr_g or self._status.lr_g, lr_d=lr_d or self._status.lr_d)
        self._call(p.SetLr(self.name, lr_g, lr_d))

    def set_d_steps(self, n: int) -> None:
        Config(d_steps=n)
        self._call(p.SetDSteps(self.name, int(n)))

    def set_max_rate(self, steps_per_sec: float | None) -> None:
        if steps_per_sec is not None and not (0 < steps_per_sec <= 100_000):
            raise ValueError("steps/s throttle must be in (0, 100000] or None")
        if self._started:
            self._call(p.SetMaxRate(self.name, steps_per_sec))
        else:
            self._max_rate = steps_per_sec  # sent with Start

    def schedule(self, after_step: int, kind: str, value) -> None:
        from gan.engine.trainer import check_live_change

        check_live_change(kind, value)
        if self._started:
            self._call(p.Schedule(self.name, int(after_step), kind, value))
        else:
            self._actions.append((int(after_step), kind, value))

    def _call(self, cmd: p.Command, timeout: float = CALL_TIMEOUT_S):
        if self._status.failure == FailureKind.WORKER_DIED or self._spawn != self.client.spawns:
            # Its process is gone: a fresh worker does not know this run. Commands that steer a live run
            # are no-ops on a dead one (as on a stopped Trainer); reads that need its weights cannot work.
            if isinstance(cmd, (p.Step, p.Snapshot, p.GeneratorWeights)):
                raise RuntimeError(f"run {self.name!r} has no training process any more "
                                   f"({self._status.reason or 'it ended'})")
            return None
        try:
            return self.client.call(cmd, timeout=timeout)
        except WorkerError as exc:
            self._worker_died(str(exc))
            raise

    # --- reading (any thread) ------------------------------------------------------------------------
    @property
    def state(self) -> RunState:
        return self._status.state

    @property
    def loss(self) -> str:
        return self._status.loss

    @property
    def step_count(self) -> int:
        return self._status.step

    @property
    def active_seconds(self) -> float:
        return self._status.elapsed

    @property
    def resume_state(self) -> dict | None:
        return self._resume_state

    @property
    def dataset_name(self) -> str:
        return self._status.dataset  # the worker's: mnist5k when it had to fall back

    @property
    def warnings(self) -> list[str]:
        return list(self._status.warnings)

    @property
    def run_dir(self):
        from pathlib import Path

        return Path(self.autosave_dir) if self.autosave_dir else None

    @property
    def autosave(self):
        """Autosaves are written in the worker; here only the folder is known (see run_dir)."""
        return None

    @property
    def scheduled(self) -> list:
        return list(self._status.scheduled) if self._started else list(self._actions)

    def is_alive(self) -> bool:
        return self._status.is_live

    def has_models(self) -> bool:
        return self._has_models

    def status(self) -> RunStatus:
        with self._lock:
            status = self._status
            silent = time.monotonic() - self._last_tick
        if status.state == RunState.RUNNING and silent > SILENT_S:  # ticks come 5 times a second
            status = replace(status, warnings=(
                *status.warnings, f"No news from the training process for {silent:.0f} s: it may be frozen or "
                "starved of CPU. The charts show the last step it reported."))
        return status

    def wait_until(self, predicate, timeout: float = 10.0, poll: float = 0.005) -> bool:
        from gan.engine.trainer import poll_until

        return poll_until(lambda: predicate(self), timeout, poll)

    @property
    def data(self):
        """The run's dataset, loaded in this process too (the metrics monitor scores against it)."""
        if self._data is None and self._has_models:
            from gan.engine.trainer import cached_dataset

            self._data = cached_dataset(self.dataset_name, self.config.data_dir, "cpu")
        return self._data

    def generator_copy(self):
        """An eval-mode CPU copy of G, taken at a step boundary in the worker."""
        import torch

        from gan.engine.models import build_models

        weights = torch.load(io.BytesIO(self._call(p.GeneratorWeights(self.name))), map_location="cpu",
                             weights_only=True)
        G, _ = build_models(self.model_kind, self.config.latent_dim, self.config.width)
        G.load_state_dict(weights)
        return G.eval()

    def state_dict(self) -> dict:
        """Everything to continue this run later (the worker's Trainer.state_dict, via torch.save)."""
        import torch

        return torch.load(io.BytesIO(self._call(p.Snapshot(self.name))), map_location="cpu", weights_only=True)

    # --- from the tick reader ------------------------------------------------------------------------
    def _set_status(self, status: RunStatus, stamp: float) -> None:
        with self._lock:
            if stamp >= self._stamp:
                self._status, self._stamp = status, stamp

    def _apply_tick(self, tick: p.Tick) -> None:
        if tick.full_history is not None:
            import torch

            self.history.load_state_dict(torch.load(io.BytesIO(tick.full_history), weights_only=True))
        elif tick.delta is not None:
            self.history.apply(tick.delta)
        self.last_manual_step, self.last_stats = tick.last_manual_step, tick.last_stats
        self._has_models = tick.has_models
        self._last_tick = time.monotonic()
        self._set_status(tick.status, tick.stamp)

    def _worker_died(self, cause: str) -> None:
        with self._lock:
            if not self._status.is_live:
                return
            reason = f"{cause}; training stopped at step {self._status.step:,}, the charts keep what it did"
            self._status = replace(self._status, state=RunState.FAILED, reason=reason,
                                   failure=FailureKind.WORKER_DIED, pause_cause=PauseCause.NONE, steps_per_sec=0.0)
            self._stamp = float("inf")  # final: a late tick or reply from the dead process changes nothing
        self.history.add_event(self._status.step, "failed", reason)
