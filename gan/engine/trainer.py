"""Owns the Trainer: a ThreadedRun whose step is gan_step, with its data, models, live settings, status and checkpoints.
Must not touch any UI or the thread's scheduling (gan.engine.threaded_run); the step's maths is gan.core.step's."""

import copy
import dataclasses
import logging
import threading

import torch

from gan.core import coach
from gan.core.config import Config
from gan.core.data import Dataset, DataUnavailable, load_dataset
from gan.core.diagnosis import Diagnosis
from gan.core.live import LiveChange, StepTarget
from gan.core.losses import get_loss
from gan.core.models import build_models, ready_to_sample, seeded
from gan.core.step import StepReport, StepStats, evaluate_batch, gan_step, healthy, non_finite_reason
from gan.engine.history import History
from gan.engine.status import PauseCause, RunStatus
from gan.engine.threaded_run import ThreadedRun
from gan.engine.training_state import TrainingState, check_loadable

__all__ = ["Trainer", "cached_dataset"]

log = logging.getLogger(__name__)
_dataset_cache: dict[tuple, Dataset] = {}
_dataset_lock = threading.Lock()


def cached_dataset(name: str, data_dir: str, device: str, data_path: str = "") -> Dataset:
    """Datasets are read once per process: a restart or a second run starts in milliseconds."""
    key = (name, data_dir, device, data_path)
    with _dataset_lock:
        if key not in _dataset_cache:
            _dataset_cache[key] = load_dataset(name, data_dir, device, data_path)
        return _dataset_cache[key]


