"""Owns the Train page's decisions: every action as a method returning a Notice (the form's mapping: workshop/form.py).
Must not touch streamlit, session state or the registry's private members: pages/train.py lays out, this decides."""

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from gan.core.config import FIELD_LABELS, Config, ConfigError
from gan.core.live import LiveChange, StepTarget
from gan.core.own_images import OwnImagesError, load_own_images
from gan.engine.status import LIVE_STATES, FailureKind, RunState
from gan.store.checkpoint import CheckpointError
from gan.store.storage import StorageError, atomic_write
from gan.viz.images import grid_png
from gan.worker.client import WorkerError
from gan.workshop import snapshots
from gan.workshop.form import LR_FIELDS, config_from_form, parse_int, parse_lr, throttle
from gan.workshop.presets import get_preset, preset_config
from gan.workshop.runs import RunLimitError, RunRegistry
from gan.workshop.transfer import upload_trainer

WAIT_S = 10.0  # how long Stop, Reset and a manual step wait for the training thread
OWN_UPLOAD_MB = 200  # your images: a .zip of a class's doodles is a few MB; a phone-photo folder maybe 100
OWN_SUFFIXES = (".zip", ".npz", ".idx")  # what the Train page's uploader takes (IDX files renamed to .idx)


class Kind(str, Enum):
    SUCCESS, ERROR, INFO = "success", "error", "info"


@dataclass(frozen=True)
class OwnUpload:
    """The result of uploading your images: where they were saved (Config.data_path) and a preview."""

    notice: "Notice"
    path: str = ""
    preview_png: bytes = b""  # 64 of the images as the GAN will see them (28x28, MNIST-like)
    summary: str = ""  # "96 images from …; 96 inverted (light background); 1 corrupt file skipped"


@dataclass(frozen=True)
class Notice:
    """What an action did, in words for the page, and the run it affected."""

    kind: Kind
    text: str
    run: object = None  # the run the action started or changed; None when there was none
    started: bool = False  # `run` is a new live run (the form should take its settings)
    field: str | None = None  # an error that belongs beside this form field...
    field_text: str = ""  # ...in these words

    @property
    def ok(self) -> bool:
        return self.kind is not Kind.ERROR


def _success(text: str, run=None, started: bool = False) -> Notice:
    return Notice(Kind.SUCCESS, text, run, started)


def _info(text: str, run=None) -> Notice:
    return Notice(Kind.INFO, text, run)


def _error(text: str, run=None, exc: ConfigError | None = None) -> Notice:
    return Notice(Kind.ERROR, text, run, field=exc.field if exc else None, field_text=exc.plain if exc else "")


def _worker_error(what: str, exc: WorkerError, run=None) -> Notice:
    """A command the training process did not take, in words its kind picks (a slow process is not a dead one)."""
    if exc.kind == FailureKind.WORKER_UNRESPONSIVE:
        return _error(f"{what}: the training process is not answering (busy, or starved of CPU); try again in a "
                      "moment. The run is kept, and the command may still apply when the process catches up.", run)
    return _error(f"{what}: {exc}", run)  # it ended: the run's banner says so too


