"""`python -m gan ...`: train, sample, losses, presets, bench, serve. Bad input: exit status 2 and one line, no
traceback.
Must not hold logic the pages need: it parses arguments and calls gan.engine/quality/workshop.
The train command, the longest, is gan/tools/cli_train.py's.
"""

import argparse
import dataclasses
import json
import sys
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
        from gan.tools.cli_train import cmd_train  # imported here, as every command's dependencies: --help stays fast

        commands = {"train": cmd_train, "sample": cmd_sample, "losses": cmd_losses, "presets": cmd_presets}
        return commands[args.command](args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def bad_input_errors():
    """The errors whose message says all the user needs (a bad setting, checkpoint or dataset): a UsageError."""
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
    except bad_input_errors() as exc:
        raise UsageError(str(exc)) from None
    config = Config.from_dict(dict(state["config"], device="cpu"))
    G, _ = build_models(config.resolved_model(), config.latent_dim, config.width)
    G.load_state_dict(state.get("G_ema", state["G"]))  # the average, when the run kept one: what its grids showed
    ready_to_sample(G, config.latent_dim, ema="G_ema" in state)  # the saved statistics are the raw G's
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
