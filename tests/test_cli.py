"""`python -m gan` end to end, in a subprocess like a user runs it."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--model", "mlp", "--width", "32", "--batch-size", "16", "--latent-dim", "16", "--sample-every", "20",
         "--threads", "1"]


def gan(*args, timeout=180):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gan", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)


def gan_here(capsys, *args):
    """The same command in this process (cli.main, what `python -m gan` calls): no fresh torch import. The cases
    that must be seen as a user sees them stay in a subprocess (gan() above)."""
    from types import SimpleNamespace

    from gan.tools import cli

    capsys.readouterr()
    code = cli.main(list(args))
    out = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    r = gan("train", *SMALL, "--steps", "60", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out, r


def test_train_writes_history_samples_checkpoint_and_a_json_last_line(run_dir):
    out, r = run_dir
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 60
    assert {"steps", "seconds", "steps_per_sec", "loss_d", "loss_g"} <= set(summary)
    assert summary["steps_per_sec"] > 0 and summary["seconds"] > 0
    assert "step " in r.stderr  # progress lines go to stderr, the JSON alone to stdout
    import pandas as pd

    hist = pd.read_csv(out / "history.csv")
    assert {"step", "loss_d", "loss_g", "d_real", "d_fake", "loss"} <= set(hist.columns)
    assert list(hist.step) == list(range(1, 61))
    img = Image.open(out / "samples.png")
    assert img.size == (8 * 30 + 2, 8 * 30 + 2)  # 8x8 grid of 28 px with 2 px padding
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 60


def test_train_resume_continues_the_step_count(run_dir, tmp_path):
    out, _ = run_dir
    r = gan("train", "--resume", str(out / "checkpoint.pt"), "--steps", "10", "--out", str(tmp_path), "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["steps"] == 70


def test_train_for_seconds(tmp_path):
    r = gan("train", *SMALL, "--seconds", "1", "--out", str(tmp_path), "--quiet")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["steps"] > 0 and summary["seconds"] < 10


def test_sample_npy_and_png(run_dir, tmp_path):
    out, _ = run_dir
    r = gan("sample", "--checkpoint", str(out / "checkpoint.pt"), "--n", "10", "--out", str(tmp_path / "s.npy"))
    assert r.returncode == 0, r.stderr
    a = np.load(tmp_path / "s.npy")
    assert a.shape == (10, 1, 28, 28) and a.dtype == np.float32 and a.min() >= -1 and a.max() <= 1
    r = gan("sample", "--checkpoint", str(out / "checkpoint.pt"), "--n", "16", "--out", str(tmp_path / "s.png"))
    assert r.returncode == 0 and Image.open(tmp_path / "s.png").size == (8 * 30 + 2, 2 * 30 + 2)


def test_losses_table_lists_the_equilibrium_values(capsys):
    r = gan_here(capsys, "losses")
    assert r.returncode == 0
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert "0.6931" in lines["bce"] and "0.2500" in lines["mse"] and "-0.6931" in lines["minimax"]


@pytest.mark.parametrize("args, fragment", [
    (["train", "--batch-size", "0"], "batch_size: must be a whole number from 1 to 4,096"),
    (["train", "--lr-d", "0"], "lr_d: must be a number more than 0 and at most 1"),
    (["train", "--loss", "wgan"], "loss: must be one of"),
    (["train", "--model", "vit"], "model: must be one of"),
    (["train", "--steps", "-3"], "--steps"),
    (["train", "--batch-size", "many"], "invalid int value"),
    (["train", "--resume", "/nonexistent.pt"], "no such file"),
    (["sample", "--checkpoint", "/nonexistent.pt", "--out", "x.png"], "no such file"),
    (["sample", "--checkpoint", "/nonexistent.pt", "--out", "x.jpg"], "must end in .png or .npy"),
    (["train", "--frobnicate"], "unrecognized arguments"),
    (["train", "--preset", "mode-colapse"], "unknown preset 'mode-colapse'; choose one of default, textbook"),
])
def test_bad_input_exits_2_with_one_line_and_no_traceback(args, fragment, capsys):
    # A bad setting and an argparse mistake in a real `python -m gan`, as a user meets them; the rest in-process
    # (each subprocess imports torch anew: ~5 s of CPU apiece).
    r = gan(*args) if args in (["train", "--batch-size", "0"], ["train", "--frobnicate"]) else gan_here(capsys, *args)
    assert r.returncode == 2
    assert fragment in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: ")


def test_unavailable_dataset_is_a_clean_error_naming_mnist5k(tmp_path):
    env_timeout = {"GAN_LIVE_DOWNLOAD_TIMEOUT": "2"}
    r = subprocess.run([sys.executable, "-m", "gan", "train", "--dataset", "mnist", "--data-dir", str(tmp_path),
                        "--steps", "3", "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120,
                       cwd=ROOT, env={**os.environ, **env_timeout, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and "mnist5k" in r.stderr and "Traceback" not in r.stderr


def test_hostile_checkpoint_is_refused_by_sample(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    r = gan("sample", "--checkpoint", str(tmp_path / "evil.pt"), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "refused" in r.stderr and "pwned" not in r.stdout + r.stderr


def test_train_autosaves_into_out_and_resume_takes_the_folder(run_dir, tmp_path):
    out, _ = run_dir
    autosaves = sorted(p.name for p in out.glob("autosave-*.pt"))
    assert autosaves and autosaves[-1] == "autosave-000000060.pt"  # the end of the run is on disk
    r = gan("train", "--resume", str(out), "--steps", "15", "--out", str(tmp_path / "more"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["steps"] == 75
    assert f"resuming {out / 'autosave-000000060.pt'} (step 60)" in r.stderr


def test_resume_of_a_folder_with_a_damaged_autosave_names_it_and_uses_the_one_before(run_dir, tmp_path):
    import shutil

    out, _ = run_dir
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    files = sorted(copy.glob("autosave-*.pt"))
    assert len(files) >= 1
    older = copy / "autosave-000000001.pt"
    shutil.copy(files[-1], older)  # a readable older autosave (same content, another name)
    files[-1].write_bytes(files[-1].read_bytes()[:3000])  # the newest is truncated
    r = gan("train", "--resume", str(copy), "--steps", "5", "--out", str(tmp_path / "next"))
    assert r.returncode == 0, r.stderr
    assert f"warning: {files[-1]}: not a readable checkpoint" in r.stderr
    assert f"resuming {older}" in r.stderr


def test_a_full_disk_during_training_is_a_warning_and_the_run_finishes(tmp_path, monkeypatch, capsys):
    import errno

    from gan.store import autosave
    from gan.tools import cli

    def disk_full(obj, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(autosave, "torch_save_atomic", disk_full)
    code = cli.main(["train", *SMALL, "--steps", "30", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 0
    assert "warning: autosave of run at step" in err and "No space left on device" in err
    assert (tmp_path / "run" / "checkpoint.pt").is_file()  # the run itself finished and saved


def test_resume_of_a_folder_without_autosaves_is_a_clean_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    r = gan_here(capsys, "train", "--resume", str(tmp_path / "empty"), "--steps", "5", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "no readable autosave" in r.stderr and "Traceback" not in r.stderr


def test_a_presets_live_action_fires_in_the_cli_too(tmp_path, capsys):
    """`--preset lsgan_rescue` is minimax, then MSE at RESCUE_AT — fired by the trainer, as on the Train page."""
    from gan.workshop.presets import RESCUE_AT

    out = tmp_path / "rescue"
    r = gan("train", "--preset", "lsgan_rescue", *SMALL, "--steps", str(RESCUE_AT + 10), "--out", str(out))
    assert r.returncode == 0, r.stderr
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["config"]["loss"] == "minimax" and state["loss"] == "mse"
    events = state["history"]["events"]
    switches = [(s, d) for s, k, d in zip(events["step"], events["kind"], events["detail"]) if k == "loss"]
    assert switches == [(RESCUE_AT + 1, "minimax → mse")] and state["scheduled"] == []
    # The coach's reading, in the progress lines and in full when it changes (as on the Train page).
    assert "coach: G's gradient is vanishing (Minimax saturates): D(fake) 0.0" in r.stderr
    assert re.search(rf"^step \d+/{RESCUE_AT + 10} .*\[running\]  coach: G's gradient is vanishing", r.stderr, re.M)
    listing = gan_here(capsys, "presets").stdout
    assert "lsgan_rescue" in listing and f"loss → mse at step {RESCUE_AT:,}" in listing
