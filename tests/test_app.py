"""The Train and Samples pages under AppTest, plus the run registry they share.

AppTest never fires run_every, so each test reruns the page itself (at.run()) while it polls.
Runs use a tiny model so a step takes a millisecond or so even on a busy 2-core machine.
"""

import io
import re
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gan.core.config import Config
from gan.engine.trainer import Trainer
from gan.store.checkpoint import load_checkpoint
from gan.workshop.runs import RunLimitError, RunRegistry
from gan.workshop.transfer import checkpoint_bytes, history_csv

ROOT = Path(__file__).resolve().parents[1]
STEP = re.compile(r"Step ([\d,]+)")
# Generous bounds on every wait: they fail a hung run, never a slow machine (a fresh worker process imports torch
# for 10-16 s on a 2-core box with two CPU burners, and a page's first run waited for it past 30 s).
WAIT_S = 180.0


def train_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def small(at: AppTest) -> AppTest:
    """A small, quick model through the page's own widgets."""
    at.number_input(key="batch_size").set_value(16)
    at.number_input(key="latent_dim").set_value(8)
    return at


def shown_step(at: AppTest) -> int | None:
    for md in at.markdown:
        match = STEP.search(md.value)
        if match:
            return int(match.group(1).replace(",", ""))
    return None


def texts(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def rerun_until(at: AppTest, predicate, timeout: float = WAIT_S) -> AppTest:
    deadline = time.monotonic() + timeout
    while True:
        at.run()
        assert not at.exception, at.exception
        if predicate(at):
            return at
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:.0f} s; page says: {texts(at)[:300]}")
        time.sleep(0.05)  # poll interval of this loop; the predicate decides


def trainer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("gan-trainer") and t.is_alive()]


def start(at: AppTest, app_registry):
    small(at).button(key="start").click().run()
    assert not at.exception, at.exception
    trainer = app_registry.current()
    assert trainer is not None, [e.value for e in at.error]
    return trainer


@pytest.fixture(params=["thread", "process"])
def mode_registry(request, monkeypatch):
    """The page's registry in each trainer mode (GAN_LIVE_TRAINER): the same clicks, the same page."""
    import streamlit as st

    from pages._shared import get_registry

    monkeypatch.setenv("GAN_LIVE_TRAINER", request.param)
    # No quality monitor: its classifier loading cannot be interrupted (see conftest's app_registry).
    monkeypatch.setenv("GAN_LIVE_METRICS_EVERY", "0")
    st.cache_resource.clear()
    registry = get_registry()
    assert registry.mode == request.param
    yield registry
    registry.close(timeout=10.0)
    st.cache_resource.clear()


def test_start_advances_pause_holds_step_and_resume(mode_registry):
    app_registry = mode_registry
    at = train_page()
    assert at.button(key="start").disabled is False
    trainer = start(at, app_registry)
    rerun_until(at, lambda a: (shown_step(a) or 0) > 3)
    first = shown_step(at)
    rerun_until(at, lambda a: shown_step(a) > first)  # the page follows the running training
    assert at.button(key="start").disabled  # one run: no second Start while it is live

    at.button(key="pause_resume").click().run()
    assert trainer.state == "paused"
    held = trainer.step_count
    assert shown_step(at) == held
    assert at.button(key="pause_resume").label == "Resume"
    # Nothing moves, shown by events rather than a fixed wait. In-process the loop says so itself: woken by a
    # command that is no step, it went back to sleep (paused_waits) at the same count. In both modes the next
    # Step is numbered held + 1: no step slipped in since the pause.
    if isinstance(trainer, Trainer):
        before = trainer.paused_waits
        trainer.set_max_rate(trainer.status().max_rate)
        assert trainer.wait_until(lambda t: t.paused_waits > before, timeout=WAIT_S), trainer.status()
        assert trainer.step_count == held
    assert shown_step(at.run()) == held

    at.button(key="step").click().run()
    assert trainer.step_count == held + 1 and shown_step(at) == held + 1
    assert trainer.wait_until(lambda t: getattr(t.last_manual_step, 'step', None) == held + 1, timeout=WAIT_S)

    at.button(key="pause_resume").click().run()
    assert trainer.state == "running"
    assert trainer.wait_until(lambda t: t.step_count > held + 5, timeout=WAIT_S)


