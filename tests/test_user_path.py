"""The presenter's own path through the pages, where a one-line bug once passed every other test (issue 31):
a Stop of a run in the worker process (the dashboard's default) must not be offered for Continue after a
restart, while a killed one must; a checkpoint added on Compare must fit its own config; and every button a
presenter presses that no other page test clicked (Reset, Continue, Load newer grids, the downloads, Refresh the
current run's curves, the live D-steps field) is clicked here and its effect asserted.

Pages run under AppTest (never run_every: each test reruns the page itself). Runs are tiny; waits poll.
"""

import io
import os
import signal
from pathlib import Path

import pytest
import streamlit as st
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from gan.core.config import Config
from gan.core.models import build_models
from gan.engine.control import poll_until
from gan.engine.status import FailureKind, RunState
from gan.engine.trainer import Trainer
from gan.store.autosave import RUN_FILE, find_interrupted
from gan.store.checkpoint import load_checkpoint
from gan.viz.images import grid_png
from gan.workshop import snapshots

ROOT = Path(__file__).resolve().parents[1]
TINY = Config(model="mlp", batch_size=16, latent_dim=8, sample_every=5, width=32)  # a step: a millisecond or so


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)
    return run(at)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def keys(at: AppTest, kind: str = "button") -> set:
    return {w.key for w in at.get(kind)}


def button(at: AppTest, label: str):
    """A button that has no key, by its label."""
    found = [b for b in at.button if b.label == label]
    assert found, [b.label for b in at.button]
    return found[0]


def messages(at: AppTest) -> list[str]:
    return [m.value for m in [*at.error, *at.warning, *at.info, *at.success]]


def clean_stop(run_dir: Path) -> bool | None:
    """What run.json says of the run's last autosave; None before the first one."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        return None
    import json

    return json.loads(path.read_text())["clean_stop"]


@pytest.fixture(autouse=True)
def presenter_without_metrics(monkeypatch):
    """Before app_registry (autouse fixtures come first): the presenter sees every control, and no quality
    monitor scores these tiny runs (its first evaluation can outlast a test on a busy CPU)."""
    monkeypatch.delenv("GAN_LIVE_TOKEN", raising=False)
    monkeypatch.setenv("GAN_LIVE_METRICS_EVERY", "0")


@pytest.fixture
def servers(monkeypatch):
    """The dashboard's registry as a server builds it (pages/_shared.get_registry) in a trainer mode of the
    test's choice; each call is a restart of the server on the same runs folder (the previous one is closed
    first, its worker process with it). Every registry is closed after the test, its worker shut down."""
    from pages._shared import get_registry

    made = []

    def restart(mode: str):
        if made:
            made[-1].close(timeout=10.0)
        st.cache_resource.clear()
        monkeypatch.setenv("GAN_LIVE_TRAINER", mode)
        made.append(get_registry())
        assert made[-1].mode == mode
        return made[-1]

    yield restart
    try:
        for registry in made:
            assert registry.stop_all(timeout=10.0), "a training thread did not stop within 10 s"
    finally:
        for registry in made:
            registry.close(timeout=10.0)
        st.cache_resource.clear()


def start_on_page(at: AppTest, registry):
    """Start a small run with the page's own widgets (an MLP: quick steps on any CPU)."""
    at.selectbox(key="model").set_value("mlp")
    at.number_input(key="batch_size").set_value(16)
    at.number_input(key="latent_dim").set_value(8)
    at.button(key="start").click()
    run(at)
    trainer = registry.current()
    assert trainer is not None, messages(at)
    return trainer


