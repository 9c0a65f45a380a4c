"""Train one workshop preset headless to its check step and measure what a teacher points at: a Measurement.
Must not be imported by the app, nor judge the numbers (gan/workshop/presets_check.py checks them against the
preset's Claims).

The preset trains for its ``check_steps`` (about 60 s of one CPU thread on a laptop), its live actions fired by
Trainer.schedule exactly as on the Train page; then D's outputs, the losses, G's gradient, the sample grid, the
reference classifier's reading and the coach's replayed diagnoses are measured.
"""

import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from gan.core.coach import RealImages, grid_similarity, replay
from gan.core.data import to_unit_range
from gan.core.losses import get_loss
from gan.core.step import Row
from gan.engine.status import RunState
from gan.engine.trainer import Trainer
from gan.quality.monitor import shared_evaluator
from gan.store.checkpoint import save_checkpoint
from gan.workshop.presets import get_preset, preset_config

TAIL = 50  # steps averaged for D(real), D(fake) and the losses: one batch is noisy


@dataclass(frozen=True)
class Measurement:
    """What a preset's run shows at its check step. Every field can back a Claim."""

    preset: str
    seed: int
    steps: int
    threads: int  # torch CPU threads it trained with: 2 reorders the reductions of 1
    seconds: float  # wall time of the training on this machine (not part of any claim)
    d_real: float  # mean D(x) over the last TAIL steps
    d_fake: float  # mean D(G(z))
    loss_d: float
    loss_g: float
    g_grad: float  # ‖∂L_G/∂θ_G‖ with the active loss, on one fixed batch of 256 z
    g_grad_bce: float  # the same models and batch, had G used BCE (non-saturating)
    g_grad_ratio: float  # g_grad / g_grad_bce: < 1 means the active loss gives G less to learn from
    grid_similarity: float  # mean pairwise correlation of the 64 fixed-noise samples (real digits ≤ 0.59)
    grid_digits: float  # share of the 64 grid cells the reference classifier calls a digit
    grid_top2: float  # share of the digit cells in their two most common classes
    grid_change: float  # mean |pixel change| of the grid over the last ~500 steps, 0…1: ~0 when G stopped learning
    not_digit: float  # share of 1,000 samples that are not digits
    score: float  # classifier score of 1,000 samples (1 … 10)
    covered: int  # classes with ≥ 2 % of the digits
    collapse_alarm: bool  # the quality panel's alarm
    d_fake_before: float  # mean D(G(z)) over the TAIL steps before the first live action (NaN if none)
    d_fake_min_after: float  # the lowest TAIL-step mean of D(G(z)) after it … (NaN if none)
    d_fake_max_after: float  # … and the highest: did D(fake) recover?
    recovery_steps: float  # steps after the first live action until a TAIL-step D(fake) mean > 0.1 (inf: never)
    # The coach (gan.core.coach), replayed over the run as the trainer read it every sample_every steps:
    diagnosis_step: float  # first step it named the preset's diagnosis (inf: never; NaN: the preset names none)
    diagnosis_after_switch: float  # ... at or after the first live action's step (NaN: no action or diagnosis)
    final_condition: str  # what the trainer's coach says at the check step (RunStatus.diagnosis)


def g_gradient_norm(trainer, loss: str | None = None, batch: int = 256) -> float:
    """‖∂ loss_G / ∂θ_G‖ on a fixed batch, with ``loss`` (default: the active one); trainer paused."""
    G, D = copy.deepcopy(trainer.G), copy.deepcopy(trainer.D)
    G.zero_grad(set_to_none=True)
    z = torch.randn(batch, trainer.config.latent_dim, generator=torch.Generator().manual_seed(7))
    get_loss(loss or trainer.loss).g_loss(fake_logits=D(G(z.to(trainer.device)))).backward()
    return float(torch.sqrt(sum((p.grad ** 2).sum() for p in G.parameters() if p.grad is not None)))


def _windows(values: np.ndarray) -> np.ndarray:
    """Means of consecutive TAIL-step windows (the curve a teacher reads, without one-batch noise)."""
    n = len(values) // TAIL
    return values[:n * TAIL].reshape(n, TAIL).mean(axis=1) if n else np.array([np.nan])