def test_loss_switch_reaches_the_running_trainer_and_is_recorded(app_registry):
    at = train_page()
    trainer = start(at, app_registry)
    assert "equilibrium: D 0.693 · G 0.693" in texts(rerun_until(at, lambda a: (shown_step(a) or 0) > 2))

    at.segmented_control(key="loss").set_value("mse").run()
    assert trainer.wait_until(lambda t: t.loss == "mse", timeout=WAIT_S)
    events = trainer.history.snapshot().events
    switches = events[events["kind"] == "loss"]
    assert switches["detail"].tolist() == ["bce → mse"]
    switch_step = int(switches["step"].iloc[0])
    assert trainer.wait_until(lambda t: t.step_count > switch_step, timeout=WAIT_S)
    rows = trainer.history.snapshot().scalars
    assert set(rows[rows["step"] >= switch_step]["loss"]) == {"mse"}
    assert set(rows[rows["step"] < switch_step]["loss"]) == {"bce"}
    rerun_until(at, lambda a: "equilibrium: D 0.25 · G 0.25" in texts(a))

    # Learning rates change live too, and are recorded.
    new_lr = trainer.status().lr_g / 2  # differs from whatever the default is
    at.text_input(key="lr_g").input(f"{new_lr:g}").run()
    assert trainer.wait_until(lambda t: "lr_g" in t.history.snapshot().events["kind"].tolist(), timeout=WAIT_S)
    assert trainer.status().lr_g == pytest.approx(new_lr)
    assert [g["lr"] for g in trainer.opt_g.param_groups] == [pytest.approx(new_lr)]


@pytest.mark.parametrize("key, value, field", [
    ("batch_size", 0, "Batch size"),  # the form's own label, not the config's field name
    ("latent_dim", 5000, "Latent size (z)"),
    ("lr_g", "fast", "Learning rate G"),
    ("lr_d", "0", "Learning rate D"),
])
def test_an_invalid_value_shows_an_error_beside_it_and_starts_nothing(app_registry, key, value, field):
    at = train_page()
    if key.startswith("lr_"):
        at.text_input(key=key).input(value)
    else:
        at.number_input(key=key).set_value(value)
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    beside = [e.value for e in at.sidebar.error]  # the settings live in the sidebar
    assert any(msg.startswith(f"{field} must") for msg in beside), beside
    assert any("Not started" in e.value for e in at.main.error)
    assert app_registry.current() is None
    assert trainer_threads() == []

    # Fixing the value clears the error and starts.
    fixes = {"batch_size": 16, "latent_dim": 8, "lr_g": "2e-4", "lr_d": "2e-4"}
    if key.startswith("lr_"):
        at.text_input(key=key).input(fixes[key])
    else:
        at.number_input(key=key).set_value(fixes[key])
    trainer = start(at, app_registry)
    assert not at.sidebar.error
    assert trainer.wait_until(lambda t: t.step_count > 0, timeout=WAIT_S)


def test_stop_ends_the_thread(app_registry):
    at = train_page()
    trainer = start(at, app_registry)
    assert trainer.wait_until(lambda t: t.step_count > 0, timeout=WAIT_S)
    at.button(key="stop").click().run()
    assert not trainer.is_alive() and trainer.state == "stopped"
    assert trainer_threads() == []
    assert "Stopped · Step" in texts(at)
    assert at.button(key="start").disabled is False  # a new run may start now


def test_a_second_session_reattaches_and_never_starts_a_second_run(app_registry):
    first = train_page()
    stale = train_page()  # opened before the run started: its Start button is still enabled
    trainer = start(small(first), app_registry)
    assert trainer.wait_until(lambda t: t.step_count > 0, timeout=WAIT_S)
    first.segmented_control(key="loss").set_value("hinge").run()

    reload = train_page()  # a reload or a second tab: a new session, the same run
    shown = shown_step(reload)
    assert shown is not None and shown >= 1
    assert reload.button(key="start").disabled
    assert reload.number_input(key="batch_size").value == 16  # the run's settings, not the defaults
    rerun_until(reload, lambda a: a.segmented_control(key="loss").value == "hinge")

    stale.button(key="start").click().run()  # the cap catches the stale tab
    assert any("limit is 1" in e.value for e in stale.error), [e.value for e in stale.error]
    assert app_registry.current() is trainer
    assert len(trainer_threads()) == 1


