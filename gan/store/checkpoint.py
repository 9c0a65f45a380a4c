"""Save and load whole runs. Loading never runs code: torch.load(weights_only=True), then validation.
Must not run code from a file or start a run; the Trainer continues what it loads.

A checkpoint holds G, D, both Adam states, the config, the step, the live settings and the history
(plain lists and tensors only). Anything else — a hostile pickle, a truncated file, a foreign
.pt — raises CheckpointError with one line that says what is wrong.
"""

import os
import pickle
import struct
import zipfile
from pathlib import Path

import torch

from gan.core.config import Config, ConfigError
from gan.core.live import LiveChange
from gan.core.losses import LOSSES
from gan.engine.trainer import Trainer
from gan.store.storage import torch_save_atomic

FORMAT = "gan-live-checkpoint/1"
REQUIRED = ("format", "config", "step", "loss", "lr_g", "lr_d", "d_steps", "G", "D", "opt_g", "opt_d",
            "history", "fixed_noise", "rng")
# The one size cap for a checkpoint, on disk or uploaded (st.file_uploader gets the same): a CPU run with its
# history is ~15 MB, the biggest model here ~20 MB; anything far larger is not ours.
MAX_MB = 100
MAX_BYTES = MAX_MB * 1024 * 1024


class CheckpointError(ValueError):
    """The file is not a usable GAN Live checkpoint."""


def save_checkpoint(trainer, path: str | os.PathLike, metrics: dict | None = None) -> Path:
    """Write atomically (gan.store.storage): a crash mid-save never leaves a half-written checkpoint.

    ``metrics``: the run's quality rows as plain columns (gan.quality.monitor.quality_columns), kept under
    state["metrics"] so the Compare page can draw a snapshot's score curve.
    """
    state = trainer.state_dict()
    if metrics:
        state["metrics"] = metrics
    return torch_save_atomic(state, path)


def load_checkpoint(source) -> dict:
    """Read and validate a checkpoint from a path or a binary file object; returns its state dict."""
    name = str(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "upload")
    try:
        if isinstance(source, (str, os.PathLike)):
            if not Path(source).is_file():
                raise CheckpointError(f"{name}: no such file")
            if Path(source).stat().st_size > MAX_BYTES:
                raise CheckpointError(f"{name}: larger than {MAX_BYTES // 2**20} MB, not a GAN Live checkpoint")
        state = torch.load(source, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError:
        unsafe = _unsafe_globals(source)
        if unsafe:  # a pickle that names a function or class to call: never run it
            raise CheckpointError(f"{name}: refused, the file asks to run code ({', '.join(unsafe)[:160]})") from None
        raise CheckpointError(f"{name}: not a readable checkpoint (not a torch file, or corrupt)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError,
            TypeError, AttributeError, struct.error) as exc:  # what torch's readers raise on arbitrary bytes
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{name}: not a readable checkpoint (truncated or not a torch file: {first[:160]})") from None
    validate_state(state, name)
    return state


def _unsafe_globals(source) -> list[str]:
    """The functions and classes a torch file's pickle names beyond what weights_only allows (torch reads the
    opcodes without running them); [] when there are none or the file cannot be read that far."""
    try:
        if not isinstance(source, (str, os.PathLike)):
            source.seek(0)
        return torch.serialization.get_unsafe_globals_in_checkpoint(source)
    except Exception:  # noqa: BLE001 — not a zip of a pickle: the caller says "not readable"
        return []


def validate_state(state, name: str = "checkpoint") -> Config:
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{name}: not a GAN Live checkpoint (expected format {FORMAT})")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"{name}: incomplete checkpoint, missing {', '.join(missing)}")
    try:
        config = Config.from_dict(dict(state["config"], device="auto"))
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{name}: its config is invalid ({exc})") from None
    if state["loss"] not in LOSSES:
        raise CheckpointError(f"{name}: unknown loss {state['loss']!r}")
    if not isinstance(state["step"], int) or state["step"] < 0:
        raise CheckpointError(f"{name}: invalid step {state['step']!r}")
    for key in ("G", "D", "G_ema"):  # G_ema: optional (saved when the run averages G)
        if key not in state:
            continue  # pragma: no mutate (only G_ema may be missing, and it is last: break ends the loop as well)
        sd = state[key]
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise CheckpointError(f"{name}: {key} is not a state dict of tensors")
    scheduled = state.get("scheduled", [])
    try:
        for at, kind, value in scheduled:
            if not isinstance(at, int) or at < 0:
                raise ValueError(f"step {at!r}")
            LiveChange.checked(kind, value)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{name}: invalid scheduled change ({exc})") from None
    noise = state["fixed_noise"]
    if not isinstance(noise, torch.Tensor) or noise.ndim != 2 or noise.shape[1] != config.latent_dim:
        raise CheckpointError(f"{name}: fixed_noise does not match latent_dim {config.latent_dim}")
    return config


def trainer_from_checkpoint(state: dict, *, device: str = "auto", name: str = "run", **trainer_kwargs):
    """A Trainer that continues the saved run (same step count, optimisers and history) when started.

    The models are built and loaded before this returns, so a checkpoint whose tensors do not fit
    its own config is refused here with a clear error instead of failing later in the thread.
    """

    config = Config.from_dict(dict(state["config"], device=device))
    trainer = Trainer(config, name=name, **trainer_kwargs)
    try:
        trainer.check_resume_state(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"checkpoint does not fit its own config: {first[:200]}") from None
    trainer.set_resume_state(state)
    return trainer
