"""Owns a run's background thread: start, pause, manual steps, stop and pace at step boundaries; step count, timing.
Must not touch what a step does (data, models, losses, checkpoint contents): the subclass's (gan.engine.trainer)."""

import logging
import threading
import time
from collections import deque
from contextlib import contextmanager

from gan.core.config import device_unsupported_reason
from gan.core.data import DataUnavailable
from gan.core.live import StepTarget
from gan.engine.control import RunControl, check_step
from gan.engine.history import History
from gan.engine.run import LiveCommands, Waiting
from gan.engine.status import FailureKind, PauseCause, RunState, RunStatus

log = logging.getLogger(__name__)


class ThreadedRun(LiveCommands, Waiting):
    """A run trained step by step in a background thread, steerable while it runs.

    Threading contract: commands (pause, loss switch, lr change, ...) only set fields of a RunControl
    (gan.engine.control); the thread applies them at the next step boundary, so a step never sees a
    half-applied change. The thread never touches any UI; readers use ``status()`` and ``history.snapshot()``.

    The subclass contract: override ``_setup()`` (runs first in the thread), ``_train_step(which, manual,
    changes)`` (one step, under the step lock; True asks for an autosave after it), ``has_models()`` and
    ``write_autosave(clean)``. A subclass uses only the underscore methods below, never the fields.
    """

    device = "cpu"  # where its steps run, in torch's words; gan.engine.trainer's is its config's resolved device

    def __init__(self, name: str, history: History | None = None, autosave=None):
        self.name = name
        self.history = history or History()
        # gan.store.autosave.Autosaver or None: the run keeps itself on disk every 30 s of training and on pause,
        # stop and loss switch, so a crash loses at most that (dashboard runs, `gan train --out`).
        self.autosave = autosave
        self._control = RunControl()  # guards commands and state; step_count is published under its cond
        self._step_lock = threading.Lock()  # held for the duration of each training step
        # Readers waiting for the step boundary (_step_boundary). A Lock is not fair: the training thread, holding
        # the GIL, took it back before a waiting reader woke, so a copy of G waited 1-20 s (22-367 steps). The
        # loop now lets every waiting reader through before its next step (_let_readers_through).
        self._readers = 0
        self._readers_done = threading.Condition()
        self._thread: threading.Thread | None = None
        self.step_count = 0
        self._active_seconds = 0.0  # time spent running, pauses excluded
        self._rate_window: deque[tuple[float, int]] = deque(maxlen=64)
        self._autosave_pending = False  # a step asked for an autosave (a loss switch, a NaN pause)

    # --- commands (any thread) ---------------------------------------------------------------
    def start(self, paused: bool = False, stop_at_step: int | None = None) -> None:
        with self._control.cond:
            if self._thread is not None:
                raise RuntimeError("this run was already started; use resume, or reset for a new run")
            self._control.begin(paused, stop_at_step)
            self._thread = threading.Thread(target=self._main, name=f"gan-trainer-{self.name}", daemon=True)
            self._thread.start()

    def pause(self, reason: str = "", cause: PauseCause = PauseCause.USER) -> None:
        """Hold training. Returns after the step in flight has finished, so step_count is final."""
        if not self._control.request_pause(reason, cause):
            return
        if threading.current_thread() is not self._thread:
            with self._step_lock:  # wait for the step boundary
                pass
        self.history.add_event(self.step_count, "pause", reason or "paused")
        self.write_autosave()

    def resume(self, until_step: int | None = None) -> None:
        """Run on; with ``until_step``, pause again (cause SCHEDULE) once that many steps are done."""
        if self._control.request_resume(until_step):
            self.history.add_event(self.step_count + 1, "resume", "")

    def step(self, n: int = 1, which: StepTarget | str = StepTarget.both) -> None:
        """Queue n manual steps; only while paused. which: both, d (D only) or g (G only)."""
        self._control.queue_steps(*check_step(n, which))

    def stop(self, timeout: float = 1.0, clean: bool = True) -> bool:
        """Stop and join the thread; True when it ended within the timeout.

        clean=False: the run is being interrupted (the server shuts down), not finished: its last autosave
        is not marked as a clean stop, so the next start of the app offers to continue it.
        """
        self._control.request_stop(clean)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def forget(self, timeout: float = 1.0) -> None:
        """Reset: stop the run; nothing else holds it (a worker-process run also leaves the worker)."""
        self.stop(timeout)

    def schedule(self, after_step: int, kind: str, value) -> None:
        """Apply a live change once the run has done `after_step` steps (presets: "MSE at step 1200").

        kind is a Knob (loss, lr_g, lr_d or d_steps); the value is checked now (LiveChange.checked), not when it fires.
        """
        self._control.schedule(after_step, kind, value)

    def set_max_rate(self, steps_per_sec: float | None) -> None:
        self._control.set_max_rate(steps_per_sec)

    # --- reading (any thread) -------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._control.state

    @property
    def scheduled(self) -> list[tuple[int, str, object]]:
        """Live changes still to fire: (after step, kind, value), soonest first."""
        return self._control.scheduled()

    @property
    def active_seconds(self) -> float:
        """Seconds spent running (pauses excluded)."""
        return self._active_seconds

    @property
    def run_dir(self):
        """The folder this run autosaves into (gan.store.autosave), or None."""
        return None if self.autosave is None else self.autosave.run_dir

    @property
    def paused_waits(self) -> int:
        """How many times the training thread has gone to sleep paused with nothing queued. A paused run
        that looked again (woken by a command) and took no step counts one more: tests wait for it as the
        proof that nothing happens, where a fixed wait would prove nothing on a busy machine."""
        return self._control.paused_waits

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def has_models(self) -> bool:
        return False

    def write_autosave(self, clean: bool = False) -> bool:
        return False

    # --- for subclasses -------------------------------------------------------------------------
    def _status(self, **fields) -> RunStatus:
        """One consistent RunStatus: the state, step and pace read under the lock, plus the subclass's fields."""
        c = self._control
        with c.cond:
            now = time.time()
            window = list(self._rate_window)
            rate = 0.0
            if c.state == RunState.RUNNING and len(window) >= 2 and now - window[-1][0] < 2.0:
                (t0, s0), (t1, s1) = window[0], window[-1]
                rate = (s1 - s0) / max(t1 - t0, 1e-9)
            return RunStatus(name=self.name, state=c.state, reason=c.reason, step=self.step_count,
                             pause_cause=c.pause_cause, failure=c.failure, steps_per_sec=rate,
                             elapsed=self._active_seconds, max_rate=c.max_rate, pending=c.pending(),
                             scheduled=tuple(c.scheduled()), **fields)

    def _queue_changes(self, changes) -> None:
        """Live changes (LiveChange, checked) for the next step boundary, all at the same one."""
        self._control.queue_changes(changes)

    @contextmanager
    def _step_boundary(self):
        """Hold the step boundary: no step runs meanwhile (read or copy the weights)."""
        with self._readers_done:
            self._readers += 1
        try:
            with self._step_lock:
                yield
        finally:
            with self._readers_done:
                self._readers -= 1
                self._readers_done.notify_all()

    def _let_readers_through(self) -> None:
        """Between two steps (training thread): wait until the readers waiting for the boundary had it."""
        with self._readers_done:
            self._readers_done.wait_for(lambda: self._readers == 0)

    def _publish_step(self, step: int) -> None:
        """Count a finished step; call it last, so whoever sees the new count also sees what the step added."""
        with self._control.cond:
            self.step_count = step
            self._rate_window.append((time.time(), step))

    def _halt(self, reason: str, cause: PauseCause) -> None:
        """Pause from inside a step (a non-finite loss); the queued manual steps are dropped."""
        self._control.halt(reason, cause)

    def _require_unstarted(self, what: str) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{what} must come before start()")

    def _restore_progress(self, step: int, active_seconds: float, scheduled) -> None:
        """Continue a saved run's count, training time and live changes still to fire (in _setup)."""
        self.step_count, self._active_seconds = step, active_seconds
        self._control.load_schedule(scheduled)

    def _setup(self) -> None:
        raise NotImplementedError

    def _train_step(self, which: str, manual: bool, changes: dict) -> bool:
        raise NotImplementedError

    # --- the training thread ----------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._setup()
            self._control.mark_ready()
            self._loop()
            if self.has_models():
                self.write_autosave(clean=self._control.clean_stop)  # a Stop: the run is complete on disk
        except Exception as exc:  # never a silently dead thread: the reason is shown
            reason, kind, explained = self._failure(exc)
            self._control.fail(reason, kind)
            self.history.add_event(self.step_count, "failed", reason)
            if explained:  # an expected condition whose reason says what to do: no traceback
                log.warning("run %s: %s", self.name, reason)
            else:
                log.error("run %s failed", self.name, exc_info=True)
        finally:
            self._control.finish()

    def _failure(self, exc: Exception) -> tuple[str, FailureKind, bool]:
        """The FAILED reason and kind for an exception of the training thread, and whether the reason says it all.

        Typed, never by message: DataUnavailable (its message is the whole story); an operation the run's device
        lacks (Apple's MPS raises NotImplementedError), told with what to do; anything else by type and message."""
        if isinstance(exc, DataUnavailable):
            return str(exc), FailureKind.DATA, True
        unsupported = device_unsupported_reason(self.device, exc)
        if unsupported is not None:
            return unsupported, FailureKind.ERROR, True
        return f"{type(exc).__name__}: {exc}", FailureKind.ERROR, False

    def _loop(self) -> None:
        last = time.monotonic()
        while True:
            nxt = self._control.next_step(self.step_count)
            if nxt is None:
                return
            if nxt.woke_at is not None:
                last = nxt.woke_at  # paused time does not count as elapsed
            now = time.monotonic()
            self._active_seconds += now - last
            last = now
            with self._step_lock:  # readers of the weights (checkpoints, sampling) wait for the boundary
                if self._train_step(nxt.which, nxt.manual, nxt.changes):
                    self._autosave_pending = True
            self._let_readers_through()
            if self.autosave is not None and (self._autosave_pending or self.autosave.due(self._active_seconds)):
                self._autosave_pending = False
                self.write_autosave()
            target = self._control.take_stop_at(self.step_count)
            if target is not None:  # once: Resume goes on past it
                self.pause(f"reached step {target}", PauseCause.SCHEDULE)
            self._control.throttle()
