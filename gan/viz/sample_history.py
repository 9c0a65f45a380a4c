"""A History that looks like a run of N steps, for deriving chart specs, benchmarks and tests.
Must not be shown as a training result or bucket rows itself: the numbers are synthetic, and every step goes
through History's own methods (append, add_event, set_probs, add_grid), so the fabricated history folds its
old steps exactly as a real run's does.

Who uses it: gan/viz/livechart.py derives its chart templates from a tiny one (a loss switch, so the marker
layers exist), the render bench (gan/tools/bench/render.py) times the dashboard on 1,000 and 1,000,000 steps,
and the chart tests and their apps (tests/apps/) draw long runs without training them.
"""

import time

import numpy as np

from gan.core.losses import LOSSES
from gan.core.step import SampleGrid
from gan.engine.history import History


def fabricate_history(n_steps: int, *, switch_every: int | None = None, recent: int = 2000,
                      max_buckets: int = 2000, n_grids: int = 8, seed: int = 0) -> History:
    """A History that looks like a run of n_steps (noisy losses near equilibrium, loss switches).

    Synthetic numbers for measuring chart cost, never shown as training results. Every step goes through
    History.append (~4 µs/step: 1M steps take a few seconds).
    """
    rng = np.random.default_rng(seed)
    names = list(LOSSES)
    t0 = time.time() - n_steps / 50.0
    steps = np.arange(1, n_steps + 1)
    loss_idx = (steps - 1) // switch_every % len(names) if switch_every else np.zeros(n_steps, int)
    eq_d = np.array([LOSSES[n].equilibrium_d or 0.0 for n in names])[loss_idx]
    eq_g = np.array([LOSSES[n].equilibrium_g or 0.0 for n in names])[loss_idx]
    loss_d = eq_d + 0.05 * rng.standard_normal(n_steps)
    loss_g = eq_g + 0.2 * rng.standard_normal(n_steps)
    d_real = np.clip(0.55 + 0.05 * rng.standard_normal(n_steps), 0, 1)
    d_fake = np.clip(0.45 + 0.05 * rng.standard_normal(n_steps), 0, 1)
    times = t0 + steps / 50.0
    hist = History(recent=recent, max_buckets=max_buckets)
    losses = [names[i] for i in loss_idx.tolist()]
    for step, ld, lg, dr, df, loss, when in zip(steps.tolist(), loss_d.tolist(), loss_g.tolist(), d_real.tolist(),
                                                 d_fake.tolist(), losses, times.tolist()):
        hist.append(step, ld, lg, dr, df, 2e-4, 2e-4, loss, when=when)
    if switch_every:
        for s in range(switch_every + 1, n_steps + 1, switch_every):
            i = s - 1
            hist.add_event(s, "loss", f"{names[loss_idx[i - 1]]} → {names[loss_idx[i]]}")
    hist.set_probs(rng.beta(5, 4, 64).astype(np.float32), rng.beta(4, 5, 64).astype(np.float32), n_steps)
    for k in range(n_grids):
        step = n_steps * (k + 1) // max(n_grids, 1)
        hist.add_grid(SampleGrid(step, names[loss_idx[max(step - 1, 0)]],
                                 rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)))
    return hist
