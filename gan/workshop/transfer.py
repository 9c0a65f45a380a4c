"""Owns a run's bytes in and out: checkpoint and CSV downloads, the live run for Compare, reading and building uploads.
Must not touch a registry, streamlit or a page's state: callers decide what to do with the bytes and Trainers."""

import io

import torch

from gan.engine.run import Run, RunView
from gan.engine.trainer import Trainer
from gan.store.checkpoint import CheckpointError, load_checkpoint, trainer_from_checkpoint
from gan.workshop import snapshots


# --- downloads (the Samples page) ------------------------------------------------------------------
def checkpoint_bytes(trainer: Run) -> bytes:
    """The whole run as a checkpoint file's bytes (gan.store.checkpoint.load_checkpoint reads them back).

    Taken at a step boundary (state_dict holds the step lock), so it is consistent while training runs.
    """
    if not trainer.has_models():
        raise RuntimeError("this run has no models yet (still loading, or it failed before the first step)")
    buf = io.BytesIO()
    torch.save(trainer.state_dict(), buf)
    return buf.getvalue()


def history_csv(trainer: RunView) -> bytes:
    """Per-step scalars as CSV: full resolution for recent steps, mean/min/max rows for older buckets."""
    # with_grids=None is falsy; True copies the grids too, which the CSV leaves out; to_csv(index=None) is falsy.
    return (trainer.history.snapshot(with_grids=False).scalars.to_csv(  # pragma: no mutate (the same CSV)
        index=False).encode())


# --- compare (the Compare page overlays the live run with saved snapshots) ---------------------------
def live_state(trainer: Run, metrics: dict | None = None) -> dict:
    """The current run in the shape gan.workshop.snapshots' frames read (history, settings), without weights.

    Cheap (a history snapshot, no model copy), so the Compare page can include the live run on every
    rerun without holding up the training thread.
    """
    snap = (
        trainer.history.snapshot(with_grids=False))  # pragma: no mutate (None is falsy; True copies unread grids)
    status = trainer.status()
    history = {"scalars": {c: snap.scalars[c].tolist() for c in snap.scalars.columns},
               "events": {c: snap.events[c].tolist() for c in snap.events.columns}}
    return {"step": status.step, "loss": status.loss, "lr_g": status.lr_g, "lr_d": status.lr_d,
            "d_steps": status.d_steps, "history": history, "metrics": metrics}


# --- uploads (the Train and Compare pages) -------------------------------------------------------------
def read_upload(upload, max_bytes: int | None = None) -> dict:
    """gan.workshop.snapshots.load_upload, with any other failure of an unreadable file turned into CheckpointError.

    torch's weights-only unpickler can fail on arbitrary bytes with errors load_checkpoint does not
    expect (e.g. KeyError from a bogus memo index); a browser upload must get a message, not a traceback.
    """
    return _refusing(upload, lambda: snapshots.load_upload(upload, _cap(max_bytes)))


def upload_trainer(upload, *, name: str = "upload", max_bytes: int | None = None,
                   device: str = "auto") -> tuple[dict, Trainer]:
    """An upload's validated state and a not yet started Trainer that continues it, built once.

    The checks of snapshots.load_upload (size cap before unpickling, weights-only load, format), then
    trainer_from_checkpoint, whose build refuses tensors that do not fit their own config: that build is
    the run, not a probe thrown away. Every refusal is a CheckpointError with one line.
    """
    def load():
        state = load_checkpoint(snapshots.read_capped(upload, _cap(max_bytes)))
        return state, trainer_from_checkpoint(state, device=device, name=name)

    return _refusing(upload, load)


def _cap(max_bytes: int | None) -> int:
    return snapshots.MAX_UPLOAD_BYTES if max_bytes is None else max_bytes  # read per call: tests lower it


def _refusing(upload, load):
    name = getattr(upload, "name", None) or "upload"
    try:
        return load()
    except CheckpointError:
        raise
    except Exception as exc:  # anything else means: not a file we can read
        raise CheckpointError(f"{name}: not a readable checkpoint ({type(exc).__name__})") from None
