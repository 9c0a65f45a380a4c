"""Named starting points for a run: PRESETS maps a name to a Preset.

A preset is config overrides on top of Config() (the tuned default) plus, optionally, live actions
that the dashboard or CLI applies when the run reaches a step (e.g. "switch to MSE at step 2000").
To add one (failure modes, comparisons), add an entry to PRESETS; names are lowercase keys.
"""

from dataclasses import dataclass, field

from gan.config import Config

ACTION_KINDS = ("loss", "lr_g", "lr_d", "d_steps")  # the Trainer's live setters: set_loss, set_lr, set_d_steps


@dataclass(frozen=True)
class LiveAction:
    at_step: int  # apply when the run has done this many steps
    kind: str  # one of ACTION_KINDS
    value: object  # new loss name, learning rate or D steps per G step


@dataclass(frozen=True)
class Preset:
    name: str  # the key in PRESETS, used by the CLI (--preset NAME)
    label: str  # short text for a select box
    description: str  # one sentence: what you will see and why
    config: dict = field(default_factory=dict)  # Config overrides: fields that differ from Config()
    actions: tuple = ()  # LiveAction, in step order


# The textbook baseline, spelled out in full (not taken from Config()'s defaults), so retuning the
# defaults never changes the baseline or the failure modes built on it.
TEXTBOOK = {"model": "mlp", "width": 256, "latent_dim": 64, "batch_size": 64, "lr_g": 2e-4, "lr_d": 2e-4,
            "beta1": 0.5, "beta2": 0.999, "d_steps": 1, "loss": "bce"}

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
    # --- workshop failure modes (measured headless with `python -m gan.presets_check`; each shows its
    # effect within 60 s on a laptop CPU), each the textbook baseline with a few changes.
    "d_too_strong": Preset(
        "d_too_strong", "Failure: D too strong (lr_D = 100 × lr_G)",
        "Watch D(real) run to 1 and D(fake) to 0 while D's loss drops far below 0.693 and G's loss climbs "
        "to 3 or more: D wins, and the samples stay grey blobs.",
        {**TEXTBOOK, "lr_g": 2e-5, "lr_d": 2e-3},
    ),
    "minimax_stall": Preset(
        "minimax_stall", "Failure: saturating minimax G loss",
        "Watch G's loss creep up from −0.69 towards 0 as D learns to spot fakes: ln(1 − D(G(z))) goes flat, "
        "G's gradient fades and the samples stop improving.",
        {**TEXTBOOK, "lr_d": 2e-3, "loss": "minimax"},
    ),
    "mode_collapse": Preset(
        "mode_collapse", "Failure: mode collapse (G's lr 10×, high momentum)",
        "Watch the sample grid: within a minute all 64 cells turn into nearly the same stroke, "
        "while D(fake) sinks to 0 — G found one output that fooled D once and stays there.",
        {**TEXTBOOK, "lr_g": 2e-3, "beta1": 0.9},
    ),
    "lsgan_rescue": Preset(
        "lsgan_rescue", "Rescue attempt: minimax stall, then MSE at step 1200",
        "Starts as the minimax stall and switches to MSE at step 1200 (the lines jump to 0.25): watch D(fake) "
        "and G's loss — MSE on D's sigmoid saturates too, so G barely recovers; press BCE to see a real rescue.",
        {**TEXTBOOK, "lr_d": 2e-3, "loss": "minimax"},
        (LiveAction(1200, "loss", "mse"),),
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
    """Every preset builds a valid Config and names only known live actions (run by the tests)."""
    for key, p in PRESETS.items():
        if key != p.name:
            raise ValueError(f"preset {key!r} has name {p.name!r}")
        preset_config(key)
        for a in p.actions:
            if a.kind not in ACTION_KINDS:
                raise ValueError(f"preset {key!r}: unknown action kind {a.kind!r}")
