"""The trainer: a background thread around the DCGAN-style loop, steerable while it runs.

Threading contract: commands (pause, loss switch, lr change, ...) only set fields behind
``self._cond``; the training thread applies them at the next step boundary, so a step never sees a
half-applied change. The thread never touches any UI; readers use ``status()`` and
``history.snapshot()``. Models and optimisers survive pause/resume and loss switches untouched.
"""

import copy
import logging
import math
import threading
import time
from collections import deque
from typing import NamedTuple

import torch

from gan.engine.config import Config
from gan.engine.data import Dataset, DataUnavailable, load_dataset, to_uint8
from gan.engine.history import History, SampleGrid
from gan.engine.losses import LossSpec, get_loss
from gan.engine.models import build_models
from gan.engine.protocol import FailureKind, PauseCause, RunState, RunStatus

# Module-level names kept for callers and tests; they are the RunState members (str enums).
IDLE, LOADING, RUNNING, PAUSED, STOPPED, FAILED = (RunState.IDLE, RunState.LOADING, RunState.RUNNING,
                                                   RunState.PAUSED, RunState.STOPPED, RunState.FAILED)
SAMPLE_COUNT = 64  # fixed-noise images per grid (8 x 8)
# |loss| above this counts as diverged, like nan/inf. Adam bounds each update by ~lr, so an absurd
# lr tends to blow losses up to 1e20+ long before float32 overflows; no loss here legitimately
# gets near 1e6 (BCE of a logit of -1e6 would be 1e6).
DIVERGED = 1e6

log = logging.getLogger(__name__)
_init_lock = threading.Lock()  # model init uses the global RNG: seed and build under one lock
_dataset_cache: dict[tuple, Dataset] = {}
_dataset_lock = threading.Lock()


def cached_dataset(name: str, data_dir: str, device: str) -> Dataset:
    """Datasets are read once per process: a restart or a second run starts in milliseconds."""
    key = (name, data_dir, device)
    with _dataset_lock:
        if key not in _dataset_cache:
            _dataset_cache[key] = load_dataset(name, data_dir, device)
        return _dataset_cache[key]


class StepOutput(NamedTuple):
    """What one gan_step returns: detached tensors, no host sync yet."""

    loss_d: torch.Tensor  # () D's loss on this batch, before D's update
    loss_g: torch.Tensor  # () G's loss on this batch, before G's update
    probs_real: torch.Tensor  # (B,) D(x) before D's update, as Loss_D/D(x) in pytorch/examples dcgan
    probs_fake: torch.Tensor  # (B,) D(G(z)) before D's update
    real: torch.Tensor  # (B, 1, 28, 28) the real batch of the last D update
    fake: torch.Tensor  # (B, 1, 28, 28) the fake batch (detached)


def gan_step(G, D, opt_g, opt_d, data: Dataset, spec: LossSpec, *, batch_size: int, latent_dim: int,
             d_steps: int = 1, update_d: bool = True, update_g: bool = True, generator=None):
    """One GAN step: d_steps D updates then one G update. Returns tensors (no host sync here).

    The trainer thread and the bare benchmark loop both call this, so "trainer vs bare" compares
    the overhead of threading and history, not two different loops.
    """
    device = data.images.device
    # A network that this step must not change still runs forward in train mode, which would move
    # its BatchNorm running statistics (DCGAN pair): keep a copy of its buffers and put them back.
    kept = [(m, _buffers(m)) for m, update in ((G, update_g), (D, update_d)) if not update]
    for _ in range(d_steps if update_d else 1):
        # (1) update D: maximise its ability to tell real (target 1) from fake (target 0)
        real = data.sample(batch_size, generator)  # (B, 1, 28, 28)
        z = torch.randn(batch_size, latent_dim, device=device, generator=generator)  # (B, latent)
        fake = G(z)  # (B, 1, 28, 28)
        real_logits = D(real)  # (B,)
        fake_logits = D(fake.detach())  # (B,) detach: D's loss must not push gradients into G
        loss_d = spec.d_loss(real_logits=real_logits, fake_logits=fake_logits)
        if update_d:
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
    # (2) update G: make D call the same fakes real. D's weights are frozen for this backward,
    # which skips their weight gradients (a third of D's backward) without changing G's gradient.
    D.requires_grad_(False)
    try:
        if update_g:
            loss_g = spec.g_loss(fake_logits=D(fake))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
        else:
            with torch.no_grad():
                loss_g = spec.g_loss(fake_logits=D(fake))
    finally:
        D.requires_grad_(True)
        for module, buffers in kept:
            _restore_buffers(module, buffers)
    probs_real = torch.sigmoid(real_logits.detach())  # (B,)
    probs_fake = torch.sigmoid(fake_logits.detach())  # (B,)
    return StepOutput(loss_d.detach(), loss_g.detach(), probs_real, probs_fake, real, fake.detach())


