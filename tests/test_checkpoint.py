import os
import pickle
import shlex
from pathlib import Path

import pytest
import torch

from gan.core.config import Config
from gan.engine.status import RunState
from gan.engine.trainer import Trainer
from gan.store.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, trainer_from_checkpoint

SMALL = dict(model="mlp", width=32, batch_size=16, latent_dim=16, sample_every=10, seed=5)


@pytest.fixture
def trained(tmp_path):
    t = Trainer(Config(**SMALL))
    t.start(stop_at_step=30)
    assert t.wait_until(lambda tr: tr.state in (RunState.PAUSED, RunState.FAILED), 60) and t.state == RunState.PAUSED
    t.set_loss("mse")
    t.resume()
    assert t.wait_until(lambda tr: tr.step_count >= 40, 60)
    t.pause()
    path = save_checkpoint(t, tmp_path / "run" / "checkpoint.pt")
    yield t, path
    t.stop()


def test_round_trip_restores_models_optimisers_step_and_history(trained):
    t, path = trained
    state = load_checkpoint(path)
    assert state["step"] == t.step_count and state["loss"] == "mse"
    resumed = trainer_from_checkpoint(state, device="cpu")
    resumed.start(paused=True)
    try:
        assert resumed.wait_until(lambda tr: tr.state == RunState.PAUSED, 30), resumed.status()
        assert resumed.step_count == t.step_count
        for a, b in zip(t.G.state_dict().values(), resumed.G.state_dict().values()):
            assert torch.equal(a, b)
        for a, b in zip(t.generator_copy().state_dict().values(), resumed.generator_copy().state_dict().values()):
            assert torch.equal(a, b)  # the moving average of G (what the grids draw) comes back too
        assert resumed.opt_d.state_dict()["state"][0]["step"] == t.opt_d.state_dict()["state"][0]["step"]
        assert resumed.loss == "mse"
        before = resumed.history.snapshot()
        assert before.scalars.steps_in_row.sum() == t.step_count
        assert "loss" in set(before.events.kind)
        resumed.step(3)
        assert resumed.wait_until(lambda tr: tr.step_count == t.step_count + 3, 30)
        assert resumed.history.snapshot().scalars.step.iloc[-1] == t.step_count + 3  # the count continues
    finally:
        resumed.stop()


