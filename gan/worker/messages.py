"""The worker's wire messages: the commands a page sends a run in the training process, the one Reply to each,
and the Ticks a run streams. Must not do anything: plain typed messages.

Sent by the server-side proxy (gan.worker.remote, through gan.worker.client) to the training process
(gan.worker.process). Everything here is plain data that pickles across a process pipe: no tensors (they travel
as torch.save bytes), no streamlit, no threads. The status they carry is gan.engine.status's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gan.core.live import Knob, LiveChange, StepTarget
from gan.core.step import StepReport, StepStats
from gan.engine.status import RunStatus


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
    autosave_dir: str = ""  # the run's folder for autosaves (gan.store.autosave); "" = none
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
    which: StepTarget = StepTarget.both


@dataclass(frozen=True)
class Stop(Command):
    timeout: float = 5.0
    clean: bool = True  # False: interrupted (server shutdown), the run stays offered to continue


@dataclass(frozen=True)
class Change(Command):
    """Live changes, checked by the sender (LiveChange.checked), applied at one step boundary."""

    changes: tuple[LiveChange, ...] = ()


@dataclass(frozen=True)
class SetMaxRate(Command):
    steps_per_sec: float | None = None


@dataclass(frozen=True)
class Schedule(Command):
    after_step: int = 0
    kind: Knob = Knob.loss
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


class Refusal(str, Enum):
    """Why a command was refused in the worker: the proxy raises the same kind of error again."""

    NONE = ""  # not refused
    CONFIG = "config"  # a ConfigError: ``field`` and ``message`` (its reason) rebuild it
    VALUE = "value"  # a bad argument: ValueError
    RUNTIME = "runtime"  # not possible now (a run not paused, not known): RuntimeError


@dataclass(frozen=True)
class Reply:
    """The answer to one Command."""

    request_id: int
    ok: bool
    value: object = None
    error: Refusal = Refusal.NONE
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
    last_manual_step: StepReport | None = None
    last_stats: StepStats | None = None
    has_models: bool = False
    stamp: float = 0.0  # time.monotonic() when status was taken (a system-wide clock, as Reply.stamp)
