"""Workshop mode: presenter lock, manual steps, GIF/interpolation, snapshots + branch, uploads, presets."""

import dataclasses
import hmac
import io
import os
import pickle
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from gan.core.config import Config
from gan.core.live import StepTarget
from gan.core.step import SampleGrid, StepReport, StepStats
from gan.engine.status import RunState
from gan.engine.trainer import Trainer
from gan.store.checkpoint import CheckpointError
from gan.viz import animation, theory
from gan.workshop import auth, snapshots

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"width": 32, "batch_size": 16, "latent_dim": 16, "sample_every": 5, "seed": 3}


@pytest.fixture(scope="module")
def paused_trainer():
    torch.set_num_threads(1)
    t = Trainer(Config(**SMALL), name="workshop")
    t.start(stop_at_step=12)
    assert t.wait_until(lambda tr: tr.state in (RunState.PAUSED, RunState.FAILED), 60)
    assert t.state == RunState.PAUSED, t.status()
    yield t
    t.stop()


# --- presenter lock ----------------------------------------------------------------------------------
def test_lock_off_when_no_token_is_configured():
    for env in (None, "", "   "):
        a = auth.access(env, None, False)
        assert a.presenter and not a.locked and a.notice is None
    assert auth.env_token({}) is None and auth.env_token({"GAN_LIVE_TOKEN": " s3cret "}) == "s3cret"


def test_wrong_or_missing_token_unlocks_nothing_and_right_token_is_remembered():
    assert not auth.access("s3cret", None, False).presenter
    wrong = auth.access("s3cret", "guess", False)
    assert not wrong.presenter and not wrong.remember and "not right" in wrong.notice
    assert not auth.access("s3cret", "", False).presenter
    assert not auth.access("s3cret", "s3cret-and-more", False).presenter
    assert not auth.access("s3cret", ["guess"], False).presenter
    assert not auth.access("s3cret", None, "yes").presenter  # only a real True flag counts
    right = auth.access("s3cret", "s3cret", False)
    assert right.presenter and right.remember and right.notice is None
    later = auth.access("s3cret", None, right.remember)  # a later page without ?token=
    assert later.presenter
    assert auth.access("s3cret", "typo", True).presenter  # a typo elsewhere does not lock the presenter out
    assert auth.access("s3cret", ["old", "s3cret"], False).presenter  # repeated param: the last one counts


def test_each_visit_gets_exactly_the_access_it_should():
    """Every field, not only "presenter": what the page stores for the session (remember), whether it says
    "read-only view" (locked) and the one line it shows; and a caller that leaves out the session flag
    gets a viewer's access, never a presenter's."""
    Access = auth.Access
    viewer = Access(False, False, True, "Read-only view: the presenter controls this session.")
    wrong = Access(False, False, True, "That presenter token is not right: this is the read-only view.")
    presenter = Access(True, True, True, None)
    cases = {
        (None, None, False): Access(True, False, False, None),  # no lock: everyone presents, nothing to remember
        (None, None, True): Access(True, True, False, None),
        ("s3cret", None, None): viewer,  # the flag left out
        ("s3cret", "", False): viewer,
        ("s3cret", "guess", False): wrong,
        ("s3cret", ("a", "guess"), False): wrong,  # a repeated ?token= (a list; the last counts)
        ("s3cret", "s3cret", False): presenter,
        ("s3cret", None, True): presenter,  # remembered from an earlier visit
        ("s3cret", "typo", True): presenter,
    }
    for (env, token, flag), expected in cases.items():
        token = list(token) if isinstance(token, tuple) else token
        got = auth.access(env, token) if flag is None else auth.access(env, token, flag)
        assert got == expected and [type(v) for v in got.__dict__.values()][:3] == [bool] * 3, (env, token, flag)


def test_tokens_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert auth.token_matches("ünïcode", "ünïcode") and not auth.token_matches("abc", "abd")
    assert calls and all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)
    assert not auth.token_matches("abc", None) and not auth.token_matches("", "")


