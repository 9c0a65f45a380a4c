"""Does each workshop preset show its effect within a minute on a CPU? Train it headless and measure.

    python -m gan.presets_check                 # every preset, 45 s each, 1 torch thread
    python -m gan.presets_check d_too_strong --seconds 30

For each preset: a Trainer with the preset's config, its live actions applied when their step is
reached (apply_due_actions — the same logic the Train page uses), then the diagnostics a teacher
points at: D(real), D(fake) and both losses (mean of the last 50 steps), G's gradient norm on a
fresh batch, and the diversity of the fixed-noise grid (per-pixel std across its 64 samples,
compared with 64 real digits). Timings depend on the machine; on a shared CPU they are slower.
"""

import argparse
import copy
import time

import numpy as np
import torch

from gan.losses import get_loss
from gan.presets import PRESETS, get_preset, preset_config
from gan.trainer import RUNNING, Trainer


def apply_due_actions(trainer, preset, applied: set) -> list:
    """Apply the preset's LiveActions whose step has been reached; returns the ones applied now.

    ``applied`` holds indices of actions already applied (keep it per run, e.g. in session state).
    """
    done = []
    for i, action in enumerate(preset.actions):
        if i in applied or trainer.step_count < action.at_step:
            continue
        if action.kind == "loss":
            trainer.set_loss(action.value)
        elif action.kind in ("lr_g", "lr_d"):
            trainer.set_lr(**{action.kind: action.value})
        elif action.kind == "d_steps":
            trainer.set_d_steps(action.value)
        applied.add(i)
        done.append(action)
    return done


@torch.no_grad()
def grid_diversity(images_uint8: np.ndarray) -> float:
    """Mean over pixels of the std across samples, in [-1, 1] units: ~0 when every sample is the same."""
    x = images_uint8.astype(np.float32) / 127.5 - 1.0  # (N, 28, 28)
    return float(x.std(axis=0).mean())


def g_gradient_norm(trainer, batch: int = 256) -> float:
    """‖∂ loss_G / ∂θ_G‖ on a fresh batch with the active loss; the trainer must be paused."""
    G, D = copy.deepcopy(trainer.G), copy.deepcopy(trainer.D)
    G.zero_grad(set_to_none=True)
    z = torch.randn(batch, trainer.config.latent_dim, generator=torch.Generator().manual_seed(7))
    loss = get_loss(trainer.loss).g_loss(fake_logits=D(G(z.to(trainer.device))))
    loss.backward()
    return float(torch.sqrt(sum((p.grad ** 2).sum() for p in G.parameters() if p.grad is not None)))


def check_preset(name: str, seconds: float = 45.0, threads: int = 1, seed: int = 0) -> dict:
    torch.set_num_threads(threads)
    preset = get_preset(name)
    trainer = Trainer(preset_config(name, seed=seed, device="cpu"), name=f"check-{name}")
    applied: set = set()
    trainer.start()
    try:
        if not trainer.wait_until(lambda t: t.state == RUNNING, timeout=60):
            raise RuntimeError(f"{name}: did not start: {trainer.status()}")
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds and trainer.state == RUNNING:
            apply_due_actions(trainer, preset, applied)
            trainer.wait_until(lambda t: t.state != RUNNING, timeout=0.05)  # short poll, not a sleep
        trainer.pause("check done")
        snap = trainer.history.snapshot()
        tail = snap.scalars.tail(50)
        real = trainer.data.images[torch.randperm(len(trainer.data), generator=torch.Generator().manual_seed(1))[:64]]
        real_uint8 = ((real.squeeze(1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        result = {
            "preset": name, "seconds": round(time.monotonic() - t0, 1), "steps": trainer.step_count,
            "loss": trainer.loss, "state": trainer.state,
            **{k: round(float(tail[k].mean()), 4) for k in ("d_real", "d_fake", "loss_d", "loss_g")},
            "g_grad_norm": round(g_gradient_norm(trainer), 5),
            "grid_diversity": round(grid_diversity(snap.grids[-1].images), 4),
            "real_diversity": round(grid_diversity(real_uint8), 4),
            "actions_applied": len(applied),
        }
        if preset.actions:  # the same numbers over the 50 steps before the first live action
            k = preset.actions[0].at_step
            pre = snap.scalars[(snap.scalars["step"] > k - 50) & (snap.scalars["step"] <= k)]
            result["before_action"] = {c: round(float(pre[c].mean()), 4) for c in ("d_real", "d_fake", "loss_g")}
        early = snap.scalars[snap.scalars["step"] <= 50]
        result["loss_g_first50"] = round(float(early["loss_g"].mean()), 4)
        return result
    finally:
        trainer.stop(5.0)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", default=list(PRESETS))
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    for name in args.presets:
        print(check_preset(name, args.seconds, args.threads), flush=True)


if __name__ == "__main__":
    main()
