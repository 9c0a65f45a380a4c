"""Owns RemoteTrainer: a run training in the worker process, mirrored here with the Trainer's public interface.
Must not touch the worker process or its pipes (gan.worker.client's WorkerClient) nor any UI."""

from __future__ import annotations

import copy
import io
import threading
import time
from dataclasses import replace
from pathlib import Path

from gan.core.config import Config
from gan.core.live import Knob, LiveChange, StepTarget
from gan.core.models import build_models, ready_to_sample
from gan.engine.control import check_max_rate, check_step
from gan.engine.history import History
from gan.engine.run import LiveCommands, Waiting
from gan.engine.status import FailureKind, PauseCause, RunState, RunStatus
from gan.engine.trainer import cached_dataset
from gan.worker import messages as p
from gan.worker.client import CALL_TIMEOUT_S, WorkerClient, WorkerError

__all__ = ["SILENT_S", "RemoteTrainer"]

SILENT_S = 10.0  # a running run that sent no tick for this long: the page says so (frozen or swamped worker)
# How long a Start waits for a training process that is alive but has not answered yet (a fresh one imports torch
# first: 10-16 s measured on the 2-core box with two CPU burners; SPAWN_TIMEOUT_S bounds one wait, this the whole).
START_PATIENCE_S = 300.0
WAITING_FOR_WORKER = "starting the training process"  # the mirror's loading reason until the worker has the run


