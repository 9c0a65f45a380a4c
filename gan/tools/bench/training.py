"""The in-process Trainer parts: overhead (trainer_vs_bare, monitor_vs_trainer), autosave (its cost), rss.
Must not start an app server or a browser; trains only in this process, on CPU, and leaves no files behind."""

import gc
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gan.tools.bench.common import TINY


# --- overhead ----------------------------------------------------------------------------------
def bare_steps_per_sec(cfg, steps: int, warmup: int) -> float:
    """The same gan_step as the Trainer, in a plain loop: no thread, no history, no commands."""
    from gan.core.losses import get_loss
    from gan.core.models import build_models
    from gan.core.step import gan_step
    from gan.engine.trainer import cached_dataset

    data = cached_dataset(cfg.dataset, cfg.data_dir, "cpu")
    torch.manual_seed(cfg.seed)
    G, D = build_models(cfg.resolved_model(), cfg.latent_dim, cfg.width)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    spec = get_loss(cfg.loss)
    t0 = time.perf_counter()
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        out = gan_step(G, D, opt_g, opt_d, data, spec, batch_size=cfg.batch_size, latent_dim=cfg.latent_dim,
                       d_steps=cfg.d_steps, generator=gen)
        torch.stack([out[0], out[1], out[2].mean(), out[3].mean()]).tolist()  # the trainer's one host sync
    return steps / (time.perf_counter() - t0)


def trainer_steps_per_sec(cfg, steps: int, warmup: int, monitor_every: int | None = None, timeout: float = 600.0,
                          autosave_dir=None, autosave_every: float = 30.0) -> tuple[float, object]:
    """Run a Trainer to warmup+steps; steps/s from the history's per-step wall times after warm-up."""
    from gan.engine.status import RunState
    from gan.engine.trainer import Trainer
    from gan.quality.monitor import MetricsMonitor
    from gan.store.autosave import Autosaver

    saver = None if autosave_dir is None else Autosaver(autosave_dir, name="bench", every_s=autosave_every)
    trainer = Trainer(cfg, name="bench", autosave=saver)
    monitor = None
    if monitor_every:  # the classifier loads before the run starts: measure the steady state only
        monitor = MetricsMonitor(trainer, every=monitor_every, evaluator=_evaluator(cfg)).start()
    trainer.start(stop_at_step=warmup + steps)
    try:
        ok = trainer.wait_until(lambda t: t.state == RunState.PAUSED and t.step_count >= warmup + steps or
                                t.state in ("failed", "stopped"), timeout=timeout, poll=0.05)
        if not ok or trainer.state != RunState.PAUSED:
            raise RuntimeError(f"trainer did not reach step {warmup + steps}: {trainer.status().reason}")
        s = trainer.history.snapshot(with_grids=False).scalars
        s = s[(s.steps_in_row == 1) & (s.step > warmup)]
        rate = (s.step.iloc[-1] - s.step.iloc[0]) / max(1e-9, s.time.iloc[-1] - s.time.iloc[0])
        evals = monitor.evaluations if monitor else (saver.saves if saver else 0)
        return float(rate), evals
    finally:
        if monitor is not None:
            monitor.stop()
        trainer.stop(5.0)


def _evaluator(cfg):
    """The quality evaluator (reference classifier) for cfg's dataset, as the MetricsMonitor uses it."""
    from gan.engine.trainer import cached_dataset
    from gan.quality.metrics import Evaluator

    return Evaluator.for_dataset(cached_dataset(cfg.dataset, cfg.data_dir, "cpu"))


