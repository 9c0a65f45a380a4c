"""The typed run protocol: states, pause causes, the commands a page sends and the ticks a run streams.
Must not do anything: plain typed messages shared by the page, the worker, the CLI and the bench.

Shared by the in-process Trainer (gan.engine.trainer), the training worker process (gan.engine.worker), its
server-side proxy (gan.engine.remote) and every reader of a run's RunStatus (pages, CLI, bench). Everything
here is plain data that pickles across a process pipe: no tensors (they travel as torch.save bytes),
no streamlit, no threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


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

    def __str__(self) -> str:
        return self.value


class Condition(str, Enum):
    """What the coach (gan.engine.coach) says a run is doing; pages and tests branch on this, never on words."""

    WARMING_UP = "warming_up"  # too few steps since the start or the last loss switch to judge
    LEARNING = "learning"  # nothing wrong: G and D are still moving
    NEAR_EQUILIBRIUM = "near_equilibrium"  # both losses at their equilibrium values for a while
    D_WINNING = "d_winning"  # D tells real from fake almost perfectly
    VANISHING_GRADIENT = "vanishing_gradient"  # a saturating G loss gives G next to no gradient
    MODE_COLLAPSE = "mode_collapse"  # the fixed-noise samples look alike
    DIVERGED = "diverged"  # a loss became NaN/inf: paused and rolled back

    def __str__(self) -> str:
        return self.value


ALARMS = (Condition.D_WINNING, Condition.VANISHING_GRADIENT, Condition.MODE_COLLAPSE, Condition.DIVERGED)


@dataclass(frozen=True)
class Diagnosis:
    """The coach's reading of a run at one step: one sentence with its evidence, and one suggested action."""

    condition: Condition
    step: int
    title: str  # a few words for the chart's marker and the panel's heading: "D is winning"
    evidence: str  # the numbers behind it: "D(real) 0.97, D(fake) 0.02, G's loss 4.1 (equilibrium 0.693)"
    advice: str = ""  # what to try, in words ("" when nothing needs doing)
    # The advice as live changes (kind, value), kinds as Trainer.schedule's: the presenter applies them with
    # one click. Pairs, not a dict, so the Diagnosis stays hashable inside a RunStatus.
    changes: tuple[tuple[str, Any], ...] = ()

    @property
    def alarm(self) -> bool:
        return self.condition in ALARMS

    def to_plain(self) -> list:
        """Plain values for a checkpoint (torch.load(weights_only=True) reads no dataclasses)."""
        return [self.condition.value, self.step, self.title, self.evidence, self.advice,
                [list(c) for c in self.changes]]

    @classmethod
    def from_plain(cls, plain) -> Diagnosis:
        condition, step, title, evidence, advice, changes = plain
        return cls(Condition(condition), int(step), str(title), str(evidence), str(advice),
                   tuple((str(k), v) for k, v in changes))

    @property
    def sentence(self) -> str:
        """The whole diagnosis in one line: what the panel, the CLI and the chart's tooltip say."""
        return f"{self.title}: {self.evidence}" + (f" — {self.advice}" if self.advice else "")


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
    dataset_source: str = ""  # where the images came from (gan.engine.data.Dataset.source); "" until loaded
    loss: str  # the loss in use now (a gan.engine.losses name); a switch not yet applied is in pending
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


# --- commands: page/registry -> worker ---------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    """A request for one run (``name``); the worker answers each with exactly one Reply."""

    name: str


@dataclass(frozen=True)
class Start(Command):
    config: dict  # Config.to_dict()
    paused: bool = False
    actions: tuple = ()  # (after_step, kind, value): Trainer.schedule before the thread starts
    resume: bytes | None = None  # torch.save bytes of a checkpoint state dict: continue that run ("load")
    dataset_fallback: bool = True  # dashboard semantics: an unavailable dataset falls back to mnist5k
    max_rate: float | None = None  # slow motion from the first step (steps/s; None: full speed)
    autosave_dir: str = ""  # the run's folder for autosaves (gan.engine.autosave); "" = none
    autosave_root: str = ""  # the runs folder whose size cap applies


@dataclass(frozen=True)
class Pause(Command):
    reason: str = ""


@dataclass(frozen=True)
class Resume(Command):
    pass


@dataclass(frozen=True)
class Step(Command):
    n: int = 1
    which: str = "both"  # both | d | g


@dataclass(frozen=True)
class Stop(Command):
    timeout: float = 5.0
    clean: bool = True  # False: interrupted (server shutdown), the run stays offered to continue


@dataclass(frozen=True)
class SetLoss(Command):
    loss: str = "bce"


@dataclass(frozen=True)
class SetLr(Command):
    lr_g: float | None = None
    lr_d: float | None = None


@dataclass(frozen=True)
class SetDSteps(Command):
    d_steps: int = 1


@dataclass(frozen=True)
class SetMaxRate(Command):
    steps_per_sec: float | None = None


@dataclass(frozen=True)
class Schedule(Command):
    after_step: int = 0
    kind: str = "loss"
    value: object = None


@dataclass(frozen=True)
class Snapshot(Command):
    """The whole run as checkpoint bytes (Trainer.state_dict through torch.save)."""


@dataclass(frozen=True)
class GeneratorWeights(Command):
    """G's state dict as torch.save bytes, taken at a step boundary (sampling and metrics elsewhere)."""


@dataclass(frozen=True)
class Forget(Command):
    """Stop the run if it is live and drop it from the worker (Reset)."""

    timeout: float = 5.0


@dataclass(frozen=True)
class Ping(Command):
    name: str = ""


@dataclass(frozen=True)
class Shutdown(Command):
    name: str = ""


@dataclass(frozen=True)
class Reply:
    """The answer to one Command. ``error`` names an exception type the proxy raises again."""

    request_id: int
    ok: bool
    value: object = None
    error: str = ""  # ValueError | RuntimeError | ConfigError | KeyError
    message: str = ""  # for a ConfigError its reason alone
    field: str = ""  # ConfigError's field
    status: RunStatus | None = None  # the run's status right after the command, so a page shows its effect
    stamp: float = 0.0  # time.monotonic() when status was taken: the proxy keeps the newer of reply and tick


# --- ticks: worker -> server ------------------------------------------------------------------------
@dataclass
class Tick:
    """What changed in one run since the previous tick (gan.engine.history.HistoryDelta), plus its status."""

    name: str
    status: RunStatus  # the worker Trainer's status(): the proxy's dataset, warnings and state come from it
    delta: object | None  # gan.engine.history.HistoryDelta; None when the mirror must load full_history
    full_history: bytes | None = None  # torch.save(History.state_dict()) when an increment is impossible
    last_manual_step: dict | None = None
    last_stats: dict | None = None
    has_models: bool = False
    stamp: float = 0.0  # time.monotonic() when status was taken (a system-wide clock, as Reply.stamp)
