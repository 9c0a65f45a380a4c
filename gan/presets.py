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
        # Spelled out in full, so retuning the defaults never changes the baseline.
        {"model": "mlp", "width": 256, "latent_dim": 64, "batch_size": 64, "lr_g": 2e-4, "lr_d": 2e-4,
         "beta1": 0.5, "beta2": 0.999, "d_steps": 1, "loss": "bce"},
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
