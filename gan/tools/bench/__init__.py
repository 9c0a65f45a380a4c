"""`python -m gan bench`: its flags, which parts run, the results and their JSON line; the package's names.
Must not measure anything itself (each part has its own module) nor format the table (report.py)."""

import argparse
import json
import math
import os
import platform
import signal
import sys
import time

import torch

from gan.tools.bench.browser import CHROMIUM, CHROMIUM_ARGS, STEP_RE, heap_mb, must_read_step, part_browser, read_step
from gan.tools.bench.cluster import RAY_KEYS, part_ray
from gan.tools.bench.common import REPO, TINY, log
from gan.tools.bench.lab import LAB_KEYS, part_lab
from gan.tools.bench.render import chart_specs, part_render
from gan.tools.bench.report import GOALS, print_table
from gan.tools.bench.score import part_score, save_grid, train_for_seconds
from gan.tools.bench.server import (
    free_port,
    start_app_server,
    stop_app_server,
    tree_cpu_seconds,
    vm_rss_mb,
    wait_group_gone,
    wait_http,
)
from gan.tools.bench.soak import (
    AUTOSAVE_RE,
    SOAK_MARGIN_S,
    autosave_files,
    check_autosaves,
    part_soak,
    soak_schedule,
    soak_warmup_s,
)
from gan.tools.bench.training import (
    bare_steps_per_sec,
    part_autosave,
    part_overhead,
    part_rss,
    rss_mb,
    trainer_steps_per_sec,
)
from gan.tools.bench.viewers import part_viewers, steps_per_sec

# Re-exported: callers import these from gan.tools.bench (tests, gan/tools/cli.py), as before the split.
from gan.tools.procs import cpu_seconds  # tests/test_viewers.py reads bench.cpu_seconds

__all__ = [
    "KEYS", "PARTS", "DEFAULT_PARTS", "build_parser", "apply_quick", "main",
    "REPO", "TINY", "log", "cpu_seconds",
    "free_port", "wait_http", "start_app_server", "stop_app_server", "wait_group_gone", "tree_cpu_seconds",
    "vm_rss_mb",
    "bare_steps_per_sec", "trainer_steps_per_sec", "part_overhead", "part_autosave", "rss_mb", "part_rss",
    "chart_specs", "part_render",
    "train_for_seconds", "part_score", "save_grid",
    "CHROMIUM", "CHROMIUM_ARGS", "STEP_RE", "read_step", "must_read_step", "heap_mb", "part_browser",
    "steps_per_sec", "part_viewers",
    "AUTOSAVE_RE", "SOAK_MARGIN_S", "autosave_files", "soak_warmup_s", "soak_schedule", "check_autosaves",
    "part_soak", "LAB_KEYS", "part_lab", "RAY_KEYS", "part_ray",
    "GOALS", "print_table",
]

# The parts (--parts, comma-separated; all but soak by default), each described in its part_* docstring:
#   overhead, autosave, rss  training.py   the in-process Trainer's speed, autosave cost and memory growth
#   render                   render.py     the server's cost of one shared frame
#   browser                  browser.py    the real app in headless Chromium
#   score                    score.py      classifier score after --score-seconds of CPU training
#   viewers                  viewers.py    a presenter and N simulated tabs on the real app
#   soak                     soak.py       an hour of a workshop (--minutes)
#   lab                      lab.py        everyone trains: sharing designs, then participants on the real app
#   ray                      cluster.py    the app on a Ray cluster of this machine vs its worker process
# With --json the last line printed is one JSON object holding every key (null where a part was not run or
# failed; ``errors`` says why).
KEYS = ("trainer_vs_bare", "dashboard_vs_headless", "render_ms", "rss_growth_mb", "tab_heap_growth_mb",
        "seconds_to_score_7", "score_120s", "score_120s_textbook", "score_120s_worst", "fd_120s_worst",
        *LAB_KEYS, *RAY_KEYS)