# --- 1. a Stop of a worker-process run is final; a killed worker's run is offered ---------------------------
@pytest.mark.parametrize("end", ["stop", "kill"])
def test_a_stopped_worker_run_is_not_offered_after_a_restart_and_a_killed_one_is_continued(servers, monkeypatch,
                                                                                            end):
    """Training in the worker process, as the dashboard does by default: the Stop button's clean stop travels
    RemoteTrainer.stop(clean=True) → the worker's Stop → the Trainer's last autosave marked clean. After a
    restart nothing is offered; a run whose worker was killed (SIGKILL) is, and Continue picks it up."""
    monkeypatch.setenv("GAN_LIVE_AUTOSAVE_S", "0.3")  # read in the worker: autosaves every 0.3 s, not 30
    registry = servers("process")
    at = page("train")
    trainer = start_on_page(at, registry)
    assert trainer.run_dir is not None
    # An unclean autosave first (a run in progress): the end of the run must turn it into a clean one, or not.
    assert poll_until(lambda: clean_stop(trainer.run_dir) is False and trainer.step_count >= 5
                      and any(trainer.run_dir.glob("autosave-*.pt")), 120), \
        (trainer.status(), clean_stop(trainer.run_dir))
    if end == "stop":
        run(at).button(key="stop").click()
        run(at)
        assert trainer.state == RunState.STOPPED, trainer.status()
        assert clean_stop(trainer.run_dir) is True  # written by the worker before Stop answered
        assert "continue_run" not in keys(at)
    else:
        os.kill(registry.worker.pid, signal.SIGKILL)
        assert trainer.wait_until(lambda t: t.state == RunState.FAILED, timeout=30), trainer.status()
        assert trainer.status().failure == FailureKind.WORKER_DIED
        assert clean_stop(trainer.run_dir) is False
    live_root = registry.live_root

    restarted = servers("thread")  # a restart: a new server process reads the runs folder
    found, notes = find_interrupted(live_root, limit=10)
    fresh = page("train")
    if end == "stop":
        assert found == [] and notes == []
        assert restarted.current() is None and restarted.continue_offer() is None
        assert "continue_run" not in keys(fresh)
        assert any("No run yet" in m for m in messages(fresh)), messages(fresh)
        return
    assert [f.run_dir for f in found] == [trainer.run_dir]
    saved = found[0].step
    continue_button = fresh.button(key="continue_run")
    assert continue_button.label.startswith(f"Continue run “{trainer.name}” from step {saved:,} (saved ")
    continue_button.click()
    run(fresh)
    resumed = restarted.current()
    assert resumed is not None and resumed.name == trainer.name and resumed.run_dir == trainer.run_dir
    assert resumed.wait_until(lambda t: t.step_count > saved + 3, timeout=60), resumed.status()
    assert resumed.history.snapshot().scalars["step"].iloc[0] == 1  # the saved history goes on, not a new one
    assert "continue_run" not in keys(run(fresh))  # continued: nothing more to offer


# --- 2. Compare: an added checkpoint must fit its own config ------------------------------------------------
def checkpoint_state() -> dict:
    donor = Trainer(TINY, name="donor")
    donor.start(stop_at_step=6)
    try:
        assert donor.wait_until(lambda t: t.state == "paused", timeout=60), donor.status()
        return donor.state_dict()
    finally:
        donor.stop()