def test_a_crash_between_write_and_rename_keeps_the_previous_checkpoint(trained, monkeypatch):
    t, path = trained
    before, saved_step = path.read_bytes(), load_checkpoint(path)["step"]
    t.step(3)
    assert t.wait_until(lambda tr: tr.step_count == saved_step + 3, 30)

    def crash(src, dst):  # the new file is written and synced; the process dies before the rename
        raise OSError("simulated crash before rename")

    monkeypatch.setattr("gan.store.storage.os.replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(t, path)
    assert path.read_bytes() == before  # the old checkpoint, byte for byte
    assert load_checkpoint(path)["step"] == saved_step  # and still loadable
    assert sorted(os.listdir(path.parent)) == ["checkpoint.pt"]  # no half-written temp file left


class Evil:
    """Unpickling it would create ``marker`` (a file under the test's tmp_path, never a shared path)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def assert_evil_file_refused(tmp_path) -> Path:
    """A checkpoint whose pickle would run a shell command is refused, naming it, and the command never runs."""
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.pt"
    torch.save({"format": "gan-live-checkpoint/1", "G": Evil(marker)}, bad)
    with pytest.raises(CheckpointError, match=r"refused, the file asks to run code \(posix\.system\)"):
        load_checkpoint(bad)
    assert not marker.exists()
    return marker


def test_hostile_pickle_is_refused_without_running_it(tmp_path):
    marker = assert_evil_file_refused(tmp_path)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(Evil(marker)))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)
    assert not marker.exists()


def test_truncated_foreign_and_missing_files_get_one_line_errors(trained, tmp_path):
    _, path = trained
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    cases = {truncated: "not a readable checkpoint", foreign: "not a GAN Live checkpoint",
             text: "not a readable checkpoint", tmp_path / "absent.pt": "no such file"}
    for bad, fragment in cases.items():
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(bad)
        assert fragment in str(err.value) and "\n" not in str(err.value)


def test_checkpoint_whose_tensors_do_not_fit_its_config_is_refused(trained):
    _, path = trained
    state = load_checkpoint(path)
    state["config"] = dict(state["config"], width=64)
    with pytest.raises(CheckpointError, match="does not fit"):
        trainer_from_checkpoint(state, device="cpu")


def test_loads_from_a_file_object(trained):
    t, path = trained
    with open(path, "rb") as f:
        assert load_checkpoint(f)["step"] == t.step_count >= 40


def test_arbitrary_bytes_only_ever_raise_checkpoint_error(trained):
    import io
    import random

    _, path = trained
    good = path.read_bytes()
    rng = random.Random(0)
    blobs = [b"hello world\n" * 10, b"\x80\x02}q\x00.", b"PK\x03\x04" + rng.randbytes(200)]
    blobs += [rng.randbytes(rng.randint(1, 5000)) for _ in range(100)]
    blobs += [good[: rng.randint(1, len(good) - 1)] for _ in range(20)]
    for blob in blobs:
        f = io.BytesIO(blob)
        f.name = "upload.pt"
        with pytest.raises(CheckpointError):
            load_checkpoint(f)


def test_a_presets_live_action_fires_once_across_resume_and_never_in_a_branch(tmp_path):
    """Scheduled changes travel with the run: a resumed run fires a pending one once; a fired one never
    again; a branch (the presenter's own experiment) drops the plan."""
    from gan.workshop import snapshots

    t = Trainer(Config(**SMALL))
    t.schedule(20, "loss", "mse")
    t.schedule(60, "lr_d", 1e-4)
    t.start(stop_at_step=40)
    assert t.wait_until(lambda tr: tr.state == RunState.PAUSED, 60)
    assert t.loss == "mse" and t.scheduled == [(60, "lr_d", 1e-4)]  # the first fired, the second waits
    t.set_loss("bce")  # the presenter overrides the fired action: a resume must not re-fire it
    t.step(1)
    assert t.wait_until(lambda tr: tr.step_count == 41 and tr.loss == "bce", 30)
    path = save_checkpoint(t, tmp_path / "mid.pt")
    t.stop()
    state = load_checkpoint(path)
    resumed = trainer_from_checkpoint(state, device="cpu")
    resumed.start(stop_at_step=70)
    try:
        assert resumed.wait_until(lambda tr: tr.state == RunState.PAUSED and tr.step_count >= 70, 60), resumed.status()
        assert resumed.loss == "bce"  # the loss action fired before the save: not again
        assert resumed.status().lr_d == 1e-4 and resumed.scheduled == []  # the pending one fired, once
        events = resumed.history.snapshot().events
        assert len(events[(events.kind == "lr_d") & (events.step > 41)]) == 1
    finally:
        resumed.stop()
    branch = trainer_from_checkpoint(snapshots.branch_state(state, "mid"), device="cpu")
    assert branch.scheduled == []
    bad = dict(state, scheduled=[[10, "loss", "nonsense"]])
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="scheduled"):
        load_checkpoint(tmp_path / "bad.pt")


def _refusal(state: dict) -> str:
    from gan.store.checkpoint import validate_state

    with pytest.raises(CheckpointError) as err:
        validate_state(state, "ck.pt")
    return str(err.value)


def test_each_refusal_of_a_checkpoint_names_the_file_and_what_is_wrong(trained):
    from gan.store.checkpoint import FORMAT, validate_state

    _, path = trained
    good = load_checkpoint(path)
    latent = good["config"]["latent_dim"]
    assert validate_state(dict(good, step=0), "ck.pt").latent_dim == latent  # step 0 is a valid start
    assert validate_state({k: v for k, v in good.items() if k != "scheduled"}).latent_dim == latent  # older files
    assert validate_state(dict(good, scheduled=[(0, "loss", "mse")])) is not None
    bad_noise = f"ck.pt: fixed_noise does not match latent_dim {latent}"
    cases = {
        "format": (dict(good, format="other/1"), f"ck.pt: not a GAN Live checkpoint (expected format {FORMAT})"),
        "missing": ({k: v for k, v in good.items() if k != "D"}, "ck.pt: incomplete checkpoint, missing D"),
        "loss": (dict(good, loss="wgan"), "ck.pt: unknown loss 'wgan'"),
        "negative step": (dict(good, step=-1), "ck.pt: invalid step -1"),
        "text step": (dict(good, step="3"), "ck.pt: invalid step '3'"),
        "G a list": (dict(good, G=[1, 2]), "ck.pt: G is not a state dict of tensors"),
        "D numbers": (dict(good, D={"w": 1.0}), "ck.pt: D is not a state dict of tensors"),
        "G_ema a list": (dict(good, G_ema=[1, 2]), "ck.pt: G_ema is not a state dict of tensors"),
        "scheduled step": (dict(good, scheduled=[(-1, "loss", "mse")]), "ck.pt: invalid scheduled change (step -1)"),
        "noise 1-d": (dict(good, fixed_noise=torch.zeros(latent)), bad_noise),
        "noise width": (dict(good, fixed_noise=torch.zeros(4, latent + 1)), bad_noise),
        "noise list": (dict(good, fixed_noise=[[0.0] * latent]), bad_noise),
    }
    for case, (state, message) in cases.items():
        assert _refusal(state) == message, case
    assert _refusal(dict(good, config=dict(good["config"], batch_size=0))).startswith(
        "ck.pt: its config is invalid (batch_size: ")
    assert _refusal(dict(good, scheduled=[(5, "loss", "wgan")])).startswith("ck.pt: invalid scheduled change (")


def test_the_size_cap_on_a_checkpoint_file_is_exact(tmp_path, monkeypatch):
    from gan.store import checkpoint

    monkeypatch.setattr(checkpoint, "MAX_BYTES", 2 * 2**20)
    big = tmp_path / "big.pt"
    with open(big, "wb") as f:
        f.truncate(2 * 2**20 + 1)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(big)
    assert str(err.value) == f"{big}: larger than 2 MB, not a GAN Live checkpoint"
    with open(big, "r+b") as f:
        f.truncate(2 * 2**20)  # at the cap: read, and refused for what it is, not for its size
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(big)
    assert str(err.value).startswith(f"{big}: not a readable checkpoint")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "nothing.pt")
    assert str(err.value) == f"{tmp_path / 'nothing.pt'}: no such file"