PARTS = ("overhead", "autosave", "render", "rss", "browser", "score", "viewers", "soak", "lab", "ray")
# an hour / 15 minutes / a Ray cluster: only when asked for
DEFAULT_PARTS = tuple(p for p in PARTS if p not in ("soak", "lab", "ray"))
# The first paragraph of the old module docstring, kept word for word as --help's description.
DESCRIPTION = "`python -m gan bench`: numbers, not adjectives."


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan bench", description=DESCRIPTION)
    p.add_argument("--parts", default=",".join(DEFAULT_PARTS),
                   help=f"comma-separated subset of {','.join(PARTS)} (default: all but soak)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds, for tests); figures meaningless")
    p.add_argument("--threads", type=int, default=1,
                   help="torch.set_num_threads (default 1: on this shared 2-core machine 1 thread ran the default "
                        "config at ~30 steps/s and 2 threads at 8-20)")
    p.add_argument("--score-seconds", type=float, default=120.0)
    p.add_argument("--score-seeds", type=_seeds, default=[0, 1, 2],
                   help="score part: seeds of the default config, each trained --score-seconds (0,1,2)")
    p.add_argument("--copy-every", type=float, default=5.0, help="seconds between G copies in the score part")
    p.add_argument("--overhead-steps", type=int, default=600)
    p.add_argument("--monitor-every", type=int, default=500)
    p.add_argument("--render-lengths", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 1_000_000])
    p.add_argument("--render-repeats", type=int, default=5)
    p.add_argument("--rss-steps", type=int, default=20_000)
    p.add_argument("--rss-warmup", type=int, default=3000)
    p.add_argument("--heap-seconds", type=float, default=300.0)
    p.add_argument("--headless-seconds", type=float, default=45.0)
    p.add_argument("--browser-warmup", type=float, default=15.0)
    p.add_argument("--grid-dir", default=None, help="write the 120 s sample grids (PNG) here")
    p.add_argument("--viewers", type=_counts, default=[1, 10, 30, 100],
                   help="viewers part: comma-separated numbers of simulated viewers, one round each (1,10,30,100)")
    p.add_argument("--viewer-seconds", type=float, default=30.0, help="viewers part: measuring window per round")
    p.add_argument("--viewer-warmup", type=float, default=5.0, help="viewers part: seconds before each window")
    p.add_argument("--viewer-connect-timeout", type=float, default=120.0,
                   help="viewers part: seconds for a round's viewers to connect and see their first page")
    p.add_argument("--viewer-action-timeout", type=float, default=60.0,
                   help="viewers part: seconds for a presenter action to reach every viewer")
    p.add_argument("--minutes", type=_positive, default=60.0, help="soak part: minutes of the soak window")
    p.add_argument("--soak-viewers", type=_counts_one, default=10,
                   help="soak part: simulated viewers connected for the whole soak")
    p.add_argument("--soak-sample-s", type=_positive, default=30.0,
                   help="soak part: seconds between samples (RSS, step, viewers, autosave files)")
    p.add_argument("--ray-viewers", type=_counts_one, default=30, help="ray part: viewers of the presenter's run (30)")
    p.add_argument("--ray-servers", type=_counts_one, default=2,
                   help="ray part: app servers over the one cluster (2: the viewers split between them)")
    p.add_argument("--ray-window-s", type=_positive, default=20.0, help="ray part: measuring windows (20 s)")
    p.add_argument("--ray-warmup-s", type=_positive, default=10.0)
    p.add_argument("--ray-recovery-bound-s", type=_positive, default=180.0,
                   help="ray part: give up on a lost node's run after this long (180 s; the goal is 60)")
    p.add_argument("--lab-runs", type=_counts_one, default=8, help="lab part: participant runs (8)")
    p.add_argument("--lab-tabs", type=_counts_one, default=30, help="lab part: participant tabs in all (30)")
    p.add_argument("--lab-stalled", type=int, default=10, help="lab part: tabs that stop reading (10)")
    p.add_argument("--lab-stall-s", type=_positive, default=300.0, help="lab part: how long they stop (300 s)")
    p.add_argument("--lab-race-s", type=_positive, default=180.0,
                   help="lab part: seconds each participant run has to reach score 7 (180)")
    p.add_argument("--lab-design-s", type=_positive, default=20.0,
                   help="lab part: measuring window of each sharing design (20 s)")
    p.add_argument("--lab-window-s", type=_positive, default=20.0, help="lab part: other measuring windows (20 s)")
    p.add_argument("--lab-warmup-s", type=_positive, default=10.0)
    p.add_argument("--lab-metrics-every", type=int, default=250,
                   help="lab part: quality score every N steps (250: the Room sees score 7 within ~250 steps)")
    return p


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds such as 0,1,2, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct seeds >= 0 such as 0,1,2, got {text!r}")
    return seeds


