"""Named starting points for a run: PRESETS maps a name to a Preset.
Must not start runs: the Train page, the CLI and presets_check apply a Preset.

A preset is config overrides on top of Config() (the tuned default) plus, optionally, live actions
that the dashboard or CLI applies when the run reaches a step (e.g. "switch to MSE at step 2000").
To add one (failure modes, comparisons), add an entry to PRESETS; names are lowercase keys.
"""

from dataclasses import dataclass, field

from gan.core.config import Config
from gan.core.diagnosis import Condition
from gan.core.live import Knob, LiveChange


@dataclass(frozen=True)
class LiveAction:
    at_step: int  # apply when the run has done this many steps
    kind: Knob  # what changes
    value: object  # new loss name, learning rate or D steps per G step


@dataclass(frozen=True)
class Claim:
    """A number the preset's text promises, checked at its check step by tests/test_presets.py."""

    metric: str  # a field of gan.workshop.presets_measure.Measurement
    op: str  # ">" or "<"
    value: float
    why: str  # the words of the description this number backs
    # How far every run of the sweep (5 seeds x 1 and 2 torch threads) must clear the line, in the metric's
    # units: the cushion for a processor we never ran on. None: a tenth of the line.
    cushion: float | None = None

    @property
    def needed(self) -> float:
        return abs(self.value) / 10 if self.cushion is None else self.cushion

    def room(self, measured: float) -> float:
        """How far ``measured`` clears the line (negative: the claim fails; NaN counts as failing)."""
        if measured != measured:  # NaN
            return float("-inf")
        return measured - self.value if self.op == ">" else self.value - measured


@dataclass(frozen=True)
class Preset:
    name: str  # the key in PRESETS, used by the CLI (--preset NAME)
    label: str  # short text for a select box
    description: str  # one sentence: what you will see and why
    config: dict = field(default_factory=dict)  # Config overrides: fields that differ from Config()
    actions: tuple = ()  # LiveAction, in step order
    # About 60 s of one laptop CPU thread for this preset (measured here: the MLP pair ~77 steps/s, ~31
    # with 3 D steps per G step; the DCGAN pair ~23): the step where its claims must hold. A step count,
    # not seconds, so the check is the same run on any machine.
    check_steps: int = 0
    claims: tuple = ()  # Claim, what the description promises in numbers
    # What the coach (gan.core.coach) must name on this run: a "diagnosis_step" Claim says by when.
    diagnosis: Condition | None = None

    def plan(self) -> list[tuple[int, str, object]]:
        """The live actions as Trainer.schedule arguments: the Train page, the CLI and the checks all use
        this, and the trainer fires each once at its step (with no tab open, and across a resume)."""
        return [(a.at_step, a.kind, a.value) for a in self.actions]


# The textbook baseline, spelled out in full (not taken from Config()'s defaults), so retuning the
# defaults never changes the baseline or the failure modes built on it.
TEXTBOOK = {"model": "mlp", "width": 256, "latent_dim": 64, "batch_size": 64, "lr_g": 2e-4, "lr_d": 2e-4,
            "beta1": 0.5, "beta2": 0.999, "d_steps": 1, "loss": "bce", "ema": 0.0}  # the raw G, as in the paper

# Four failure/rescue presets share one strong D (3 D steps per G step at 10x G's learning rate) and differ
# in G's loss (mode collapse also in G's noise): the room sees the loss decide the outcome. The stall is that D
# with the minimax loss.
STRONG_D = {**TEXTBOOK, "lr_d": 2e-3, "d_steps": 3}
MINIMAX_STALL = {**STRONG_D, "loss": "minimax"}
STALLED_FIRST = Claim("d_fake_before", "<", 0.1, "starts as the minimax stall")  # both rescues promise it

def _coached(condition: Condition, by_step: int, metric: str = "diagnosis_step") -> Claim:
    """The coach names ``condition`` by ``by_step`` (the check step: about a minute of one CPU thread)."""
    return Claim(metric, "<", by_step + 1, f"the coach says {condition.value.replace('_', ' ')}")