class Trainer(ThreadedRun):
    """A GAN run trained by a thread of this process, steerable while it runs (commands: gan.engine.threaded_run).

    Models and optimisers survive pause/resume and loss switches untouched. ``gan_step``, ``get_loss`` and
    ``build_models`` are looked up in this module at each use (tests replace them here to inject faults).
    """

    def __init__(self, config: Config, *, dataset_fallback: bool = False, history: History | None = None,
                 name: str = "run", autosave=None):
        super().__init__(name, history, autosave)
        self.config = config
        self.dataset_fallback = dataset_fallback  # the dashboard falls back to mnist5k; the CLI errors
        self.device = config.resolved_device()
        self.model_kind = config.resolved_model()
        self.warnings: list[str] = []  # e.g. "full MNIST unavailable, using mnist5k"
        self.dataset_source = ""
        self.dataset_name = config.dataset
        self.data: Dataset | None = None
        self._training = TrainingState(config, self.device)  # networks, optimisers, RNG, live settings
        self.last_stats: StepStats | None = None  # the latest step's diagnostics
        self.last_manual_step: StepReport | None = None  # what the latest manual step changed
        self._resume_state: dict | None = None  # set by load_checkpoint, applied in _setup
        self._diagnosis: Diagnosis | None = None  # the coach's latest reading (gan.core.coach)
        self._alarm_marked: dict = {}  # Condition -> the step its alarm was last marked on the loss chart

    # --- live changes (any thread; applied at the next step boundary) ------------------------------
    def change(self, *changes: LiveChange) -> None:
        """Live changes, checked (LiveChange.checked), all at the next step boundary (set_loss & co. call this)."""
        self._queue_changes(changes)

    # --- reading (any thread) -------------------------------------------------------------------
    @property
    def loss(self) -> str:
        return self._training.loss

    # The networks and their optimisers (None until the run has loaded); read them at a step boundary.
    G = property(lambda self: self._training.G)
    D = property(lambda self: self._training.D)
    opt_g = property(lambda self: self._training.opt_g)
    opt_d = property(lambda self: self._training.opt_d)

    def has_models(self) -> bool:
        """True once G and D exist (after loading): checkpoints, sampling and metrics need them."""
        return self.G is not None

    def status(self) -> RunStatus:
        t = self._training
        return self._status(
            device=self.device, model=self.model_kind, dataset=self.dataset_name, dataset_source=self.dataset_source,
            loss=t.loss, lr_g=t.lr_g, lr_d=t.lr_d, d_steps=t.d_steps, diagnosis=self._diagnosis,
            warnings=tuple(self.warnings) + self._storage_warnings())

    def _storage_warnings(self) -> tuple[str, ...]:
        """The last autosave failure, shown until an autosave works again. Read from the Autosaver itself (one
        home): it sets the message before it counts the failure, so whoever sees the count sees the warning."""
        error = self.autosave.last_error if self.autosave is not None else ""
        return (error,) if error else ()

    # --- the training thread (gan.engine.threaded_run calls these) ------------------------------
    def _setup(self) -> None:
        cfg = self.config
        try:
            self.data = cached_dataset(cfg.dataset, cfg.data_dir, self.device, cfg.data_path)
        except DataUnavailable as exc:
            if not self.dataset_fallback or cfg.dataset == "mnist5k":
                raise
            self.warnings.append(f"{exc} — training on mnist5k instead.")
            self.data = cached_dataset("mnist5k", cfg.data_dir, self.device)
        self.dataset_name, self.dataset_source = self.data.name, self.data.source
        with seeded(cfg.seed):  # the one lock for global-RNG model builds (the classifier's too)
            G, D = build_models(self.model_kind, cfg.latent_dim, cfg.width)
        self._training.attach(G, D)
        if self._resume_state is not None:
            self._continue_from(self._resume_state)
            self._resume_state = None
            if self.autosave is not None:
                self.autosave.last_saved_at = self.active_seconds  # the next one 30 s of training from here
        self._training.mark_good()
        if self.step_count == 0:
            self._record_grid()

    def _continue_from(self, state: dict) -> None:
        self._training.load_state_dict(state)
        self._restore_progress(int(state["step"]), float(state.get("active_seconds", 0.0)), state.get("scheduled", []))
        self.history.load_state_dict(state["history"])

    def _train_step(self, which: StepTarget, manual: bool, changes: dict) -> bool:
        """Apply the live changes, then one step; True when it asks for an autosave (loss switch, NaN pause)."""
        k = self.step_count + 1  # changes take effect at the next step, and are recorded there
        switched = self._training.apply_changes(changes, lambda kind, text: self.history.add_event(k, kind, text))
        return self._one_step(which, manual, switched) or switched

    def _one_step(self, which: StepTarget, manual: bool, switched: bool = False) -> bool:
        """One gan_step and its records; True when its loss was not healthy and the run paused (autosave)."""
        t = self._training
        spec = get_loss(t.loss)
        out = gan_step(
            t.G, t.D, t.opt_g, t.opt_d, self.data, spec,
            batch_size=self.config.batch_size, latent_dim=self.config.latent_dim, d_steps=t.d_steps,
            update_d=which.updates_d, update_g=which.updates_g, generator=t.gen)
        if which.updates_g:
            t.update_ema()  # a bad step's average is rolled back with the weights below
        loss_d, loss_g, probs_real, probs_fake = out[:4]
        # One host sync per step: the four diagnostics come over together.
        ld, lg, dr, df = torch.stack([loss_d, loss_g, probs_real.mean(), probs_fake.mean()]).tolist()
        step = self.step_count + 1
        if not (healthy(ld) and healthy(lg)):
            self._on_non_finite(step, ld, lg)
            return True
        self.history.append(step, ld, lg, dr, df, t.lr_g, t.lr_d, t.loss)
        probs_real, probs_fake = probs_real.cpu().numpy(), probs_fake.cpu().numpy()  # (B,) each
        self.history.set_probs(probs_real, probs_fake, step)
        if step % self.config.sample_every == 0:
            # A sample point keeps what a replay shows: the grid, this batch's D outputs, the coach's reading.
            grid = t.grid(step)
            diagnosis = self._read_coach(grid.images)
            self.history.add_grid(dataclasses.replace(grid, d_real_probs=probs_real, d_fake_probs=probs_fake,
                                                      diagnosis=diagnosis))
            t.mark_good()
            self._diagnose(diagnosis)
        elif switched:  # a loss switch: the coach reads again at once, so it never quotes the old loss's numbers
            latest = self.history.latest_grid()
            self._diagnose(self._read_coach(None if latest is None else latest.images))
        stats = StepStats(ld, lg, dr, df)
        if manual:  # what this step changed, on the same batch (gan.core.step.StepReport)
            self.last_manual_step = StepReport(step, which, stats, evaluate_batch(t.D, spec, out.real, out.fake))
        self.last_stats = stats
        self._publish_step(step)  # last: whoever sees the new step count also sees its history, grid and caption
        return False

    def _on_non_finite(self, step: int, ld: float, lg: float) -> None:
        # The weights that produced this loss are already far off (or non-finite): go back to the
        # last sample point, so Resume with a lower lr continues from a healthy model.
        self._training.roll_back()
        reason = non_finite_reason(step, ld, lg, self._training.lr_g, self._training.lr_d)
        self.history.add_event(step, "non-finite", reason)
        self._diagnose(coach.diverged(step, self._training.lr_g, self._training.lr_d, ld, lg))
        self._halt(reason, PauseCause.NAN)

    def _read_coach(self, grid) -> Diagnosis:
        """The coach's reading now, with the collapse threshold of this run's own real images."""
        return coach.diagnose(self.history.recent_rows(coach.ROWS_NEEDED), d_steps=self._training.d_steps,
                              grid=grid, real=coach.RealImages.of(self.data))

    def _diagnose(self, diagnosis: Diagnosis) -> None:
        """Publish the coach's reading; an alarm is marked on the loss chart where it starts (an event), once
        per coach.MARK_AGAIN_AFTER steps, so a reading that flickers near its threshold does not paint it."""
        before = self._diagnosis
        self._diagnosis = diagnosis
        if diagnosis.alarm and (before is None or before.condition != diagnosis.condition):
            last = self._alarm_marked.get(diagnosis.condition)
            if last is None or diagnosis.step - last >= coach.MARK_AGAIN_AFTER:
                self._alarm_marked[diagnosis.condition] = diagnosis.step
                self.history.add_event(diagnosis.step, "coach", diagnosis.condition.value)

    def _record_grid(self, step: int | None = None) -> None:
        self.history.add_grid(self._training.grid(self.step_count if step is None else step))

    def record_grid_now(self) -> None:
        """Add the fixed-noise grid of the current step (at a step boundary), unless it is there already."""
        with self._step_boundary():
            latest = self.history.latest_grid()
            if latest is None or latest.step != self.step_count:
                self._record_grid()

    def generator_copy(self, statistics: bool = True):
        """An eval-mode CPU copy of the G that samples (the moving average when config.ema > 0), taken at a
        step boundary, for sampling and scoring outside the thread. The average's copy gets BatchNorm
        statistics of its own (gan.core.models.standing_statistics, ~0.2 s) after the boundary, while
        training goes on. statistics=False leaves that to the caller: the worker (RemoteTrainer computes them
        in the server) and the bench (after its 120 s, so measuring does not compete with the run)."""
        with self._step_boundary():
            G = copy.deepcopy(self._training.sampling_G).cpu()
            ema = self._training.G_ema is not None
        return ready_to_sample(G, self.config.latent_dim, ema=statistics and ema)

    # --- whole-run state: checkpoints, autosaves, continuing -------------------------------------
    def write_autosave(self, clean: bool = False) -> bool:
        """Autosave now (any thread; waits for the step boundary). A failed write becomes a warning on the
        page and in the CLI, training goes on, and the next autosave tries again. True when written."""
        if self.autosave is None or not self.has_models():
            return False
        # The Autosaver (gan.store.autosave) keeps a failed write's message, which status() shows as a warning.
        return self.autosave.try_save(self.state_dict(), clean=clean)

    def state_dict(self) -> dict:
        """Everything to continue this run later, as it is at one step boundary: a copy, which later steps do not
        change. Only tensors and plain types (weights_only loads)."""
        with self._step_boundary():  # no step runs while we copy
            state = self._training.state_dict(step=self.step_count, active_seconds=self.active_seconds,
                                              history=self.history, scheduled=self.scheduled)
            # Module and optimiser state dicts hold the live tensors: copied here, or a save that follows while
            # the run trains on (a checkpoint, a download, the worker's snapshot) would write weights from later
            # steps, even torn between two, under this step count. The history's dict is built fresh already.
            for key in ("G", "D", "G_ema", "opt_g", "opt_d", "fixed_noise"):
                if key in state:
                    state[key] = copy.deepcopy(state[key])
            return state

    def check_resume_state(self, state: dict) -> None:
        """Raise if a saved state cannot be loaded into this config's models (shape or key mismatch)."""
        check_loadable(state, *build_models(self.model_kind, self.config.latent_dim, self.config.width))

    def set_resume_state(self, state: dict) -> None:
        """Continue a saved run (a checkpoint's state dict) when this Trainer starts; check it first with
        check_resume_state. Only before start()."""
        self._require_unstarted("set_resume_state")
        self._resume_state = state
        self.step_count, self._training.loss = int(state["step"]), state["loss"]  # what status() says meanwhile

    @property
    def resume_state(self) -> dict | None:
        """The checkpoint state this Trainer will continue from when started (None: a fresh run)."""
        return self._resume_state