# --- manual steps ------------------------------------------------------------------------------------
def _params(module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before, module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


@pytest.mark.parametrize("which, moves_d, moves_g", [("d", True, False), ("g", False, True), ("both", True, True)])
def test_manual_step_changes_only_the_chosen_network(paused_trainer, which, moves_d, moves_g):
    t = paused_trainer
    g0, d0, step0 = _params(t.G), _params(t.D), t.step_count
    t.step(1, which=which)
    assert t.wait_until(lambda tr: tr.last_manual_step is not None and tr.last_manual_step.step == step0 + 1, 30)
    assert t.state == RunState.PAUSED
    assert _changed(d0, t.D) == moves_d
    assert _changed(g0, t.G) == moves_g
    caption = theory.step_caption(t.last_manual_step)
    assert caption.startswith(f"Step {step0 + 1} ({ {'d': 'D only', 'g': 'G only', 'both': 'D and G'}[which]})")
    assert "D(real)" in caption and "→" in caption  # deltas against the step before


def test_step_caption_formats_deltas_and_says_which_network_moved():
    s = StepReport(7, StepTarget.g, before=StepStats(0.69, 0.75, 0.52, 0.41), after=StepStats(0.70, 0.60, 0.52, 0.47))
    text = theory.step_caption(s)
    assert text.startswith("Step 7 (G only): D(real) 0.520 → 0.520 (+0.000)")
    assert "D(fake) 0.410 → 0.470 (+0.060)" in text and "loss G 0.750 → 0.600 (−0.150)" in text
    assert "only G's weights moved" in text
    assert "weights moved" not in theory.step_caption(dataclasses.replace(s, which=StepTarget.both))
    assert "No manual step yet" in theory.step_caption(None)



def test_the_token_goes_back_into_a_presenters_address_only_where_it_is_missing():
    presenter = auth.Access(presenter=True, remember=True, locked=True, notice=None)
    viewer = auth.Access(presenter=False, remember=False, locked=True, notice=None)
    assert auth.token_for_address(" s3cret ", None, presenter) == "s3cret"  # a page switch dropped it: put it back
    assert auth.token_for_address("s3cret", "s3cret", presenter) is None  # already there: leave the address alone
    assert auth.token_for_address("s3cret", None, viewer) is None  # a viewer never gets it
    assert auth.token_for_address("", None, presenter) is None and auth.token_for_address(None, None, presenter) is None


# --- time-lapse GIF and interpolation ------------------------------------------------------------------
def test_gif_exports_one_frame_per_grid(paused_trainer):
    grids = paused_trainer.history.snapshot().grids
    assert len(grids) >= 2  # step 0 and every sample_every steps
    data = animation.grids_to_gif(grids, scale=2)
    assert data[:6] in (b"GIF87a", b"GIF89a")
    assert animation.gif_frame_count(data) == len(grids)
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (2 * (8 * 30 + 2), 2 * (8 * 30 + 2 + 14))  # tiled 8x8 with padding, caption strip
    with pytest.raises(ValueError):
        animation.grids_to_gif([])


def test_gif_caps_the_number_of_frames():
    n = animation.MAX_GIF_FRAMES + 50
    grids = [SampleGrid(i, "bce", np.full((4, 28, 28), i % 255, np.uint8)) for i in range(n)]
    assert animation.gif_frame_count(animation.grids_to_gif(grids, scale=1, caption=False)) == animation.MAX_GIF_FRAMES


def test_slerp_keeps_the_norm_lerp_does_not_and_both_hit_the_endpoints(paused_trainer):
    z0, z1 = animation.latent_pair(64, 1, 2)
    s, li = animation.interpolation_path(z0, z1, 9, "slerp"), animation.interpolation_path(z0, z1, 9, "lerp")
    for path in (s, li):
        assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    lo, hi = sorted((z0.norm().item(), z1.norm().item()))
    assert ((s.norm(dim=1) >= lo - 1e-4) & (s.norm(dim=1) <= hi + 1e-4)).all()
    assert li[4].norm() < 0.85 * lo  # the straight line cuts through the low-density middle
    G = paused_trainer.generator_copy()
    za, zb = animation.latent_pair(SMALL["latent_dim"], 1, 2)
    strip = animation.interpolate(G, za, zb, steps=5)
    assert strip.shape == (5, 28, 28) and strip.dtype == np.uint8
    assert np.array_equal(animation.interpolate_at(G, za, zb, 0.0), strip[0])
    assert np.array_equal(animation.interpolate_at(G, za, zb, 1.0), strip[-1])


def test_cells_get_the_classifiers_guess():
    images = np.zeros((4, 28, 28), np.uint8)

    def fake_embed(x):  # a stand-in classifier: class = index, confidence 0.9 / 0.4, the last no digit
        assert x.shape == (4, 1, 28, 28) and float(x.min()) == -1.0
        p = torch.full((4, 10), 0.0)
        p[0, 7], p[1, 1], p[2, 3], p[3, 5] = 0.9, 0.9, 0.4, 0.99
        return None, p, torch.tensor([True, True, True, False])

    labels = animation.classify_cells(images, fake_embed)
    assert [d for d, _ in labels] == [7, 1, 3, None]
    assert animation.cell_captions(labels) == ["7 (90%)", "1 (90%)", "? (40%)", "–"]


# --- snapshots, branch, compare data --------------------------------------------------------------------
def test_snapshot_save_load_and_branch_with_another_loss(paused_trainer, tmp_path):
    store = snapshots.SnapshotStore(tmp_path)
    store.save("base", paused_trainer)
    assert store.names() == ["base"]
    with pytest.raises(FileExistsError):
        store.save("base", paused_trainer)
    for bad in ("../evil", "", "a/b", "x" * 65, ".hidden"):
        with pytest.raises(ValueError):
            store.save(bad, paused_trainer)
    fresh = snapshots.SnapshotStore(tmp_path)  # a new process sees the file
    assert fresh.load("base")["step"] == paused_trainer.step_count
    branch = fresh.branch("base", loss="mse", lr_d=1e-3)
    branch.start(paused=True)
    try:
        assert branch.wait_until(lambda tr: tr.state == RunState.PAUSED, 30)
        assert branch.loss == "mse" and branch.status().lr_d == 1e-3
        assert branch.step_count == paused_trainer.step_count
        ev = branch.history.snapshot().events
        assert {"branch", "loss"} <= set(ev["kind"])
        branch.step(2)
        assert branch.wait_until(lambda tr: tr.step_count == paused_trainer.step_count + 2, 30)
        assert set(branch.history.snapshot().scalars["loss"].iloc[-2:]) == {"mse"}
    finally:
        branch.stop()
    assert fresh.load("base")["loss"] == "bce"  # the snapshot itself is unchanged
    with pytest.raises(ValueError, match="loss"):
        fresh.branch("base", loss="nope")
    with pytest.raises(ValueError):
        fresh.branch("base", latent_dim=8)  # would change the models' shapes
    hist = snapshots.history_frame(fresh.load("base"), "base")
    assert set(hist["run"]) == {"base"} and len(hist) == paused_trainer.step_count


# --- checkpoint upload ---------------------------------------------------------------------------------
class Evil:
    """Unpickling it would create ``marker`` (a file under the test's tmp_path, never a shared path)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


class Upload(io.BytesIO):
    """Like st.file_uploader's UploadedFile: a BytesIO with name and size."""

    def __init__(self, data: bytes, name: str = "upload.pt", size: int | None = None):
        super().__init__(data)
        self.name, self.size = name, len(data) if size is None else size


def test_hostile_pickle_upload_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"format": "gan-live-checkpoint/1", "payload": Evil(marker)}, buf)
    with pytest.raises(CheckpointError, match="refused"):
        snapshots.load_upload(Upload(buf.getvalue(), "evil.pt"))
    raw = pickle.dumps(Evil(marker))
    with pytest.raises(CheckpointError):
        snapshots.load_upload(Upload(raw, "evil-raw.pt"))
    assert not marker.exists()


def test_oversized_empty_and_foreign_uploads_are_refused_with_a_message():
    with pytest.raises(CheckpointError, match="over the upload limit"):
        snapshots.load_upload(Upload(b"x" * 2048, "big.pt"), max_bytes=1024)
    with pytest.raises(CheckpointError, match="over the upload limit"):  # a lying size is caught on read
        snapshots.load_upload(Upload(b"x" * 2048, "liar.pt", size=10), max_bytes=1024)
    with pytest.raises(CheckpointError, match="empty"):
        snapshots.load_upload(Upload(b"", "empty.pt"))
    with pytest.raises(CheckpointError):
        snapshots.load_upload(Upload(b"not a checkpoint at all", "text.pt"))
    buf = io.BytesIO()
    torch.save({"weights": torch.zeros(3)}, buf)  # a torch file, but not ours
    with pytest.raises(CheckpointError, match="not a GAN Live checkpoint"):
        snapshots.load_upload(Upload(buf.getvalue(), "foreign.pt"))


