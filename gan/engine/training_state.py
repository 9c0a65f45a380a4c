"""Owns what a run trains between steps: G, D, their optimisers, the RNG, fixed noise, live settings, checkpoint dict.
Must not touch threads, locks, files or the UI: only the training thread changes it (gan.engine.trainer)."""

import copy

import torch

from gan.core.config import Config
from gan.core.live import Knob
from gan.core.step import SampleGrid, ema_update, load_models_state, models_state, sample_grid
from gan.engine.history import History

SAMPLE_COUNT = 64  # fixed-noise images per grid (8 x 8)
FORMAT = "gan-live-checkpoint/1"


class TrainingState:
    """The networks and everything a continued run needs of them, plus the four live settings.

    Not thread-aware: the Trainer's thread is its one writer, and readers of the weights hold the Trainer's
    step lock. Before ``attach`` (the run is loading) the networks are None.
    """

    def __init__(self, config: Config, device: str):
        self.config, self.device = config, device
        # The live settings: changed between steps (apply_changes), saved and restored with the run.
        self.loss, self.lr_g, self.lr_d, self.d_steps = config.loss, config.lr_g, config.lr_d, config.d_steps
        self.G = self.D = self.opt_g = self.opt_d = self.gen = self.fixed_noise = None
        self.G_ema = None  # the moving average of G's weights (config.ema > 0): what grids and scores sample
        self._last_good: dict | None = None  # the weights of the last sample point: where a NaN rolls back to

    def attach(self, G, D) -> None:
        """Take freshly built networks (seeded by the caller): move them to the device, make their Adam
        optimisers, the training RNG and the fixed noise."""
        cfg = self.config
        self.G, self.D = (
            G.to(self.device), D.to(self.device))  # pragma: no mutate (.to(None): the CPU, the same without a GPU)
        if cfg.ema > 0:  # starts as G itself; never trained, only averaged (ema_update)
            self.G_ema = copy.deepcopy(self.G).requires_grad_(
                False)  # pragma: no mutate (it runs under no_grad only: requires_grad changes no number)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=self.lr_g, betas=(cfg.beta1, cfg.beta2))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.lr_d, betas=(cfg.beta1, cfg.beta2))
        self.gen = torch.Generator(device=self.device).manual_seed(
            cfg.seed + 1)  # pragma: no mutate (another fixed offset is as good: same seed, same run)
        noise_gen = torch.Generator(device="cpu").manual_seed(
            cfg.seed + 2)  # pragma: no mutate (another fixed offset is as good: same seed, same grid)
        # Fixed noise: the same 64 z vectors for every grid, so grids are comparable over time.
        self.fixed_noise = torch.randn(SAMPLE_COUNT, cfg.latent_dim, generator=noise_gen).to(self.device)

    def apply_changes(self, changes: dict, record) -> bool:
        """The one applier of live changes ({Knob: value}, checked by LiveChange.checked); record(kind, "old → new")
        for each, before it takes effect. True when the loss switched (a moment worth an autosave)."""
        switched = False
        for knob, value in changes.items():
            knob = Knob(knob)
            if knob is Knob.loss:
                if value != self.loss:
                    record(str(knob), f"{self.loss} → {value}")
                    self.loss, switched = value, True
            elif knob is Knob.d_steps:
                record(str(knob), f"{self.d_steps} → {value}")
                self.d_steps = value
            else:  # a learning rate: Adam reads it from its param groups at the next update
                opt = self.opt_g if knob is Knob.lr_g else self.opt_d
                for group in opt.param_groups:
                    group["lr"] = value
                record(str(knob), f"{getattr(self, knob.value):g} → {value:g}")
                setattr(self, knob.value, value)
        return switched

    @property
    def sampling_G(self):
        """The G that draws what people see and what is scored: the average when config.ema > 0, else G."""
        return self.G if self.G_ema is None else self.G_ema

    def update_ema(self) -> None:
        """Fold G's new weights into the moving average (after each G update; a no-op without one)."""
        if self.G_ema is not None:
            ema_update(self.G_ema, self.G, self.config.ema)

    # --- rollback and grids -------------------------------------------------------------------------
    def mark_good(self) -> None:
        """Remember the current weights as healthy (at each sample point), the average's too."""
        self._last_good = models_state(self.G, self.D)
        if self.G_ema is not None:
            self._last_good["G_ema"] = {n: t.detach().clone() for n, t in self.G_ema.state_dict().items()}

    def roll_back(self) -> None:
        """Back to the last healthy weights (after a non-finite or diverged loss): the average had taken in
        the bad step too."""
        load_models_state(self.G, self.D, self._last_good)
        if self.G_ema is not None:
            self.G_ema.load_state_dict(self._last_good["G_ema"])

    def grid(self, step: int) -> SampleGrid:
        return sample_grid(self.sampling_G, self.fixed_noise, step, self.loss, ema=self.G_ema is not None)

    # --- the checkpoint dict ------------------------------------------------------------------------
    def state_dict(self, *, step: int, active_seconds: float, history: History, scheduled) -> dict:
        """Everything to continue this run later. Only tensors and plain types (weights_only loads)."""
        return {
            "format": FORMAT,
            "config": self.config.to_dict(),
            "step": step,
            "active_seconds": active_seconds,
            "loss": self.loss, "lr_g": self.lr_g, "lr_d": self.lr_d, "d_steps": self.d_steps,
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            **({} if self.G_ema is None else {"G_ema": self.G_ema.state_dict()}),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "history": history.state_dict(),
            "fixed_noise": self.fixed_noise.cpu(),
            "rng": self.gen.get_state(),
            # Live changes still to fire (a preset's "MSE at step 1200"): a resumed run fires each
            # one once, at its step; those already fired are gone from the list, so never twice.
            "scheduled": [[at, str(kind), value] for at, kind, value in scheduled],  # plain str: weights_only
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint dict (after attach): weights, optimisers, fixed noise, RNG, settings."""
        load_models_state(self.G, self.D, state)
        if self.G_ema is not None:  # a checkpoint from before the average (or with it off) starts it at G
            self.G_ema.load_state_dict(state.get("G_ema", state["G"]))
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.fixed_noise = state["fixed_noise"].to(self.device)
        if self.device == "cpu":
            self.gen.set_state(state["rng"])
        self.loss, self.lr_g, self.lr_d = state["loss"], float(state["lr_g"]), float(state["lr_d"])
        self.d_steps = int(state["d_steps"])


def check_loadable(state: dict, G, D) -> None:
    """Raise if a saved state cannot be loaded into these (fresh) models (shape or key mismatch)."""
    load_models_state(G, D, state)
    if "G_ema" in state:
        G.load_state_dict(state["G_ema"])  # the average has G's shapes
    torch.optim.Adam(G.parameters()).load_state_dict(state["opt_g"])
    torch.optim.Adam(D.parameters()).load_state_dict(state["opt_d"])
