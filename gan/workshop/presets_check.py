"""Does each workshop preset show what its text promises? Train it headless, measure, check its claims.
Must not be imported by the app; it trains headless for tests and the claims table (docs/workshop.md).

    python -m gan.workshop.presets_check                       # every preset with claims, seed 0
    python -m gan.workshop.presets_check mode_collapse --seeds 0 1 2
    python -m gan.workshop.presets_check --seeds 0 1 2 3 4 --threads 1 2 --markdown   # docs/workshop.md's table

Each preset trains for its ``check_steps`` (about 60 s of one CPU thread on a laptop), its live actions
fired by Trainer.schedule exactly as on the Train page. Then we measure what a teacher points at and
compare it with the preset's Claims (gan/workshop/presets.py). tests/test_presets.py runs this for every
preset. The step count makes a check independent of the machine's speed, NOT of its processor: another
CPU's floating-point kernels (or another torch thread count, which changes the reduction order) send
the same seed down another trajectory, and a GAN amplifies the difference. So a claim counts only when
it holds on several seeds under 1 and 2 threads with a margin (each Claim's cushion); --markdown prints
each claim's worst case and its margin.
"""

import argparse
import copy
import datetime
import json
import math
import os
import time
from concurrent.futures import Future, as_completed
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import torch

from gan.core.coach import RealImages, grid_similarity, replay
from gan.core.data import to_unit_range
from gan.core.losses import get_loss
from gan.engine.trainer import FAILED, PAUSED, Trainer
from gan.quality.monitor import shared_evaluator
from gan.workshop.presets import PRESETS, Claim, Preset, get_preset, preset_config

TAIL = 50  # steps averaged for D(real), D(fake) and the losses: one batch is noisy
# The suite's second check of every preset (tests/test_presets.py), beside seed 0 on one thread: another
# seed or two torch threads, a different one each day, so over a couple of weeks every setting of the
# docs/workshop.md's sweep is retried on whatever machine runs the suite.
EXTRA_SETTINGS = ((0, 2), *((seed, threads) for seed in (1, 2, 3, 4) for threads in (1, 2)))


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
        if not trainer.wait_until(lambda t: t.state in (PAUSED, FAILED) and (t.step_count >= steps or
                                                                           t.state == FAILED), timeout=1800):
            raise RuntimeError(f"{name}: did not reach step {steps}: {trainer.status()}")
        seconds = time.monotonic() - t0
        if trainer.state == FAILED:
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
        readings = replay(list(s.itertuples(index=False, name=None)), snap.grids,
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
            from gan.store.checkpoint import save_checkpoint

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


def rotating_extra(day: int | None = None) -> tuple[int, int]:
    """(seed, torch threads) of today's extra check: EXTRA_SETTINGS in turn by the UTC date's ordinal
    (``day``), or GAN_LIVE_PRESET_EXTRA=SEED,THREADS."""
    raw = os.environ.get("GAN_LIVE_PRESET_EXTRA", "").strip()
    if raw:
        try:
            seed, threads = (int(part) for part in raw.split(","))
        except ValueError:
            seed = threads = -1
        if seed < 0 or threads < 1:
            raise ValueError(f"GAN_LIVE_PRESET_EXTRA must be SEED,THREADS (e.g. 3,2), got {raw!r}")
        return seed, threads
    if day is None:
        day = datetime.datetime.now(datetime.timezone.utc).toordinal()
    return EXTRA_SETTINGS[day % len(EXTRA_SETTINGS)]


def failed_claims(preset: Preset, m: Measurement, cushioned: bool = False) -> list[str]:
    """The preset's claims that the measurement does not bear out (with ``cushioned``: that it clears by less
    than the claim's cushion), each as one readable line."""
    failed = []
    for c in preset.claims:
        value = getattr(m, c.metric)
        room = c.room(value)
        if room <= 0 or (cushioned and room < c.needed):
            extra = f", clears it by {room:.3g} < the cushion {c.needed:.3g}" if room > 0 else ""
            failed.append(f"{preset.name} seed {m.seed}, {m.threads} thread(s): {c.metric} = {value:.3g}, "
                          f"claimed {c.op} {c.value:g}{extra} ({c.why})")
    return failed


def worst_case(claim: Claim, results: list[Measurement]) -> Measurement:
    """The run whose value comes closest to (or crosses) the claim's line."""
    return min(results, key=lambda r: claim.room(getattr(r, claim.metric)))


def markdown_table(results: list[Measurement]) -> str:
    """One row per claim: its median and worst value over every seed and thread count, the worst run, how far
    it clears the line (margin) against the claim's cushion, and whether it holds with it."""
    runs = sorted({(r.seed, r.threads) for r in results})
    seeds, threads = sorted({s for s, _ in runs}), sorted({t for _, t in runs})
    lines = ["| preset | claim (at step) | median | worst (seed, threads) | margin (cushion) | holds |",
             "|---|---|---|---|---|---|"]
    by_preset: dict[str, list[Measurement]] = {}
    for r in results:
        by_preset.setdefault(r.preset, []).append(r)
    for name, rs in by_preset.items():
        for c in get_preset(name).claims:
            worst = worst_case(c, rs)
            values = sorted(getattr(r, c.metric) for r in rs)
            room = c.room(getattr(worst, c.metric))
            verdict = "yes" if room >= c.needed else ("**thin**" if room > 0 else "**no**")
            lines.append(f"| {name} | {c.metric} {c.op} {c.value:g} (step {rs[0].steps:,}) | "
                         f"{values[len(values) // 2]:.3g} | {getattr(worst, c.metric):.3g} (seed {worst.seed}, "
                         f"{worst.threads}) | {room:.3g} ({c.needed:.3g}) | {verdict} |")
    lines.append(f"\nSeeds {', '.join(map(str, seeds))} × {' and '.join(map(str, threads))} torch thread(s), "
                 f"{len(results)} runs. Margin: how far the worst run clears the line, in the claim's units; it "
                 f"must be at least the claim's cushion (a tenth of the line unless the claim says otherwise).")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", default=[k for k, p in PRESETS.items() if p.claims])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=None, help="override each preset's check_steps")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="torch threads; several: each")
    parser.add_argument("--jobs", type=int, default=1,
                        help="cores to use: runs side by side, never more torch threads at once than this")
    parser.add_argument("--markdown", action="store_true", help="print the claims table (docs/workshop.md) at the end")
    parser.add_argument("--jsonl", default=None, help="append each measurement to this file as a JSON line")
    args = parser.parse_args(argv)
    for name in args.presets:
        get_preset(name)  # an unknown name: one clear line listing the names, before any training
    jobs = [Job(name, seed, threads, args.steps) for threads in args.threads for name in args.presets
            for seed in args.seeds]
    results, failures = [], []
    for m in _measure_all(jobs, args.jobs):
        results.append(m)
        bad = failed_claims(get_preset(m.preset), m, cushioned=True)
        failures += bad
        row = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(m).items()}
        print(row, flush=True)
        if args.jsonl:
            with open(args.jsonl, "a") as fh:
                fh.write(json.dumps(asdict(m)) + "\n")
        for line in bad:
            print("  CLAIM FAILS:", line, flush=True)
    if args.markdown:
        print(markdown_table(results))
    raise SystemExit(1 if failures else 0)


