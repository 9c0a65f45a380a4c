"""Owns a run's state machine and command mailbox (RunControl), live-change validation and poll_until.
Must not touch models, optimisers, the history, the disk or any thread but the caller's: state and queues only."""

import threading
import time
from collections import deque
from typing import NamedTuple

from gan.core.live import Knob, LiveChange, StepTarget
from gan.engine.status import FailureKind, PauseCause, RunState


def poll_until(condition, timeout: float, poll: float = 0.005) -> bool:
    """Check condition() every `poll` seconds until it holds or `timeout` passes; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return condition()


# --- the argument checks of every kind of run (gan.engine.run): a bad value raises before anything is sent or queued
# (a live change's check is LiveChange.checked, gan.core.live)
MAX_MANUAL_STEPS = 10_000  # per Step command: a typo must not queue a million steps
MAX_RATE = 100_000.0  # steps/s, the throttle's top (None: no throttle)


def check_step(n: int, which) -> tuple[int, StepTarget]:
    """The number of manual steps to take and on which network (ValueError for a bad count or target)."""
    target = StepTarget.checked(which)
    if not 1 <= int(n) <= MAX_MANUAL_STEPS:
        raise ValueError(f"n must be in [1, {MAX_MANUAL_STEPS}]")
    return int(n), target


def check_max_rate(steps_per_sec: float | None) -> float | None:
    if steps_per_sec is not None and not (0 < steps_per_sec <= MAX_RATE):
        raise ValueError(f"steps/s throttle must be in (0, {MAX_RATE:.0f}] or None")
    return steps_per_sec


class NextStep(NamedTuple):
    """What the training thread does next (RunControl.next_step)."""

    which: StepTarget
    manual: bool  # a Step pressed while paused (not the running loop)
    changes: dict[Knob, object]  # live changes to apply before this step
    woke_at: float | None  # time.monotonic() when a paused wait ended (paused time is not training time)


class RunControl:
    """The one lock of a run and everything behind it: state, reason, pause cause, failure, the stop flag,
    manual steps queued while paused, live changes for the next step boundary, the schedule, the throttle.

    Threading contract: commands (any thread) only set fields here, under ``cond``; the training thread
    takes them at the next step boundary (next_step), so a step never sees a half-applied change. A
    Trainer also publishes its step count under ``cond``, so one status() reading is consistent.
    """

    def __init__(self):
        self.cond = threading.Condition()  # reentrant: a holder may call the methods below
        self.state = RunState.IDLE
        self.reason = ""
        self.pause_cause = PauseCause.NONE  # typed: pages choose their banner from it, not from reason
        self.failure = FailureKind.NONE
        self.stop_requested = False
        self.clean_stop = True  # stop(clean=False) when the server goes down: the run stays continuable
        self.start_paused = False
        self.stop_at: int | None = None
        self.max_rate: float | None = None  # steps/s throttle (slow motion); None = full speed
        self._pending_steps: deque[StepTarget] = deque()  # manual steps while paused
        self._changes: dict[Knob, object] = {}  # live changes, applied at the next step boundary
        self._scheduled: list[tuple[int, Knob, object]] = []  # (after step, knob, value), sorted by step
        # Times the training thread went to sleep in next_step (paused, nothing queued), counted under cond
        # before each wait: "the loop looked, found nothing to do and did not step", which a test can wait
        # for instead of watching a fixed time go by. Only the paused path counts: nothing on the hot path.
        self.paused_waits = 0

    # --- commands (any thread) -------------------------------------------------------------------
    def begin(self, paused: bool, stop_at_step: int | None) -> None:
        with self.cond:
            self.stop_at = stop_at_step
            self.state = RunState.LOADING
            self.start_paused = paused

    def request_pause(self, reason: str, cause: PauseCause) -> bool:
        """RUNNING -> PAUSED; False (nothing done) in any other state."""
        with self.cond:
            if self.state != RunState.RUNNING:
                return False
            self.state, self.reason, self.pause_cause = RunState.PAUSED, reason or "paused", PauseCause(cause)
            self.cond.notify_all()
            return True

    def request_resume(self, until_step: int | None) -> bool:
        """PAUSED -> RUNNING (with ``until_step``: pause again there); False in any other state."""
        with self.cond:
            if self.state != RunState.PAUSED:
                return False
            if until_step is not None:
                self.stop_at = int(until_step)
            self.state, self.reason, self.pause_cause = RunState.RUNNING, "", PauseCause.NONE
            self.cond.notify_all()
            return True

    def queue_steps(self, n: int, which: StepTarget) -> None:
        with self.cond:
            if self.state != RunState.PAUSED:
                raise RuntimeError(f"step needs a paused run; this one is {self.state}")
            self._pending_steps.extend([which] * int(n))
            self.cond.notify_all()

    def request_stop(self, clean: bool) -> None:
        with self.cond:
            self.stop_requested = True
            self.clean_stop = clean
            self.cond.notify_all()

    def queue_changes(self, changes) -> None:
        """Live changes (LiveChange, validated by LiveChange.checked) for the next step boundary, all at the same
        one; a newer change of a knob replaces an older one."""
        with self.cond:
            self._changes.update((c.knob, c.value) for c in changes)
            self.cond.notify_all()

    def schedule(self, after_step: int, kind, value) -> None:
        change = LiveChange.checked(kind, value)
        with self.cond:
            self._scheduled.append((int(after_step), change.knob, change.value))
            self._scheduled.sort(key=lambda item: item[0])

    def load_schedule(self, items) -> None:
        """Replace the schedule (a resumed checkpoint's live changes still to fire)."""
        with self.cond:
            self._scheduled = sorted(((int(at), Knob(kind), value) for at, kind, value in items),
                                     key=lambda item: item[0])

    def set_max_rate(self, steps_per_sec: float | None) -> None:
        check_max_rate(steps_per_sec)
        with self.cond:
            self.max_rate = steps_per_sec
            self.cond.notify_all()

    # --- reading (any thread) --------------------------------------------------------------------
    def scheduled(self) -> list[tuple[int, Knob, object]]:
        """Live changes still to fire: (after step, knob, value), soonest first."""
        with self.cond:
            return list(self._scheduled)

    def pending(self) -> tuple:
        """Live changes given but not applied yet, as LiveChange tuples."""
        with self.cond:
            return tuple(LiveChange(knob, value) for knob, value in self._changes.items())

    # --- the training thread ---------------------------------------------------------------------
    def mark_ready(self) -> None:
        """Loading done: LOADING -> RUNNING, or PAUSED (cause READY) for a run started paused."""
        with self.cond:
            if self.state == RunState.LOADING:
                self.state = RunState.PAUSED if self.start_paused else RunState.RUNNING
                self.reason = "ready: press Step or Resume" if self.start_paused else ""
                self.pause_cause = PauseCause.READY if self.start_paused else PauseCause.NONE

    def next_step(self, step_count: int) -> NextStep | None:
        """Wait while paused with nothing queued; None once stop is requested. Fires the scheduled changes
        that are due after ``step_count`` steps (a live command given since wins over the plan)."""
        with self.cond:
            woke_at = None
            if not self.stop_requested and self.state == RunState.PAUSED and not self._pending_steps:
                while not self.stop_requested and self.state == RunState.PAUSED and not self._pending_steps:
                    self.paused_waits += 1
                    self.cond.wait()
                woke_at = time.monotonic()
            if self.stop_requested:
                return None
            manual = self.state == RunState.PAUSED
            which = self._pending_steps.popleft() if manual else StepTarget.both
            while self._scheduled and self._scheduled[0][0] <= step_count:
                _, kind, value = self._scheduled.pop(0)
                self._changes.setdefault(kind, value)
            changes, self._changes = self._changes, {}
            return NextStep(which, manual, changes, woke_at)

    def take_stop_at(self, step_count: int) -> int | None:
        """The step to stop at, once reached (then cleared: Resume goes on past it); else None."""
        with self.cond:
            if self.stop_at is None or step_count < self.stop_at:
                return None
            target, self.stop_at = self.stop_at, None
            return target

    def halt(self, reason: str, cause: PauseCause) -> None:
        """Pause from the training thread itself (a non-finite loss) and drop the queued manual steps."""
        with self.cond:
            self.state, self.reason, self.pause_cause = RunState.PAUSED, reason, PauseCause(cause)
            self._pending_steps.clear()

    def fail(self, reason: str, failure: FailureKind) -> None:
        with self.cond:
            self.state, self.reason, self.failure = RunState.FAILED, reason, failure
            self.pause_cause = PauseCause.NONE

    def finish(self) -> None:
        """The thread ends: STOPPED, unless it FAILED."""
        with self.cond:
            if self.state != RunState.FAILED:
                self.state, self.reason, self.pause_cause = RunState.STOPPED, "stopped", PauseCause.NONE
            self.cond.notify_all()

    def throttle(self) -> None:
        """Hold a running run to max_rate steps/s. Waits on the condition, not sleep: pause, stop and rate
        changes wake the thread at once."""
        with self.cond:
            rate = self.max_rate
            if rate is None or self.state != RunState.RUNNING:
                return
            deadline = time.monotonic() + 1.0 / rate
            while not self.stop_requested and self.state == RunState.RUNNING and self.max_rate == rate:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