def as_bytes(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def add_on_compare(at: AppTest, filename: str, data: bytes, name: str) -> AppTest:
    at.file_uploader(key="compare_upload").set_value((filename, data, "application/octet-stream"))
    run(at)
    at.text_input(key="compare_upload_name").set_value(name)
    at.button(key="compare_add").click()
    return run(at)


def test_compare_refuses_a_checkpoint_whose_weights_do_not_fit_its_config_and_saves_nothing(app_registry,
                                                                                            runs_dir):
    state = checkpoint_state()
    misfit = dict(state)
    # G of twice the width, under the config of the original: loads as a file, fails only when built.
    wider, _ = build_models(TINY.resolved_model(), TINY.latent_dim, TINY.width * 2)
    misfit["G"] = wider.state_dict()
    at = add_on_compare(page("compare"), "wide.pt", as_bytes(misfit), "wide")
    refused = [e.value for e in at.error if e.value.startswith("Not added: checkpoint does not fit its own config")]
    assert refused, messages(at)
    assert "MLPGenerator" in refused[0]  # says which network did not fit
    assert not at.success
    store = snapshots.SnapshotStore(runs_dir / "snapshots")
    assert store.names() == [] and not list((runs_dir / "snapshots").glob("*"))
    assert "compare_runs" not in keys(at, "multiselect")  # nothing to compare: nothing was added

    at = add_on_compare(at, "good.pt", as_bytes(state), "good")  # the same file, fitting: added
    assert [s.value for s in at.success] == [f"Added snapshot 'good' (step 6, loss {state['loss']})."]
    assert store.names() == ["good"] and store.load("good")["step"] == 6
    assert at.multiselect(key="compare_runs").options == ["good"]


# --- 3. buttons no other page test pressed -----------------------------------------------------------------
def test_reset_forgets_the_run_and_the_page_is_back_to_no_run(app_registry):
    at = page("train")
    trainer = start_on_page(at, app_registry)
    assert trainer.wait_until(lambda t: t.step_count > 3, timeout=60), trainer.status()
    run(at).button(key="reset").click()
    run(at)
    assert app_registry.current() is None and app_registry.names() == [] and app_registry.live_runs() == []
    assert not trainer.is_alive() and trainer.state == RunState.STOPPED
    assert clean_stop(trainer.run_dir) is True  # its last autosave, on disk, is marked as ended on purpose
    assert app_registry.continue_offer() is None and "continue_run" not in keys(at)
    assert any("No run yet" in m for m in messages(at)), messages(at)
    assert at.button(key="start").disabled is False and at.button(key="reset").disabled is True
    assert not [m for m in at.markdown if "Step" in m.value]  # no live status line
    again = start_on_page(at, app_registry)  # the slot is free: a fresh run, from step 0
    assert again is not trainer and again.name != trainer.name
    assert again.wait_until(lambda t: t.step_count > 0, timeout=60)


def test_d_steps_changes_the_live_run(app_registry):
    at = page("train")
    trainer = start_on_page(at, app_registry)
    assert trainer.wait_until(lambda t: t.step_count > 0, timeout=60)
    run(at).number_input(key="d_steps").set_value(3)
    run(at)
    assert trainer.wait_until(lambda t: t.status().d_steps == 3, timeout=10), trainer.status()
    assert trainer.wait_until(lambda t: "d_steps" in t.history.snapshot().events["kind"].tolist(), timeout=10)
    at.number_input(key="d_steps").set_value(0)  # refused beside the field, the run keeps 3
    run(at)
    beside = [e.value for e in at.sidebar.error]
    assert any(e.startswith("D steps per G step must be a whole number from 1 to 20") for e in beside), beside
    assert trainer.status().d_steps == 3


@pytest.fixture
def downloads(monkeypatch):
    """What a browser gets from a download button: AppTest gives each run a media file manager of its own; this
    keeps the latest, and a deferred download (the CSV, the checkpoint) is made as a click on it makes it."""
    import streamlit.testing.v1.app_test as app_test

    latest = {}

    class Storage(app_test.MemoryMediaFileStorage):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            latest["storage"] = self

    class Manager(app_test.MediaFileManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            latest["manager"] = self

    monkeypatch.setattr(app_test, "MemoryMediaFileStorage", Storage)
    monkeypatch.setattr(app_test, "MediaFileManager", Manager)

    def download(widget) -> bytes:
        proto = widget.proto
        url = latest["manager"].execute_deferred(proto.deferred_file_id) if proto.deferred_file_id else proto.url
        assert url, f"{widget.label}: nothing to download"
        return latest["storage"].get_file(url.rsplit("/", 1)[-1]).content

    return download


def test_samples_downloads_give_the_grid_the_history_the_checkpoint_and_the_gif(app_registry, downloads):
    trainer = app_registry.start(TINY, paused=True)
    assert trainer.wait_until(lambda t: t.state == RunState.PAUSED and t.has_models(), timeout=60), trainer.status()
    trainer.step(12)
    assert trainer.wait_until(lambda t: t.step_count == 12, timeout=30), trainer.status()
    at = page("samples")
    by_label = {b.label: b for b in at.download_button}
    grids = {g.step: g for g in trainer.history.snapshot().grids}
    assert downloads(by_label["Grid (PNG)"]) == grid_png(grids[10].images, scale=4)  # the newest grid
    assert Image.open(io.BytesIO(downloads(by_label["Grid (PNG)"]))).format == "PNG"
    csv = downloads(by_label["History (CSV)"]).decode().splitlines()
    assert csv[0].startswith("step,time,loss_d,loss_g") and [r.split(",")[0] for r in csv[1:]] == \
        [str(s) for s in range(1, 13)]
    state = load_checkpoint(io.BytesIO(downloads(at.download_button(key="checkpoint_download"))))
    assert state["step"] == 12 and state["config"]["width"] == TINY.width
    at.button(key="make_gif").click()
    run(at)
    gif = downloads(at.download_button(key="gif_download"))
    assert gif[:6] == b"GIF89a"
    # The grid picked on the slider is the one downloaded.
    at.select_slider(key="samples_step").set_value(5)
    run(at)
    grid = {b.label: b for b in at.download_button}["Grid (PNG)"]
    assert downloads(grid) == grid_png(grids[5].images, scale=4)


def test_load_newer_grids_takes_the_grids_made_since_the_page_opened(app_registry):
    trainer = app_registry.start(TINY, paused=True)
    assert trainer.wait_until(lambda t: t.state == RunState.PAUSED and t.has_models(), timeout=60), trainer.status()
    trainer.step(10)
    assert trainer.wait_until(lambda t: t.step_count == 10, timeout=30)
    at = page("samples")
    assert at.select_slider(key="samples_step").options == ["0", "5", "10"]
    trainer.step(10)
    assert trainer.wait_until(lambda t: t.step_count == 20, timeout=30)
    assert run(at).select_slider(key="samples_step").options == ["0", "5", "10"]  # frozen while you look
    button(at, "Load newer grids").click()
    run(at)
    slider = at.select_slider(key="samples_step")
    assert slider.options == ["0", "5", "10", "15", "20"] and slider.value == 20
    assert "5 grids from fixed noise" in " ".join(c.value for c in at.caption)

    def strip(a: AppTest):  # the interpolation's strip of 10 frames
        return [i.proto.imgs[0] for i in a.get("image") if i.proto.imgs[0].caption.startswith("A → B in 10 steps")]

    at.radio(key="interp_method").set_value("lerp")  # the interpolation's path
    run(at)
    assert [s.caption for s in strip(at)] == ["A → B in 10 steps (lerp), G at step 20"]
    before = strip(at)[0].url
    at.number_input(key="interp_b").set_value(7)  # another end point: another path
    assert strip(run(at))[0].url != before
    at.number_input(key="interp_b").set_value(2)
    assert strip(run(at))[0].url == before  # the same seeds draw the same path


def test_refresh_on_compare_redraws_the_current_runs_curves(app_registry):
    trainer = app_registry.start(TINY, paused=True)
    assert trainer.wait_until(lambda t: t.state == RunState.PAUSED and t.has_models(), timeout=60), trainer.status()
    trainer.step(4)
    assert trainer.wait_until(lambda t: t.step_count == 4, timeout=30)
    at = page("compare")
    live = f"{trainer.name} (current run)"
    assert at.dataframe[0].value.set_index("run").loc[live, "step"] == 4
    trainer.step(5)
    assert trainer.wait_until(lambda t: t.step_count == 9, timeout=30)
    at.button(key="compare_refresh").click()
    run(at)
    assert at.dataframe[0].value.set_index("run").loc[live, "step"] == 9
    at.selectbox(key="compare_curve").set_value("d_real")
    run(at)
    import json

    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert "D(real)" in json.dumps(spec)


def test_every_theory_control_the_presenter_moves_changes_its_number(app_registry):
    """The Theory page's demonstrations, each moved once: the number shown is gan.viz.theory's for the new value
    (test_theory.py moves the coin, the KL's q and the slope's axis)."""
    import math

    from gan.viz import theory

    at = page("theory")
    at.slider(key="ce_x").set_value(0.9)
    at.selectbox(key="ce_y").set_value(1.0)
    at.slider(key="dstar_ratio").set_value(3.0)
    at.slider(key="nll_z").set_value(5.0)
    at.slider(key="rec_noise").set_value(0.0)
    at.slider(key="kl_mu_p").set_value(1.5)
    at.slider(key="kl_sigma_p").set_value(2.0)
    at.slider(key="adv_real").set_value(0.9)
    at.slider(key="adv_fake").set_value(0.2)
    run(at)
    mine = at.dataframe[0].value.iloc[-1]  # "The last row is yours"
    assert (mine["prediction"], mine["target"]) == (0.9, 1.0)
    assert mine["cross_entropy"] == pytest.approx(-math.log(0.9))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["D*(x)"] == "0.250"  # 1 / (1 + 3)
    nll = theory.nll_example([5.0, 0.5, -1.0, 0.0], 0)
    assert metrics["NLL by hand"] == metrics["F.cross_entropy"] == f"{nll['nll']:.3f}"
    assert metrics["MSE"] == "0.000"  # no noise: the copy is the digit
    kl = theory.kl_gaussians(at.slider(key="kl_mu_q").value, at.slider(key="kl_sigma_q").value, 1.5, 2.0)
    assert metrics["Closed form KL(q‖p)"] == f"{kl:.3f}"
    assert metrics["V(D, G) for these outputs"] == f"{math.log(0.9) + math.log(0.8):.3f}"
