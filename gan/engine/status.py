"""A run's status vocabulary: its state, why it is paused or failed, and RunStatus, one consistent reading of a run.
Must not do anything: plain typed values every layer reads (pages, CLI, bench, the worker and its proxy).

Apart from the worker's wire messages (gan.worker.messages), which carry these but are not needed to read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from gan.core.diagnosis import Diagnosis


class RunState(str, Enum):
    """Where a run is. A str enum: RunState.RUNNING == "running", so logs and f-strings stay readable."""

    IDLE = "idle"  # built, not started
    LOADING = "loading"  # dataset and models being prepared
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


LIVE_STATES = (RunState.LOADING, RunState.RUNNING, RunState.PAUSED)  # a training thread exists in these


class PauseCause(str, Enum):
    """Why a run is paused: pages pick their banner from this, never from the reason's wording."""

    NONE = ""  # not paused
    USER = "user"  # Pause pressed (or the CLI/bench paused it)
    READY = "ready"  # started paused: waiting for Step or Resume
    SCHEDULE = "schedule"  # reached the step it was asked to stop at
    NAN = "nan"  # a loss became NaN/inf or diverged; the weights were rolled back

    def __str__(self) -> str:
        return self.value


class FailureKind(str, Enum):
    """Why a run failed."""

    NONE = ""
    ERROR = "error"  # an exception inside training (the message says which)
    DATA = "data"  # the dataset could not be loaded
    WORKER_DIED = "worker_died"  # the training process ended under the run (killed, out of memory, crash)
    WORKER_UNRESPONSIVE = "worker_unresponsive"  # the training process stopped answering commands
    NODE_LOST = "node_lost"  # a Ray cluster lost the node the run trained on (it comes back from its autosave)

    def __str__(self) -> str:
        return self.value

    @property
    def process_gone(self) -> bool:
        """The run's training process no longer exists (it ended, or its node did): nothing there to command."""
        return self in (FailureKind.WORKER_DIED, FailureKind.NODE_LOST)



# --- a run's status: Trainer.status(), RemoteTrainer.status(), SavedRun.status() ----------------------
@dataclass(frozen=True, kw_only=True)
class RunStatus:
    """One consistent reading of a run, taken under its lock: what every page, the CLI and the bench show.

    Frozen and made of plain values (str enums, numbers, strings, tuples) because it crosses threads and
    processes: a reader can keep it without copying, the worker compares it with the last one it sent
    (no change, no tick) and pickles it into Ticks and Replies. Keyword-only: read and built by name.
    To derive one (the proxy's "no news" warning, a dead worker), use dataclasses.replace.
    """

    name: str  # the run's name: the registry's key and its autosave folder's name
    state: RunState  # where the run is; pages branch on this (and the two causes), never on the reason
    reason: str = ""  # why it is in that state, in words for people ("paused from the dashboard", the error)
    step: int  # training steps done, including those of the checkpoint it continued from
    pause_cause: PauseCause = PauseCause.NONE  # why it is paused (NONE unless PAUSED): picks the banner
    failure: FailureKind = FailureKind.NONE  # why it failed (NONE unless FAILED): data, error or a dead worker
    steps_per_sec: float = 0.0  # recent speed; 0 unless running and the rate window is fresh
    elapsed: float = 0.0  # seconds spent training, pauses and loading excluded (the CLI's --seconds counts it)
    device: str  # where the weights live ("cpu", "cuda"): resolved, never "auto"
    model: str  # "mlp" | "dcgan": resolved, never "auto"
    dataset: str  # what it trains on: mnist5k when the asked-for one was unavailable (warnings say so)
    dataset_source: str = ""  # where the images came from (gan.core.data.Dataset.source); "" until loaded
    loss: str  # the loss in use now (a gan.core.losses name); a switch not yet applied is in pending
    lr_g: float  # G's learning rate now
    lr_d: float  # D's learning rate now
    d_steps: int  # D updates per G update
    max_rate: float | None = None  # the slow-motion throttle in steps/s; None: full speed
    warnings: tuple[str, ...] = ()  # shown but not stopping the run: dataset fallback, autosave failing
    # Live changes given but not applied yet, as (kind, value) pairs (kind: loss, lr_g, lr_d, d_steps).
    # They take effect at the next step boundary; a page shows them at once so a click is not undone by
    # the next refresh. Pairs rather than a dict so the status stays immutable and hashable.
    pending: tuple[tuple[str, Any], ...] = ()
    scheduled: tuple[tuple[int, str, Any], ...] = ()  # planned changes (after_step, kind, value), by step
    # A run from before a restart, shown from its autosave until the presenter continues it (SavedRun):
    # it reads STOPPED, and this picks the "interrupted" banner instead of "Stopped".
    interrupted: bool = False
    diagnosis: Diagnosis | None = None  # the coach's latest reading (every sample_every steps); None until the first

    @property
    def is_live(self) -> bool:
        """A training thread exists (loading, running or paused): settings fixed at start are locked."""
        return self.state in LIVE_STATES