def test_failures_show_a_banner_with_the_reason_and_what_to_do(app_registry, monkeypatch):
    import gan.engine.trainer

    def broken(*args, **kwargs):
        raise RuntimeError("model construction exploded")

    monkeypatch.setattr(gan.engine.trainer, "build_models", broken)
    at = train_page()
    trainer = start(at, app_registry)
    assert trainer.wait_until(lambda t: t.state == "failed", timeout=WAIT_S)
    at.run()
    banner = " ".join(e.value for e in at.error)
    assert "Training failed: RuntimeError: model construction exploded" in banner
    assert "press Start for a new run" in banner
    assert at.button(key="start").disabled is False


def test_a_nan_pause_says_lower_the_lr_and_resume(app_registry, monkeypatch):
    import gan.engine.trainer
    from gan.core.losses import get_loss

    real = get_loss("bce")
    nan_loss = real.__class__(**{**real.__dict__, "d_loss": lambda *, real_logits, fake_logits:
                                 (real_logits.mean() + fake_logits.mean()) * float("nan")})
    monkeypatch.setattr(gan.engine.trainer, "get_loss", lambda name: nan_loss)
    at = train_page()
    trainer = start(at, app_registry)
    assert trainer.wait_until(lambda t: t.state == "paused" and "became" in t.status().reason, timeout=WAIT_S)
    at.run()
    banner = " ".join(e.value for e in at.error)
    assert "Training paused: loss_d became nan" in banner
    assert "lower the learning rate and press resume" in banner.lower()
    assert at.button(key="pause_resume").label == "Resume"


