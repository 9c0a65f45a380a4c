"""Workshop mode through the pages (AppTest): presets, D-only/G-only steps, GIF, interpolation,
snapshots and branches, checkpoint upload, the presenter lock on Train and Samples, Compare with
the live run. The logic behind them is tested in test_workshop.py; here every action goes through
the page's own widgets. Runs are tiny or throttled, so the shared 2-core machine stays usable.
"""

import io
import json
import os
import re
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from gan.core.config import Config
from gan.engine.status import RunState
from gan.engine.trainer import Trainer
from gan.viz import animation
from gan.workshop import snapshots
from gan.workshop.presets import PRESETS
from gan.workshop.runs import RunLimitError, RunRegistry
from gan.workshop.transfer import checkpoint_bytes

ROOT = Path(__file__).resolve().parents[1]
TINY = Config(batch_size=16, latent_dim=8, sample_every=5)
WORKSHOP_PRESETS = ("default", "d_too_strong", "minimax_stall", "mode_collapse", "bce_rescue", "lsgan_rescue")


def page(name: str, token: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)
    if token is not None:
        at.query_params["token"] = token
    at.run()
    assert not at.exception, at.exception
    return at


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def keys(at: AppTest, kind: str = "button") -> set:
    return {w.key for w in at.get(kind)}