def poll_until(condition, timeout: float, poll: float = 0.005) -> bool:
    """Check condition() every `poll` seconds until it holds or `timeout` passes; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return condition()


def check_live_change(kind: str, value) -> None:
    """Raise ValueError (ConfigError for a bad value) unless (kind, value) is a valid scheduled change."""
    if kind == "loss":
        get_loss(value)
    elif kind in ("lr_g", "lr_d"):
        Config(**{kind: value})
    elif kind == "d_steps":
        Config(d_steps=value)
    else:
        raise ValueError(f"cannot schedule {kind!r}; choose loss, lr_g, lr_d or d_steps")


def _healthy(loss: float) -> bool:
    return math.isfinite(loss) and abs(loss) < DIVERGED


def _buffers(module) -> dict:
    return {name: b.detach().clone() for name, b in module.named_buffers()}


def _restore_buffers(module, saved: dict) -> None:
    with torch.no_grad():
        for name, b in module.named_buffers():
            b.copy_(saved[name])


class Trainer:
    def __init__(self, config: Config, *, dataset_fallback: bool = False, history: History | None = None,
                 name: str = "run", autosave=None):
        self.config = config
        self.name = name
        self.dataset_fallback = dataset_fallback  # the dashboard falls back to mnist5k; the CLI errors
        self.history = history or History()
        self.device = config.resolved_device()
        self.model_kind = config.resolved_model()
        self.warnings: list[str] = []  # e.g. "full MNIST unavailable, using mnist5k"
        self.dataset_source = ""
        self.dataset_name = config.dataset
        self._cond = threading.Condition()  # guards commands and state
        self._step_lock = threading.Lock()  # held for the duration of each training step
        self.last_stats: dict | None = None  # the latest step's diagnostics (loss_d, loss_g, d_real, d_fake)
        self._state = IDLE
        self._reason = ""
        self._pause_cause = PauseCause.NONE  # typed: pages choose their banner from it, not from _reason
        self._failure = FailureKind.NONE
        self._stop = False
        self._pending_steps: deque[str] = deque()  # manual steps while paused: "both" | "d" | "g"
        self._changes: dict = {}  # live changes, applied at the next step boundary
        self._loss = config.loss
        self._lr_g, self._lr_d, self._d_steps = config.lr_g, config.lr_d, config.d_steps
        self._max_rate: float | None = None  # steps/s throttle (slow motion); None = full speed
        self._stop_at: int | None = None
        self._scheduled: list[tuple[int, str, object]] = []  # (after step, kind, value), sorted by step
        self._thread: threading.Thread | None = None
        self.step_count = 0
        self.started_at: float | None = None
        self._active_seconds = 0.0  # time spent running, pauses excluded
        self._rate_window: deque[tuple[float, int]] = deque(maxlen=64)
        self.last_manual_step: dict | None = None  # what the latest manual step changed
        self.G = self.D = self.opt_g = self.opt_d = None
        self.data: Dataset | None = None
        self._resume_state: dict | None = None  # set by load_checkpoint, applied in _setup
        # gan.engine.autosave.Autosaver or None: the run keeps itself on disk every 30 s of training and on pause,
        # stop and loss switch, so a crash loses at most that (dashboard runs, `gan train --out`).
        self.autosave = autosave
        self._autosave_pending = False  # a loss switch or a NaN pause asked for one after this step
        self._clean_stop = True  # stop(clean=False) when the server goes down: the run stays continuable
        self._storage_warning = ""  # the last autosave failure, shown until an autosave works again

    # --- commands (any thread) ---------------------------------------------------------------
    def start(self, paused: bool = False, stop_at_step: int | None = None) -> None:
        with self._cond:
            if self._thread is not None:
                raise RuntimeError("this run was already started; use resume, or reset for a new run")
            self._stop_at = stop_at_step
            self._state = LOADING
            self._start_paused = paused
            self._thread = threading.Thread(target=self._main, name=f"gan-trainer-{self.name}", daemon=True)
            self._thread.start()

    def pause(self, reason: str = "", cause: PauseCause = PauseCause.USER) -> None:
        """Hold training. Returns after the step in flight has finished, so step_count is final."""
        with self._cond:
            if self._state != RUNNING:
                return
            self._state, self._reason, self._pause_cause = PAUSED, reason or "paused", PauseCause(cause)
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            with self._step_lock:  # wait for the step boundary
                pass
        self.history.add_event(self.step_count, "pause", reason or "paused")
        self.write_autosave()

    def resume(self, until_step: int | None = None) -> None:
        """Run on; with ``until_step``, pause again (cause SCHEDULE) once that many steps are done."""
        with self._cond:
            if self._state != PAUSED:
                return
            if until_step is not None:
                self._stop_at = int(until_step)
            self._state, self._reason, self._pause_cause = RUNNING, "", PauseCause.NONE
            self._cond.notify_all()
        self.history.add_event(self.step_count + 1, "resume", "")

    def step(self, n: int = 1, which: str = "both") -> None:
        """Queue n manual steps; only while paused. which: both | d (D only) | g (G only)."""
        if which not in ("both", "d", "g"):
            raise ValueError("which must be both, d or g")
        if not 1 <= int(n) <= 10_000:
            raise ValueError("n must be in [1, 10000]")
        with self._cond:
            if self._state != PAUSED:
                raise RuntimeError(f"step needs a paused run; this one is {self._state}")
            self._pending_steps.extend([which] * int(n))
            self._cond.notify_all()

    def stop(self, timeout: float = 1.0, clean: bool = True) -> bool:
        """Stop and join the thread; True when it ended within the timeout.

        clean=False: the run is being interrupted (the server shuts down), not finished: its last autosave
        is not marked as a clean stop, so the next start of the app offers to continue it.
        """
        with self._cond:
            self._stop = True
            self._clean_stop = clean
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def forget(self, timeout: float = 1.0) -> None:
        """Reset: stop the run; nothing else holds it (a worker-process run also leaves the worker)."""
        self.stop(timeout)

    def set_loss(self, name: str) -> None:
        get_loss(name)  # raises ValueError for an unknown loss, before anything is queued
        with self._cond:
            self._changes["loss"] = name
            self._cond.notify_all()

    def set_lr(self, lr_g: float | None = None, lr_d: float | None = None) -> None:
        Config(lr_g=lr_g or self._lr_g, lr_d=lr_d or self._lr_d)  # same validation as the config
        with self._cond:
            if lr_g is not None:
                self._changes["lr_g"] = float(lr_g)
            if lr_d is not None:
                self._changes["lr_d"] = float(lr_d)

    def set_d_steps(self, n: int) -> None:
        Config(d_steps=n)
        with self._cond:
            self._changes["d_steps"] = int(n)

    def schedule(self, after_step: int, kind: str, value) -> None:
        """Apply a live change once the run has done `after_step` steps (presets: "MSE at step 1200").

        kind is loss, lr_g, lr_d or d_steps; the value is validated now, not when it fires.
        """
        check_live_change(kind, value)
        with self._cond:
            self._scheduled.append((int(after_step), kind, value))
            self._scheduled.sort(key=lambda item: item[0])

    def set_max_rate(self, steps_per_sec: float | None) -> None:
        if steps_per_sec is not None and not (0 < steps_per_sec <= 100_000):
            raise ValueError("steps/s throttle must be in (0, 100000] or None")
        with self._cond:
            self._max_rate = steps_per_sec
            self._cond.notify_all()

    # --- reading (any thread) -------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state

    @property
    def loss(self) -> str:
        return self._loss

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def has_models(self) -> bool:
        """True once G and D exist (after loading): checkpoints, sampling and metrics need them."""
        return self.G is not None

    def set_resume_state(self, state: dict) -> None:
        """Continue a saved run (a checkpoint's state dict) when this Trainer starts; check it first with
        check_resume_state. Only before start()."""
        if self._thread is not None:
            raise RuntimeError("set_resume_state must come before start()")
        self._resume_state = state
        self.step_count, self._loss = int(state["step"]), state["loss"]  # what status() says while it loads

    @property
    def resume_state(self) -> dict | None:
        """The checkpoint state this Trainer will continue from when started (None: a fresh run)."""
        return self._resume_state

    @property
    def run_dir(self):
        """The folder this run autosaves into (gan.engine.autosave), or None."""
        return None if self.autosave is None else self.autosave.run_dir

    @property
    def scheduled(self) -> list[tuple[int, str, object]]:
        """Live changes still to fire: (after step, kind, value), soonest first."""
        with self._cond:
            return list(self._scheduled)

    @property
    def active_seconds(self) -> float:
        """Seconds spent running (pauses excluded)."""
        return self._active_seconds

    def status(self) -> RunStatus:
        with self._cond:
            now = time.time()
            window = list(self._rate_window)
            rate = 0.0
            if self._state == RUNNING and len(window) >= 2 and now - window[-1][0] < 2.0:
                (t0, s0), (t1, s1) = window[0], window[-1]
                rate = (s1 - s0) / max(t1 - t0, 1e-9)
            return RunStatus(
                name=self.name, state=self._state, reason=self._reason, step=self.step_count,
                pause_cause=self._pause_cause, failure=self._failure,
                steps_per_sec=rate, elapsed=self._active_seconds, device=self.device,
                model=self.model_kind, dataset=self.dataset_name, dataset_source=self.dataset_source,
                loss=self._loss, lr_g=self._lr_g, lr_d=self._lr_d, d_steps=self._d_steps,
                max_rate=self._max_rate,
                warnings=tuple(self.warnings) + ((self._storage_warning,) if self._storage_warning else ()),
                pending=tuple(self._changes.items()), scheduled=tuple(self._scheduled),
            )

    def wait_until(self, predicate, timeout: float = 10.0, poll: float = 0.005) -> bool:
        """Poll predicate(self) until true or timeout; for tests and the CLI, not the training loop."""
        return poll_until(lambda: predicate(self), timeout, poll)

    # --- the training thread ----------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._setup()
            with self._cond:
                if self._state == LOADING:
                    self._state = PAUSED if self._start_paused else RUNNING
                    self._reason = "ready: press Step or Resume" if self._start_paused else ""
                    self._pause_cause = PauseCause.READY if self._start_paused else PauseCause.NONE
            self.started_at = time.time()
            self._loop()
            if self.has_models():
                self.write_autosave(clean=self._clean_stop)  # a Stop: the run is complete on disk
        except Exception as exc:  # never a silently dead thread: the reason is shown
            with self._cond:
                self._state = FAILED
                self._reason = f"{type(exc).__name__}: {exc}"
                self._failure = FailureKind.DATA if isinstance(exc, DataUnavailable) else FailureKind.ERROR
                self._pause_cause = PauseCause.NONE
            self.history.add_event(self.step_count, "failed", self._reason)
            if isinstance(exc, DataUnavailable):  # an expected, explained condition: no traceback
                log.warning("run %s: %s", self.name, exc)
            else:
                log.error("run %s failed", self.name, exc_info=True)
        finally:
            with self._cond:
                if self._state != FAILED:
                    self._state, self._reason, self._pause_cause = STOPPED, "stopped", PauseCause.NONE
                self._cond.notify_all()

    def _setup(self) -> None:
        cfg = self.config
        try:
            self.data = cached_dataset(cfg.dataset, cfg.data_dir, self.device)
        except DataUnavailable as exc:
            if not self.dataset_fallback or cfg.dataset == "mnist5k":
                raise
            self.warnings.append(f"{exc} — training on mnist5k instead.")
            self.data = cached_dataset("mnist5k", cfg.data_dir, self.device)
        self.dataset_name, self.dataset_source = self.data.name, self.data.source
        with _init_lock:
            torch.manual_seed(cfg.seed)
            G, D = build_models(self.model_kind, cfg.latent_dim, cfg.width)
        self.G, self.D = G.to(self.device), D.to(self.device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=self._lr_g, betas=(cfg.beta1, cfg.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self._lr_d, betas=(cfg.beta1, cfg.beta2))
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        noise_gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 2)
        # Fixed noise: the same 64 z vectors for every grid, so grids are comparable over time.
        self.fixed_noise = torch.randn(SAMPLE_COUNT, cfg.latent_dim, generator=noise_gen).to(self.device)
        if self._resume_state is not None:
            self._apply_resume_state(self._resume_state)
            self._resume_state = None
            if self.autosave is not None:
                self.autosave.last_saved_at = self._active_seconds  # the next one 30 s of training from here
        self._last_good = self._models_state()
        if self.step_count == 0:
            self._record_grid()

    def _loop(self) -> None:
        last = time.monotonic()
        while True:
            with self._cond:
                if not self._stop and self._state == PAUSED and not self._pending_steps:
                    while not self._stop and self._state == PAUSED and not self._pending_steps:
                        self._cond.wait()
                    last = time.monotonic()  # paused time does not count as elapsed
                if self._stop:
                    return
                which = self._pending_steps.popleft() if self._state == PAUSED else "both"
                manual = self._state == PAUSED
                while self._scheduled and self._scheduled[0][0] <= self.step_count:
                    _, kind, value = self._scheduled.pop(0)
                    self._changes.setdefault(kind, value)  # a live command given since wins over the plan
                changes, self._changes = self._changes, {}
            now = time.monotonic()
            self._active_seconds += now - last
            last = now
            with self._step_lock:  # readers of the weights (checkpoints, sampling) wait for the boundary
                self._apply_changes(changes)
                self._one_step(which, manual)
            if self.autosave is not None and (self._autosave_pending or self.autosave.due(self._active_seconds)):
                self._autosave_pending = False
                self.write_autosave()
            if self._stop_at is not None and self.step_count >= self._stop_at:
                target, self._stop_at = self._stop_at, None  # once: Resume goes on past it
                self.pause(f"reached step {target}", PauseCause.SCHEDULE)
            self._throttle()

    def _apply_changes(self, changes: dict) -> None:
        k = self.step_count + 1  # changes take effect at the next step, and are recorded there
        for key, value in changes.items():
            if key == "loss" and value != self._loss:
                self.history.add_event(k, "loss", f"{self._loss} → {value}")
                self._loss = value
                self._autosave_pending = True  # after this step: a switch is a moment worth keeping
            elif key in ("lr_g", "lr_d"):
                opt = self.opt_g if key == "lr_g" else self.opt_d
                for group in opt.param_groups:
                    group["lr"] = value
                self.history.add_event(k, key, f"{getattr(self, '_' + key):g} → {value:g}")
                setattr(self, "_" + key, value)
            elif key == "d_steps":
                self.history.add_event(k, "d_steps", f"{self._d_steps} → {value}")
                self._d_steps = value

    def _one_step(self, which: str, manual: bool) -> None:
        spec = get_loss(self._loss)
        out = gan_step(
            self.G, self.D, self.opt_g, self.opt_d, self.data, spec,
            batch_size=self.config.batch_size, latent_dim=self.config.latent_dim, d_steps=self._d_steps,
            update_d=which in ("both", "d"), update_g=which in ("both", "g"), generator=self.gen)
        loss_d, loss_g, probs_real, probs_fake = out[:4]
        # One host sync per step: the four diagnostics come over together.
        ld, lg, dr, df = torch.stack([loss_d, loss_g, probs_real.mean(), probs_fake.mean()]).tolist()
        step = self.step_count + 1
        if not (_healthy(ld) and _healthy(lg)):
            self._on_non_finite(step, ld, lg)
            return
        self.history.append(step, ld, lg, dr, df, self._lr_g, self._lr_d, self._loss)
        self.history.set_probs(probs_real.cpu().numpy(), probs_fake.cpu().numpy(), step)
        if step % self.config.sample_every == 0:
            self._record_grid(step)
            self._last_good = self._models_state()
        stats = {"loss_d": ld, "loss_g": lg, "d_real": dr, "d_fake": df}
        if manual:
            # What this step changed: D's outputs and both losses on the SAME batch, before and after
            # the update (the logged values are from before the update, as in the dcgan example).
            self.last_manual_step = {"step": step, "which": which, **self._evaluate(out.real, out.fake),
                                     "before": stats}
        self.last_stats = stats
        # Published last: whoever sees the new step count also sees its history, grid and caption.
        with self._cond:
            self.step_count = step
            self._rate_window.append((time.time(), step))

    @torch.no_grad()
    def _evaluate(self, real, fake) -> dict:
        spec = get_loss(self._loss)
        kept = _buffers(self.D)  # same train-mode forward as the step, without moving BN statistics
        real_logits, fake_logits = self.D(real), self.D(fake)  # (B,), (B,)
        _restore_buffers(self.D, kept)
        values = torch.stack([spec.d_loss(real_logits=real_logits, fake_logits=fake_logits),
                              spec.g_loss(fake_logits=fake_logits),
                              torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()]).tolist()
        return dict(zip(("loss_d", "loss_g", "d_real", "d_fake"), values))

    def _on_non_finite(self, step: int, ld: float, lg: float) -> None:
        bad = "loss_d" if not _healthy(ld) else "loss_g"
        value = ld if bad == "loss_d" else lg
        # The weights that produced this loss are already far off (or non-finite): go back to the
        # last sample point, so Resume with a lower lr continues from a healthy model.
        self._load_models_state(self._last_good)
        what = f"{value}" if not math.isfinite(value) else f"{value:.3g} (diverged)"
        reason = (f"{bad} became {what} at step {step} (lr_g={self._lr_g:g}, lr_d={self._lr_d:g}); "
                  "weights were restored from the last sample point. Lower the learning rate and press Resume.")
        self.history.add_event(step, "non-finite", reason)
        self._autosave_pending = True
        with self._cond:
            self._state, self._reason, self._pause_cause = PAUSED, reason, PauseCause.NAN
            self._pending_steps.clear()

    def _throttle(self) -> None:
        with self._cond:
            rate = self._max_rate
            if rate is None or self._state != RUNNING:
                return
            deadline = time.monotonic() + 1.0 / rate
            # Wait on the condition, not sleep: pause/stop/rate changes wake the thread at once.
            while not self._stop and self._state == RUNNING and self._max_rate == rate:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)

    @torch.no_grad()
    def _record_grid(self, step: int | None = None) -> None:
        self.G.eval()  # eval: BatchNorm uses running stats, so a grid does not depend on its batch
        try:
            images = self.G(self.fixed_noise)  # (64, 1, 28, 28) in [-1, 1]
        finally:
            self.G.train()
        self.history.add_grid(SampleGrid(self.step_count if step is None else step, self._loss, to_uint8(images)))

    def record_grid_now(self) -> None:
        """Add the fixed-noise grid of the current step (at a step boundary), unless it is there already."""
        with self._step_lock:
            latest = self.history.latest_grid()
            if latest is None or latest.step != self.step_count:
                self._record_grid()

    def write_autosave(self, clean: bool = False) -> bool:
        """Autosave now (any thread; waits for the step boundary). A failed write becomes a warning on the
        page and in the CLI, training goes on, and the next autosave tries again. True when written."""
        if self.autosave is None or not self.has_models():
            return False
        from gan.engine.storage import StorageError

        try:
            self.autosave.save(self.state_dict(), clean=clean)
        except StorageError as exc:
            self._storage_warning = str(exc)
            log.warning("run %s: %s", self.name, exc)
            return False
        self._storage_warning = ""
        return True

    def generator_copy(self):
        """An eval-mode CPU copy of G taken at a step boundary, for sampling outside the thread."""
        with self._step_lock:
            G = copy.deepcopy(self.G).cpu().eval()
        return G

    # --- model state ----------------------------------------------------------------------------
    def _models_state(self) -> dict:
        return {k: {n: t.detach().clone() for n, t in m.state_dict().items()}
                for k, m in (("G", self.G), ("D", self.D))}

    def _load_models_state(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])

    def state_dict(self) -> dict:
        """Everything to continue this run later. Only tensors and plain types (weights_only loads)."""
        with self._step_lock:  # hold the step boundary: no step runs while we copy
            return {
                "format": "gan-live-checkpoint/1",
                "config": self.config.to_dict(),
                "step": self.step_count,
                "active_seconds": self._active_seconds,
                "loss": self._loss, "lr_g": self._lr_g, "lr_d": self._lr_d, "d_steps": self._d_steps,
                "G": self.G.state_dict(), "D": self.D.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "history": self.history.state_dict(),
                "fixed_noise": self.fixed_noise.cpu(),
                "rng": self.gen.get_state(),
                # Live changes still to fire (a preset's "MSE at step 1200"): a resumed run fires each
                # one once, at its step; those already fired are gone from the list, so never twice.
                "scheduled": [[at, kind, value] for at, kind, value in self._scheduled],
            }

    def check_resume_state(self, state: dict) -> None:
        """Raise if a saved state cannot be loaded into this config's models (shape or key mismatch)."""
        G, D = build_models(self.model_kind, self.config.latent_dim, self.config.width)
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        torch.optim.Adam(G.parameters()).load_state_dict(state["opt_g"])
        torch.optim.Adam(D.parameters()).load_state_dict(state["opt_d"])

    def _apply_resume_state(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.fixed_noise = state["fixed_noise"].to(self.device)
        if self.device == "cpu":
            self.gen.set_state(state["rng"])
        self.step_count = int(state["step"])
        self._active_seconds = float(state.get("active_seconds", 0.0))
        self._loss, self._lr_g, self._lr_d = state["loss"], float(state["lr_g"]), float(state["lr_d"])
        self._d_steps = int(state["d_steps"])
        self.history.load_state_dict(state["history"])
        with self._cond:
            self._scheduled = sorted(((int(at), kind, value) for at, kind, value in state.get("scheduled", [])),
                                     key=lambda item: item[0])