class RemoteTrainer(LiveCommands, Waiting):
    """A Trainer whose thread runs in the worker process. Same public interface as gan.engine.trainer.Trainer.

    Pages, the registry, the metrics monitor and snapshots use either without knowing where training happens.
    Commands go to the worker through a WorkerClient; its ticks keep this mirror's History and status. A worker
    that dies marks the run failed with the cause; the mirror keeps the charts. No streamlit here.
    """

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
        self._start_pending = False  # started here, its Start not yet handed to the worker (Stop cancels it)
        self._start_done = threading.Event()  # the Start was answered, failed or cancelled: commands may follow
        self._spawn = -1  # WorkerClient.spawns when started: a later spawn is another process
        self._last_tick = time.monotonic()
        # (when, seconds waited) of the latest command the worker did not answer in time; None once it answers
        # again or a newer tick arrives: a slow process is said to be slow, never dead (FailureKind decides).
        self._unanswered: tuple[float, float] | None = None
        self._has_models = False
        self._data = None
        self._lock = threading.Lock()
        self._copy_cache: tuple | None = None  # (sample point, eval-mode G) of the latest generator_copy
        self._notes: tuple[str, ...] = ()  # said on every page as long as the run lives (add_note)
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

    @classmethod
    def attached(cls, client, config: Config, *, name: str, step: int = 0, autosave_dir: str = "",
                 autosave_root: str = "") -> RemoteTrainer:
        """The mirror of a run another app server started on the same cluster (client: attached to its actor).
        Started already: its ticks bring the whole history, then what it gains; commands go to the same actor.
        ``step``: where it was when published (a run brought back from an autosave starts there, not at 0)."""
        run = cls(client, config, name=name, autosave_dir=autosave_dir, autosave_root=autosave_root)
        run._started = True
        run._spawn = client.spawns
        run._start_done.set()
        run._status = replace(run._status, state=RunState.LOADING, step=step,
                              reason="following the run another app server started")
        client.register(run)
        return run

    # --- commands (any thread) -----------------------------------------------------------------------
    def start(self, paused: bool = False, stop_at_step: int | None = None) -> None:
        """Returns at once, like Trainer.start: the run shows LOADING (why: the status's reason) and a thread hands
        it to the worker, which may still be importing torch after a restart. Pressing Start or Continue must not
        hold the page (nor the registry, which every viewer reads) for that long; a failure shows as FAILED."""
        if stop_at_step is not None:
            raise ValueError("stop_at_step is for the in-process Trainer (CLI, bench)")
        with self._lock:
            if self._started:
                raise RuntimeError("this run was already started; use resume, or reset for a new run")
            self._started = self._start_pending = True
        self.client.register(self)
        if self._resume_state is not None:
            self.history.load_state_dict(self._resume_state["history"])  # charts at once, before the first tick
        self.on_status(replace(self._status, state=RunState.LOADING, reason=WAITING_FOR_WORKER), -0.5)
        threading.Thread(target=self._send_start, args=(paused,), daemon=True, name=f"gan-start-{self.name}").start()

    def _send_start(self, paused: bool) -> None:
        sent = False
        try:
            self._wait_for_worker()
            resume = None
            if self._resume_state is not None:
                import torch

                buf = io.BytesIO()
                torch.save(self._resume_state, buf)
                resume = buf.getvalue()
            with self._lock:
                if not self._start_pending:
                    return  # stopped or reset while the worker was starting: nothing to send
                self._start_pending = False  # from here a Stop waits for the Start and stops the run in the worker
                cmd = p.Start(self.name, self.config.to_dict(), paused, tuple(self._actions), resume,
                              self.dataset_fallback, self._max_rate, self.autosave_dir, self.autosave_root)
            self._spawn = self.client.spawns  # the worker process this run lives in (it answered the Ping)
            sent = True
            self._command(cmd)
        except WorkerError as exc:
            if exc.kind.process_gone:
                self.on_worker_death(str(exc), exc.kind)
            elif not sent:  # alive but never answered a Ping in START_PATIENCE_S: the run never reached it
                self._fail(FailureKind.WORKER_UNRESPONSIVE, str(exc))
            # else: the Start is in the worker's queue and runs when it catches up; its ticks will say so
        except Exception as exc:  # noqa: BLE001 — the worker refused it (a checkpoint it cannot load): say why
            self._fail(FailureKind.ERROR, f"the training process could not start it: {exc}")
        finally:
            self._start_done.set()

    def _wait_for_worker(self) -> None:
        """Ping until the worker answers. One that is alive but still starting is waited for (up to
        START_PATIENCE_S), saying so, never declared dead for being slow; one that died fails the run at once."""
        began = time.monotonic()
        while True:
            try:
                self.client.call(p.Ping())
                return
            except WorkerError as exc:
                waited = time.monotonic() - began
                queued = self.client.waiting_for()  # a cluster with no free slot: a queue, waited for without end
                if (exc.kind != FailureKind.WORKER_UNRESPONSIVE or not self.client.alive()
                        or (waited >= START_PATIENCE_S and queued is None) or not self._start_pending):
                    raise
                self.on_status(replace(self._status, reason=queued or f"{WAITING_FOR_WORKER}, still starting after "
                                       f"{waited:.0f} s on a busy computer"), -0.5)

    def _cancel_start(self, reason: str) -> bool:
        """Stop or Reset before the Start went to the worker: the run ends here, the worker never gets it."""
        with self._lock:
            if not self._start_pending:
                return False
            self._start_pending = False
            self._status = replace(self._status, state=RunState.STOPPED, reason=reason)
            self._stamp = float("inf")  # final, like a dead worker's
        return True

    def pause(self, reason: str = "") -> None:
        self._call(p.Pause(self.name, reason))

    def resume(self) -> None:
        self._call(p.Resume(self.name))

    def step(self, n: int = 1, which: StepTarget | str = StepTarget.both) -> None:
        self._call(p.Step(self.name, *check_step(n, which)))

    def stop(self, timeout: float = 1.0, clean: bool = True) -> bool:
        """Stop the run in the worker; True when its thread ended within the timeout (or nothing runs)."""
        if not self._started or not self.is_alive():
            return True
        if self._cancel_start("stopped before the training process had started it"):
            return True
        try:
            stopped = self._call(p.Stop(self.name, timeout, clean), timeout=timeout + self.client.call_timeout)
        except WorkerError as exc:
            # gone: so is the run. Not answering: the Stop waits in its queue, but the run still trains for now
            return exc.kind.process_gone
        return True if stopped is None else bool(stopped)

    def forget(self, timeout: float = 5.0) -> None:
        """Reset: stop the run and drop it from the worker and the tick reader."""
        self.client.forget(self.name)
        if self._cancel_start("reset before the training process had started it"):
            return
        self._start_done.wait(START_PATIENCE_S + 2 * CALL_TIMEOUT_S)  # the Forget must follow the Start
        if self._started and self.client.alive():
            try:
                self.client.call(p.Forget(self.name, timeout), timeout=timeout + CALL_TIMEOUT_S)
            except WorkerError:
                pass

    def change(self, *changes: LiveChange) -> None:
        """Live changes, checked here (LiveCommands' setters call LiveChange.checked) before anything is sent."""
        self._call(p.Change(self.name, tuple(changes)))

    def set_max_rate(self, steps_per_sec: float | None) -> None:
        check_max_rate(steps_per_sec)
        with self._lock:
            if not self._started or self._start_pending:
                self._max_rate = steps_per_sec  # sent with the Start: the page's click never waits for the worker
                return
        self._call(p.SetMaxRate(self.name, steps_per_sec))

    def schedule(self, after_step: int, kind: Knob | str, value) -> None:
        change = LiveChange.checked(kind, value)
        if self._started:
            self._call(p.Schedule(self.name, int(after_step), change.knob, change.value))
        else:
            self._actions.append((int(after_step), change.knob, change.value))

    def _call(self, cmd: p.Command, timeout: float | None = None):
        if self._started:  # a command follows the Start (the worker does not know the run before it)
            self._start_done.wait(START_PATIENCE_S + 2 * CALL_TIMEOUT_S)
        if self._status.failure.process_gone or self._spawn != self.client.spawns:
            # Its process is gone: a fresh worker does not know this run. Commands that steer a live run
            # are no-ops on a dead one (as on a stopped Trainer); reads that need its weights cannot work.
            if isinstance(cmd, (p.Step, p.Snapshot, p.GeneratorWeights)):
                raise RuntimeError(f"run {self.name!r} has no training process any more "
                                   f"({self._status.reason or 'it ended'})")
            return None
        return self._command(cmd, timeout)

    def _command(self, cmd: p.Command, timeout: float | None = None):
        """client.call, and what its WorkerError means for this run, decided by its kind: a process that ended
        fails the run for good; one that did not answer in time is only said to be not answering (the command
        stays queued there, the run goes on), until it answers or ticks again. Either way the caller gets it."""
        try:
            value = self.client.call(cmd, timeout=timeout)
        except WorkerError as exc:
            if exc.kind.process_gone:
                self.on_worker_death(str(exc), exc.kind)
            else:
                with self._lock:
                    self._unanswered = (time.monotonic(), self.client.call_timeout if timeout is None else timeout)
            raise
        with self._lock:
            self._unanswered = None  # it answered
        return value

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

    def add_note(self, text: str) -> None:
        """A note every page shows with this run's banners (a run brought back after its cluster node was lost)."""
        with self._lock:
            self._notes = (*self._notes, text)

    def status(self) -> RunStatus:
        with self._lock:
            status = self._status
            silent = time.monotonic() - self._last_tick
            unanswered = self._unanswered
            if self._notes:
                status = replace(status, warnings=(*self._notes, *status.warnings))
        if unanswered is not None and status.is_live:
            status = replace(status, warnings=(
                *status.warnings, f"The training process is not answering: a command got no reply within "
                f"{unanswered[1]:.0f} s (it is busy or starved of CPU). The run is not lost: the charts go on "
                "when it catches up, and this note goes away by itself."))
        elif status.state == RunState.RUNNING and silent > SILENT_S:  # ticks come 5 times a second
            status = replace(status, warnings=(
                *status.warnings, f"No news from the training process for {silent:.0f} s: it may be frozen or "
                "starved of CPU. The charts show the last step it reported."))
        return status

    @property
    def data(self):
        """The run's dataset, loaded in this process too (the metrics monitor scores against it)."""
        if self._data is None and self._has_models:

            self._data = cached_dataset(self.dataset_name, self.config.data_dir, "cpu", self.config.data_path)
        return self._data

    def generator_copy(self):
        """An eval-mode CPU copy of G, taken at a step boundary in the worker; the average's BatchNorm statistics
        (gan.core.models.standing_statistics, ~0.2 s) are computed here, once per sample point: the Samples
        pages of a room and the quality monitor share one, each gets its own copy of it."""

        import torch


        point = self.step_count // self.config.sample_every
        with self._lock:
            cached = self._copy_cache
        if cached is None or cached[0] != point:
            weights = torch.load(io.BytesIO(self._call(p.GeneratorWeights(self.name))), map_location="cpu",
                                 weights_only=True)
            G, _ = build_models(self.model_kind, self.config.latent_dim, self.config.width)
            G.load_state_dict(weights)
            G = ready_to_sample(G, self.config.latent_dim, ema=self.config.ema > 0)
            cached = (point, G)
            with self._lock:
                self._copy_cache = cached
        return copy.deepcopy(cached[1])

    def state_dict(self) -> dict:
        """Everything to continue this run later (the worker's Trainer.state_dict, via torch.save)."""
        import torch

        return torch.load(io.BytesIO(self._call(p.Snapshot(self.name))), map_location="cpu", weights_only=True)

    # --- from the client (gan.worker.client.WorkerClient): replies and its tick reader -------------------
    def on_status(self, status: RunStatus, stamp: float) -> None:
        """A status taken in the worker at ``stamp``; kept unless a newer one arrived first. IDLE is the worker's
        run between its registration there and its start (a tick may catch it): this run is loading, not idle."""
        with self._lock:
            if stamp >= self._stamp and status.state != RunState.IDLE:
                self._status, self._stamp = status, stamp

    def on_tick(self, tick: p.Tick) -> None:
        """Mirror one tick: what the run's History gained, its latest diagnostics and status."""
        if tick.full_history is not None and tick.status.state == RunState.LOADING and self._resume_state is not None:
            # A continued run's history is here since start(); the worker's is empty until its setup reads the same
            # checkpoint (then equal to this one): copying it meanwhile would blank the charts for the whole load.
            pass
        elif tick.full_history is not None:
            import torch

            self.history.load_state_dict(torch.load(io.BytesIO(tick.full_history), weights_only=True))
        elif tick.delta is not None:
            self.history.apply(tick.delta)
        self.last_manual_step, self.last_stats = tick.last_manual_step, tick.last_stats
        self._has_models = tick.has_models
        with self._lock:
            self._last_tick = time.monotonic()
            if self._unanswered is not None and tick.stamp > self._unanswered[0]:
                self._unanswered = None  # taken after the command timed out: the process runs again
        self.on_status(tick.status, tick.stamp)

    def on_worker_death(self, cause: str, kind: FailureKind = FailureKind.WORKER_DIED) -> None:
        """The worker process (or, on a cluster, its node) is gone: the run is failed for good (a late tick changes
        nothing); a lost node's run is continued from its autosave by the registry, as a new run."""
        self._fail(kind, cause)

    def _fail(self, failure: FailureKind, cause: str) -> None:
        with self._lock:
            if not self._status.is_live:
                return
            reason = f"{cause}; training stopped at step {self._status.step:,}, the charts keep what it did"
            self._status = replace(self._status, state=RunState.FAILED, reason=reason, failure=failure,
                                   pause_cause=PauseCause.NONE, steps_per_sec=0.0)
            self._stamp = float("inf")  # final: a late tick or reply from the dead process changes nothing
        self.history.add_event(self._status.step, "failed", reason)