def measure(name: str, seed: int = 0, steps: int | None = None, threads: int = 1,
            checkpoint: str | None = None) -> Measurement:
    """Train preset ``name`` to its check step and measure it; ``checkpoint``: also save the run there
    (the tests load it in a real browser for docs/workshop.md's screenshots)."""
    torch.set_num_threads(threads)
    preset = get_preset(name)
    steps = steps or preset.check_steps
    trainer = Trainer(preset_config(name, seed=seed, device="cpu"), name=f"check-{name}")
    for a in preset.actions:  # the Train page's path: the trainer fires them itself
        trainer.schedule(a.at_step, a.kind, a.value)
    t0 = time.monotonic()
    trainer.start(stop_at_step=steps)
    try:
        if not trainer.wait_until(lambda t: t.state in (RunState.PAUSED, RunState.FAILED) and (
                t.step_count >= steps or t.state == RunState.FAILED), timeout=1800):
            raise RuntimeError(f"{name}: did not reach step {steps}: {trainer.status()}")
        seconds = time.monotonic() - t0
        if trainer.state == RunState.FAILED:
            raise RuntimeError(f"{name}: the run failed: {trainer.status()}")
        snap = trainer.history.snapshot()
        s = snap.scalars
        tail = s.tail(TAIL)
        evaluator = shared_evaluator(trainer.data)
        quality = evaluator.evaluate_generator(trainer.generator_copy(), trainer.config.latent_dim)
        grid = snap.grids[-1].images  # (64, 28, 28) uint8 from the fixed noise
        earlier = [g for g in snap.grids if g.step <= snap.grids[-1].step - 500] or snap.grids[:1]
        change = float(np.abs(grid.astype(np.float32) - earlier[-1].images.astype(np.float32)).mean() / 255)
        _, probs, is_digit = evaluator.reference.model.embed(to_unit_range(grid))
        labels = probs.argmax(1)[is_digit].numpy()
        counts = np.sort(np.bincount(labels, minlength=10))[::-1]
        before = min_after = max_after = recovery = math.nan
        if preset.actions:
            k = preset.actions[0].at_step
            before = float(s[(s.step > k - TAIL) & (s.step <= k)].d_fake.mean())
            after = _windows(s[s.step > k].d_fake.to_numpy())
            min_after, max_after = float(np.nanmin(after)), float(np.nanmax(after))
            recovered = np.flatnonzero(after > 0.1)
            recovery = float((recovered[0] + 1) * TAIL) if len(recovered) else math.inf
        g_grad, g_grad_bce = g_gradient_norm(trainer), g_gradient_norm(trainer, "bce")
        readings = replay([Row(*r) for r in s.itertuples(index=False, name=None)], snap.grids,
                          every=trainer.config.sample_every, d_steps=trainer.config.d_steps,
                          real=RealImages.of(trainer.data))  # calibrated as the trainer's coach is
        named = [d.step for d in readings if d.condition == preset.diagnosis]
        first_action = preset.actions[0].at_step if preset.actions else None
        after = [k for k in named if first_action is not None and k > first_action]
        diagnosis_step = math.nan if preset.diagnosis is None else float(named[0]) if named else math.inf
        after_switch = (math.nan if preset.diagnosis is None or first_action is None else
                        float(after[0]) if after else math.inf)
        final = trainer.status().diagnosis
        if checkpoint:

            save_checkpoint(trainer, checkpoint)
        return Measurement(
            preset=name, seed=seed, steps=trainer.step_count, threads=threads, seconds=round(seconds, 1),
            **{k: float(tail[k].mean()) for k in ("d_real", "d_fake", "loss_d", "loss_g")},
            g_grad=g_grad, g_grad_bce=g_grad_bce, g_grad_ratio=g_grad / max(g_grad_bce, 1e-12),
            grid_similarity=grid_similarity(grid), grid_digits=float(is_digit.float().mean()),
            grid_top2=float(counts[:2].sum() / max(1, counts.sum())), grid_change=change,
            not_digit=quality.not_digit,
            score=quality.score, covered=quality.alarm.covered, collapse_alarm=quality.alarm.firing,
            d_fake_before=before, d_fake_min_after=min_after, d_fake_max_after=max_after,
            recovery_steps=recovery, diagnosis_step=diagnosis_step, diagnosis_after_switch=after_switch,
            final_condition="" if final is None else final.condition.value)
    finally:
        trainer.stop(5.0)
