"""Named snapshots of runs, for Compare and Branch: in memory, and on disk as gan.store.checkpoint files.
Must not train; it stores, loads, validates and branches checkpoint states.

A snapshot is a whole checkpoint (weights, optimisers, settings, history) saved under a name the
teacher chose ("bce-1200", "d-too-strong"). The Compare page overlays their histories; a branch is
a new Trainer that continues a snapshot with a different setting (another loss, learning rate,
...). Files live in ``<runs dir>/snapshots/<name>.pt`` and are read back with torch.load
(weights_only=True) and validated, so a snapshot directory copied from elsewhere cannot run code.

Uploads (a checkpoint through the browser) come in through ``load_upload``: size limit first,
then the same validated load, then a check that the tensors fit their own config.
"""

import io
import os
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path

import pandas as pd

from gan.core.config import Config, ConfigError
from gan.core.losses import get_loss
from gan.engine.history import History
from gan.store.checkpoint import (
    MAX_BYTES,
    MAX_MB,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    trainer_from_checkpoint,
)
from gan.store.storage import torch_save_atomic

DEFAULT_RUNS_DIR = "~/.cache/gan-live/runs"
MAX_UPLOAD_MB, MAX_UPLOAD_BYTES = MAX_MB, MAX_BYTES  # one cap for a checkpoint file, uploaded or on disk
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BRANCH_SETTINGS = ("loss", "lr_g", "lr_d", "d_steps")  # live settings a branch may change
BRANCH_CONFIG = ("batch_size", "sample_every")  # config fields that do not change the models' shapes
CURVES = ("loss_d", "loss_g", "d_real", "d_fake")


def runs_dir() -> Path:
    return Path(os.environ.get("GAN_LIVE_RUNS_DIR", DEFAULT_RUNS_DIR)).expanduser()


def check_name(name) -> str:
    """Snapshot names become file names: letters, digits, '-', '_', '.'; 1-64 characters."""
    if not isinstance(name, str) or not NAME_RE.match(name.strip()) or ".." in name:
        raise ValueError(f"snapshot name {name!r} is not allowed: use 1-64 letters, digits, '-', '_' or '.', "
                         "starting with a letter or digit (e.g. bce-step1200)")
    return name.strip()


def load_upload(upload, max_bytes: int = MAX_UPLOAD_BYTES) -> dict:
    """Validate a browser upload (st.file_uploader's UploadedFile or any binary file object).

    Refuses, with CheckpointError and one line that says why: a file over ``max_bytes`` (checked
    before anything is unpickled), a pickle that would run code, a file that is not a torch
    checkpoint, a foreign checkpoint, and a checkpoint whose tensors do not fit its own config.
    """
    buf = read_capped(upload, max_bytes)
    state = load_checkpoint(buf)
    trainer_from_checkpoint(state, device="cpu")  # builds and loads the models: refuses a misfit here
    return state


def read_capped(upload, max_bytes: int = MAX_UPLOAD_BYTES) -> io.BytesIO:
    """The upload's bytes, refused when over max_bytes (declared size first, then what was read) or empty."""
    name = getattr(upload, "name", None) or "upload"
    size = getattr(upload, "size", None)
    if size is None:
        pos = upload.tell()
        size = upload.seek(0, io.SEEK_END) - pos
        upload.seek(pos)
    if size > max_bytes:
        raise CheckpointError(f"{name}: {size / 2**20:.1f} MB is over the upload limit of "
                              f"{max_bytes / 2**20:.0f} MB; a GAN Live checkpoint is far smaller")
    data = upload.read(max_bytes + 1)  # never trust a declared size: read at most one byte past the cap
    if len(data) > max_bytes:
        raise CheckpointError(f"{name}: over the upload limit of {max_bytes / 2**20:.0f} MB")
    if not data:
        raise CheckpointError(f"{name}: the file is empty")
    buf = io.BytesIO(data)
    buf.name = name
    return buf