class Job(NamedTuple):
    """One run to measure: ``preset`` trained with ``seed`` on ``threads`` torch threads to its check step
    (or ``steps``); ``checkpoint``: also save the run there."""

    preset: str
    seed: int = 0
    threads: int = 1
    steps: int | None = None
    checkpoint: str | None = None


def measure_side_by_side(jobs: list[Job], cores: int | None = None) -> dict[Job, Future]:
    """Start measuring ``jobs`` in spawned processes and return at once: job -> Future of its Measurement.

    Never more torch threads at once than ``cores``: the 1-thread runs go ``cores`` at a time, then the
    2-thread runs ``cores // 2`` at a time, and so on. Oversubscribed, each OpenMP thread spins waiting for
    the others: two 2-thread runs side by side on two cores took over 20 minutes instead of one. spawn: no
    torch thread pool is forked, and each run is the same run whichever process trains it."""
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor

    cores = cores or os.cpu_count() or 1
    futures = {job: Future() for job in jobs}

    def run_groups() -> None:
        for threads in sorted({job.threads for job in jobs}):
            group = [job for job in jobs if job.threads == threads]
            with ProcessPoolExecutor(max(1, cores // threads), mp_context=multiprocessing.get_context("spawn")) as pool:
                inner = {pool.submit(measure, job.preset, job.seed, job.steps, job.threads, job.checkpoint): job
                         for job in group}
                for done in as_completed(inner):
                    target, exc = futures[inner[done]], done.exception()
                    target.set_exception(exc) if exc is not None else target.set_result(done.result())

    threading.Thread(target=run_groups, name="presets-check", daemon=True).start()
    return futures


def _measure_all(jobs: list[Job], workers: int):
    """Measurements of ``jobs``, in the order they finish (``workers``: cores to use)."""
    if workers <= 1:
        for job in jobs:
            yield measure(job.preset, job.seed, job.steps, job.threads)
        return
    yield from (f.result() for f in as_completed(measure_side_by_side(jobs, workers).values()))


if __name__ == "__main__":
    main()
