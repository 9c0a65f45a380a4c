"""Does each workshop preset show what its text promises? Train it headless, measure, check its claims.
Must not be imported by the app; it trains headless for tests and the claims table (docs/workshop.md).

    python -m gan.workshop.presets_check                       # every preset with claims, seed 0
    python -m gan.workshop.presets_check mode_collapse --seeds 0 1 2
    python -m gan.workshop.presets_check --seeds 0 1 2 3 4 --threads 1 2 --markdown   # docs/workshop.md's table

Each preset trains for its ``check_steps`` and is measured (gan/workshop/presets_measure.py); here the
Measurement is compared with the preset's Claims (gan/workshop/presets.py). tests/test_presets.py runs this for
every preset. The step count makes a check independent of the machine's speed, NOT of its processor: another
CPU's floating-point kernels (or another torch thread count, which changes the reduction order) send
the same seed down another trajectory, and a GAN amplifies the difference. So a claim counts only when
it holds on several seeds under 1 and 2 threads with a margin (each Claim's cushion); --markdown prints
each claim's worst case and its margin.
"""

import argparse
import datetime
import json
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict
from typing import NamedTuple

from gan.worker import spawning
from gan.workshop.presets import PRESETS, Claim, Preset, get_preset
from gan.workshop.presets_measure import Measurement, measure

# The suite's extra check (tests/test_presets.py), beside seed 0 on one thread for every preset: one preset a
# day with another seed (another trajectory, as another CPU's float rounding gives), in turn over every
# (preset, seed) pair, so each preset meets a new seed every few days on whatever machine runs the suite. One
# preset, not all five (five more ~60 s runs were a third of the suite's CPU); one thread (a 2-thread run needs
# both cores to itself; five held the suite up ~6 min, their OpenMP threads spinning beside the other tests).
# docs/workshop.md's sweep covers 5 seeds x 1 and 2 threads for every preset before a claim is written, and
# GAN_LIVE_PRESET_EXTRA=SEED,THREADS checks every preset with that setting.
EXTRA_SEEDS = (1, 2, 3, 4)


def extra_checks(presets: list[str], day: int | None = None) -> list[tuple[str, int, int]]:
    """(preset, seed, torch threads) of the suite's extra checks: GAN_LIVE_PRESET_EXTRA=SEED,THREADS, every preset
    with that setting; else one, the (preset, seed) pair of the UTC date's ordinal (``day``) in turn."""
    raw = os.environ.get("GAN_LIVE_PRESET_EXTRA", "").strip()
    if raw:
        try:
            seed, threads = (int(part) for part in raw.split(","))
        except ValueError:
            seed = threads = -1
        if seed < 0 or threads < 1:
            raise ValueError(f"GAN_LIVE_PRESET_EXTRA must be SEED,THREADS (e.g. 3,2), got {raw!r}")
        return [(name, seed, threads) for name in presets]
    if not presets:
        return []
    if day is None:
        day = datetime.datetime.now(datetime.timezone.utc).toordinal()
    i = day % (len(presets) * len(EXTRA_SEEDS))
    return [(presets[i % len(presets)], EXTRA_SEEDS[i // len(presets)], 1)]


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


def measure_side_by_side(jobs: list[Job], cores: int | None = None, nice: int = 0) -> dict[Job, Future]:
    """Start measuring ``jobs`` in spawned processes and return at once: job -> Future of its Measurement.

    Never more torch threads at once than ``cores``: the 1-thread runs go ``cores`` at a time, then the
    2-thread runs ``cores // 2`` at a time, and so on. Oversubscribed, each OpenMP thread spins waiting for
    the others: two 2-thread runs side by side on two cores took over 20 minutes instead of one. spawn: no
    torch thread pool is forked, and each run is the same run whichever process trains it; the children start
    without the caller's __main__ (gan.worker.spawning: in a test process that is the last page AppTest ran).
    ``nice`` > 0: the processes yield the CPU to everything else (the test suite runs them beside its other tests)."""

    cores = cores or os.cpu_count() or 1
    futures = {job: Future() for job in jobs}

    def run_groups() -> None:
        for threads in sorted({job.threads for job in jobs}):
            group = [job for job in jobs if job.threads == threads]
            with ProcessPoolExecutor(max(1, cores // threads), mp_context=spawning.context(),
                                     initializer=os.nice if nice > 0 else None, initargs=(nice,) if nice > 0 else ()
                                     ) as pool:
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