def state_of(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(before: dict, module) -> bool:
    return all(torch.equal(before[k], v) for k, v in module.state_dict().items())


def paused_tiny_run(registry, steps: int = 12):
    trainer = registry.start(TINY)
    assert trainer.wait_until(lambda t: t.step_count >= steps, timeout=60), trainer.status()
    trainer.pause("test")
    return trainer


@pytest.fixture
def no_lock(monkeypatch, tmp_path):
    monkeypatch.delenv("GAN_LIVE_TOKEN", raising=False)
    monkeypatch.setenv("GAN_LIVE_RUNS_DIR", str(tmp_path))  # snapshots of this test only


# --- presets -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", WORKSHOP_PRESETS)
def test_each_preset_starts_with_its_settings_through_the_page(app_registry, no_lock, name):
    at = page("train")
    at.slider(key="max_rate").set_value(20)  # slow motion: the preset's run barely uses the CPU here
    at.selectbox(key="preset").set_value(name)
    run(at)
    assert PRESETS[name].description in [c.value for c in at.caption]  # one sentence of what to watch
    at.button(key="start_preset").click()
    run(at)
    trainer = app_registry.current()
    assert trainer is not None, [e.value for e in at.error]
    preset, status = PRESETS[name], trainer.status()
    for key in ("lr_g", "lr_d", "d_steps", "loss"):
        assert getattr(status, key) == preset.config.get(key, getattr(Config(), key)), key
    for key in ("model", "width", "beta1", "batch_size", "latent_dim"):
        assert getattr(trainer.config, key) == preset.config.get(key, getattr(Config(), key)), key
    assert list(status.scheduled) == [(a.at_step, a.kind, a.value) for a in preset.actions]
    assert status.max_rate == 20
    assert any(f"preset “{preset.label}”" in s.value for s in at.success)
    # The sidebar shows the run's settings (a reload would too).
    assert at.text_input(key="lr_d").value == f"{status.lr_d:g}"
    assert at.segmented_control(key="loss").value == status.loss


def test_reset_after_a_preset_gives_the_default_form(app_registry, no_lock):
    at = page("train")
    at.slider(key="max_rate").set_value(20)
    at.selectbox(key="preset").set_value("mode_collapse")
    run(at)
    at.button(key="start_preset").click()
    run(at)
    assert at.text_input(key="lr_d").value == f"{PRESETS['mode_collapse'].config['lr_d']:g}"
    at.button(key="reset").click()
    run(at)
    assert app_registry.current() is None
    default = Config()
    assert at.text_input(key="lr_d").value == f"{default.lr_d:g}"
    assert at.text_input(key="lr_g").value == f"{default.lr_g:g}"
    assert at.number_input(key="batch_size").value == default.batch_size
    assert at.number_input(key="latent_dim").value == default.latent_dim


def test_a_preset_replaces_the_live_run_and_its_action_fires_without_a_tab(app_registry, no_lock, monkeypatch):
    at = page("train")
    first = app_registry.start(TINY)
    assert first.wait_until(lambda t: t.step_count > 0, timeout=60)
    # lsgan_rescue switches to MSE at step 1,200; a shorter schedule keeps this test quick.
    from gan.workshop import presets

    quick = presets.Preset("quick", "Quick rescue", "Switches to MSE at step 5.", {"batch_size": 16, "latent_dim": 8,
                           "loss": "minimax"}, (presets.LiveAction(5, "loss", "mse"),))
    monkeypatch.setitem(presets.PRESETS, "quick", quick)
    run(at)
    assert at.button(key="start_preset").label == "Stop run & start preset"
    at.selectbox(key="preset").set_value("quick")
    at.button(key="start_preset").click()
    run(at)
    second = app_registry.current()
    assert second is not first and not first.is_alive() and first.state == "stopped"
    # The Workshop area closes itself (the charts come back into view) and the start is announced outside it
    assert at.session_state["workshop_open"] is False
    announced = [e.value for e in at.success if e.value.startswith(f"Started {second.name} with preset")]
    assert announced and not [e for e in at.expander[0].success if e.value in announced], announced
    assert [t.name for t in app_registry.live_runs()] == [second.name]
    # No page reruns from here on: the scheduled switch fires inside the trainer.
    assert second.wait_until(lambda t: t.loss == "mse" and t.step_count > 6, timeout=60), second.status()
    events = second.history.snapshot().events
    assert events[events["kind"] == "loss"]["detail"].tolist() == ["minimax → mse"]


# --- stepping and slow motion ----------------------------------------------------------------------------
def test_step_d_and_step_g_change_only_that_network_through_the_buttons(app_registry, no_lock):
    at = page("train")
    at.number_input(key="batch_size").set_value(16)
    at.number_input(key="latent_dim").set_value(8)
    at.button(key="start").click()
    run(at)
    trainer = app_registry.current()
    assert trainer.wait_until(lambda t: t.step_count > 3, timeout=60)
    run(at).button(key="pause_resume").click()
    run(at)
    assert trainer.state == RunState.PAUSED
    for which, label, d_moves, g_moves in (("d", "D only", True, False), ("g", "G only", False, True),
                                           ("both", "D and G", True, True)):
        g0, d0, step0 = state_of(trainer.G), state_of(trainer.D), trainer.step_count
        at.button(key=f"step_{which}").click()
        run(at)
        assert trainer.step_count == step0 + 1 and trainer.state == RunState.PAUSED
        assert same(d0, trainer.D) is not d_moves, which
        assert same(g0, trainer.G) is not g_moves, which
        caption = [c.value for c in at.caption if c.value.startswith(f"Step {step0 + 1} ({label})")]
        assert caption and "D(real)" in caption[0] and "→" in caption[0], [c.value for c in at.caption]
    # Still paused, shown by an event rather than a fixed wait: woken by a command that is no step, the loop
    # went back to sleep (paused_waits) at the same count.
    before = trainer.paused_waits
    trainer.set_max_rate(trainer.status().max_rate)
    assert trainer.wait_until(lambda t: t.paused_waits > before, timeout=30), trainer.status()
    assert trainer.step_count == step0 + 1 and trainer.state == RunState.PAUSED


def test_slow_motion_throttles_the_running_trainer(app_registry, no_lock):
    at = page("train")
    trainer = app_registry.start(TINY)
    run(at)
    at.slider(key="max_rate").set_value(5)
    run(at)
    assert trainer.status().max_rate == 5
    assert trainer.wait_until(lambda t: t.step_count > 0, timeout=60)
    s0 = trainer.step_count
    assert trainer.wait_until(lambda t: t.step_count >= s0 + 3, timeout=10)
    assert trainer.step_count - s0 < 20  # 5 steps/s, not hundreds
    at.slider(key="max_rate").set_value(0)
    run(at)
    assert trainer.status().max_rate is None


# --- snapshots, branches, uploads ------------------------------------------------------------------------
def test_save_a_snapshot_and_branch_it_with_another_loss(app_registry, no_lock):
    at = page("train")
    source = paused_tiny_run(app_registry)
    run(at)
    at.text_input(key="snapshot_name").input("../evil")
    at.button(key="save_snapshot").click()
    run(at)
    assert any("Not saved" in e.value and "not allowed" in e.value for e in at.error)
    at.text_input(key="snapshot_name").input("tiny-bce")
    at.button(key="save_snapshot").click()
    run(at)
    assert any("Saved snapshot 'tiny-bce'" in s.value for s in at.success), [e.value for e in at.error]

    at.selectbox(key="branch_from").set_value("tiny-bce")
    at.selectbox(key="branch_loss").set_value("mse")
    at.text_input(key="branch_lr_d").input("0")  # out of range: refused before anything stops
    at.button(key="start_branch").click()
    run(at)
    assert any("Not branched" in e.value and "lr_d" in e.value for e in at.error), [e.value for e in at.error]
    assert app_registry.current() is source and source.is_alive()
    at.text_input(key="branch_lr_d").input("1e-4")
    at.button(key="start_branch").click()
    run(at)
    branch = app_registry.current()
    assert branch is not source and not source.is_alive()
    assert branch.wait_until(lambda t: t.step_count > source.step_count, timeout=60), branch.status()
    status = branch.status()
    assert status.loss == "mse" and status.lr_d == pytest.approx(1e-4)
    assert "branch" in branch.history.snapshot().events["kind"].tolist()


class Evil:
    def __init__(self, marker: Path):
        self.marker = marker  # the test's own path: it exists only if unpickling ran the command

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_and_oversized_uploads_are_refused_with_a_message(app_registry, no_lock, monkeypatch, tmp_path):
    at = page("train")
    buf = io.BytesIO()
    torch.save({"format": "gan-live-checkpoint/1", "payload": Evil(tmp_path / "pwned")}, buf)
    at.file_uploader(key="ckpt_upload").set_value(("evil.pt", buf.getvalue(), "application/octet-stream"))
    run(at)
    at.button(key="load_upload").click()
    run(at)
    refused = [e.value for e in at.error if e.value.startswith("Checkpoint refused")]
    assert refused and "refused" in refused[0][len("Checkpoint refused"):], [e.value for e in at.error]
    popover = at.get("popover")[0]  # beside the button pressed, not at the top of the Workshop area
    assert [e.value for e in popover.error] == refused[:1], [e.value for e in popover.error]
    assert not (tmp_path / "pwned").exists()
    assert app_registry.current() is None

    monkeypatch.setattr(snapshots, "MAX_UPLOAD_BYTES", 1000)  # a small cap stands in for 100 MB
    at.file_uploader(key="ckpt_upload").set_value(("big.pt", b"\0" * 5000, "application/octet-stream"))
    run(at)
    at.button(key="load_upload").click()
    run(at)
    assert any("over the upload limit" in e.value for e in at.error), [e.value for e in at.error]

    at.file_uploader(key="ckpt_upload").set_value(("notes.pt", b"just some text", "application/octet-stream"))
    run(at)
    at.button(key="load_upload").click()
    run(at)
    assert any(e.value.startswith("Checkpoint refused: notes.pt") for e in at.error), [e.value for e in at.error]
    assert app_registry.current() is None


def test_a_valid_upload_continues_the_saved_run(app_registry, no_lock):
    donor = Trainer(TINY, name="donor")
    donor.start(stop_at_step=7)
    try:
        assert donor.wait_until(lambda t: t.state == RunState.PAUSED, timeout=60), donor.status()
        data = checkpoint_bytes(donor)
    finally:
        donor.stop()
    at = page("train")
    at.file_uploader(key="ckpt_upload").set_value(("donor.pt", data, "application/octet-stream"))
    run(at)
    at.button(key="load_upload").click()
    run(at)
    trainer = app_registry.current()
    assert trainer is not None and trainer.name == "donor", [e.value for e in at.error]
    assert trainer.wait_until(lambda t: t.step_count > 7, timeout=60), trainer.status()
    assert any("continues from step 7" in s.value for s in at.success)


def test_registry_adopt_keeps_the_cap_and_unique_names():
    registry = RunRegistry(max_runs=1, torch_threads=0)
    try:
        first = registry.adopt(Trainer(TINY, name="x"))
        assert registry.current() is first and first.dataset_fallback
        with pytest.raises(RunLimitError):
            registry.adopt(Trainer(TINY, name="y"))
        assert registry.stop_all(timeout=10)
        with pytest.raises(ValueError, match="already started"):
            registry.adopt(first)
        second = registry.adopt(Trainer(TINY, name="x"))
        assert second.name == "x-2" and registry.names() == ["x", "x-2"]
    finally:
        registry.stop_all(timeout=10)


# --- the Samples page ------------------------------------------------------------------------------------
def test_samples_page_exports_the_time_lapse_gif_and_interpolates(app_registry, no_lock):
    trainer = paused_tiny_run(app_registry)
    at = page("samples")
    assert "gif_download" not in keys(at, "download_button")  # made on demand only
    images_before = len(at.get("image"))
    at.button(key="make_gif").click()
    run(at)
    gif = at.session_state["_gif"][1]
    grids = trainer.history.snapshot().grids
    assert gif[:6] == b"GIF89a" and animation.gif_frame_count(gif) == len(grids) >= 3
    assert "gif_download" in keys(at, "download_button")
    assert len(at.get("image")) == images_before + 1

    def frame_url(a):  # the single interpolated image beside the strip
        return [i.proto.imgs[0].url for i in a.get("image") if i.proto.imgs[0].caption.startswith("t = ")][0]

    at.slider(key="interp_t").set_value(0.0)
    first = frame_url(run(at))
    at.slider(key="interp_t").set_value(1.0)
    last = frame_url(run(at))
    assert first != last
    assert any(i.proto.imgs[0].caption.startswith("A → B in 10 steps (slerp)") for i in at.get("image"))


def test_samples_page_labels_cells_with_the_reference_classifier(app_registry, no_lock):
    paused_tiny_run(app_registry)
    at = page("samples")
    at.toggle(key="label_cells").set_value(True)
    run(at)
    table = at.table[0].value  # the classifier's guess per cell, laid out like the 8 x 8 grid
    assert table.shape == (8, 8)
    cells = table.to_numpy().ravel().tolist()
    assert all(re.fullmatch(r"\d|\?|–", cell) for cell in cells)
    caption = next(c.value for c in at.caption if "different classes among" in c.value)
    assert f"{cells.count('–')} not a digit" in caption  # a few steps of a tiny G: mostly noise, no class
    assert cells.count("–") > 32


# --- the presenter lock ------------------------------------------------------------------------------------
def controls(at: AppTest) -> set:
    return keys(at) & {"start", "pause_resume", "step", "stop", "reset", "start_preset", "step_d", "step_g",
                       "step_both", "save_snapshot", "load_upload", "coach_apply"}


@pytest.mark.parametrize("query_token", [None, "wrong", ""])
def test_lock_hides_the_train_controls_without_or_with_a_wrong_token(app_registry, no_lock, monkeypatch,
                                                                      query_token):
    monkeypatch.setenv("GAN_LIVE_TOKEN", "s3cret")
    trainer = app_registry.start(TINY)
    assert trainer.wait_until(lambda t: t.step_count > 0, timeout=60)
    at = page("train", query_token)
    assert controls(at) == set()
    assert not at.get("file_uploader") and not at.get("segmented_control")
    assert keys(at, "text_input") == set() and keys(at, "slider") == set()  # no settings, no slow motion
    assert any("Step" in md.value for md in at.markdown)  # the live dashboard is still there
    notice = "not right" if query_token == "wrong" else "Read-only view"
    assert any(notice in i.value for i in at.info), [i.value for i in at.info]
    samples = page("samples", query_token)
    assert keys(samples, "download_button") == {None}  # PNG and CSV (no keys): public
    assert len(samples.get("download_button")) == 2
    # The state banners tell a viewer what happened, never to press a button they do not have
    assert trainer.stop(timeout=30)
    stopped = [i.value for i in run(at).info if i.value.startswith("Stopped.")]
    assert stopped == ["Stopped. The charts and the Samples page keep this run."], [i.value for i in at.info]
    monkeypatch.setenv("GAN_LIVE_TOKEN", "")  # the lock off: this browser is the presenter, the action shows
    assert [i.value for i in page("train").info if i.value.startswith("Stopped.")] == [
        "Stopped. The charts and the Samples page keep this run. Start begins a new one."]


def test_lock_shows_the_controls_with_the_right_token_and_remembers_it(app_registry, no_lock, monkeypatch):
    monkeypatch.setenv("GAN_LIVE_TOKEN", "s3cret")
    at = page("train", "s3cret")
    assert {"start", "start_preset", "step_d", "step_g", "step_both", "load_upload"} <= controls(at)
    assert not [i for i in at.info if "Read-only" in i.value or "not right" in i.value]
    del at.query_params["token"]  # switching pages drops the parameter: the session remembers
    assert {"start", "start_preset"} <= controls(run(at))
    assert at.query_params["token"] == "s3cret"  # ...and puts it back in the address, so a reload keeps it
    reloaded = page("train", at.query_params["token"])  # a reload: a new session from that address
    assert {"start", "start_preset"} <= controls(reloaded)
    paused_tiny_run(app_registry)
    samples = page("samples", "s3cret")
    assert "checkpoint_download" in keys(samples, "download_button")


# --- the Compare page with the live run ---------------------------------------------------------------------
def test_compare_overlays_the_live_run_with_a_saved_snapshot(app_registry, no_lock, tmp_path):
    trainer = paused_tiny_run(app_registry)
    snapshots.SnapshotStore(tmp_path / "snapshots").save("saved", trainer)
    saved_at = trainer.step_count
    trainer.resume()
    assert trainer.wait_until(lambda t: t.step_count > 20, timeout=60)
    trainer.pause("compare")
    at = page("compare")
    live = f"{trainer.name} (current run)"
    assert at.multiselect(key="compare_runs").value == ["saved", live]
    summary = at.dataframe[0].value.set_index("run")
    assert summary.loc[live, "step"] == trainer.step_count and summary.loc["saved", "step"] == saved_at
    assert len(at.get("vega_lite_chart")) >= 1


def test_compare_replays_a_saved_snapshot_at_one_step(app_registry, no_lock, tmp_path):
    """The Compare page's replay: a snapshot's grid, histogram and coach at the chosen step, and a cursor."""
    trainer = app_registry.start(TINY)  # sample_every 5: a sample point every 5 steps
    assert trainer.wait_until(lambda t: t.step_count >= 120, timeout=60), trainer.status()
    trainer.pause("replay")
    snapshots.SnapshotStore(tmp_path / "snapshots").save("saved", trainer)
    at = page("compare")
    at.selectbox(key="compare_replay_run").set_value("saved")
    run(at)
    steps = at.select_slider(key="compare_replay_step").options
    assert steps[0] == "0" and len(steps) > 10
    at.select_slider(key="compare_replay_step").set_value(100)
    run(at)
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert "saved: samples from fixed noise at step 100 (BCE)" in captions
    assert "Histogram of the batch at step 100; dashed line: 0.5." in [c.value for c in at.caption]
    point = [g for g in snapshots.replay_points(snapshots.SnapshotStore(tmp_path / "snapshots").load("saved"))
             if g.step == 100][0]
    said = [m.value for m in list(at.info) + list(at.warning) if m.value.startswith("**Coach at step 100")]
    assert said == [f"**Coach at step 100 · {point.diagnosis.title}** — {point.diagnosis.evidence}"]
    curves = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    def marks(spec):  # every mark in the chart, layers nested in layers included
        yield from ([spec["mark"]] if "mark" in spec else [])
        for layer in spec.get("layer", []):
            yield from marks(layer)

    assert {"type": "rule", "strokeWidth": 3} in list(marks(curves))  # the replay cursor


def test_preset_in_the_url_preselects_it_and_an_unknown_one_lists_the_names(app_registry, no_lock):
    at = page("train")
    at.query_params["preset"] = "mode_collapse"
    run(at)
    assert at.selectbox(key="preset").value == "mode_collapse" and app_registry.current() is None  # not started
    bad = page("train")
    bad.query_params["preset"] = "mode-colapse"
    run(bad)
    assert any("unknown preset 'mode-colapse'; choose one of default, textbook" in e.value for e in bad.error)
    assert bad.selectbox(key="preset").value == "default"


PRESENTER_BEFORE_A_RUN = {
    "train": "Pick the settings on the left and press **Start**",
    "samples": "Start one on the Train page",
    "compare": "On the Train page, save the run as a named snapshot",
}


@pytest.mark.parametrize("name", sorted(PRESENTER_BEFORE_A_RUN))
def test_before_any_run_each_page_speaks_to_its_reader(app_registry, no_lock, monkeypatch, name):
    """A viewer has no Start and no settings: every page tells them they wait; the presenter reads what to do."""
    monkeypatch.setenv("GAN_LIVE_TOKEN", "s3cret")
    viewer = page(name)
    texts = [i.value for i in viewer.info]
    assert "Waiting for the presenter to start a run." in texts, texts
    assert not any(PRESENTER_BEFORE_A_RUN[name].replace("**", "") in t.replace("**", "") for t in texts)
    presenter = page(name, "s3cret")
    texts = [i.value for i in presenter.info]
    assert any(PRESENTER_BEFORE_A_RUN[name] in t for t in texts), texts
    assert "Waiting for the presenter to start a run." not in texts


def test_a_viewer_rerun_again_and_again_never_gets_presenter_controls(app_registry, no_lock, monkeypatch):
    """Reruns (the 1 s refresh, a pause, a loss switch by the presenter) and hostile query parameters never
    turn a viewer's page into the presenter's, and the presenter's session keeps its controls."""
    monkeypatch.setenv("GAN_LIVE_TOKEN", "s3cret")
    trainer = app_registry.start(TINY)
    assert trainer.wait_until(lambda t: t.step_count > 0, timeout=60)
    for query in (None, "s3cret-and-more", "S3CRET", "s3cre", " "):  # (surrounding spaces are forgiven: a paste)
        viewer = page("train", query)
        for _ in range(3):
            assert controls(viewer) == set(), query
            trainer.pause() if trainer.state == "running" else trainer.resume()  # the run changes between reruns
            run(viewer)
        assert controls(viewer) == set() and not viewer.get("file_uploader"), query
    viewer = page("train")
    viewer.query_params["token"] = ["wrong", "s3cret-x"]  # a repeated parameter
    run(viewer)
    assert controls(viewer) == set()
    presenter = page("train", "s3cret")
    run(presenter)
    assert "stop" in controls(presenter)


def test_the_coach_names_a_stalled_run_and_only_the_presenter_can_apply_its_advice(app_registry, no_lock,
                                                                                     monkeypatch):
    """Every reader sees the coach's diagnosis; only the presenter gets the button, and it does what it says."""
    import dataclasses

    from gan.core.diagnosis import Condition

    monkeypatch.setenv("GAN_LIVE_TOKEN", "s3cret")
    # The minimax_stall preset's game on a tiny MLP: D 3 steps per G step at 10x G's rate.
    stall = dataclasses.replace(TINY, model="mlp", width=32, loss="minimax", lr_g=2e-4, lr_d=2e-3, d_steps=3,
                                beta1=0.5, beta2=0.999)
    trainer = app_registry.start(stall)
    assert trainer.wait_until(lambda t: getattr(t.status().diagnosis, "condition", None)
                              == Condition.VANISHING_GRADIENT, timeout=120), trainer.status().diagnosis
    trainer.pause("test")
    viewer = page("train")
    said = [w.value for w in viewer.warning]
    assert any(w.startswith("**Coach · G's gradient is vanishing (Minimax saturates)** — D(fake) 0.0") and
               "*Suggestion: switch to BCE (non-saturating).*" in w for w in said), said
    assert "coach_apply" not in keys(viewer)
    # Replaying, the presenter reads a past step's coach: the same advice, but no button that would change the
    # live run.
    replaying = page("train", "s3cret")
    replaying.toggle(key="replay").set_value(True)
    run(replaying)
    replaying.slider(key="replay_step").set_value(replaying.slider(key="replay_step").max)
    run(replaying)
    assert any("*Suggestion: switch to BCE (non-saturating).*" in w.value for w in replaying.warning)
    assert "coach_apply" not in keys(replaying)
    presenter = page("train", "s3cret")
    button = presenter.button(key="coach_apply")
    assert button.label == "Apply: switch to BCE (non-saturating)"
    button.click()
    run(presenter)
    assert ("loss", "bce") in trainer.status().pending  # at the next step boundary, like the Loss control
    assert presenter.session_state["loss"] == "bce"
    trainer.step(1)
    assert trainer.wait_until(lambda t: t.loss == "bce", timeout=30)