def part_overhead(args, cfg) -> dict:
    """trainer_vs_bare: steps/s of the Trainer thread / a bare loop calling the same gan_step (same models,
    batch and seed); monitor_vs_trainer: with the MetricsMonitor on."""
    # Interleaved rounds (bare first, then trainer first, ...) and the median of the per-round
    # ratios: a load change on the machine hits both sides of a round instead of biasing one run.
    rounds = 3
    steps, warmup = max(10, args.overhead_steps // rounds), max(5, args.overhead_steps // 10)
    bares, trainers = [], []
    for r in range(rounds):
        order = ("bare", "trainer") if r % 2 == 0 else ("trainer", "bare")
        for side in order:
            if side == "bare":
                bares.append(bare_steps_per_sec(cfg, steps, warmup))
            else:
                trainers.append(trainer_steps_per_sec(cfg, steps, warmup)[0])
    ratio = statistics.median(t / b for t, b in zip(trainers, bares))
    bare, trainer = statistics.median(bares), statistics.median(trainers)
    with_monitor, evals = trainer_steps_per_sec(cfg, steps * rounds, warmup, monitor_every=args.monitor_every)
    return {"trainer_vs_bare": ratio, "monitor_vs_trainer": with_monitor / trainer,
            "overhead_rounds": [round(t / b, 3) for t, b in zip(trainers, bares)],
            "bare_steps_per_sec": bare, "trainer_steps_per_sec": trainer,
            "trainer_with_monitor_steps_per_sec": with_monitor, "monitor_every": args.monitor_every,
            "monitor_evaluations": evals, "overhead_steps": steps}


def part_autosave(args, cfg) -> dict:
    """What autosaving costs training: one autosave timed directly, and steps/s with an autosave every
    second (30x the real rate, so the effect is measurable) against none, in interleaved rounds.

    autosave_ms (one autosave of the default run: state_dict + atomic write + fsync), autosave_cost (that
    per 30 s of training) and autosave_every_1s_vs_none (steps/s, interleaved rounds).
    """
    from gan.engine.status import RunState
    from gan.engine.trainer import Trainer
    from gan.store.autosave import EVERY_S, Autosaver

    tmp = Path(tempfile.mkdtemp(prefix="gan-live-bench-autosave-"))
    try:
        trainer = Trainer(cfg, name="bench", autosave=Autosaver(tmp / "one", name="bench", every_s=3600))
        trainer.start(stop_at_step=50)
        if not trainer.wait_until(lambda t: t.state == RunState.PAUSED, timeout=300):
            raise RuntimeError(f"the run did not reach step 50: {trainer.status().reason}")
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            if not trainer.write_autosave():
                raise RuntimeError(trainer.status().warnings)
            times.append((time.perf_counter() - t0) * 1000)
        trainer.stop(5.0)
        ms = statistics.median(times)
        size = max(p.stat().st_size for p in (tmp / "one").glob("autosave-*.pt"))
        steps, warmup = max(10, args.overhead_steps // 3), max(5, args.overhead_steps // 10)
        ratios, saves = [], 0
        for r in range(3):
            sides = {}
            for side in (("none", "every_1s") if r % 2 == 0 else ("every_1s", "none")):
                rate, n = trainer_steps_per_sec(cfg, steps, warmup, autosave_dir=tmp / f"r{r}{side}",
                                                autosave_every=1.0 if side == "every_1s" else 1e9)
                sides[side] = rate
                saves += n if side == "every_1s" else 0
            ratios.append(sides["every_1s"] / sides["none"])
        return {"autosave_ms": ms, "autosave_mb": size / 2**20, "autosave_cost": ms / (EVERY_S * 1000),
                "autosave_every_1s_vs_none": statistics.median(ratios),
                "autosave_rounds": [round(x, 3) for x in ratios], "autosave_saves_in_rounds": saves}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- rss ---------------------------------------------------------------------------------------
def rss_mb() -> float:
    """This process's resident memory (VmRSS) in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def part_rss(args) -> dict:
    """rss_growth_mb: resident memory growth over --rss-steps steps after a warm-up (Trainer + MetricsMonitor
    + sample grids; a small fast model so 20,000 steps fit the time budget)."""
    from gan.core.config import Config
    from gan.engine.status import RunState
    from gan.engine.trainer import Trainer
    from gan.quality.monitor import MetricsMonitor

    cfg = Config(**TINY, sample_every=100)
    trainer = Trainer(cfg, name="bench-rss")
    monitor = MetricsMonitor(trainer, every=max(1, args.rss_steps // 20), evaluator=_evaluator(cfg)).start()
    warm = args.rss_warmup
    try:
        trainer.start(stop_at_step=warm)
        trainer.wait_until(lambda t: t.state == RunState.PAUSED and t.step_count >= warm, timeout=600, poll=0.05)
        gc.collect()
        before = rss_mb()
        t0 = time.perf_counter()
        target = warm + args.rss_steps
        trainer.resume(until_step=target)  # continue to the target step, then pause again
        ok = trainer.wait_until(lambda t: t.state == RunState.PAUSED and t.step_count >= target, timeout=900, poll=0.05)
        if not ok:
            raise RuntimeError(f"rss run stopped at step {trainer.step_count}: {trainer.status().reason}")
        gc.collect()
        after = rss_mb()
        return {"rss_growth_mb": after - before, "rss_before_mb": before, "rss_after_mb": after,
                "rss_steps": args.rss_steps, "rss_seconds": time.perf_counter() - t0,
                "rss_config": dict(TINY), "rss_monitor_evaluations": monitor.evaluations}
    finally:
        monitor.stop()
        trainer.stop(5.0)
