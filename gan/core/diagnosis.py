"""The coach's vocabulary: the conditions it can name and one reading (Diagnosis) of a run at one step.
Must not do anything: plain frozen values that pickle across the worker pipe and into checkpoints.

gan.core.coach makes them; RunStatus (gan.engine.status) carries the latest; history keeps one per sample point.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gan.core.live import Knob, LiveChange


class Condition(str, Enum):
    """What the coach (gan.core.coach) says a run is doing; pages and tests branch on this, never on words."""

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
    # The advice as live changes: the presenter applies them with one click. A tuple, not a dict, so the
    # Diagnosis stays hashable inside a RunStatus.
    changes: tuple[LiveChange, ...] = ()

    @property
    def alarm(self) -> bool:
        return self.condition in ALARMS

    def to_plain(self) -> list:
        """Plain values for a checkpoint (torch.load(weights_only=True) reads no dataclasses)."""
        return [self.condition.value, self.step, self.title, self.evidence, self.advice,
                [[str(knob), value] for knob, value in self.changes]]  # plain str: weights_only

    @classmethod
    def from_plain(cls, plain) -> Diagnosis:
        condition, step, title, evidence, advice, changes = plain
        return cls(Condition(condition), int(step), str(title), str(evidence), str(advice),
                   tuple(LiveChange(Knob(k), v) for k, v in changes))

    @property
    def sentence(self) -> str:
        """The whole diagnosis in one line: what the panel, the CLI and the chart's tooltip say."""
        return f"{self.title}: {self.evidence}" + (f" — {self.advice}" if self.advice else "")
