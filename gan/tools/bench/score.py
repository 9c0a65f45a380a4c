"""The score part: seconds_to_score_7, score_120s(_textbook), several seeds, two rulers; G copied while training.
Must not start a server or a browser; writes files only where --grid-dir says (the sample grids)."""

import time
from pathlib import Path

import torch

from gan.core.models import ready_to_sample
from gan.store.storage import atomic_write
from gan.tools.bench.common import TINY, log


def train_for_seconds(cfg, seconds: float, copy_every: float) -> list[tuple[float, int, object]]:
    """Run a Trainer for `seconds` of training time; (elapsed, step, G copy) every copy_every seconds."""
    from gan.engine.status import RunState
    from gan.engine.trainer import Trainer

    trainer = Trainer(cfg, name="bench-score")
    trainer.start()
    copies = []
    try:
        if not trainer.wait_until(lambda t: t.state == RunState.RUNNING, timeout=120, poll=0.01):
            raise RuntimeError(f"trainer did not start: {trainer.status().reason}")
        next_copy = copy_every
        while True:
            elapsed = trainer.active_seconds
            if trainer.state != RunState.RUNNING:
                raise RuntimeError(f"training stopped: {trainer.status().reason}")
            if elapsed >= min(next_copy, seconds):
                if elapsed >= seconds:
                    trainer.pause("bench time is up")
                copies.append((trainer.active_seconds, trainer.step_count, trainer.generator_copy(statistics=False)))
                next_copy += copy_every
                if elapsed >= seconds:
                    for _, _, G in copies:  # the average's own BatchNorm statistics, as Trainer.generator_copy
                        ready_to_sample(G, cfg.latent_dim, ema=cfg.ema > 0)
                    return copies
            time.sleep(0.02)  # the bench's own polling; a short wait keeps it off the cores
    finally:
        trainer.stop(5.0)


def score_copies(copies, evaluators: dict, latent_dim: int) -> list[dict]:
    """Each (elapsed, step, G) copy scored under every ruler: score/fd are ruler A's, score_b/fd_b ruler B's."""
    curve = []
    for elapsed, step, G in copies:
        row = {"seconds": round(elapsed, 1), "step": step}
        for ruler, ev in evaluators.items():
            q = ev.evaluate_generator(G, latent_dim)
            tag = "" if ruler == "A" else f"_{ruler.lower()}"
            row.update({f"score{tag}": q.score, f"fd{tag}": q.fd, f"covered{tag}": q.alarm.covered})
        curve.append(row)
    return curve


def part_score(args, cfg, evaluators: dict) -> dict:
    """seconds_to_score_7, score_120s (default config, every seed in --score-seeds, under both rulers) and
    score_120s_textbook (first seed), CPU. G is copied every few seconds while the Trainer runs (a copy costs
    milliseconds) and the copies are scored after training, so measuring does not slow the run being measured.
    ``evaluators``: {"A": Evaluator, "B": Evaluator} (gan.quality.classifier.RULERS)."""
    from gan.workshop.presets import preset_config

    a, b = evaluators["A"], evaluators["B"]
    out = {"ceiling_score": a.ceiling.score, "ceiling_fd": a.ceiling.fd,
           "ceiling_score_b": b.ceiling.score, "ceiling_fd_b": b.ceiling.fd,
           "classifier_heldout_accuracy": a.info["heldout_accuracy"],
           "classifier_b_heldout_accuracy": b.info["heldout_accuracy"]}
    seeds = args.score_seeds
    runs = [(f"default_seed{s}", cfg.replace(seed=s)) for s in seeds]
    runs.append(("textbook", preset_config("textbook", seed=seeds[0])))
    curves = {}
    for name, c in runs:
        if args.quick:
            c = c.replace(**TINY)
        log(f"score: training {name} for {args.score_seconds:g} s ...")
        copies = train_for_seconds(c, args.score_seconds, args.copy_every)
        curves[name] = score_copies(copies, evaluators, c.latent_dim)
        if args.grid_dir:
            save_grid(copies[-1][2], c.latent_dim, Path(args.grid_dir) / f"grid_{name}_{int(args.score_seconds)}s.png")
    d, t = curves[f"default_seed{seeds[0]}"], curves["textbook"]
    hit = [p["seconds"] for p in d if p["score"] >= 7.0]
    finals = [dict(curves[f"default_seed{s}"][-1], seed=s) for s in seeds]
    out.update({"seconds_to_score_7": hit[0] if hit else None, "score_120s": d[-1]["score"],
                "steps_120s": d[-1]["step"], "fd_120s": d[-1]["fd"],
                "score_120s_b": d[-1]["score_b"], "fd_120s_b": d[-1]["fd_b"],
                # the goal (issue 15) holds only if it holds for every seed under both rulers: the worst of each
                "score_120s_worst": min(min(f["score"], f["score_b"]) for f in finals),
                "fd_120s_worst": max(max(f["fd"], f["fd_b"]) for f in finals),
                "score_120s_seeds": finals,
                "score_120s_textbook": t[-1]["score"], "steps_120s_textbook": t[-1]["step"],
                "fd_120s_textbook": t[-1]["fd"], "score_120s_textbook_b": t[-1]["score_b"],
                "fd_120s_textbook_b": t[-1]["fd_b"], "score_seconds": args.score_seconds, "curves": curves})
    return out


def save_grid(G, latent_dim: int, path: Path) -> None:
    from gan.core.data import to_uint8
    from gan.viz.images import grid_png

    g = torch.Generator().manual_seed(2)  # 64 fixed samples
    with torch.no_grad():
        x = G.eval()(torch.randn(64, latent_dim, generator=g))  # (64, 1, 28, 28)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, grid_png(to_uint8(x), scale=3))
    log(f"sample grid written to {path}")
