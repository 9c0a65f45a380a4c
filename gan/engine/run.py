"""Owns the run interface: what every kind of run offers the registry, the controller, the pages, the CLI and the
bench, and the waiting every kind shares (written once, here; their argument checks are gan.engine.control's).
Must not hold any kind's own machinery (threads, the worker's pipes, files): the implementations do.

The kinds today:

- gan.engine.trainer.Trainer: trains in a thread of this process;
- gan.worker.remote.RemoteTrainer: trains in the worker process, mirrored here;
- gan.store.autosave.SavedRun: an interrupted run as it was saved, shown until it is continued (trains nothing).

Every kind is a `RunView` (what a page reads and the registry stops); the two that train are also a `Run` (the
commands). A participant's own run and a Ray actor (the next steps) add kinds: each implements these protocols,
and tests/test_run_protocol.py checks every implementation against them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from gan.core.config import Config
from gan.core.live import Knob, LiveChange, StepTarget
from gan.engine.control import poll_until
from gan.engine.history import History
from gan.engine.status import RunState, RunStatus


class Waiting:
    """wait_until for every kind of run (a mixin: the implementations inherit it)."""

    def wait_until(self, predicate, timeout: float = 10.0, poll: float = 0.005) -> bool:
        """Poll predicate(run) until true or timeout; for tests, the CLI and the bench, never the training loop."""
        return poll_until(lambda: predicate(self), timeout, poll)


class LiveCommands:
    """set_loss, set_lr and set_d_steps of every kind of run that trains, written once over its change() (a mixin)."""

    def change(self, *changes: LiveChange) -> None:
        raise NotImplementedError

    def set_loss(self, name: str) -> None:
        self.change(LiveChange.checked(Knob.loss, name))

    def set_lr(self, lr_g: float | None = None, lr_d: float | None = None) -> None:
        """Either or both learning rates; both take effect at the same step boundary."""
        asked = ((Knob.lr_g, lr_g), (Knob.lr_d, lr_d))
        changes = [LiveChange.checked(knob, lr) for knob, lr in asked if lr is not None]
        if changes:
            self.change(*changes)

    def set_d_steps(self, n: int) -> None:
        self.change(LiveChange.checked(Knob.d_steps, n))


# --- the protocols -----------------------------------------------------------------------------------------------
@runtime_checkable
class RunView(Protocol):
    """Every run, as the pages read it and the registry keeps it."""

    name: str
    config: Config
    history: History

    @property
    def state(self) -> RunState: ...

    @property
    def step_count(self) -> int: ...

    @property
    def loss(self) -> str: ...

    @property
    def run_dir(self) -> Path | None: ...

    @property
    def resume_state(self) -> dict | None: ...

    @property
    def scheduled(self) -> list: ...

    def status(self) -> RunStatus: ...

    def is_alive(self) -> bool: ...

    def has_models(self) -> bool: ...

    def stop(self, timeout: float = 1.0, clean: bool = True) -> bool: ...

    def forget(self, timeout: float = 1.0) -> None: ...

    def wait_until(self, predicate, timeout: float = 10.0, poll: float = 0.005) -> bool: ...


@runtime_checkable
class Run(RunView, Protocol):
    """A run that trains: the commands (each checks its arguments, with LiveChange.checked and gan.engine.control's
    check_* functions, before anything is sent or queued) and the reads that need its weights."""

    def start(self, paused: bool = False, stop_at_step: int | None = None) -> None: ...

    def pause(self, reason: str = "") -> None: ...

    def resume(self) -> None: ...

    def step(self, n: int = 1, which: StepTarget | str = StepTarget.both) -> None: ...

    def change(self, *changes: LiveChange) -> None: ...

    def set_loss(self, name: str) -> None: ...

    def set_lr(self, lr_g: float | None = None, lr_d: float | None = None) -> None: ...

    def set_d_steps(self, n: int) -> None: ...

    def set_max_rate(self, steps_per_sec: float | None) -> None: ...

    def schedule(self, after_step: int, kind: Knob | str, value) -> None: ...

    def generator_copy(self): ...

    def state_dict(self) -> dict: ...