# When the rescues switch G's loss. The stall must be complete by then on every processor: at step 800 D(fake)
# was 0.00-0.08 on three seeds here but 0.13 for seed 0 on another CPU (the same seed, another trajectory);
# by 1,000 it was 0.000 on every trajectory we traced, so 1,200 leaves a cushion (docs/workshop.md: the claims table).
RESCUE_AT = 1200


def _rescue(name: str, loss: str, label: str, description: str, *claims: Claim) -> Preset:
    """The minimax stall, switched to ``loss`` at RESCUE_AT by the trainer itself; it first claims the stall,
    and that the coach calls it before the switch; checked 1,000 steps after the switch."""
    return Preset(name, label, description, MINIMAX_STALL, (LiveAction(RESCUE_AT, Knob.loss, loss),),
                  check_steps=RESCUE_AT + 1000,
                  claims=(STALLED_FIRST, _coached(Condition.VANISHING_GRADIENT, RESCUE_AT), *claims),
                  diagnosis=Condition.VANISHING_GRADIENT)


PRESETS: dict[str, Preset] = {
    "default": Preset(
        "default", "Default (tuned for a laptop CPU)",
        "The tuned setting: readable digits within about two minutes of CPU training.",
        {},
    ),
    "textbook": Preset(
        "textbook", "Textbook MLP GAN",
        "The classic fully connected GAN with the DCGAN paper's Adam (lr 2e-4, beta1 0.5), for comparison: "
        "it learns, but much more slowly than the default.",
        TEXTBOOK,
    ),
    # --- workshop failure modes, each the textbook baseline with a few changes. Each makes Claims at
    # check_steps (~60 s of one laptop CPU thread); tests/test_presets.py checks them, and
    # `python -m gan.workshop.presets_check --seeds 0 1 2 --markdown` prints docs/workshop.md's table.
    "d_too_strong": Preset(
        "d_too_strong", "Failure: D too strong (lr_D = 100 × lr_G)",
        "Watch D(real) run to 1 and D(fake) to 0 while D's loss drops far below 0.693 and G's loss climbs "
        "past 3: D wins, and most samples stay grey noise, not digits.",
        {**TEXTBOOK, "lr_g": 2e-5, "lr_d": 2e-3},
        check_steps=4000,
        claims=(Claim("d_real", ">", 0.9, "D(real) runs to 1", cushion=0.02),  # a fifth of the way to 1
                Claim("d_fake", "<", 0.1, "D(fake) to 0"),
                Claim("loss_g", ">", 3.0, "G's loss climbs past 3"),
                Claim("not_digit", ">", 0.5, "most samples stay grey noise, not digits"),
                _coached(Condition.D_WINNING, 4000)),
        diagnosis=Condition.D_WINNING,
    ),
    "minimax_stall": Preset(
        "minimax_stall", "Failure: saturating minimax G loss (strong D)",
        "D takes 3 steps per G step at 20× G's learning rate: within seconds D(fake) sinks to 0, G's loss "
        "ln(1 − D(G(z))) flattens at 0 and G's gradient vanishes (BCE's would be large), so the samples stay "
        "noise: G never learns to draw a digit.",
        # G at half the rescues' rate: with 2e-4 one run of 10 (seed 0, 2 threads) never stalled (D(fake)
        # wandered 0.04-0.12 for 1,800 steps and G learned digits); at 1e-4 D(fake) was 0.000 by step 200 on
        # every traced run. The rescues keep 2e-4: they need G to move once its loss is switched.
        {**MINIMAX_STALL, "lr_g": 1e-4},
        check_steps=1800,
        claims=(Claim("d_fake", "<", 0.05, "D(fake) sinks to 0"),
                Claim("loss_g", ">", -0.05, "G's loss flattens at 0"),
                Claim("g_grad_ratio", "<", 0.05, "G's gradient vanishes: under 5 % of BCE's on the same models"),
                # Not "the grid freezes": Adam divides by the gradient's own size, so a gradient of 1e-4 still
                # moves G at full speed (one run of 10 changed 0.17 per 500 steps); only below Adam's eps (1e-8,
                # D(fake) ~1e-8 on 8 runs) does it stop. What every run shows is that no digit forms.
                Claim("grid_digits", "<", 0.2, "the samples stay noise (the classifier finds a digit in "
                      "under a fifth of the cells)", cushion=0.04),
                _coached(Condition.VANISHING_GRADIENT, 1800)),
        diagnosis=Condition.VANISHING_GRADIENT,
    ),
    "mode_collapse": Preset(
        "mode_collapse", "Failure: mode collapse (strong D, BCE)",
        "The same strong D, with BCE, and a G that draws from 8 noise numbers instead of 64: G survives but "
        "retreats to the one digit it can draw well enough to fool D. Within a minute most of the 64 cells show "
        "the same digit, the classifier agrees, and the coverage alarm fires.",
        # With 64 noise numbers the collapse was partial on 2 of 10 runs (another seed or thread count: the
        # cells stayed apart, 5-7 classes); with 8 every run of the sweep collapsed to one or two classes.
        {**STRONG_D, "latent_dim": 8},
        check_steps=2000,
        claims=(Claim("grid_similarity", ">", 0.4, "the cells look alike (64 random real digits: 0.30, at most 0.34)"),
                Claim("grid_digits", ">", 0.8, "the classifier reads them as digits"),
                Claim("grid_top2", ">", 0.75, "most cells show the same one or two digits"),
                Claim("collapse_alarm", ">", 0.5, "the coverage alarm fires"),
                _coached(Condition.MODE_COLLAPSE, 2000)),
        diagnosis=Condition.MODE_COLLAPSE,
    ),
    "bce_rescue": _rescue(
        "bce_rescue", "bce", f"Rescue: the minimax stall, then BCE at step {RESCUE_AT:,}",
        f"Starts as the minimax stall and switches to BCE (non-saturating) at step {RESCUE_AT:,}: D(fake) climbs off 0 "
        "at once and most of the grid turns into digits within a minute — BCE's slope stays near 1 where minimax's "
        "is 0. "
        "D is still strong, so they lean towards a few classes (see Mode collapse).",
        Claim("recovery_steps", "<", 300, "D(fake) climbs off 0 at once"),
        # 0.69-0.98 over 5 seeds x 1/2 threads: "most", not "all" (some seeds keep a few blurred cells)
        Claim("grid_digits", ">", 0.6, "most cells turn into digits"),
    ),
    "lsgan_rescue": _rescue(
        "lsgan_rescue", "mse", f"Rescue attempt: the minimax stall, then MSE at step {RESCUE_AT:,}",
        f"Starts as the minimax stall and switches to MSE at step {RESCUE_AT:,} (the lines jump to 0.25): MSE on D's "
        "sigmoid saturates too, so G gets under a fifth of the gradient BCE would give it on the same models, "
        "and D(fake) does not climb back the way it does under BCE. Compare the BCE rescue.",
        # MSE's slope at D(fake) = s is about 2s, BCE's about 1: 0.00-0.04 on 9 of 10 runs, 0.14 on one where
        # D(fake) sat at 0.06, so the claim is a fifth, not a tenth
        Claim("g_grad_ratio", "<", 0.2, "under a fifth of the gradient BCE would give"),
        _coached(Condition.VANISHING_GRADIENT, RESCUE_AT + 1000, "diagnosis_after_switch"),
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def preset_config(name: str, **changes) -> Config:
    """Config() with the preset's overrides, then ``changes`` (e.g. seed, device) on top."""
    return Config(**{**get_preset(name).config, **changes})


def validate_presets() -> None:
    """Every preset builds a valid Config and only valid live changes (run by the tests)."""
    for key, p in PRESETS.items():
        if key != p.name:
            raise ValueError(f"preset {key!r} has name {p.name!r}")
        preset_config(key)
        for a in p.actions:
            LiveChange.checked(a.kind, a.value)  # ValueError for an unknown knob or a bad value