def test_a_missing_dataset_falls_back_to_mnist5k_with_a_warning(app_registry, monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_LIVE_FASHION_DIR", str(tmp_path))  # an empty folder: no Fashion-MNIST here
    at = train_page()
    at.selectbox(key="dataset").set_value("fashion")
    trainer = start(at, app_registry)
    assert trainer.wait_until(lambda t: t.step_count > 0, timeout=WAIT_S)
    at.run()
    assert any("mnist5k" in w.value for w in at.warning), [w.value for w in at.warning]
    assert "mnist5k" in [md.value for md in at.markdown if "Step" in md.value][0]


def test_samples_page_slider_and_downloads(app_registry):
    empty = AppTest.from_file(str(ROOT / "pages" / "samples.py"), default_timeout=30).run()
    assert "No run yet" in empty.info[0].value

    trainer = app_registry.start(Config(batch_size=16, latent_dim=8, sample_every=5))
    assert trainer.wait_until(lambda t: t.step_count >= 12, timeout=WAIT_S)
    trainer.pause()
    at = AppTest.from_file(str(ROOT / "pages" / "samples.py"), default_timeout=30).run()
    assert not at.exception, at.exception
    slider = at.select_slider(key="samples_step")
    steps = [int(o.replace(",", "")) for o in slider.options]
    assert steps[:3] == [0, 5, 10] and slider.value == steps[-1]
    slider.set_value(5).run()
    assert "Step 5 ·" in at.get("image")[0].proto.imgs[0].caption
    assert len(at.get("download_button")) == 3

    state = load_checkpoint(io.BytesIO(checkpoint_bytes(trainer)))
    assert state["step"] == trainer.step_count
    csv = history_csv(trainer).decode().splitlines()
    assert csv[0].startswith("step,time,loss_d,loss_g") and len(csv) == trainer.step_count + 1


def test_registry_caps_live_runs_and_reset_forgets_them():
    registry = RunRegistry(max_runs=1, torch_threads=0, metrics_every=0)  # no monitor: its loading cannot be stopped
    try:
        first = registry.start(Config(batch_size=16, latent_dim=8))
        with pytest.raises(RunLimitError, match="limit is 1"):
            registry.start(Config())
        assert registry.current() is first and len(registry.live_runs()) == 1
        assert registry.stop_all(timeout=WAIT_S)
        second = registry.start(Config(batch_size=16, latent_dim=8))  # a stopped run frees the slot
        assert registry.current() is second and second.name != first.name
        registry.reset()
        assert registry.current() is None and not second.is_alive()
    finally:
        registry.stop_all(timeout=WAIT_S)


def test_max_runs_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("GAN_LIVE_MAX_RUNS", "3")
    assert RunRegistry().max_runs == 3
    monkeypatch.setenv("GAN_LIVE_MAX_RUNS", "zero")
    with pytest.raises(ValueError, match="GAN_LIVE_MAX_RUNS must be a whole number >= 1, got 'zero'"):
        RunRegistry()
    monkeypatch.setenv("GAN_LIVE_MAX_RUNS", "1")
    monkeypatch.setenv("GAN_LIVE_METRICS_EVERY", "-5")
    with pytest.raises(ValueError, match="GAN_LIVE_METRICS_EVERY must be a whole number >= 0"):
        RunRegistry()
    monkeypatch.setenv("GAN_LIVE_METRICS_EVERY", "0")
    monkeypatch.setenv("GAN_LIVE_TORCH_THREADS", "2")
    registry = RunRegistry()
    assert (registry.metrics_every, registry.torch_threads) == (0, 2)


def test_quality_panel_shows_the_classifier_score_beside_the_real_data_ceiling(app_registry):
    app_registry.metrics_every = 20  # score early, so the test needs few steps
    at = train_page()
    trainer = start(at, app_registry)
    monitor = app_registry.monitor(trainer)
    assert monitor is not None and monitor.every == 20
    # Generous: a fresh machine trains ruler A's classifier first.
    assert monitor.wait_for_evaluations(1, timeout=300), monitor.snapshot().message
    at.run()
    captions = "\n".join(c.value for c in at.caption)
    match = re.search(r"Classifier score ([\d.]+) at step [\d,]+ \(real held-out digits: ([\d.]+)\)", captions)
    assert match, captions
    score, ceiling = float(match.group(1)), float(match.group(2))
    assert 1.0 <= score < ceiling <= 10.0  # an untrained G scores far below real digits
    # An untrained G draws noise: the panel says how much of it is no digit, and does not call it collapse.
    assert re.search(r"· (\d+% not digits yet|every sample is a digit)\.", captions), captions
    verdicts = captions + "\n".join(e.value for e in at.error)
    assert any(v in verdicts for v in ("No collapse", "Mode collapse", "Too early to judge collapse"))
    # The independent judge (ruler B) joins after ruler A's first point, with its own ceiling.
    assert trainer.wait_until(lambda _: monitor.snapshot().judge is not None, timeout=300), monitor.snapshot().message
    at.run()
    captions = "\n".join(c.value for c in at.caption)
    judge = re.search(r"Independent judge \(another classifier, ruler B\) at step [\d,]+: score ([\d.]+) "
                      r"\(real: ([\d.]+)\) · "
                      r"Fréchet distance [\d.]+ \(real: [\d.]+\)", captions)
    assert judge and 1.0 <= float(judge.group(1)) < float(judge.group(2)) <= 10.0, captions
    # A generous bound: stopping waits for the evaluation in flight (seconds; more on a busy CPU), nothing longer.
    assert app_registry.stop_all(timeout=WAIT_S)
    assert not monitor.is_alive()


def test_replay_scrubs_one_session_back_and_live_returns(app_registry):
    """Replay is per session: the scrubber's step drives this page's headline and coach; another session stays
    live; Live (or a new run) returns to now."""
    at = train_page()
    trainer = start(at, app_registry)
    assert trainer.wait_until(lambda t: t.step_count >= 350, timeout=WAIT_S)
    at.run()
    at.toggle(key="replay").set_value(True).run()
    assert not at.exception, at.exception
    slider = at.slider(key="replay_step")
    assert slider.value == slider.max >= 300 and slider.min == 0
    slider.set_value(100).run()
    headline = [m.value for m in at.markdown if "Step" in m.value][0]
    assert headline.startswith("#### Replay · Step 100 of ")
    saved = [g for g in trainer.history.snapshot().grids if g.step == 100][0].diagnosis
    assert any(saved.evidence in i.value for i in list(at.info) + list(at.warning))  # the coach at step 100
    other = train_page()  # a second tab of the same run is not replaying
    assert [m.value for m in other.markdown if "Step" in m.value][0].startswith("#### Running · Step")
    at.button(key="replay_live").click().run()
    assert at.toggle(key="replay").value is False and not [s for s in at.slider if s.key == "replay_step"]
    assert [m.value for m in at.markdown if "Step" in m.value][0].startswith("#### Running · Step")
    # A new run while this tab replays: the tab comes back live for it.
    at.toggle(key="replay").set_value(True).run()
    at.button(key="reset").click().run()
    trainer = start(at, app_registry)
    at.run()
    assert at.toggle(key="replay").value is False
    assert not [s for s in at.slider if s.key == "replay_step"]
