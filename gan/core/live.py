"""The live vocabulary: what a manual step updates (StepTarget) and what may change while a run trains (Knob,
LiveChange, with the one validator). Must not apply a change: gan.engine.training_state does, at a step boundary.

Used by every kind of run (gan.engine.run), the worker's wire messages, checkpoints (a run's planned changes),
the coach's advice, the presets' scripted changes and the controller. Both enums are str enums whose member names
are their values: `Knob.lr_g == "lr_g"` and they hash alike (Enum hashes a member by its name), so a dict keyed
by the plain strings of an older checkpoint finds them too. Checkpoints store the plain strings (`str(knob)`):
torch.load(weights_only=True) reads no enums.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, NamedTuple

from gan.core.config import Config
from gan.core.losses import get_loss


class StepTarget(str, Enum):
    """Which network a manual step updates."""

    both = "both"  # (1) update D, (2) update G, as a training step does
    d = "d"  # D only: watch D learn to tell the same fakes apart
    g = "g"  # G only: watch G chase a fixed D

    def __str__(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        """The words the pages use for it."""
        return {"both": "D and G", "d": "D only", "g": "G only"}[self.value]

    @property
    def updates_d(self) -> bool:
        return self is not StepTarget.g

    @property
    def updates_g(self) -> bool:
        return self is not StepTarget.d

    @classmethod
    def checked(cls, which) -> StepTarget:
        """StepTarget(which), with a sentence naming the choices for anything else."""
        try:
            return cls(which)
        except ValueError:
            raise ValueError(f"which must be both, d or g, not {which!r}") from None


class Knob(str, Enum):
    """A setting that may change while a run trains, at the next step boundary."""

    loss = "loss"  # a gan.core.losses name
    lr_g = "lr_g"  # G's learning rate (Adam's lr)
    lr_d = "lr_d"  # D's learning rate
    d_steps = "d_steps"  # D updates per G update

    def __str__(self) -> str:
        return self.value


class LiveChange(NamedTuple):
    """One live change: the knob and its new value (a tuple: hashable inside a frozen RunStatus or Diagnosis)."""

    knob: Knob
    value: Any

    @classmethod
    def checked(cls, knob, value) -> LiveChange:
        """The one validator: ValueError for a knob that cannot change live, the config's own ConfigError (field
        named) for a bad value; the value comes back in its type (str loss, float rate, int D steps)."""
        try:
            knob = Knob(knob)
        except ValueError:
            raise ValueError(f"cannot change {knob!r} live; choose loss, lr_g, lr_d or d_steps") from None
        if knob is Knob.loss:
            get_loss(value)  # ValueError naming the known losses
            return cls(knob, str(value))
        Config(**{knob.value: value})  # the config's own range check: ConfigError(field, reason)
        return cls(knob, int(value) if knob is Knob.d_steps else float(value))

    def plain(self) -> tuple[str, Any]:
        """(str, value): what a checkpoint stores."""
        return str(self.knob), self.value
