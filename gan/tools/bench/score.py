"""The score part: seconds_to_score_7 and score_120s(_textbook), G copied while training and scored after.
Must not start a server or a browser; writes files only where --grid-dir says (the sample grids)."""

import time
from pathlib import Path

import torch

from gan.engine.storage import atomic_write
from gan.tools.bench.common import TINY, log


def train_for_seconds(cfg, seconds: float, copy_every: float) -> list[tuple[float, int, object]]:
    """Run a Trainer for `seconds` of training time; (elapsed, step, G copy) every copy_every seconds."""
    from gan.engine.trainer import RUNNING, Trainer

    trainer = Trainer(cfg, name="bench-score")
    trainer.start()
    copies = []
    try:
        if not trainer.wait_until(lambda t: t.state == RUNNING, timeout=120, poll=0.01):
            raise RuntimeError(f"trainer did not start: {trainer.status().reason}")
        next_copy = copy_every
        while True:
            elapsed = trainer.active_seconds
            if trainer.state != RUNNING:
                raise RuntimeError(f"training stopped: {trainer.status().reason}")
            if elapsed >= min(next_copy, seconds):
                if elapsed >= seconds:
                    trainer.pause("bench time is up")
                copies.append((trainer.active_seconds, trainer.step_count, trainer.generator_copy()))
                next_copy += copy_every
                if elapsed >= seconds:
                    return copies
            time.sleep(0.02)  # the bench's own polling; a short wait keeps it off the cores
    finally:
        trainer.stop(5.0)


def part_score(args, cfg, evaluator) -> dict:
    """seconds_to_score_7, score_120s (default config) and score_120s_textbook, CPU. G is copied every few
    seconds while the Trainer runs (a copy costs milliseconds) and the copies are scored after training, so
    measuring does not slow the run being measured."""
    from gan.workshop.presets import preset_config

    out = {"ceiling_score": evaluator.ceiling.score, "ceiling_fd": evaluator.ceiling.fd,
           "classifier_heldout_accuracy": evaluator.info["heldout_accuracy"]}
    curves = {}
    for name, c in (("default", cfg), ("textbook", preset_config("textbook", seed=cfg.seed))):
        if args.quick:
            c = c.replace(**TINY)
        log(f"score: training {name} for {args.score_seconds:g} s ...")
        copies = train_for_seconds(c, args.score_seconds, args.copy_every)
        curve = []
        for elapsed, step, G in copies:
            q = evaluator.evaluate_generator(G, c.latent_dim)
            curve.append({"seconds": round(elapsed, 1), "step": step, "score": q.score, "fd": q.fd,
                          "covered": q.alarm.covered})
        curves[name] = curve
        final = copies[-1][2]
        if args.grid_dir:
            save_grid(final, c.latent_dim, Path(args.grid_dir) / f"grid_{name}_{int(args.score_seconds)}s.png")
    d, t = curves["default"], curves["textbook"]
    hit = [p["seconds"] for p in d if p["score"] >= 7.0]
    out.update({"seconds_to_score_7": hit[0] if hit else None, "score_120s": d[-1]["score"],
                "steps_120s": d[-1]["step"], "fd_120s": d[-1]["fd"],
                "score_120s_textbook": t[-1]["score"], "steps_120s_textbook": t[-1]["step"],
                "fd_120s_textbook": t[-1]["fd"], "score_seconds": args.score_seconds, "curves": curves})
    return out


def save_grid(G, latent_dim: int, path: Path) -> None:
    from gan.engine.data import to_uint8
    from gan.viz.images import grid_png

    g = torch.Generator().manual_seed(2)  # 64 fixed samples
    with torch.no_grad():
        x = G.eval()(torch.randn(64, latent_dim, generator=g))  # (64, 1, 28, 28)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, grid_png(to_uint8(x), scale=3))
    log(f"sample grid written to {path}")