def history_frame(state: dict, run: str) -> pd.DataFrame:
    """A checkpoint's scalar history as a DataFrame with a ``run`` column (for overlaying runs)."""
    df = pd.DataFrame(state["history"]["scalars"])
    df.insert(0, "run", run)
    return df


def events_frame(state: dict, run: str) -> pd.DataFrame:
    ev = pd.DataFrame(state["history"]["events"])
    if ev.empty:
        ev = pd.DataFrame(columns=["step", "time", "kind", "detail"])
    ev.insert(0, "run", run)
    return ev


def metrics_frame(state: dict, run: str) -> pd.DataFrame:
    """Quality metrics saved with a run, long form (run, step, metric, value); empty when none.

    Reads state["metrics"]: a dict of equal-length lists with a "step" column, as SnapshotStore.save
    and gan.workshop.transfer.live_state write them (gan.quality.monitor.quality_columns).
    """
    raw = state.get("metrics")
    if not isinstance(raw, dict) or "step" not in raw:
        return pd.DataFrame(columns=["run", "step", "metric", "value"])
    try:
        df = pd.DataFrame(raw)
    except ValueError:
        return pd.DataFrame(columns=["run", "step", "metric", "value"])
    numeric = [c for c in df.columns if c != "step" and pd.api.types.is_numeric_dtype(df[c])]
    long = df.melt(id_vars="step", value_vars=numeric, var_name="metric")  # values in "value"
    long.insert(0, "run", run)
    return long


def replay_points(state: dict) -> list:
    """A saved run's sample points (gan.engine.history.SampleGrid: grid, that step's D outputs and the coach's
    reading where saved), oldest first, for the Compare page's replay."""

    history = History()
    history.load_state_dict(state["history"])
    return history.snapshot().grids


def summary(state: dict, run: str) -> dict:
    s = state["history"]["scalars"]
    last = {k: (s[k][-1] if s.get(k) else None) for k in CURVES}
    return {"run": run, "step": state["step"], "loss": state["loss"], "lr_g": state["lr_g"], "lr_d": state["lr_d"],
            "d_steps": state["d_steps"], **last}


class SnapshotStore:
    """Named checkpoints on disk, with the most recently used kept in memory. Thread-safe."""

    def __init__(self, root: str | os.PathLike | None = None,
                 keep_in_memory: int = 6):  # pragma: no mutate (a snapshot not in memory is read back: the same state)
        self.root = Path(root).expanduser() if root is not None else runs_dir() / "snapshots"
        self.keep_in_memory = keep_in_memory  # ~15 MB each for the CPU model
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, dict] = OrderedDict()

    def path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.pt"

    def names(self) -> list[str]:
        """Saved snapshots, oldest first."""
        if not self.root.is_dir():
            return []
        files = [p for p in self.root.glob("*.pt") if NAME_RE.match(p.stem)]
        return [p.stem for p in sorted(files, key=lambda p: (p.stat().st_mtime, p.stem))]

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def save(self, name: str, trainer, overwrite: bool = False, metrics: dict | None = None) -> Path:
        """Snapshot a trainer (running or paused: its state_dict waits for the step boundary).

        ``metrics``: its quality rows (gan.quality.monitor.quality_columns), for the Compare page's score curves.
        """
        path = self.path(name)
        if path.exists() and not overwrite:
            raise FileExistsError(f"a snapshot called {name!r} exists already; choose another name")
        if not trainer.has_models():
            raise RuntimeError("this run has not built its models yet; wait until it is running")
        save_checkpoint(trainer, path, metrics)
        with self._lock:
            self._memory.pop(check_name(name), None)  # re-read from disk on next use
        return path

    def add_state(self, name: str, state: dict, overwrite: bool = False) -> Path:
        """Store an already validated state (e.g. from load_upload) under a name."""
        path = self.path(name)
        if path.exists() and not overwrite:
            raise FileExistsError(f"a snapshot called {name!r} exists already; choose another name")
        torch_save_atomic(state, path)  # a crash never leaves half a snapshot
        self._remember(check_name(name), state)
        return path

    def load(self, name: str) -> dict:
        """The validated checkpoint state of a snapshot (from memory when recently used)."""
        name = check_name(name)
        with self._lock:
            if name in self._memory:
                self._memory.move_to_end(name)
                return self._memory[name]
        path = self.path(name)
        if not path.is_file():
            raise KeyError(f"no snapshot called {name!r}")
        state = load_checkpoint(path)
        self._remember(name, state)
        return state

    def delete(self, name: str) -> None:
        path = self.path(name)
        with self._lock:
            self._memory.pop(check_name(name), None)
        if path.exists():
            path.unlink()

    def _remember(self, name: str, state: dict) -> None:
        with self._lock:
            self._memory[name] = state
            self._memory.move_to_end(name)
            while len(self._memory) > self.keep_in_memory:
                self._memory.popitem(  # pragma: no mutate (last=None is falsy: the oldest goes, as with False)
                    last=False)

    # --- branch ---------------------------------------------------------------------------------
    def branch(self, name: str, *, run_name: str | None = None, device: str = "auto", **changes):
        """A new, not yet started Trainer that continues snapshot ``name`` with ``changes``.

        changes: any of loss, lr_g, lr_d, d_steps (live settings) and batch_size, sample_every
        (config). The snapshot itself is not modified. The branch's history keeps the snapshot's
        curve and marks the branch point with a "branch" event (and a "loss" event when the loss
        changes, so the charts draw the switch as they do for a live switch).
        """
        state = branch_state(self.load(name), name, **changes)
        return trainer_from_checkpoint(state, device=device, name=run_name or f"{name}-branch")