def test_the_upload_cap_is_exact_and_its_message_gives_the_sizes():
    mb = 2**20
    assert snapshots.read_capped(Upload(b"x" * mb, "edge.pt"), max_bytes=mb).getvalue() == b"x" * mb  # at the cap: fine
    with pytest.raises(CheckpointError) as err:
        snapshots.read_capped(Upload(b"x" * (3 * mb // 2), "big.pt"), max_bytes=mb)
    assert str(err.value) == "big.pt: 1.5 MB is over the upload limit of 1 MB; a GAN Live checkpoint is far smaller"

    class Stream(io.BytesIO):  # a plain file object: no declared size, and not read from its start
        pass

    stream = Stream(b"h" * 100 + b"x" * (mb + 1))
    stream.seek(100)
    with pytest.raises(CheckpointError) as err:
        snapshots.read_capped(stream, max_bytes=mb)
    assert str(err.value) == "upload: 1.0 MB is over the upload limit of 1 MB; a GAN Live checkpoint is far smaller"
    assert stream.tell() == 100  # measured, not consumed
    stream = Stream(b"h" * 100 + b"x" * mb)
    stream.seek(100)
    assert snapshots.read_capped(stream, max_bytes=mb).getvalue() == b"x" * mb  # the header it skipped is not counted


def test_a_snapshots_tables_for_compare_have_its_numbers_in_long_form():
    state = {"step": 3, "loss": "mse", "lr_g": 1e-3, "lr_d": 5e-4, "d_steps": 2,
             "history": {"scalars": {"step": [1, 2, 3], "loss_d": [0.7, 0.6, 0.5], "loss_g": [0.8, 0.9, 1.0],
                                     "d_real": [0.5, 0.6, 0.7], "d_fake": [0.5, 0.4, 0.3]},
                         "events": [{"step": 2, "time": 1.0, "kind": "loss", "detail": "bce → mse"}]},
             "metrics": {"step": [2, 3], "score": [1.5, 2.5], "fd": [30.0, 20.0], "alarm": ["", "collapse"]}}
    m = snapshots.metrics_frame(state, "a")
    assert list(m.columns) == ["run", "step", "metric", "value"]
    assert m.to_dict("records") == [  # the text column (the alarm) is not a curve
        {"run": "a", "step": 2, "metric": "score", "value": 1.5},
        {"run": "a", "step": 3, "metric": "score", "value": 2.5},
        {"run": "a", "step": 2, "metric": "fd", "value": 30.0},
        {"run": "a", "step": 3, "metric": "fd", "value": 20.0}]
    for broken in (None, [], {"score": [1.0]}, {"step": [1, 2], "score": [1.0]}):  # none, no steps, ragged
        empty = snapshots.metrics_frame(dict(state, metrics=broken), "a")
        assert empty.empty and list(empty.columns) == ["run", "step", "metric", "value"]
    ev = snapshots.events_frame(state, "a")
    assert ev.to_dict("records") == [{"run": "a", "step": 2, "time": 1.0, "kind": "loss", "detail": "bce → mse"}]
    no_events = snapshots.events_frame({"history": {"events": []}}, "b")
    assert no_events.empty and list(no_events.columns) == ["run", "step", "time", "kind", "detail"]
    row = snapshots.summary(state, "a")
    assert {k: row[k] for k in ("run", "step", "loss", "lr_g", "lr_d", "d_steps")} == \
        {"run": "a", "step": 3, "loss": "mse", "lr_g": 1e-3, "lr_d": 5e-4, "d_steps": 2}
    assert (row["loss_d"], row["loss_g"], row["d_real"], row["d_fake"]) == (0.5, 1.0, 0.7, 0.3)  # the last step


def test_a_branch_changes_only_what_it_names_and_says_so_in_its_events(paused_trainer):
    state = paused_trainer.state_dict()
    step = state["step"]
    new = snapshots.branch_state(state, "base", loss="mse", lr_d=1e-3, batch_size=32, lr_g=None)
    assert (new["loss"], new["lr_d"], new["lr_g"], new["d_steps"]) == ("mse", 1e-3, state["lr_g"], state["d_steps"])
    assert new["config"] == dict(state["config"], batch_size=32) and new["scheduled"] == []
    assert state["loss"] == "bce" and state["config"]["batch_size"] != 32  # the source is left as it was
    events = new["history"]["events"]
    added = [(events["step"][i], events["kind"][i], events["detail"][i]) for i in range(-2, 0)]
    assert added == [(step + 1, "branch", f"from base at step {step}: loss bce → mse, lr_d {state['lr_d']} → 0.001, "
                                          f"batch_size {state['config']['batch_size']} → 32"),
                     (step + 1, "loss", "bce → mse")]
    assert len(state["history"]["events"]["step"]) == len(events["step"]) - 2
    same = snapshots.branch_state(state, "base", loss="bce")  # nothing changes: one plain "branch" event
    assert same["history"]["events"]["detail"][-1] == f"from base at step {step}"
    with pytest.raises(ValueError, match="a branch can change loss, lr_g, lr_d, d_steps, batch_size, sample_every; "
                                         "not latent_dim, width"):
        snapshots.branch_state(state, "base", width=8, latent_dim=4)
    with pytest.raises(ValueError, match="^branch setting rejected: .*lr_d"):
        snapshots.branch_state(state, "base", lr_d=-1.0)
    with pytest.raises(ValueError, match="^branch setting rejected: .*batch_size"):
        snapshots.branch_state(state, "base", batch_size=0)
    with pytest.raises(ValueError, match="unknown loss"):
        snapshots.branch_state(state, "base", loss="wgan")


def test_a_valid_upload_becomes_a_snapshot(paused_trainer, tmp_path):
    buf = io.BytesIO()
    torch.save(paused_trainer.state_dict(), buf)
    state = snapshots.load_upload(Upload(buf.getvalue(), "mine.pt"))
    store = snapshots.SnapshotStore(tmp_path)
    store.add_state("mine", state)
    assert store.names() == ["mine"] and snapshots.SnapshotStore(tmp_path).load("mine")["step"] == state["step"]


# --- presets ---------------------------------------------------------------------------------------------
# --- the Compare page with the presenter lock ------------------------------------------------------------
@pytest.fixture
def compare_page(tmp_path, monkeypatch, paused_trainer):
    monkeypatch.setenv("GAN_LIVE_RUNS_DIR", str(tmp_path))
    snapshots.SnapshotStore(tmp_path / "snapshots").save("base", paused_trainer)

    def make(token_env=None, query_token=None):
        if token_env is None:
            monkeypatch.delenv("GAN_LIVE_TOKEN", raising=False)
        else:
            monkeypatch.setenv("GAN_LIVE_TOKEN", token_env)
        at = AppTest.from_file(str(ROOT / "pages" / "compare.py"), default_timeout=60)
        if query_token is not None:
            at.query_params["token"] = query_token
        return at.run()

    return make


def _controls(at) -> bool:
    return bool(at.file_uploader) or any(b.label in ("Add snapshot", "Delete") for b in at.button)


def test_compare_page_overlays_saved_runs_without_a_lock(compare_page):
    at = compare_page()
    assert not at.exception
    assert _controls(at)
    assert at.multiselect(key="compare_runs").value == ["base"]
    assert len(at.get("vega_lite_chart")) >= 1


def test_lock_hides_controls_without_or_with_a_wrong_token(compare_page):
    at = compare_page("s3cret")
    assert not at.exception and not _controls(at)
    assert len(at.get("vega_lite_chart")) >= 1  # the read-only view still shows the curves
    at = compare_page("s3cret", "wrong")
    assert not at.exception and not _controls(at)
    assert any("not right" in i.value for i in at.info)


def test_lock_shows_controls_with_the_right_token_and_remembers_it(compare_page):
    at = compare_page("s3cret", "s3cret")
    assert not at.exception and _controls(at)
    del at.query_params["token"]  # e.g. after switching pages: the session remembers
    at.run()
    assert _controls(at)


def test_compare_page_refuses_a_hostile_upload_with_a_message(compare_page, tmp_path):
    at = compare_page()
    buf = io.BytesIO()
    torch.save({"format": "gan-live-checkpoint/1", "payload": Evil(tmp_path / "pwned")}, buf)
    at.file_uploader(key="compare_upload").set_value(("evil.pt", buf.getvalue(), "application/octet-stream"))
    at.run()
    at.text_input(key="compare_upload_name").set_value("evil")
    at.button(key="compare_add").click()
    at.run()
    assert not at.exception
    assert any("Not added" in e.value and "refused" in e.value for e in at.error)
    assert at.multiselect(key="compare_runs").options == ["base"]
    assert not (tmp_path / "pwned").exists()


WORKSHOP_PRESETS = ("default", "d_too_strong", "minimax_stall", "mode_collapse", "bce_rescue", "lsgan_rescue")


@pytest.mark.parametrize("name", WORKSHOP_PRESETS)
def test_each_workshop_preset_applies_its_settings(name):
    from gan.workshop.presets import PRESETS, preset_config

    if name not in PRESETS:
        pytest.fail(f"preset {name!r} missing from gan/workshop/presets.py")
    preset = PRESETS[name]
    assert preset.description.strip().endswith(".")  # one sentence of what to watch
    t = Trainer(preset_config(name, device="cpu"), name=f"preset-{name}")
    t.start(paused=True)
    try:
        assert t.wait_until(lambda tr: tr.state == RunState.PAUSED, 60), t.status()
        status = t.status()
        for key in ("lr_g", "lr_d", "d_steps", "loss"):
            if key in preset.config:
                assert getattr(status, key) == preset.config[key], key
        for key in ("beta1", "batch_size", "width"):
            if key in preset.config:
                assert getattr(t.config, key) == preset.config[key], key
                assert t.opt_g.param_groups[0]["betas"][0] == t.config.beta1
        # the live actions are scheduled and fired by the trainer: tests/test_presets.py runs them for real
    finally:
        t.stop()


def test_compare_overlays_the_quality_scores_a_snapshot_kept(tmp_path, monkeypatch, paused_trainer):
    """A snapshot saves its quality rows; Compare draws them (score by default) beside a run that has none."""
    import pandas as pd

    from gan.quality.monitor import ROW_COLUMNS, quality_columns

    monkeypatch.setenv("GAN_LIVE_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv("GAN_LIVE_TOKEN", raising=False)
    rows = pd.DataFrame([(0, 1.2, 900.0, 0.0, 0, False, 5.0, 1.0, 1.1, 950.0),
                         (500, 6.4, 31.0, 2.2, 10, False, 5.0, 0.02, 7.1, 40.0)],
                        columns=list(ROW_COLUMNS))
    store = snapshots.SnapshotStore(tmp_path / "snapshots")
    store.save("scored", paused_trainer, metrics=quality_columns(rows))
    store.save("plain", paused_trainer)
    assert store.load("scored")["metrics"]["score"] == [1.2, 6.4]  # kept on disk, read back
    at = AppTest.from_file(str(ROOT / "pages" / "compare.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert at.selectbox(key="compare_metric").value == "score"
    assert "share of samples that are not digits (↓)" in at.selectbox(key="compare_metric").options
    quality = [c for c in at.get("vega_lite_chart") if "classifier score" in str(c.proto.spec)]
    assert quality, "no score chart"
    assert "6.4" in str(quality[0].proto.datasets) or "6.4" in str(quality[0].proto.spec)
    assert any("No scores saved for: plain" in c.value for c in at.caption)


def test_delete_on_compare_removes_that_snapshot_and_nothing_else(tmp_path, monkeypatch, paused_trainer):
    monkeypatch.setenv("GAN_LIVE_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv("GAN_LIVE_TOKEN", raising=False)
    store = snapshots.SnapshotStore(tmp_path / "snapshots")
    for name in ("keep", "victim"):
        store.save(name, paused_trainer)
    at = AppTest.from_file(str(ROOT / "pages" / "compare.py"), default_timeout=60).run()
    at.selectbox(key="compare_delete_name").set_value("victim")
    at.button(key="compare_delete").click()
    at.run()
    assert not at.exception
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["keep.pt"]
    assert at.multiselect(key="compare_runs").options == ["keep"]
    assert snapshots.SnapshotStore(tmp_path / "snapshots").load("keep")["step"] == paused_trainer.step_count


def test_an_unreadable_upload_is_named_in_one_line_whatever_broke_inside(monkeypatch):
    from gan.workshop import transfer

    def explode(upload, max_bytes):
        raise KeyError(7)  # what torch's unpickler raises on some random bytes

    monkeypatch.setattr(snapshots, "load_upload", explode)
    with pytest.raises(CheckpointError) as err:
        transfer.read_upload(Upload(b"\x80\x02garbage", "mine.pt"))
    assert str(err.value) == "mine.pt: not a readable checkpoint (KeyError)"
    with pytest.raises(CheckpointError) as err:
        transfer.read_upload(io.BytesIO(b"\x80\x02garbage"))  # a file object without a name
    assert str(err.value) == "upload: not a readable checkpoint (KeyError)"


def test_adopted_runs_get_free_names_and_folders_of_their_own(paused_trainer, tmp_path):
    from gan.store.checkpoint import trainer_from_checkpoint
    from gan.workshop.runs import RunRegistry

    registry = RunRegistry(max_runs=3, mode="thread", metrics_every=0, runs_root=tmp_path)
    try:
        state = paused_trainer.state_dict()
        runs = [registry.adopt(trainer_from_checkpoint(state, name="upload", device="cpu"), paused=True)
                for _ in range(3)]
        assert [r.name for r in runs] == ["upload", "upload-2", "upload-3"] == registry.names()
        assert registry.current() is runs[-1]
        dirs = [r.autosave.run_dir for r in runs]
        assert len(set(dirs)) == 3 and all(d.name.endswith(r.name) for d, r in zip(dirs, runs))
        assert all(r.wait_until(lambda t: t.state == RunState.PAUSED, 30) for r in runs)
        assert all(r.step_count == paused_trainer.step_count for r in runs)  # paused=True: where it was
        assert registry.stop_all(timeout=10.0)
        # an adopted run is numbered like a started one: the next run started here is the server's fourth
        assert registry.start(Config(**SMALL), paused=True).name == "run-4"
    finally:
        registry.close(timeout=10.0)


def test_the_snapshot_store_keeps_the_newest_in_memory_and_forgets_what_it_deletes(paused_trainer, tmp_path):
    store = snapshots.SnapshotStore(tmp_path / "snaps", keep_in_memory=2)
    state = paused_trainer.state_dict()
    for name in ("a", "b", "c"):
        store.add_state(name, dict(state, step=ord(name)))
    assert store.names() == ["a", "b", "c"] and store.exists("b") and not store.exists("d")
    with pytest.raises(FileExistsError, match="a snapshot called 'a' exists already; choose another name"):
        store.add_state("a", state)
    store.add_state("a", dict(state, step=1), overwrite=True)  # overwrite: memory follows the file
    assert store.load("a")["step"] == 1
    (tmp_path / "snaps" / "b.pt").unlink()  # behind the store's back: "b" is no longer among the newest two
    with pytest.raises(KeyError, match="no snapshot called 'b'"):
        store.load("b")
    (tmp_path / "snaps" / "c.pt").unlink()
    assert store.load("c")["step"] == ord("c")  # still in memory: one of the two most recently used
    store.delete("a")
    assert not store.exists("a") and "a" not in store.names()
    with pytest.raises(KeyError):
        store.load("a")  # gone from memory too, not only from disk
    for bad in ("../x", "", " ", "a/b", "x" * 65):
        with pytest.raises(ValueError, match="letters, digits"):
            store.add_state(bad, state)
    assert store.branch("c", loss="mse").name == "c-branch"
    assert store.branch("c", run_name="mine").name == "mine"


# --- a run's bytes in and out (gan/workshop/transfer.py) -----------------------------------------------
def test_downloads_and_the_live_run_for_compare_carry_what_their_pages_show(paused_trainer):
    from gan.workshop import transfer

    unstarted = Trainer(Config(**SMALL), name="unstarted")  # no models until it starts
    with pytest.raises(RuntimeError) as err:
        transfer.checkpoint_bytes(unstarted)
    assert str(err.value) == "this run has no models yet (still loading, or it failed before the first step)"

    rows = transfer.history_csv(paused_trainer).decode().splitlines()
    assert rows[0].startswith("step,time,loss_d,loss_g")  # no unnamed index column in front
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, paused_trainer.step_count + 1))

    metrics = {"step": [10], "score": [2.5]}
    live = transfer.live_state(paused_trainer, metrics)
    assert live["metrics"] == metrics and live["step"] == paused_trainer.step_count
    assert live["history"]["scalars"]["step"][-1] == paused_trainer.step_count


def test_an_upload_becomes_a_run_named_placed_and_capped_as_asked(paused_trainer, monkeypatch):
    from gan.workshop import transfer

    data = transfer.checkpoint_bytes(paused_trainer)
    _, run = transfer.upload_trainer(Upload(data, "mine.pt"))
    assert run.name == "upload" and run.config.device == "auto" and run.step_count == paused_trainer.step_count
    _, run = transfer.upload_trainer(Upload(data, "mine.pt"), name="adopted", device="cpu")
    assert run.name == "adopted" and run.config.device == "cpu"
    for read in (transfer.read_upload, transfer.upload_trainer):  # the cap each caller passes is the one applied
        with pytest.raises(CheckpointError) as err:
            read(Upload(data, "mine.pt"), max_bytes=len(data) - 1)
        assert str(err.value).startswith("mine.pt: ") and "is over the upload limit of" in str(err.value)
        assert read(Upload(data, "mine.pt"), max_bytes=len(data)) is not None  # at the cap: fine

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(transfer, "trainer_from_checkpoint", broken)
    with pytest.raises(CheckpointError) as err:
        transfer.upload_trainer(Upload(data, "mine.pt"))
    assert str(err.value) == "mine.pt: not a readable checkpoint (RuntimeError)"


class FakeRun:
    """A run whose training lives elsewhere (like a worker-process run: is_alive() is False while it trains),
    recording how long the registry is willing to wait for it. Name, state and folder are all the registry reads."""

    def __init__(self, name: str, alive: bool = False):
        from gan.engine.status import RunState

        self.name, self.state, self.alive, self.step_count = name, RunState.IDLE, alive, 0
        self.autosave, self.run_dir, self.stops, self.forgets = None, None, [], []
        self.stops_in_time = True  # what stop() reports: False for a thread that outlived the timeout

    def is_alive(self) -> bool:
        return self.alive

    def start(self, paused: bool = False) -> None:
        from gan.engine.status import RunState

        self.state = RunState.PAUSED if paused else RunState.RUNNING

    def stop(self, timeout: float = 1.0) -> bool:
        from gan.engine.status import RunState

        self.stops.append(timeout)
        self.state, self.alive = RunState.STOPPED, False  # a real stop joins its thread
        return self.stops_in_time

    def forget(self, timeout: float = 1.0) -> None:
        self.forgets.append(timeout)


@pytest.mark.parametrize("alive", [False, True])
def test_a_run_counts_as_live_whether_its_thread_is_here_or_in_the_worker(tmp_path, alive):
    """The cap, Replace and live_runs see a run training in another process (no thread here) and a thread that
    has not yet reported a state alike: either alone makes a run live."""
    from gan.workshop.runs import RunLimitError, RunRegistry

    registry = RunRegistry(max_runs=1, mode="thread", metrics_every=0, runs_root=tmp_path)
    first = registry.adopt(FakeRun("a"))
    if alive:  # a thread still running after its state already says it ended
        from gan.engine.status import RunState

        first.alive, first.state = True, RunState.STOPPED
    assert registry.live_runs() == [first]
    with pytest.raises(RunLimitError, match="1 run"):
        registry.adopt(FakeRun("b"))
    assert first.stops == []  # a refused start stops nothing
    second = registry.adopt(FakeRun("b"), replace=True, timeout=3.5)
    assert first.stops == [3.5]  # Replace stopped the live run, waiting as long as it was told
    assert registry.current() is second and registry.names() == ["a", "b"]


def test_waits_for_a_run_that_will_not_stop_are_bounded(tmp_path):
    """Stop, Replace and Reset never wait forever for a stuck run: each passes a finite time limit (the given
    one, else its default: 10 s to replace, 5 s per run to reset)."""
    from gan.workshop.runs import RunRegistry

    registry = RunRegistry(max_runs=1, mode="thread", metrics_every=0, runs_root=tmp_path)
    first = registry.adopt(FakeRun("a"))
    second = registry.adopt(FakeRun("b"), replace=True)
    assert first.stops == [10.0]
    third = registry.adopt(FakeRun("c"), replace=True)
    assert second.stops == [10.0]
    registry.reset()
    assert third.stops == [5.0] and [r.forgets for r in (first, second, third)] == [[5.0]] * 3
    assert registry.names() == [] and registry.current() is None
    fourth = registry.adopt(FakeRun("d"))
    registry.reset(timeout=2.0)
    assert fourth.stops == [2.0] and fourth.forgets == [2.0]


def test_in_worker_mode_an_adopted_run_becomes_its_worker_twin(tmp_path, monkeypatch):
    """With a training worker process, a branch or an upload runs there: adopt hands it to
    RemoteTrainer.from_trainer with the registry's worker, and registers and starts the twin."""
    from gan.worker.remote import RemoteTrainer
    from gan.workshop.runs import RunRegistry

    registry = RunRegistry(max_runs=1, mode="thread", metrics_every=0, runs_root=tmp_path)
    registry.worker = worker = object()  # what process mode holds (tests/test_worker.py runs the real one)
    twins = []

    def from_trainer(cls, client, trainer):
        twins.append((client, trainer))
        return FakeRun(trainer.name)

    monkeypatch.setattr(RemoteTrainer, "from_trainer", classmethod(from_trainer))
    local = FakeRun("upload")
    run = registry.adopt(local, paused=True)
    assert twins == [(worker, local)] and run is not local
    assert run.name == "upload" and run.state == "paused"
    assert registry.current() is run and registry.live_runs() == [run]
    assert local.autosave is not None and local.autosave.run_dir.name.endswith("upload")  # its own folder


def test_quality_columns_are_the_monitors_rows_as_columns(tmp_path, monkeypatch):
    from gan.workshop.runs import RunRegistry

    registry = RunRegistry(max_runs=1, mode="thread", metrics_every=0, runs_root=tmp_path)
    run = registry.adopt(FakeRun("a"))
    assert registry.quality_columns(run) is None  # metrics off: no monitor, no columns
    import pandas as pd

    rows = pd.DataFrame({"step": [500, 1000], "score": [5.5, 7.0], "fd": [40.0, 12.0], "entropy": [2.1, 2.2],
                         "covered": [9, 10], "not_digit": [0.1, None]})

    class Monitor:
        def snapshot(self):
            return type("Snapshot", (), {"rows": rows})()

    monkeypatch.setattr(registry, "monitor", lambda trainer: Monitor() if trainer is run else None)
    columns = registry.quality_columns(run)
    assert columns["step"] == [500.0, 1000.0] and columns["fd"] == [40.0, 12.0] and columns["covered"] == [9.0, 10.0]
    assert set(columns) == {"step", "score", "fd", "entropy", "covered", "not_digit"}


def test_an_upload_is_judged_by_its_declared_size_first_and_never_read_far_past_the_cap():
    mb = 2**20
    with pytest.raises(CheckpointError) as err:  # declared over the cap: refused before a byte is read
        snapshots.read_capped(Upload(b"x" * 10, "declared.pt", size=3 * mb // 2), max_bytes=mb)
    assert str(err.value).startswith("declared.pt: 1.5 MB is over the upload limit of 1 MB")

    class Liar(Upload):  # declares 10 bytes, holds more; records how much each read asked for
        asked: list = []

        def read(self, n=-1):
            self.asked.append(n)
            return super().read(n)

    liar = Liar(b"x" * (3 * mb), "liar.pt", size=10)
    with pytest.raises(CheckpointError) as err:
        snapshots.read_capped(liar, max_bytes=mb)
    assert str(err.value) == "liar.pt: over the upload limit of 1 MB"
    assert liar.asked == [mb + 1]  # one byte past the cap tells "too big" without holding the rest


def test_a_branch_of_a_gpu_run_starts_here_with_no_plan_and_validated_settings(paused_trainer):
    state = dict(paused_trainer.state_dict(), scheduled=[[500, "loss", "mse"]])
    state["config"] = dict(state["config"], device="cuda")  # saved on a GPU machine
    new = snapshots.branch_state(state, "gpu-run", lr_g=1e-3)
    assert new["scheduled"] == [] and new["lr_g"] == 1e-3  # the source's pending plan stays behind
    assert new["config"]["device"] == "cuda"  # the branch's own device is chosen when it is built
    for bad, field in (({"lr_g": -1.0}, "lr_g"), ({"lr_d": 0.0}, "lr_d"), ({"d_steps": 0}, "d_steps"),
                       ({"batch_size": 0}, "batch_size")):
        with pytest.raises(ValueError, match=f"branch setting rejected: {field}"):
            snapshots.branch_state(state, "gpu-run", **bad)
    t = snapshots.trainer_from_checkpoint(new, device="cpu")
    assert t.config.device == "cpu" and t.resume_state["lr_g"] == 1e-3
    buf = io.BytesIO()
    torch.save(state, buf)
    assert snapshots.load_upload(Upload(buf.getvalue(), "gpu.pt"))["config"]["device"] == "cuda"  # checked on CPU
    metrics = snapshots.metrics_frame(dict(state, metrics={"step": [5, 10], "score": [6.0, 7.0], "fd": [20.0, 9.0]}),
                                      "gpu-run")
    assert list(metrics.columns) == ["run", "step", "metric", "value"] and set(metrics.metric) == {"score", "fd"}


def test_snapshot_names_and_the_store_s_memory(paused_trainer, tmp_path):
    with pytest.raises(ValueError) as err:
        snapshots.check_name("a..b")
    assert str(err.value) == ("snapshot name 'a..b' is not allowed: use 1-64 letters, digits, '-', '_' or '.', "
                              "starting with a letter or digit (e.g. bce-step1200)")
    assert snapshots.check_name(" ok.1 ") == "ok.1"
    store = snapshots.SnapshotStore(tmp_path)
    with pytest.raises(RuntimeError, match="^this run has not built its models yet; wait until it is running$"):
        store.save("early", Trainer(Config(**SMALL)))
    store.save("s", paused_trainer)
    first = store.load("s")
    assert store.load("s") is first  # kept in memory: one read of the file
    fresh = snapshots.SnapshotStore(tmp_path)  # another server (or after a restart): nothing in memory yet
    fresh.delete("s")
    assert not fresh.exists("s") and fresh.names() == []
    store.save("s", paused_trainer)
    first = store.load("s")
    store.save("s", paused_trainer, overwrite=True, metrics={"step": [7], "score": [5.0]})
    assert store.load("s") is not first and store.load("s")["metrics"] == {"step": [7], "score": [5.0]}
    store.save("a-newer", paused_trainer)
    os.utime(store.path("s"), (0, 1_000_000_000))  # "s" is the older one, whatever its name says
    os.utime(store.path("a-newer"), (0, 1_000_000_100))
    assert store.names() == ["s", "a-newer"]  # oldest first, by when they were saved
    branch = store.branch("s", device="cpu", loss="mse")
    details = branch.resume_state["history"]["events"]["detail"]  # the history loads when the branch starts
    assert any(d.startswith("from s at step") for d in details)


def test_a_failed_run_is_offered_from_its_newest_readable_autosave_read_once_per_change(paused_trainer, tmp_path):
    """The presenter's page asks on every rerun: the offer is loaded once, and again only when an autosave
    was written (a new file or the newest rewritten); a damaged newest file is passed over and named."""
    import shutil

    from gan.engine.status import RunState
    from gan.store.autosave import Autosaver
    from gan.workshop.runs import RunRegistry

    registry = RunRegistry(max_runs=1, mode="thread", metrics_every=0, runs_root=tmp_path)
    run = FakeRun("crashed")
    run.run_dir = tmp_path / "live" / "20261127-000000-crashed"
    saver = Autosaver(run.run_dir, name="crashed", root=tmp_path)
    state = paused_trainer.state_dict()
    step = int(state["step"])  # other tests step the shared run: whatever it is now
    valid = saver.save(state)  # autosave-<step>.pt
    shutil.copy(valid, run.run_dir / "autosave-000000001.pt")
    registry.adopt(run)
    assert registry.continue_offer() is None  # a live run is not offered, autosaves or not
    run.state = RunState.FAILED
    offer = registry.continue_offer()
    assert (offer.run_dir, offer.name, offer.step, offer.file, offer.skipped) == (
        run.run_dir, "crashed", step, valid, ())
    assert offer.saved_at == valid.stat().st_mtime and offer.state["step"] == step
    assert registry.continue_offer() is offer  # nothing new on disk: not loaded again

    newest = run.run_dir / "autosave-999999999.pt"
    newest.write_bytes(b"torn")  # the newest, damaged
    damaged = registry.continue_offer()
    assert damaged is not offer and damaged.file == valid and damaged.step == step
    assert len(damaged.skipped) == 1 and newest.name in damaged.skipped[0]
    shutil.copy(valid, newest)  # the same file name written again, readable now
    os.utime(newest, (newest.stat().st_atime, newest.stat().st_mtime + 10))
    again = registry.continue_offer()
    assert again is not damaged and again.file == newest and again.skipped == ()


def test_quality_rows_follow_a_run_in_its_folder_and_stop_all_and_close_wait_for_everything(tmp_path, monkeypatch):
    """Each run's monitor starts from the rows saved beside its autosaves and writes new ones there (a full disk
    only loses the file, not the run); Stop all and Close wait, within the time given, for runs and monitors,
    and say whether all of them ended."""
    from gan.store.autosave import read_quality, write_quality
    from gan.workshop import runs

    made = []

    class Monitor:
        def __init__(self, trainer, every, initial_rows, on_rows):
            self.trainer, self.every, self.initial_rows, self.on_rows = trainer, every, initial_rows, on_rows
            self.stops, self.ok = [], True
            made.append(self)

        def start(self):
            return self

        def stop(self, timeout=5.0):
            self.stops.append(timeout)
            return self.ok

    monkeypatch.setattr(runs, "MetricsMonitor", Monitor)
    registry = runs.RunRegistry(max_runs=2, mode="thread", metrics_every=1, runs_root=tmp_path)
    kept = FakeRun("kept")
    kept.run_dir = tmp_path / "live" / "kept"
    kept.run_dir.mkdir(parents=True)
    write_quality(kept.run_dir, [(500, 6.0, 30.0)])
    registry.adopt(kept)
    gone = FakeRun("gone")  # its folder was deleted under it: writing fails quietly
    gone.run_dir = tmp_path / "live" / "gone"
    registry.adopt(gone)
    first, second = made
    assert (first.trainer, first.every, first.initial_rows) == (kept, 1, [(500, 6.0, 30.0)])
    assert second.initial_rows == []
    first.on_rows([(500, 6.0, 30.0), (1000, 7.0, 12.0)])
    assert read_quality(kept.run_dir) == [(500, 6.0, 30.0), (1000, 7.0, 12.0)]
    second.on_rows([(250, 5.0, 40.0)])  # no folder: nothing written, nothing raised
    assert registry.monitor(kept) is first and registry.monitor(gone) is second and registry.monitor(None) is None

    second.ok = False  # a monitor that did not end in time
    assert registry.stop_all(timeout=2.5) is False
    assert kept.stops == gone.stops == first.stops == second.stops == [2.5]
    second.ok, gone.stops_in_time = True, False  # a run that did not, with every monitor ending
    assert registry.stop_all(timeout=2.5) is False
    gone.stops_in_time = True

    class Worker:
        def __init__(self):
            self.shutdowns = []

        def shutdown(self, timeout):
            self.shutdowns.append(timeout)

    registry.worker = worker = Worker()
    assert registry.close(timeout=1.5) is True
    assert kept.stops[-1] == first.stops[-1] == 1.5 and worker.shutdowns == [1.5]
    assert registry.stop_all() is True and kept.stops[-1] == first.stops[-1] == 5.0  # the defaults: 5 s each
    assert registry.close() is True and worker.shutdowns[-1] == 5.0


def test_started_runs_are_numbered_and_replace_waits_its_default_for_the_live_one(tmp_path):
    from gan.workshop.runs import RunRegistry

    registry = RunRegistry(max_runs=1, mode="thread", metrics_every=0, runs_root=tmp_path)
    try:
        live = registry.adopt(FakeRun("live"))  # the server's first run
        first = registry.start(Config(**SMALL), paused=True, replace=True)
        assert live.stops == [10.0] and first.name == "run-2"
        second = registry.start(Config(**SMALL), paused=True, replace=True, timeout=4.0)
        assert second.name == "run-3" and registry.names() == ["live", "run-2", "run-3"]
    finally:
        registry.close(timeout=10.0)


def test_the_trainer_mode_comes_from_the_environment_with_a_clear_error(monkeypatch):
    from gan.workshop.runs import trainer_mode_from_env

    monkeypatch.delenv("GAN_LIVE_TRAINER", raising=False)
    assert trainer_mode_from_env() == "process"  # the default: training in its own process
    monkeypatch.setenv("GAN_LIVE_TRAINER", " Thread ")
    assert trainer_mode_from_env() == "thread"
    monkeypatch.setenv("GAN_LIVE_TRAINER", "")
    assert trainer_mode_from_env() == "process"
    monkeypatch.setenv("GAN_LIVE_TRAINER", "gpu")
    with pytest.raises(ValueError) as err:
        trainer_mode_from_env()
    assert str(err.value) == "GAN_LIVE_TRAINER must be one of process, thread, got 'gpu'"


@pytest.mark.parametrize("worker", [False, True])
def test_a_started_run_falls_back_to_the_bundled_digits_and_keeps_itself_in_its_own_folder(tmp_path, monkeypatch,
                                                                                           worker):
    """Dashboard semantics for every run the registry starts, in this process or in the worker: a dataset that
    cannot be had falls back to mnist5k (with a warning), and the run autosaves into live/<date-time>-<name>."""
    from gan.workshop import runs
    from gan.workshop.runs import RunRegistry

    registry = RunRegistry(max_runs=1, mode="thread", metrics_every=0, runs_root=tmp_path)
    made = []
    if worker:
        registry.worker = object()

        def remote_trainer(client, config, **kwargs):
            made.append((client, config, kwargs))
            return FakeRun(kwargs["name"])

        monkeypatch.setattr(runs, "RemoteTrainer", remote_trainer)  # what the registry builds a worker run with
    try:
        run = registry.start(Config(**SMALL), paused=True)
        assert registry.current() is run
        assert run.wait_until(lambda r: r.state == RunState.PAUSED, 30) if not worker else run.state == RunState.PAUSED
        if worker:
            [(client, config, kwargs)] = made
            assert client is registry.worker and config == Config(**SMALL)
            folder = Path(kwargs["autosave_dir"])
            assert kwargs == {"name": "run-1", "dataset_fallback": True, "autosave_dir": str(folder),
                              "autosave_root": str(tmp_path)}
        else:
            assert run.dataset_fallback is True and run.autosave.root == tmp_path
            folder = run.autosave.run_dir
        assert folder.parent == tmp_path / "live" and folder.name.endswith("-run-1")
    finally:
        registry.worker = None  # no process to end
        registry.close(timeout=10.0)


def test_the_cap_s_refusal_names_every_live_run(tmp_path):
    from gan.workshop.runs import RunLimitError, RunRegistry

    registry = RunRegistry(max_runs=2, mode="thread", metrics_every=0, runs_root=tmp_path)
    registry.adopt(FakeRun("a"))
    registry.adopt(FakeRun("b"), paused=True)
    with pytest.raises(RunLimitError) as err:
        registry.adopt(FakeRun("c"))
    assert str(err.value) == ("2 run(s) already live, the limit is 2: a (step 0, running), b (step 0, paused). "
                              "Stop it first (or raise GAN_LIVE_MAX_RUNS to allow more at once).")
    assert registry.names() == ["a", "b"]  # the refused run left nothing behind


def test_the_registry_reads_its_settings_from_the_environment_and_names_a_bad_one(tmp_path, monkeypatch):
    from gan.workshop import runs

    for var in ("GAN_LIVE_MAX_RUNS", "GAN_LIVE_TORCH_THREADS", "GAN_LIVE_METRICS_EVERY"):
        monkeypatch.delenv(var, raising=False)
    registry = runs.RunRegistry(mode="thread", runs_root=tmp_path)
    assert (registry.max_runs, registry.torch_threads, registry.metrics_every, registry.worker) == (1, 1, 500, None)
    monkeypatch.setenv("GAN_LIVE_MAX_RUNS", " 3 ")
    monkeypatch.setenv("GAN_LIVE_TORCH_THREADS", "0")  # 0: leave torch's own thread count alone
    monkeypatch.setenv("GAN_LIVE_METRICS_EVERY", "")  # blank: the default
    registry = runs.RunRegistry(mode="thread", runs_root=tmp_path)
    assert (registry.max_runs, registry.torch_threads, registry.metrics_every) == (3, 0, 500)
    for var, value, minimum in (("GAN_LIVE_MAX_RUNS", "0", 1), ("GAN_LIVE_TORCH_THREADS", "-1", 0),
                                ("GAN_LIVE_METRICS_EVERY", "often", 0)):
        monkeypatch.setenv(var, value)
        with pytest.raises(ValueError) as err:
            runs.RunRegistry(mode="thread", runs_root=tmp_path)
        assert str(err.value) == f"{var} must be a whole number >= {minimum}, got {value!r}"
        monkeypatch.delenv(var)
    with pytest.raises(ValueError) as err:
        runs.RunRegistry(max_runs=0, mode="thread", runs_root=tmp_path)
    assert str(err.value) == "max_runs must be >= 1"
    with pytest.raises(ValueError) as err:
        runs.RunRegistry(mode="gpu", runs_root=tmp_path)
    assert str(err.value) == "mode must be one of ('process', 'thread'), got 'gpu'"


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_each_start_sets_torch_s_thread_count_unless_told_not_to(tmp_path, monkeypatch, threads):
    from gan.workshop import runs

    calls = []
    monkeypatch.setattr(runs.torch, "set_num_threads", calls.append)
    registry = runs.RunRegistry(max_runs=1, mode="thread", metrics_every=0, torch_threads=threads, runs_root=tmp_path)
    registry.adopt(FakeRun("a"))
    assert calls == ([threads] if threads else [])


def test_an_interrupted_run_stays_offered_until_something_else_starts(paused_trainer, tmp_path):
    """Continuing the interrupted run keeps its folder unfinished (it is the same run going on); starting anything
    else marks it stopped, so the next start of the app does not offer it again."""
    from gan.store.autosave import Autosaver, find_interrupted
    from gan.workshop.runs import RunRegistry

    live = tmp_path / "live"
    folder = live / "20261127-000000-crashed"
    Autosaver(folder, name="crashed", root=tmp_path).save(paused_trainer.state_dict())
    registry = RunRegistry(max_runs=1, mode="thread", metrics_every=0, runs_root=tmp_path)
    assert registry.current().run_dir == folder  # shown at once, as it was saved
    same = FakeRun("crashed")
    same.run_dir = folder
    registry.adopt(same)
    assert [found.run_dir for found in find_interrupted(live)[0]] == [folder]
    restarted = RunRegistry(max_runs=1, mode="thread", metrics_every=0, runs_root=tmp_path)  # the app again
    assert restarted.current().run_dir == folder
    other = FakeRun("other")
    other.run_dir = live / "20261127-000100-other"
    restarted.adopt(other)
    assert find_interrupted(live)[0] == [] and restarted.current() is other


def test_process_mode_starts_its_worker_and_an_unreadable_runs_folder_is_said_not_fatal(tmp_path, monkeypatch):
    from gan.worker.client import WorkerClient
    from gan.workshop import runs
    from gan.workshop.runs import RunRegistry

    registry = RunRegistry(mode="process", metrics_every=0, runs_root=tmp_path)
    try:
        assert isinstance(registry.worker, WorkerClient)  # warmed at once: Start is then quick
    finally:
        registry.close(timeout=10.0)

    def unreadable(root, **_):
        raise PermissionError("denied")

    monkeypatch.setattr(runs, "find_interrupted", unreadable)
    registry = RunRegistry(mode="thread", metrics_every=0, runs_root=tmp_path)
    assert registry.storage_notes == [f"{tmp_path / 'live'}: not readable (denied)"] and registry.current() is None


def test_without_a_folder_snapshots_live_under_the_runs_folder(monkeypatch, tmp_path):
    """The app makes its SnapshotStore without a folder: it goes under GAN_LIVE_RUNS_DIR, else ~/.cache."""
    from gan.workshop.snapshots import SnapshotStore, runs_dir

    monkeypatch.setenv("GAN_LIVE_RUNS_DIR", str(tmp_path / "runs"))
    assert runs_dir() == tmp_path / "runs" and SnapshotStore().root == tmp_path / "runs" / "snapshots"
    monkeypatch.delenv("GAN_LIVE_RUNS_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert runs_dir() == tmp_path / "home" / ".cache" / "gan-live" / "runs"


def test_the_samples_caption_judges_collapse_only_where_the_counts_support_it():
    """Issue 30: a healthy grid (10 classes among 63 confident cells) was called "mode collapse"."""
    from gan.viz.animation import classes_caption

    healthy = [str(i % 10) for i in range(63)] + ["?"]
    assert classes_caption(1200, healthy) == (
        "Grid step 1,200: 10 different classes among 63 confident cells (1 unsure, below 50%; 0 not a digit, '–'). "
        "Most classes appear: no sign of mode collapse.")
    collapsed = ["7"] * 50 + ["1"] * 10 + ["–"] * 4
    assert classes_caption(3000, collapsed, "clothes", "a piece of clothing").endswith(
        "(0 unsure, below 50%; 4 not a piece of clothing, '–'). Few classes on many cells: this is mode collapse "
        "(G draws the same few clothes).")
    assert classes_caption(10, ["?"] * 60 + ["3"] * 4).endswith("Too few confident cells to judge mode collapse.")
    assert classes_caption(900, [str(i % 6) for i in range(64)]).endswith("classes G has not learned yet.")
