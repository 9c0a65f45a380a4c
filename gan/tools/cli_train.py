"""`python -m gan train`: train headless, print progress lines and the coach, write history.csv, samples.png and
checkpoint.pt, and end with one JSON line. Must not hold logic the pages need: it parses nothing (gan/tools/cli.py
does) and calls gan.engine/store/workshop; bad input raises cli.UsageError (one line, exit status 2).
"""

import dataclasses
import json
import sys
import time
from pathlib import Path

from gan.tools.cli import UsageError, bad_input_errors


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

    from gan.engine.status import FailureKind, RunState
    from gan.engine.trainer import Trainer
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
    except (*bad_input_errors(), StorageError) as exc:
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
            done = st.state in (RunState.PAUSED, RunState.STOPPED, RunState.FAILED) or out_of_time
            if not args.quiet and (time.monotonic() - last_print >= 1.0 or done) and st.state != RunState.LOADING:
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
            trainer.wait_until(lambda tr: tr.state in (RunState.STOPPED, RunState.FAILED), timeout=0.2)
    finally:
        trainer.pause()
        st = trainer.status()
    if st.state == RunState.FAILED:
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
    # The pause at the target is reported before its autosave is written, so a warning of that autosave (disk
    # full) comes only now, after stop() joined the thread: said once, like those during the run.
    for warning in [] if args.quiet else trainer.status().warnings:
        if warning not in shown:
            shown.add(warning)
            print(f"warning: {warning}", file=sys.stderr, flush=True)
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
    return f"{getattr(stats, column):.3f}" if stats else "—"


def _final_grid(trainer):
    """The fixed-noise grid at the final step (recorded now if the last sample point was earlier)."""
    trainer.record_grid_now()
    return trainer.history.latest_grid().images
