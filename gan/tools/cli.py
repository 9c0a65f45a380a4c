"""`python -m gan ...`: train, sample, losses, presets, bench, serve. Bad input: exit status 2 and one line, no
traceback.
Must not hold logic the pages need: it parses arguments and calls gan.engine/quality/workshop.
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input from the command line; printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (no usage dump), exit status 2."""

    def error(self, message):
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _config_flags(parser: argparse.ArgumentParser) -> None:
    from gan.core.config import DEVICES, Config

    # Checked by Config, not argparse: a bad value is the config's one-line ConfigError, as for every setting.
    extra = {"device": f" (one of {', '.join(DEVICES)}; auto takes cuda, then mps on a Mac, then cpu)"}
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        kind = type(f.default)
        parser.add_argument(flag, dest=f.name, type=kind, default=None, metavar=kind.__name__.upper(),
                            help=f"default: {f.default}{extra.get(f.name, '')}")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m gan", description="GAN Live engine, headless.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a GAN and write history.csv, samples.png and checkpoint.pt")
    _config_flags(t)
    t.add_argument("--preset", default=None, help="start from a named preset (see `python -m gan presets`)")
    t.add_argument("--data", default=None, metavar="PATH",
                   help="train on your own images: a folder or .zip of PNG/JPEG files, or an .npz/IDX file "
                        "(sets --dataset own --data-path PATH)")
    length = t.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help="number of steps (default 1000)")
    length.add_argument("--seconds", type=float, default=None, help="train for this many seconds instead")
    t.add_argument("--out", default="runs/latest", help="output directory (default runs/latest)")
    t.add_argument("--resume", default=None, metavar="CHECKPOINT_OR_RUN_DIR",
                   help="continue a saved run: a checkpoint file, or a run folder with autosaves")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    t.add_argument("--quiet", action="store_true", help="no progress lines, only the final JSON")

    s = sub.add_parser("sample", help="draw samples from a checkpoint's generator")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="F.png (a grid) or F.npy (float32 (N, 1, 28, 28) in [-1, 1])")

    sub.add_parser("losses", help="the loss registry with its equilibrium values")
    sub.add_parser("presets", help="the named presets")
    b = sub.add_parser("bench", help="benchmarks (see `python -m gan bench --help`)", add_help=False)
    b.add_argument("rest", nargs=argparse.REMAINDER)
    v = sub.add_parser("serve", help="run the app for a room: a presenter token and the two links (see "
                                     "`python -m gan serve --help`)", add_help=False)
    v.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from gan.tools.bench import main as bench_main

        return bench_main(argv[1:])
    if argv[:1] == ["serve"]:
        from gan.tools.serve import main as serve_main

        return serve_main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return EXIT_BAD_INPUT if exc.code else 0
    try:
        commands = {"train": cmd_train, "sample": cmd_sample, "losses": cmd_losses, "presets": cmd_presets}
        return commands[args.command](args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _bad_input_errors():
    from gan.core.config import ConfigError
    from gan.core.data import DataUnavailable
    from gan.store.checkpoint import CheckpointError

    return (ConfigError, CheckpointError, DataUnavailable)


def cmd_losses(args) -> int:
    from gan.core.losses import LOSSES

    def fmt(v):
        return "—" if v is None else f"{v:.4f}"

    print(f"{'name':<8} {'label':<8} {'D at 0.5':>9} {'G at 0.5':>9}  summary")
    for spec in LOSSES.values():
        d, g = fmt(spec.equilibrium_d), fmt(spec.equilibrium_g)
        print(f"{spec.name:<8} {spec.label:<8} {d:>9} {g:>9}  {spec.summary}")
    return 0


def cmd_presets(args) -> int:
    from gan.workshop.presets import PRESETS

    for name, preset in PRESETS.items():
        plan = "; ".join(f"{kind} → {value} at step {at:,}" for at, kind, value in preset.plan())
        print(f"{name:<16} {preset.description}" + (f" [live: {plan}]" if plan else ""))
    return 0


def _config_from_args(args):
    from gan.core.config import Config

    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if getattr(args, f.name) is not None}
    if getattr(args, "data", None):  # --data PATH: your own images
        overrides.update(dataset="own", data_path=args.data)
    base = {}
    if args.preset:
        base = dict(_preset(args.preset).config)
    return Config.from_dict({**base, **overrides})


def _preset(name: str):
    from gan.workshop.presets import get_preset

    try:
        return get_preset(name)
    except ValueError as exc:
        raise UsageError(f"--preset: {exc}") from None


