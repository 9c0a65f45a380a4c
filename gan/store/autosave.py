"""Autosaves: a live run keeps itself on disk, so a crash of the server or the worker loses ≤ 30 s.
Must not decide when a run trains or pauses; it only writes and finds saved states.

Each dashboard or CLI run with a run folder gets an ``Autosaver``. The Trainer calls it every
EVERY_S seconds of training and on pause, stop and loss switch; it writes the whole run (weights,
optimisers, RNG, step, config, the history with events and grids — Trainer.state_dict) as
``autosave-<step>.pt`` through gan.store.storage (atomic), keeps the newest KEEP files, and records in
``run.json`` whether the run ended cleanly. ``find_interrupted`` lists the runs that did not, newest
autosave first, skipping (and naming) a truncated or corrupt file. Nothing outside the runs folder is
read or written; loading stays weights_only. No streamlit.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gan.core.config import Config
from gan.engine.history import History
from gan.engine.run import Waiting
from gan.engine.status import RunState, RunStatus
from gan.store.checkpoint import CheckpointError, load_checkpoint
from gan.store.storage import StorageError, atomic_write, folder_bytes, torch_save_atomic

if TYPE_CHECKING:
    from gan.engine.status import RunStatus

EVERY_S = 30.0  # seconds of training between autosaves: the most a crash can lose
KEEP = 2  # autosaves kept per run: the newest, and one before it in case the newest is damaged
DEFAULT_CAP_MB = 2048  # the whole runs folder (GAN_LIVE_RUNS_MAX_MB): a laptop's disk is not ours to fill
FILE_RE = re.compile(r"^autosave-(\d{9})\.pt$")
RUN_FILE = "run.json"
QUALITY_FILE = "quality.json"
log = logging.getLogger(__name__)


def cap_bytes_from_env() -> int:
    raw = os.environ.get("GAN_LIVE_RUNS_MAX_MB", "").strip()
    try:
        mb = int(raw) if raw else DEFAULT_CAP_MB
    except ValueError:
        mb = 0
    if mb < 1:
        raise ValueError(f"GAN_LIVE_RUNS_MAX_MB must be a whole number >= 1, got {raw!r}")
    return mb * 2**20


def every_s_from_env() -> float:
    """GAN_LIVE_AUTOSAVE_S: seconds of training between autosaves (default 30; tests use less)."""
    raw = os.environ.get("GAN_LIVE_AUTOSAVE_S", "").strip()
    try:
        value = float(raw) if raw else EVERY_S
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"GAN_LIVE_AUTOSAVE_S must be a number of seconds > 0, got {raw!r}")
    return value


def new_run_dir(root: str | os.PathLike, name: str) -> Path:
    """A fresh folder for a run: <root>/<date-time>-<name>, unique even for two runs in one second."""
    root = Path(root).expanduser()
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = root / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()  # atomic: two app servers on one shared folder (a cluster) never get the same folder
            return path
        except FileExistsError:
            continue
    raise StorageError(f"{root}: no free folder name for {stem}")


class Autosaver:
    """Writes one run's autosaves. Called from the training thread (and pause from a command thread)."""

    def __init__(self, run_dir: str | os.PathLike, *, name: str, every_s: float | None = None, keep: int = KEEP,
                 cap_bytes: int | None = None, root: str | os.PathLike | None = None):
        self.run_dir = Path(run_dir)
        self.name = name
        self.every_s = every_s_from_env() if every_s is None else every_s
        self.keep = max(1, keep)
        self.cap_bytes = cap_bytes_from_env() if cap_bytes is None else cap_bytes
        self.root = Path(root) if root is not None else self.run_dir.parent  # the folder the cap covers
        self._lock = threading.Lock()
        self.last_saved_at = 0.0  # active seconds of the run at the last autosave (the first comes after every_s)
        self.saves = 0
        self.failures = 0
        self.last_error = ""

    def due(self, active_seconds: float) -> bool:
        return active_seconds - self.last_saved_at >= self.every_s

    def save(self, state: dict, *, clean: bool = False) -> Path:
        """Write one autosave of ``state`` (Trainer.state_dict); raises StorageError if it could not."""
        step = int(state["step"])
        path = self.run_dir / f"autosave-{step:09d}.pt"
        with self._lock:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                used = folder_bytes(self.root)
                if used > self.cap_bytes:
                    raise StorageError(f"the runs folder {self.root} holds {used / 2**20:.0f} MB, over its cap of "
                                       f"{self.cap_bytes / 2**20:.0f} MB (GAN_LIVE_RUNS_MAX_MB): delete old runs "
                                       "there, or raise the cap")
                if not (self.run_dir / RUN_FILE).exists():
                    # Before the first file: a run killed between its first autosave and run.json was not found
                    # to continue (find_interrupted reads run.json; seen when a worker was killed at once).
                    self._write_meta(step, False)
                torch_save_atomic(state, path)
                self._prune(path)
                self._write_meta(step, clean)
            except OSError as exc:
                # The next try comes every_s of training later, as the message says: not at every step (each
                # try walks the runs folder for the cap and may write megabytes).
                self.last_saved_at = float(state.get("active_seconds", 0.0))
                self.last_error = f"autosave of {self.name} at step {step:,} failed ({exc}); training goes on and " \
                                  f"the next autosave tries again in {self.every_s:g} s"
                # Counted after the message is set (the run's warning is last_error): a reader that sees the
                # new count sees the warning too.
                self.failures += 1
                raise StorageError(self.last_error) from exc
            self.last_saved_at = float(state.get("active_seconds", 0.0))
            self.last_error = ""  # before the count, for the same reason
            self.saves += 1
            return path

    def try_save(self, state: dict, *, clean: bool = False) -> bool:
        """save(), for a run that must go on when the disk fails: False (last_error says why) instead of raising."""
        try:
            self.save(state, clean=clean)
        except StorageError as exc:
            log.warning("%s", exc)
            return False
        return True

    def _prune(self, newest: Path) -> None:
        files = sorted(p for p in self.run_dir.iterdir() if FILE_RE.match(p.name) and p != newest)
        for old in files[: max(0, len(files) - (self.keep - 1))]:
            old.unlink(missing_ok=True)  # pragma: no mutate (listed under the lock: only a concurrent delete tells)

    def _write_meta(self, step: int, clean: bool) -> None:
        meta = {"format": "gan-live-run/1", "name": self.name, "step": step, "saved_at": time.time(),
                "clean_stop": bool(clean)}
        atomic_write(self.run_dir / RUN_FILE, json.dumps(meta).encode())


