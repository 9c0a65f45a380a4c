"""Owns the pure GAN training step (gan_step: (1) update D, (2) update G), its one-batch evaluation, health checks.
Must not touch threads, locks, a Trainer, the history or the disk: networks and tensors in, tensors or numbers out."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from gan.core.data import Dataset, to_uint8
from gan.core.live import StepTarget
from gan.core.losses import LossSpec
from gan.core.models import batch_statistics

# |loss| above this counts as diverged, like nan/inf. Adam bounds each update by ~lr, so an absurd
# lr tends to blow losses up to 1e20+ long before float32 overflows; no loss here legitimately
# gets near 1e6 (BCE of a logit of -1e6 would be 1e6).
DIVERGED = 1e6


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
    device = data.images.device  # pragma: no mutate (None is the CPU: the same without a GPU; test_cuda.py has one)
    # A network that this step must not change still runs forward in train mode, which would move
    # its BatchNorm running statistics (DCGAN pair): keep a copy of its buffers and put them back.
    kept = [(m, keep_buffers(m)) for m, update in ((G, update_g), (D, update_d)) if not update]
    for _ in range(d_steps if update_d else 1):
        # (1) update D: maximise its ability to tell real (target 1) from fake (target 0)
        real = data.sample(batch_size, generator)  # (B, 1, 28, 28)
        z = torch.randn(batch_size, latent_dim, device=device, generator=generator)  # (B, latent)
        fake = G(z)  # (B, 1, 28, 28)
        real_logits = D(real)  # (B,)
        fake_logits = D(fake.detach())  # (B,) detach: D's loss must not push gradients into G
        loss_d = spec.d_loss(real_logits=real_logits, fake_logits=fake_logits)
        if update_d:
            opt_d.zero_grad(set_to_none=True)  # pragma: no mutate (zeroed or freed: backward writes the same grads)
            loss_d.backward()
            opt_d.step()
    # (2) update G: make D call the same fakes real. D's weights are frozen for this backward,
    # which skips their weight gradients (a third of D's backward) without changing G's gradient.
    D.requires_grad_(False)
    try:
        if update_g:
            loss_g = spec.g_loss(fake_logits=D(fake))
            opt_g.zero_grad(set_to_none=True)  # pragma: no mutate (zeroed or freed: backward writes the same grads)
            loss_g.backward()
            opt_g.step()
        else:
            with torch.no_grad():
                loss_g = spec.g_loss(fake_logits=D(fake))
    finally:
        D.requires_grad_(True)
        for module, buffers in kept:
            restore_buffers(module, buffers)
    probs_real = torch.sigmoid(real_logits.detach())  # (B,)
    probs_fake = torch.sigmoid(fake_logits.detach())  # (B,)
    return StepOutput(loss_d.detach(), loss_g.detach(), probs_real, probs_fake, real, fake.detach())


class Row(NamedTuple):
    """One row of a run's history, in the chart's shape: one step (min = max = the value, steps_in_row 1), or a
    bucket of older steps of one loss (means, plotted at the bucket's middle step). The coach reads them by name."""

    step: float  # int for one step; a bucket's middle step
    time: float  # wall time (time.time()) of the row's last step
    loss_d: float  # D's loss (the mean of its real and fake terms)
    loss_g: float  # G's loss
    d_real: float  # mean D(x)
    d_fake: float  # mean D(G(z))
    lr_g: float
    lr_d: float
    loss: str  # the loss in use (a gan.core.losses name)
    loss_d_min: float  # a bucket's range of D's loss (the band behind the line)
    loss_d_max: float
    loss_g_min: float
    loss_g_max: float
    steps_in_row: int  # 1 at full resolution

    @classmethod
    def one_step(cls, step: int, time: float, loss_d: float, loss_g: float, d_real: float, d_fake: float,
                 lr_g: float, lr_d: float, loss: str) -> Row:
        """The row of one step: its own min and max, one step in the row."""
        return cls(step, time, loss_d, loss_g, d_real, d_fake, lr_g, lr_d, loss, loss_d, loss_d, loss_g, loss_g, 1)


class StepStats(NamedTuple):
    """The four diagnostics of one batch (Loss_D, Loss_G, D(x), D(G(z)) in pytorch/examples dcgan), as floats."""

    loss_d: float
    loss_g: float
    d_real: float  # mean D(x)
    d_fake: float  # mean D(G(z))


@dataclass(frozen=True)
class StepReport:
    """What one manual step changed: D's outputs and both losses on the SAME batch, before the update (the values
    the history logs, as in the dcgan example) and after it."""

    step: int
    which: StepTarget
    before: StepStats
    after: StepStats


@torch.no_grad()
def evaluate_batch(D, spec: LossSpec, real, fake) -> StepStats:
    """Both losses and D's mean outputs on one batch (a manual step's "after", on the batch it trained on)."""
    kept = keep_buffers(D)  # same train-mode forward as the step, without moving BN statistics
    real_logits, fake_logits = D(real), D(fake)  # (B,), (B,)
    restore_buffers(D, kept)
    values = torch.stack([spec.d_loss(real_logits=real_logits, fake_logits=fake_logits),
                          spec.g_loss(fake_logits=fake_logits),
                          torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()]).tolist()
    return StepStats(*values)


def healthy(loss: float) -> bool:
    """False for nan, inf and a diverged loss (|loss| >= DIVERGED)."""
    return math.isfinite(loss) and abs(loss) < DIVERGED


def non_finite_reason(step: int, loss_d: float, loss_g: float, lr_g: float, lr_d: float) -> str:
    """What the page and the CLI say when a step's loss was not healthy (the weights are rolled back)."""
    bad = "loss_d" if not healthy(loss_d) else "loss_g"
    value = loss_d if bad == "loss_d" else loss_g
    what = f"{value}" if not math.isfinite(value) else f"{value:.3g} (diverged)"
    return (f"{bad} became {what} at step {step} (lr_g={lr_g:g}, lr_d={lr_d:g}); "
            "weights were restored from the last sample point. Lower the learning rate and press Resume.")


@dataclass
class SampleGrid:
    """What a sample point keeps for replay: the grid, and (from a training run) that step's batch of D outputs
    and the coach's reading, so a scrubber can show the histogram and the diagnosis as they were."""

    step: int
    loss: str
    images: np.ndarray  # (N, 28, 28) uint8 from the fixed noise
    d_real_probs: np.ndarray | None = None  # (B,) float32 D(x) of that step's batch
    d_fake_probs: np.ndarray | None = None  # (B,) float32 D(G(z))
    diagnosis: object = None  # gan.core.diagnosis.Diagnosis at that step (None: not recorded)


@torch.no_grad()
def sample_grid(G, fixed_noise, step: int, loss: str, *, ema: bool = False) -> SampleGrid:
    """G's images for the fixed noise; G is back in train mode afterwards. The raw G draws in eval mode
    (BatchNorm's running statistics: a grid does not depend on its batch). The moving average of G
    (``ema``: G is the G_ema) has no running statistics of its own (those it holds are the raw G's, which do not fit
    the averaged weights): it normalises the 64 fixed-noise images by their own statistics, the same
    batch every time. Measured at 120 s (seeds 0/1): ruler A FD 9.4/9.9 with the raw G's statistics,
    8.5/7.3 with the batch's."""
    G.eval()
    try:
        with batch_statistics(G) if ema else contextlib.nullcontext():
            images = G(fixed_noise)  # (64, 1, 28, 28) in [-1, 1]
    finally:
        G.train()
    return SampleGrid(step, loss, to_uint8(images))


@torch.no_grad()
def ema_update(G_ema, G, decay: float) -> None:
    """G_ema <- decay * G_ema + (1 - decay) * G, weight by weight; buffers (BatchNorm's running statistics)
    are copied, since an average of running averages would lag them twice."""
    for avg, new in zip(G_ema.parameters(), G.parameters()):
        avg.lerp_(new, 1.0 - decay)
    for avg, new in zip(G_ema.buffers(), G.buffers()):
        avg.copy_(new)


def models_state(G, D) -> dict:
    """Detached copies of both networks' state dicts: a point to roll back to."""
    return {k: {n: t.detach().clone() for n, t in m.state_dict().items()} for k, m in (("G", G), ("D", D))}


def load_models_state(G, D, state: dict) -> None:
    G.load_state_dict(state["G"])
    D.load_state_dict(state["D"])


def keep_buffers(module) -> dict:
    """Copies of a module's buffers (BatchNorm running statistics), for restore_buffers."""
    return {name: b.detach().clone() for name, b in module.named_buffers()}


def restore_buffers(module, saved: dict) -> None:
    with torch.no_grad():
        for name, b in module.named_buffers():
            b.copy_(saved[name])