def cmd_train(args) -> int:
    import torch

    from gan.engine.status import FailureKind
    from gan.engine.trainer import FAILED, LOADING, PAUSED, STOPPED, Trainer
    from gan.store.autosave import Autosaver, latest_valid
    from gan.store.checkpoint import load_checkpoint, save_checkpoint, trainer_from_checkpoint
    from gan.store.storage import StorageError, atomic_write

    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps: must be a positive integer, got {args.steps}")
    if args.seconds is not None and not args.seconds > 0:
        raise UsageError(f"--seconds: must be positive, got {args.seconds}")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads: must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} exists and is not a directory")
    try:
        if args.resume and Path(args.resume).is_dir():
            # A run folder (this command's --out, or the dashboard's runs/live/<run>): its newest readable
            # autosave; damaged ones are named and passed over.
            path, state, skipped = latest_valid(args.resume)
            for note in skipped:
                print(f"warning: {note}", file=sys.stderr)
            print(f"resuming {path} (step {state['step']})", file=sys.stderr)
            trainer = trainer_from_checkpoint(state, device=args.device or "auto")
        elif args.resume:
            trainer = trainer_from_checkpoint(load_checkpoint(args.resume), device=args.device or "auto")
        else:
            trainer = Trainer(_config_from_args(args))
            for at, kind, value in _preset(args.preset).plan() if args.preset else []:
                trainer.schedule(at, kind, value)  # e.g. "MSE at step 1200", fired by the trainer itself
        start_step = int(trainer.resume_state["step"]) if trainer.resume_state else 0
        # Autosaves into --out while training: after a crash, `--resume OUT` continues from the last one.
        trainer.autosave = Autosaver(out, name=out.name or "run", root=out.parent)
    except (*_bad_input_errors(), StorageError) as exc:
        raise UsageError(str(exc)) from None
    steps = args.steps if args.steps is not None or args.seconds is not None else 1000
    target = start_step + steps if steps is not None else None
    trainer.start(stop_at_step=target)
    last_print = 0.0
    shown: set[str] = set()
    said = None  # the coach's condition last printed in full
    try:
        while True:
            st = trainer.status()
            # The CLI never pauses by itself: a pause means the step target was reached or a loss went
            # non-finite (the reason says which).
            out_of_time = args.seconds is not None and st.elapsed >= args.seconds  # training time, not load time
            done = st.state in (PAUSED, STOPPED, FAILED) or out_of_time
            if not args.quiet and (time.monotonic() - last_print >= 1.0 or done) and st.state != LOADING:
                last_print = time.monotonic()
                total = f"/{target}" if target else ""
                losses = f"loss_d {_last(trainer, 'loss_d')}  loss_g {_last(trainer, 'loss_g')}"
                coach = "" if st.diagnosis is None else f"  coach: {st.diagnosis.title}"
                print(f"step {st.step}{total}  {losses}  {st.steps_per_sec:.0f} steps/s  [{st.state}]{coach}",
                      file=sys.stderr, flush=True)
                if st.diagnosis is not None and st.diagnosis.condition != said:  # the whole sentence once
                    said = st.diagnosis.condition
                    print(f"coach: {st.diagnosis.sentence}", file=sys.stderr, flush=True)
                for warning in st.warnings:  # e.g. an autosave that could not be written (disk full)
                    if warning not in shown:
                        shown.add(warning)
                        print(f"warning: {warning}", file=sys.stderr, flush=True)
            if done:
                break
            trainer.wait_until(lambda tr: tr.state in (STOPPED, FAILED), timeout=0.2)
    finally:
        trainer.pause()
        st = trainer.status()
    if st.state == FAILED:
        if st.failure == FailureKind.DATA:
            trainer.stop()
            raise UsageError(st.reason)  # FailureKind.DATA: the reason is DataUnavailable's message
        trainer.stop()
        print(f"error: training failed: {st.reason}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    snap = trainer.history.snapshot()
    atomic_write(out / "history.csv", snap.scalars.to_csv(index=False).encode())
    from gan.viz.images import grid_png

    if snap.grids:
        atomic_write(out / "samples.png", grid_png(_final_grid(trainer), scale=1))
    save_checkpoint(trainer, out / "checkpoint.pt")
    trainer.stop()
    seconds = st.elapsed
    steps_done = st.step - start_step
    tail = snap.scalars.tail(50)
    summary = {
        "steps": st.step, "seconds": round(seconds, 3), "steps_per_sec": round(steps_done / max(seconds, 1e-9), 2),
        "loss_d": round(float(tail.loss_d.mean()), 4) if len(tail) else None,
        "loss_g": round(float(tail.loss_g.mean()), 4) if len(tail) else None,
        "d_real": round(float(tail.d_real.mean()), 4) if len(tail) else None,
        "d_fake": round(float(tail.d_fake.mean()), 4) if len(tail) else None,
        "loss": st.loss, "dataset": st.dataset, "device": st.device, "model": st.model,
        "state": st.state, "reason": st.reason, "out": str(out),
        "coach": None if st.diagnosis is None else st.diagnosis.condition.value,
    }
    print(json.dumps(summary))
    return 0


def _last(trainer, column: str) -> str:
    stats = trainer.last_stats
    return f"{stats[column]:.3f}" if stats else "—"


def _final_grid(trainer):
    """The fixed-noise grid at the final step (recorded now if the last sample point was earlier)."""
    trainer.record_grid_now()
    return trainer.history.latest_grid().images


def cmd_sample(args) -> int:
    import numpy as np
    import torch

    from gan.core.config import Config
    from gan.core.data import to_uint8
    from gan.core.models import build_models, ready_to_sample
    from gan.store.checkpoint import load_checkpoint
    from gan.viz.images import grid_png

    if not 1 <= args.n <= 100_000:
        raise UsageError(f"--n: must be in [1, 100000], got {args.n}")
    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        raise UsageError(f"--out: must end in .png or .npy, got {out.name}")
    try:
        state = load_checkpoint(args.checkpoint)
    except _bad_input_errors() as exc:
        raise UsageError(str(exc)) from None
    config = Config.from_dict(dict(state["config"], device="cpu"))
    G, _ = build_models(config.resolved_model(), config.latent_dim, config.width)
    G.load_state_dict(state.get("G_ema", state["G"]))  # the average, when the run kept one: what its grids showed
    ready_to_sample(G, config.latent_dim, average="G_ema" in state)  # the saved statistics are the raw G's
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        images = G(torch.randn(args.n, config.latent_dim, generator=gen)).clamp(-1, 1)  # (N, 1, 28, 28)
    out.parent.mkdir(parents=True, exist_ok=True)
    from gan.store.storage import atomic_write

    if out.suffix == ".npy":
        atomic_write(out, lambda f: np.save(f, images.numpy().astype(np.float32)))
    else:
        atomic_write(out, grid_png(to_uint8(images), scale=1))
    print(json.dumps({"n": args.n, "out": str(out), "step": state["step"]}))
    return 0