def test_a_checkpoint_without_the_average_of_g_starts_the_average_at_g(trained):
    """Checkpoints written before G was averaged (or with ema 0) load; the average starts at their G."""
    t, path = trained
    state = load_checkpoint(path)
    assert "G_ema" in state and any(not torch.equal(state["G_ema"][k], v) for k, v in state["G"].items())
    del state["G_ema"]
    resumed = trainer_from_checkpoint(state, device="cpu")
    resumed.start(paused=True)
    try:
        assert resumed.wait_until(lambda tr: tr.state == RunState.PAUSED, 30), resumed.status()
        for k, v in resumed.generator_copy().state_dict().items():
            assert torch.equal(v, state["G"][k])
    finally:
        resumed.stop()


def test_an_average_of_g_that_does_not_fit_is_refused(trained):
    t, path = trained
    state = load_checkpoint(path)
    state["G_ema"] = {"net.0.weight": torch.zeros(3, 3)}
    with pytest.raises(CheckpointError):
        trainer_from_checkpoint(state, device="cpu")


def test_a_refusal_names_an_unnamed_upload_and_quotes_what_torch_said_in_one_cut_line(tmp_path, monkeypatch):
    """What a presenter reads when a file is refused: the file's name (or "upload" for a nameless stream),
    the first line of torch's reason, cut at 160 characters, and the global a hostile file asked for."""
    import io

    from gan.store import checkpoint

    with pytest.raises(CheckpointError) as err:
        load_checkpoint(io.BytesIO(b"not a torch file at all"))  # a stream without a name
    assert str(err.value).startswith("upload: not a readable checkpoint (")

    evil = io.BytesIO()
    torch.save({"format": "gan-live-checkpoint/1", "G": Evil(tmp_path / "pwned")}, evil)
    evil.seek(0)
    evil.name = "evil.pt"
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(evil)
    # named from the pickle's own opcodes (torch.serialization.get_unsafe_globals_in_checkpoint), not torch's wording
    assert str(err.value) == "evil.pt: refused, the file asks to run code (posix.system)", str(err.value)

    path = tmp_path / "odd.pt"
    path.write_bytes(b"x")
    reasons = {  # what torch.load raises -> the reason the message quotes
        RuntimeError("A" * 300 + "\nsecond line"): "A" * 160,
        EOFError(): "EOFError",  # no text: the exception's kind
        pickle.UnpicklingError("header\nGLOBAL " + "m" * 300 + "\nfooter"): "(not a torch file, or corrupt)",
    }
    for exc, reason in reasons.items():
        def fail(*args, exc=exc, **kwargs):
            raise exc

        monkeypatch.setattr(checkpoint.torch, "load", fail)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        if reason.startswith("("):  # torch's words mention a GLOBAL, but the file names none: no text match
            assert str(err.value) == f"{path}: not a readable checkpoint {reason}"
        else:
            assert str(err.value) == f"{path}: not a readable checkpoint (truncated or not a torch file: {reason})"