def write_quality(run_dir: str | os.PathLike, rows: list) -> None:
    """The quality monitor's rows beside the autosaves (they are scored in the server, not the worker)."""
    atomic_write(Path(run_dir) / QUALITY_FILE, json.dumps({"rows": [list(r) for r in rows]}).encode())


def read_quality(run_dir: str | os.PathLike) -> list:
    try:
        data = json.loads((Path(run_dir) / QUALITY_FILE).read_text())
        return [tuple(r) for r in data["rows"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


@dataclass(frozen=True)
class Interrupted:
    """A run that did not stop cleanly and can continue from an autosave."""

    run_dir: Path
    name: str
    step: int
    saved_at: float  # wall time of the autosave
    file: Path
    state: dict  # the validated checkpoint state
    skipped: tuple[str, ...] = ()  # damaged autosaves passed over, each "file: why"

    @property
    def saved_clock(self) -> str:
        return time.strftime("%H:%M", time.localtime(self.saved_at))


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def latest_valid(run_dir: str | os.PathLike, root: str | os.PathLike | None = None) -> tuple[Path, dict, list[str]]:
    """The newest autosave of a run folder that loads and validates; (file, state, skipped "file: why")."""

    run_dir = Path(run_dir)
    root = Path(root) if root is not None else run_dir.parent
    skipped: list[str] = []
    files = sorted((p for p in run_dir.iterdir() if FILE_RE.match(p.name)), reverse=True) if run_dir.is_dir() else []
    for path in files:
        if path.is_symlink() or not _inside(path, root):
            skipped.append(f"{path}: refused, a link or a file outside the runs folder")
            continue
        try:
            return path, load_checkpoint(path), skipped
        except CheckpointError as exc:
            skipped.append(str(exc))
    raise StorageError(f"{run_dir}: no readable autosave" + (f" ({'; '.join(skipped)})" if skipped else ""))


def find_interrupted(root: str | os.PathLike, limit: int = 1, accept=None) -> tuple[list[Interrupted], list[str]]:
    """Runs under ``root`` whose last autosave is newer than their last clean stop, newest first (at most
    ``limit``: each one is loaded and validated, ~4 MB, so the app does not load a whole history of old
    runs to show one), and one message per folder or file that was refused (garbage, links out of the
    folder, damaged autosaves). ``accept(name)``, when given, keeps only the runs it is true for (the presenter's
    offer leaves the lab's participant runs to the lab)."""
    root = Path(root).expanduser()
    candidates, notes = [], []
    if not root.is_dir():
        return [], notes
    for run_dir in sorted(root.iterdir()):
        if not run_dir.is_dir():
            continue
        if run_dir.is_symlink() or not _inside(run_dir, root):
            notes.append(f"{run_dir}: refused, a link out of the runs folder")
            continue
        meta_path = run_dir / RUN_FILE
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != "gan-live-run/1" or not isinstance(meta.get("clean_stop"), bool):
                raise ValueError("not a GAN Live run file")
        except (OSError, ValueError) as exc:
            notes.append(f"{meta_path}: skipped ({exc})")
            continue
        if not meta["clean_stop"] and (accept is None or accept(str(meta.get("name") or run_dir.name))):
            newest = max((p.stat().st_mtime for p in run_dir.iterdir() if FILE_RE.match(p.name)),
                         default=0.0)  # pragma: no mutate (0.0 or 1.0: no autosave sorts below every real file time)
            candidates.append((newest, run_dir, meta))
    found = []
    for _, run_dir, meta in sorted(candidates, key=lambda c: c[0], reverse=True):
        if len(found) >= limit:
            break
        try:
            path, state, skipped = latest_valid(run_dir, root)
        except StorageError as exc:
            notes.append(str(exc))
            continue
        notes.extend(skipped)
        found.append(Interrupted(run_dir, str(meta.get("name") or run_dir.name), int(state["step"]),
                                 path.stat().st_mtime, path, state, tuple(skipped)))
    return found, notes


def mark_clean(run_dir: str | os.PathLike) -> None:
    """Record that a run ended on purpose (Reset, a finished CLI run): it is no longer offered to continue."""
    path = Path(run_dir) / RUN_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    meta["clean_stop"] = True
    atomic_write(path, json.dumps(meta).encode())


class SavedRun(Waiting):
    """An interrupted run as it was saved: shown to everyone (charts, grid, status) until the presenter
    continues it, starts another or resets. It reads like a stopped Trainer and trains nothing."""

    def __init__(self, found: Interrupted):

        state = found.state
        self.found = found
        self.name = found.name
        self.config = Config.from_dict(dict(state["config"], device="auto"))
        self.history = History()
        self.history.load_state_dict(state["history"])
        self.dataset_name = self.config.dataset
        self.model_kind = self.config.resolved_model()
        self.last_manual_step = self.last_stats = None
        self.warnings = [f"skipped a damaged autosave: {note}" for note in found.skipped]
        self.autosave = None
        self._status = RunStatus(
            name=self.name, state=RunState.STOPPED, step=found.step, interrupted=True,
            reason=f"the app or its training process stopped at step {found.step:,}; autosaved at "
                   f"{found.saved_clock}",
            elapsed=float(state.get("active_seconds", 0.0)), device="cpu", model=self.model_kind,
            dataset=self.dataset_name, loss=state["loss"], lr_g=float(state["lr_g"]), lr_d=float(state["lr_d"]),
            d_steps=int(state["d_steps"]), warnings=tuple(self.warnings),
        )

    run_dir = property(lambda self: self.found.run_dir)
    state = property(lambda self: self._status.state)
    loss = property(lambda self: self._status.loss)
    step_count = property(lambda self: self.found.step)
    resume_state = property(lambda self: self.found.state)
    scheduled = property(lambda self: [])

    def status(self) -> RunStatus:
        return self._status  # frozen: handed out as is

    def is_alive(self) -> bool:
        return False

    def has_models(self) -> bool:
        return False  # nothing to sample from until it is continued

    def stop(self, timeout: float = 1.0, clean: bool = True) -> bool:  # pragma: no mutate (no thread: both unused)
        return True

    def forget(self, timeout: float = 1.0) -> None:  # pragma: no mutate (no thread to wait for: timeout is unused)
        pass
