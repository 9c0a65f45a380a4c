"""Record real training runs for tests/test_coach.py: per-step scalars and every 500th grid, as .npz.

    python tests/data/record_runs.py default 0 6600     # preset, seed, steps (6,600: ~5 min of one CPU thread)

Kept small (float32 scalars, 64-image uint8 grids every 500 steps, compressed) so the coach's rules are
tested on what real runs do, not on made-up curves, without training for minutes in the suite.
"""

import sys

import numpy as np
import torch

from gan.engine.history import History
from gan.engine.status import RunState
from gan.engine.trainer import Trainer
from gan.workshop.presets import get_preset, preset_config

GRID_EVERY = 500


def record(preset: str, seed: int, steps: int, out: str) -> None:
    torch.set_num_threads(1)
    trainer = Trainer(preset_config(preset, seed=seed, device="cpu"), name=f"rec-{preset}",
                      history=History(recent=1_000_000, max_grids=10_000))
    for step, kind, value in get_preset(preset).plan():
        trainer.schedule(step, kind, value)
    trainer.start(stop_at_step=steps)
    if not trainer.wait_until(lambda t: t.state == RunState.PAUSED and t.step_count >= steps, timeout=3600, poll=0.5):
        raise RuntimeError(f"did not reach step {steps}: {trainer.status()}")
    seconds = trainer.active_seconds
    snap = trainer.history.snapshot()
    trainer.stop(5.0)
    s = snap.scalars[snap.scalars.steps_in_row == 1]
    grids = [g for g in snap.grids if g.step % GRID_EVERY == 0]
    np.savez_compressed(
        out, preset=preset, seed=seed, seconds=seconds,
        step=s.step.to_numpy(np.int32), loss=s.loss.to_numpy(str),
        **{k: s[k].to_numpy(np.float32) for k in ("loss_d", "loss_g", "d_real", "d_fake", "lr_g", "lr_d")},
        grid_step=np.array([g.step for g in grids], np.int32), grid=np.stack([g.images for g in grids]))
    print(out, len(s), "steps", len(grids), "grids", f"{seconds:.0f} s")


if __name__ == "__main__":
    name, seed, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    record(name, seed, steps, f"tests/data/run_{name}_s{seed}.npz")