def branch_state(state: dict, source: str, **changes) -> dict:
    """A copy of a checkpoint state with changed settings; validated like a Config."""
    unknown = sorted(set(changes) - set(BRANCH_SETTINGS) - set(BRANCH_CONFIG))
    if unknown:
        raise ValueError(f"a branch can change {', '.join(BRANCH_SETTINGS + BRANCH_CONFIG)}; not {', '.join(unknown)}")
    changes = {k: v for k, v in changes.items() if v is not None}
    if "loss" in changes:
        get_loss(changes["loss"])  # clear error for an unknown loss
    probe = {k: changes.get(k, state[k]) for k in BRANCH_SETTINGS}
    config = dict(state["config"], **{k: v for k, v in changes.items() if k in BRANCH_CONFIG})
    try:
        Config.from_dict(dict(config, device="cpu", loss=probe["loss"], lr_g=probe["lr_g"], lr_d=probe["lr_d"],
                              d_steps=probe["d_steps"]))
    except ConfigError as exc:
        raise ValueError(f"branch setting rejected: {exc}") from None
    new = dict(state)  # shallow: tensors are shared read-only; the trainer copies them into its models
    new["config"] = config
    new["scheduled"] = []  # a branch is the presenter's own experiment: the source's pending plan stays behind
    def old_value(key):
        return state[key] if key in BRANCH_SETTINGS else state["config"][key]

    changed = {k: v for k, v in changes.items() if v != old_value(k)}
    detail = f"from {source} at step {state['step']}"
    if changed:
        detail += ": " + ", ".join(f"{k} {old_value(k)} → {v}" for k, v in changed.items())
    marks = [("branch", detail)]
    if "loss" in changed:
        marks.append(("loss", f"{state['loss']} → {changed['loss']}"))
    history = dict(state["history"])
    events = {k: list(v) for k, v in history["events"].items()}
    for kind, text in marks:  # recorded at the branch's first step, like a live change
        for key, value in (("step", int(state["step"]) + 1), ("time", time.time()), ("kind", kind), ("detail", text)):
            events[key].append(value)
    history["events"] = events
    new["history"] = history
    for k in BRANCH_SETTINGS:
        new[k] = probe[k]
    return new