# --- the actions ----------------------------------------------------------------------------------------
class TrainController:
    """Every Train-page action on one registry and snapshot store; ``base`` gives what the form does not set."""

    def __init__(self, registry: RunRegistry, store: snapshots.SnapshotStore, base: Config | None = None):
        self.registry, self.store, self.base = registry, store, base or Config()

    def current(self):  # the run this controller acts on: the presenter's (a participant's: gan.workshop.seat)
        return self.registry.current()

    def live(self):  # the current run while it is loading, running or paused; else None
        trainer = self.current()
        return trainer if trainer is not None and trainer.state in LIVE_STATES else None

    def _launched(self, trainer, max_rate, text: str) -> Notice:
        trainer.set_max_rate(throttle(max_rate))  # checked before the launch: cannot fail here
        return _success(text, trainer, started=True)

    def start(self, form: Mapping, max_rate=0) -> Notice:
        """Start a run from the form; a bad value is refused, naming its field, and nothing starts."""
        try:
            config = config_from_form(form, self.base)
            throttle(max_rate)
            live = self.live()
            if live is not None and live.config == config:
                # The same Start again (a click replayed by a slow first rerun on a busy server, or a second
                # tab with the same form): not a refusal, the run it asks for exists.
                return _info(f"{live.name} is already {live.state} with these settings.", live)
            trainer = self.registry.start(config)
        except ConfigError as exc:
            return _error(f"Not started: {exc.plain}", exc=exc)
        except (RunLimitError, WorkerError) as exc:  # a worker that cannot start is a message, not a traceback
            return _error(f"Not started: {exc}")
        return self._launched(trainer, max_rate, f"Started {trainer.name}.")

    def pause(self) -> Notice:
        trainer = self.live()
        if trainer is None or trainer.state != RunState.RUNNING:
            return _info("Nothing is running to pause.", trainer)
        try:
            trainer.pause("paused from the dashboard")  # returns at the step boundary: step_count is final
        except WorkerError as exc:
            return _worker_error("Not paused", exc, trainer)
        return _success(f"Paused {trainer.name} at step {trainer.step_count:,}.", trainer)

    def resume(self) -> Notice:
        trainer = self.live()
        if trainer is None or trainer.state != RunState.PAUSED:
            return _info("Nothing is paused to resume.", trainer)
        try:
            trainer.resume()
        except WorkerError as exc:
            return _worker_error("Not resumed", exc, trainer)
        return _success(f"Resumed {trainer.name}.", trainer)

    def pause_or_resume(self) -> Notice:  # the one Pause/Resume button
        trainer = self.live()
        return self.resume() if trainer is not None and trainer.state == RunState.PAUSED else self.pause()

    def step(self, which: StepTarget | str = StepTarget.both) -> Notice:
        """One manual step while paused (both networks, D only or G only), waited for so the page shows it."""
        trainer = self.live()
        if trainer is None or trainer.state != RunState.PAUSED:
            return _info("Pause the run first: stepping works on a paused run.", trainer)
        target, reason = trainer.step_count + 1, trainer.status().reason
        try:
            which = StepTarget.checked(which)
            trainer.step(1, which=which)
        except WorkerError as exc:  # before RuntimeError, which it is
            return _worker_error(f"Step {target:,} not taken", exc, trainer)
        except (RuntimeError, ValueError) as exc:  # resumed by another tab meanwhile, or a bad `which`
            return _error(f"Not stepped: {exc}", trainer)
        def done(t) -> bool:
            return t.last_manual_step is not None and t.last_manual_step.step == target
        # A NaN pause (which ends the step without a report) or a stop also ends the wait.
        trainer.wait_until(lambda t: done(t) or t.state != RunState.PAUSED or t.status().reason != reason,
                           timeout=WAIT_S)
        if done(trainer):
            return _success(f"Step {target:,} ({which.label}) done.", trainer)
        if trainer.state != RunState.PAUSED or trainer.status().reason != reason:  # the banner says why
            return _info(f"Step {target:,} ended early: {trainer.status().reason or trainer.state}", trainer)
        return _error(f"Step {target:,} did not finish within {WAIT_S:.0f} s.", trainer)

    def stop(self) -> Notice:
        trainer = self.current()
        if trainer is None:
            return _info("There is no run to stop.")
        if not trainer.stop(timeout=WAIT_S):
            return _error(f"{trainer.name} did not stop within {WAIT_S:.0f} s.", trainer)
        return _success(f"Stopped {trainer.name} at step {trainer.step_count:,}.", trainer)

    def reset(self) -> Notice:  # stop and forget every run (their folders stay on disk)
        self.registry.reset(timeout=WAIT_S)
        return _info("Reset: no run.")

    def continue_run(self, max_rate=0) -> Notice:
        """Continue the interrupted (or failed) run from its newest autosave, in its own folder."""
        live = self.live()
        if live is not None and self.registry.continue_offer() is None:  # a second click while it loads
            return _info(f"Nothing to continue: {live.name} is {live.state} already.", live)
        try:
            throttle(max_rate)
            trainer = self.registry.continue_run()
        except (ValueError, RunLimitError, WorkerError, OSError) as exc:  # CheckpointError is a ValueError
            return _error(f"Not continued: {exc}")
        return self._launched(trainer, max_rate, f"Continued {trainer.name} from step {trainer.step_count:,}.")

    # --- live settings --------------------------------------------------------------------------------
    def set_loss(self, loss: str) -> Notice:
        """Switch the live run's loss at its next step boundary (recorded as an event); else only the form's."""
        trainer = self.live()
        if trainer is None or not loss:
            return _info("No live run: the loss applies to the next Start.")
        try:
            trainer.set_loss(loss)
        except ValueError as exc:
            return _error(str(exc), trainer)
        except WorkerError as exc:
            return _worker_error("Loss not switched", exc, trainer)
        return _success(f"Loss → {loss} from the next step.", trainer)

    def set_lr(self, field: str, text) -> Notice:
        """A learning rate (lr_g or lr_d) typed in the form; a bad one names the field and changes nothing."""
        if field not in LR_FIELDS:
            raise ValueError(f"field must be one of {LR_FIELDS}, got {field!r}")
        try:
            lr = parse_lr(field, text)
        except ConfigError as exc:
            return _error(exc.plain, self.live(), exc)
        return self._set_live(f"{FIELD_LABELS[field]} → {lr:g}", lambda t: t.set_lr(**{field: lr}))

    def set_d_steps(self, value) -> Notice:
        try:
            n = parse_int("d_steps", value)
            Config(d_steps=n)
        except ConfigError as exc:
            return _error(exc.plain, self.live(), exc)
        return self._set_live(f"D steps per G step → {n}", lambda t: t.set_d_steps(n))

    def apply_advice(self, changes) -> Notice:
        """The coach's suggested action (Diagnosis.changes, as the presenter saw it) on the live run, all at its
        next step boundary. Every change is checked like the form's before any is applied: all or nothing."""
        trainer = self.live()
        if trainer is None:
            return _info("No live run: nothing to apply.")
        try:
            changes = tuple(LiveChange.checked(kind, value) for kind, value in changes)  # all, before any applies
            if not changes:
                raise ValueError("no change")
        except (ValueError, TypeError) as exc:  # ConfigError is a ValueError
            return _error(f"Not applied: not a coach action ({exc}).", trainer)
        try:
            trainer.change(*changes)
        except WorkerError as exc:
            return _worker_error("Coach's advice not applied", exc, trainer)
        said = ", ".join(f"{FIELD_LABELS[k]} → {v:g}" if isinstance(v, float) else f"{FIELD_LABELS[k]} → {v}"
                         for k, v in changes)
        return _success(f"Coach's advice applied: {said} from the next step.", trainer)

    def use_own_images(self, upload, max_bytes: int = OWN_UPLOAD_MB * 2**20) -> OwnUpload:
        """Your images uploaded from the Train page: checked like the CLI's --data (gan.core.own_images), kept
        in the runs folder under a content-hash name (the next Start reads them there, also in the worker), and a
        preview of 64. Anything unusable: an error that says why, and nothing is kept."""

        name = str(getattr(upload, "name", "") or "upload")
        suffix = next((s for s in OWN_SUFFIXES if name.lower().endswith(s)), None)
        if suffix is None:
            return OwnUpload(_error(f"{name}: give a .zip of PNG/JPEG images, an .npz or an IDX file (renamed .idx)"))
        data = upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            return OwnUpload(_error(f"{name}: over the upload limit of {max_bytes / 2**20:.0f} MB"))
        path = snapshots.runs_dir() / "uploads" / (hashlib.sha1(data).hexdigest()[:16] + suffix)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                atomic_write(path, data)
            own = load_own_images(path)
        except OwnImagesError as exc:
            path.unlink(missing_ok=True)
            return OwnUpload(_error(str(exc).replace(str(path), name)))
        except (OSError, StorageError) as exc:
            return OwnUpload(_error(f"{name}: could not be kept in the runs folder ({exc})"))
        summary = own.summary().replace(str(path), name)
        return OwnUpload(_success(f"Your images: {summary}."), str(path), grid_png(own.images[:64], scale=2), summary)

    def _set_live(self, what: str, apply) -> Notice:
        trainer = self.live()
        if trainer is None:
            return _info(f"{what} for the next Start.")
        try:
            apply(trainer)
        except WorkerError as exc:
            return _worker_error(f"Not changed ({what})", exc, trainer)
        return _success(f"{what} from the next step.", trainer)

    def set_max_rate(self, rate) -> Notice:
        """Slow motion: at most ``rate`` steps/s (0 = full speed) for the live run; each new run gets it too."""
        try:
            value = throttle(rate)
        except ConfigError as exc:
            return _error(exc.plain, self.live(), exc)
        trainer = self.live()
        if trainer is None:
            return _info("No live run: the next one starts at this speed.")
        try:
            trainer.set_max_rate(value)
        except WorkerError as exc:
            return _worker_error("Speed not changed", exc, trainer)
        return _success("Full speed." if value is None else f"At most {value:g} steps/s.", trainer)

    # --- workshop: presets, snapshots, branches, uploads ---------------------------------------------------
    def start_preset(self, name: str, max_rate=0) -> Notice:
        """Stop the live run and start a preset with its scheduled actions, in one step of the registry."""
        try:
            preset = get_preset(name)
            config = preset_config(preset.name)  # validated before the live run is stopped
            throttle(max_rate)
            trainer = self.registry.start(config, actions=preset.plan(), replace=True, timeout=WAIT_S)
        except (RunLimitError, WorkerError, ValueError) as exc:  # ConfigError is a ValueError
            return _error(f"Preset not started: {exc}")
        later = ("; then " + ", ".join(f"{a.kind} → {a.value} at step {a.at_step:,}" for a in preset.actions)
                 if preset.actions else "")
        return self._launched(trainer, max_rate, f"Started {trainer.name} with preset “{preset.label}”{later}.")

    def save_snapshot(self, name: str) -> Notice:
        """Save the current run (with its quality curve) under a name, for Branch and Compare."""
        trainer = self.current()
        if trainer is None:
            return _error("No run to save yet: start one first.")
        if trainer.state == RunState.LOADING:  # no optimiser state yet: nothing a snapshot could hold
            return _info(f"Not saved: {trainer.name} is still loading; save once it has taken its first step.",
                         trainer)
        try:
            name = snapshots.check_name(name or "")
            self.store.save(name, trainer, metrics=self.registry.quality_columns(trainer))
        except (ValueError, FileExistsError, RuntimeError, OSError) as exc:
            return _error(f"Not saved: {exc}", trainer)
        return _success(f"Saved snapshot {name!r} at step {trainer.step_count:,}. "
                        "Branch it below, or overlay it on the Compare page.", trainer)

    def branch(self, source: str, loss: str, lr_d="", max_rate=0) -> Notice:
        """Stop the live run and continue snapshot ``source`` with another loss (and lr_d, when given)."""
        try:
            lr = parse_lr("lr_d", lr_d) if str(lr_d or "").strip() else None
            throttle(max_rate)
            # Built (and validated) before the live run is stopped: a bad setting stops nothing.
            built = self.store.branch(source, loss=loss, lr_d=lr, run_name=f"{source}-{loss}",
                                      device=self.base.device)
            trainer = self.registry.adopt(built, replace=True, timeout=WAIT_S)
        except (ValueError, KeyError, RunLimitError, WorkerError, OSError) as exc:  # CheckpointError: ValueError
            return _error(f"Not branched: {exc.args[0] if isinstance(exc, KeyError) else exc}")  # unquoted
        return self._launched(trainer, max_rate, f"Started {trainer.name}: {source} continued with loss {loss}"
                              + (f", lr D {lr:g}" if lr else "") + ".")

    def load_upload(self, upload, max_rate=0, filename: str | None = None) -> Notice:
        """Continue an uploaded checkpoint (a file object, or bytes with ``filename``) in place of the live run;
        anything that is not a valid GAN Live checkpoint is refused before the live run is touched."""
        if upload is None:
            return _error("Choose a checkpoint file first.")
        if isinstance(upload, (bytes, bytearray)):
            upload = io.BytesIO(bytes(upload))
            upload.name = filename or "upload.pt"
        shown = getattr(upload, "name", None) or "upload"
        stem = shown.rsplit(".", 1)[0]
        try:
            throttle(max_rate)
            upload.seek(0)
            state, loaded = upload_trainer(upload, name=stem if snapshots.NAME_RE.match(stem) else "upload",
                                           device=self.base.device)  # the one Trainer this upload builds
            trainer = self.registry.adopt(loaded, replace=True, timeout=WAIT_S)
        except (CheckpointError, ValueError, RunLimitError, WorkerError, OSError) as exc:
            return _error(f"Checkpoint refused: {exc}")
        return self._launched(trainer, max_rate, f"Loaded {shown}: {trainer.name} continues from step "
                              f"{state['step']:,}.")
