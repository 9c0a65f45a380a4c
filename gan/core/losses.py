"""The loss registry: every GAN loss as a pure function of discriminator logits.
Must not touch models, optimisers or state: each loss is a pure function of logits.

Conventions (see docs/theory-and-coach.md, "The theory in one paragraph"):
- D returns logits; probabilities are sigmoid(logit). One network serves every loss, so a live
  switch between losses needs no new model and no new optimiser.
- D's loss is the MEAN of its real and fake terms, so at equilibrium (D outputs 0.5, logit 0)
  BCE sits at ln 2 ≈ 0.693, not 2·ln 2.
- Losses never touch optimisers or models; only the trainer does. Call them with keywords:
  ``spec.d_loss(real_logits=..., fake_logits=...)`` and ``spec.g_loss(fake_logits=...)``.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


# --- BCE: the classic GAN loss, with the non-saturating G loss (G's target is "real") -------------
def bce_d_loss(*, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    # BCEWithLogits = -[y·ln σ(l) + (1-y)·ln(1-σ(l))], computed stably from logits.
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return 0.5 * (real + fake)


def bce_g_loss(*, fake_logits: Tensor) -> Tensor:
    # Non-saturating: G maximises ln D(G(z)) instead of minimising ln(1 - D(G(z))).
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# --- MSE: least squares (LSGAN with 0/1 targets) on sigmoid(logit), no ½ factor ------------------
def mse_d_loss(*, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    real = (torch.sigmoid(real_logits) - 1.0).pow(2).mean()
    fake = torch.sigmoid(fake_logits).pow(2).mean()
    return 0.5 * (real + fake)


def mse_g_loss(*, fake_logits: Tensor) -> Tensor:
    return (torch.sigmoid(fake_logits) - 1.0).pow(2).mean()


# --- Hinge: margin loss on raw logits (SNGAN / BigGAN style) -------------------------------------
def hinge_d_loss(*, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    real = F.relu(1.0 - real_logits).mean()
    fake = F.relu(1.0 + fake_logits).mean()
    return 0.5 * (real + fake)


def hinge_g_loss(*, fake_logits: Tensor) -> Tensor:
    return -fake_logits.mean()


# --- Minimax: the original, saturating G loss  min ln(1 - D(G(z))) -------------------------------
def minimax_g_loss(*, fake_logits: Tensor) -> Tensor:
    # ln(1 - σ(l)) = -softplus(l); G minimises it. Its gradient vanishes when D is confident
    # (σ(l) ≈ 0), which is exactly the stall the "minimax" preset demonstrates.
    return -F.softplus(fake_logits).mean()


@dataclass(frozen=True)
class LossSpec:
    name: str  # registry key, used in configs, the CLI and the history's "loss" column
    label: str  # short text for buttons and legends; starts with the loss name
    d_loss: Callable[..., Tensor]
    g_loss: Callable[..., Tensor]
    equilibrium_d: float | None  # D's loss when D outputs 0.5 everywhere (logit 0); None if none
    equilibrium_g: float | None  # G's loss at that point
    summary: str  # one sentence for tables and tooltips
    # |∂ G's loss / ∂ fake logit| for one sample, as a function of p = D(G(z)) = sigmoid(logit): how hard
    # G is pushed. The coach (gan/core/coach.py) compares it with BCE's to say "G's gradient vanishes".
    g_slope: Callable[[float], float]


LN2 = math.log(2.0)

LOSSES: dict[str, LossSpec] = {
    "bce": LossSpec(
        "bce", "BCE", bce_d_loss, bce_g_loss, LN2, LN2,
        "Binary cross-entropy; G uses the non-saturating target 'real'. Both sit at ln 2 ≈ 0.693.",
        lambda p: 1.0 - p,  # d/dl [-ln σ(l)] = -(1 - σ(l)): largest when D rejects the fake
    ),
    "mse": LossSpec(
        "mse", "MSE", mse_d_loss, mse_g_loss, 0.25, 0.25,
        "Least squares on D's probability (LSGAN, no ½): (0.5 − 1)² = 0.25.",
        lambda p: 2.0 * p * (1.0 - p) ** 2,  # d/dl (σ - 1)² = 2(σ - 1)·σ(1 - σ): the sigmoid saturates at 0
    ),
    "hinge": LossSpec(
        "hinge", "Hinge", hinge_d_loss, hinge_g_loss, 1.0, 0.0,
        "Margin loss on logits: D's terms are relu(1 ∓ logit), G maximises the fake logit.",
        lambda p: 1.0,  # d/dl (-l) = -1 whatever D says
    ),
    "minimax": LossSpec(
        "minimax", "Minimax", bce_d_loss, minimax_g_loss, LN2, -LN2,
        "The original saturating game: G minimises ln(1 − D(G(z))); stalls when D wins.",
        lambda p: p,  # d/dl [-softplus(l)] = -σ(l): vanishes as D(G(z)) -> 0
    ),
}


def get_loss(name: str) -> LossSpec:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None


def format_equilibrium(spec: LossSpec) -> str:
    """'equilibrium: D 0.25 · G 0.25' — the text the dashboard and CLI show."""

    def fmt(v: float | None) -> str:
        return "none" if v is None else f"{v:.3g}"

    return f"equilibrium: D {fmt(spec.equilibrium_d)} · G {fmt(spec.equilibrium_g)}"