def test_a_file_that_is_not_ours_is_named_by_its_path_and_a_bare_state_as_checkpoint(tmp_path):
    from gan.store.checkpoint import validate_state

    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(foreign)
    assert str(err.value).startswith(f"{foreign}: not a GAN Live checkpoint")
    with pytest.raises(CheckpointError) as err:
        validate_state({"format": "gan-live-checkpoint/1", "config": {}})
    assert str(err.value) == ("checkpoint: incomplete checkpoint, missing step, loss, lr_g, lr_d, d_steps, G, D, "
                              "opt_g, opt_d, history, fixed_noise, rng")


def test_a_checkpoint_saved_on_a_gpu_loads_and_continues_on_this_cpu(trained, tmp_path):
    """A run saved on a GPU machine says device "cuda" in its config; on a machine without one it must still
    load (validated as device "auto") and continue on the device asked for, here the CPU."""
    t, path = trained
    state = load_checkpoint(path)
    gpu = tmp_path / "from-a-gpu.pt"
    torch.save(dict(state, config=dict(state["config"], device="cuda")), gpu)
    loaded = load_checkpoint(gpu)
    assert loaded["config"]["device"] == "cuda"  # the file is not rewritten, only read
    resumed = trainer_from_checkpoint(loaded, device="cpu")
    assert resumed.config.device == "cpu" and resumed.step_count == t.step_count


def test_a_continued_run_keeps_its_name_and_the_options_it_was_given(trained):
    _, path = trained
    state = load_checkpoint(path)
    plain = trainer_from_checkpoint(state, device="cpu")
    assert plain.name == "run" and plain.dataset_fallback is False
    named = trainer_from_checkpoint(state, device="cpu", name="adopted", dataset_fallback=True)
    assert named.name == "adopted" and named.dataset_fallback is True


def test_a_misfit_is_explained_by_the_first_line_of_the_reason_cut_at_200(trained, monkeypatch):
    _, path = trained
    state = load_checkpoint(path)
    with pytest.raises(CheckpointError) as err:
        trainer_from_checkpoint(dict(state, config=dict(state["config"], width=64)), device="cpu")
    assert str(err.value).startswith("checkpoint does not fit its own config: Error(s) in loading state_dict for ")
    assert "size mismatch" not in str(err.value)  # torch's details are the lines after the first

    def misfit(self, state):
        raise ValueError("B" * 300 + "\nmore")

    monkeypatch.setattr(Trainer, "check_resume_state", misfit)
    with pytest.raises(CheckpointError) as err:
        trainer_from_checkpoint(state, device="cpu")
    assert str(err.value) == "checkpoint does not fit its own config: " + "B" * 160 + "B" * 40


def test_the_tensors_of_a_file_written_on_a_gpu_load_onto_the_cpu(trained, tmp_path, monkeypatch):
    """A GPU machine's file names "cuda:0" as each tensor's place; here, without a GPU, every tensor must load
    onto the CPU (map_location), not fail for want of CUDA nor, on a GPU machine, land on the GPU. The file is
    written here with each storage tagged as a GPU machine tags it."""
    _, path = trained
    state = load_checkpoint(path)
    gpu = tmp_path / "tensors-on-a-gpu.pt"
    with monkeypatch.context() as m:
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(state, gpu)
    loaded = load_checkpoint(gpu)
    tensors = [v for key in ("G", "D") for v in loaded[key].values()] + [loaded["fixed_noise"]]
    assert tensors and all(v.device.type == "cpu" for v in tensors)


def test_a_hostile_pickle_is_refused_even_where_torch_is_told_to_trust_files(tmp_path, monkeypatch):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 turns torch's safe default off for every load that does not ask for
    weights only: ours asks, so the file's code still never runs."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    assert_evil_file_refused(tmp_path)


def test_a_refusal_lists_each_global_the_file_asks_for_cut_at_160_characters(tmp_path, monkeypatch):
    from gan.store import checkpoint

    bad = tmp_path / "evil.pt"
    torch.save({"format": "gan-live-checkpoint/1", "G": Evil(tmp_path / "pwned")}, bad)
    for names, shown in ((["posix.system", "builtins.eval"], "posix.system, builtins.eval"),
                         (["m." + "x" * 200, "n.y"], "m." + "x" * 158)):
        monkeypatch.setattr(checkpoint, "_unsafe_globals", lambda source, names=names: names)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(bad)
        assert str(err.value) == f"{bad}: refused, the file asks to run code ({shown})"
    assert not (tmp_path / "pwned").exists()