def _counts_one(text: str) -> int:
    counts = _counts(text)
    if len(counts) != 1:
        raise argparse.ArgumentTypeError(f"expected one number >= 1, got {text!r}")
    return counts[0]


def _counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers such as 1,10,30, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected numbers >= 1 such as 1,10,30, got {text!r}")
    return counts


def apply_quick(args) -> None:
    args.score_seconds, args.copy_every, args.score_seeds = min(args.score_seconds, 2.0), 1.0, args.score_seeds[:1]
    args.overhead_steps, args.monitor_every = min(args.overhead_steps, 60), 20
    args.render_repeats = 1
    args.rss_steps, args.rss_warmup = min(args.rss_steps, 300), 50
    args.heap_seconds, args.headless_seconds, args.browser_warmup = 6.0, 3.0, 1.0  # 3 s saw no new step once
    args.viewers, args.viewer_seconds, args.viewer_warmup = [1, 3], 4.0, 1.0
    args.minutes, args.soak_viewers, args.soak_sample_s = min(args.minutes, 1.0), min(args.soak_viewers, 2), 10.0
    args.lab_runs, args.lab_tabs, args.lab_stalled, args.lab_stall_s = 2, 4, 1, 5.0
    args.lab_race_s, args.lab_design_s, args.lab_window_s, args.lab_warmup_s = 20.0, 2.0, 4.0, 1.0
    args.lab_metrics_every = 20
    args.ray_viewers, args.ray_window_s, args.ray_warmup_s = 4, 4.0, 1.0


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts; 0 when every part ran, 1 when one failed (see ``errors``), 2 for bad input."""
    # A SIGTERM (`timeout`, a CI runner) unwinds like Ctrl-C, so each part's finally stops its servers and cluster
    # (they are process groups of their own and would outlive us); the caller's handler comes back at the end.
    before = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, before)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = [x for x in parts if x not in PARTS]
    if unknown:
        print(f"bench: unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}", file=sys.stderr)
        return 2
    if args.threads < 1:
        print("bench: --threads must be at least 1", file=sys.stderr)
        return 2
    if args.quick:
        apply_quick(args)
    torch.set_num_threads(args.threads)
    from gan.core.config import Config
    from gan.engine.trainer import cached_dataset
    from gan.quality.metrics import Evaluator

    cfg = Config(device="cpu")
    if args.quick:
        cfg = cfg.replace(**TINY)
    results: dict = dict.fromkeys(KEYS)
    results.update({"errors": {}, "parts": parts, "machine": {
        "cpus": os.cpu_count(), "torch_threads": args.threads, "torch": torch.__version__,
        "python": platform.python_version(), "note": "2-core machine shared with other work; timings are noisy"},
        "config": cfg.to_dict()})
    t_start = time.perf_counter()
    for part in parts:
        log(f"bench: {part} ...")
        t0 = time.perf_counter()
        try:
            if part == "overhead":
                results.update(part_overhead(args, cfg))
            elif part == "autosave":
                results.update(part_autosave(args, cfg))
            elif part == "render":
                results.update(part_render(args))
            elif part == "rss":
                results.update(part_rss(args))
            elif part == "browser":
                results.update(part_browser(args))
            elif part == "viewers":
                results.update(part_viewers(args))
            elif part == "soak":
                results.update(part_soak(args))
            elif part == "lab":
                results.update(part_lab(args, cfg))
            elif part == "ray":
                results.update(part_ray(args))
            elif part == "score":
                data = cached_dataset(cfg.dataset, cfg.data_dir, "cpu")
                results.update(part_score(args, cfg, {r: Evaluator.for_dataset(data, ruler=r) for r in "AB"}))
        except Exception as exc:  # noqa: BLE001 — one failed part must not lose the others' figures
            results["errors"][part] = f"{type(exc).__name__}: {exc}"
            log(f"bench: {part} failed: {results['errors'][part]}")
        results.setdefault("part_seconds", {})[part] = round(time.perf_counter() - t0, 1)
    results["total_seconds"] = round(time.perf_counter() - t_start, 1)
    print_table(results)
    if args.json:
        print(json.dumps(results, default=float))
    return 0 if not results["errors"] else 1
