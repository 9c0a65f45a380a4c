"""Owns the unit tests of gan.workshop.controller: one per Train-page action, on real thread-mode runs of a tiny MLP.
Must not touch streamlit or sleep to synchronise: every wait polls a trainer with a timeout; fixtures stop every run."""

import ast
import io
import threading
from pathlib import Path

import pytest
import torch

from gan.core.config import Config, ConfigError
from gan.engine.status import RunState
from gan.engine.trainer import Trainer
from gan.workshop import controller as ctl_module
from gan.workshop import form as form_module
from gan.workshop import presets, snapshots, transfer
from gan.workshop.controller import Kind, Notice, TrainController
from gan.workshop.form import config_from_form, form_from_config
from gan.workshop.runs import RunLimitError, RunRegistry

SMALL = Config(model="mlp", width=16, batch_size=16, latent_dim=8, device="cpu", sample_every=5)
FORM = form_from_config(SMALL)
SLOW = 40  # steps/s: enough steps for every wait here, little CPU on a shared 2-core machine


@pytest.fixture
def registry(runs_dir):
    reg = RunRegistry(max_runs=1, torch_threads=1, metrics_every=0, mode="thread", runs_root=runs_dir)
    yield reg
    try:
        assert reg.stop_all(timeout=10.0), "a training thread did not stop within 10 s"
    finally:
        reg.close(timeout=10.0)


@pytest.fixture
def ctl(registry, runs_dir):
    return TrainController(registry, snapshots.SnapshotStore(runs_dir / "snapshots"), base=SMALL)


def started(notice: Notice, steps: int = 1):
    assert notice.kind is Kind.SUCCESS and notice.started, notice
    trainer = notice.run
    assert trainer.wait_until(lambda t: t.step_count >= steps, timeout=60), trainer.status()
    return trainer


def paused_run(ctl, steps: int = 6):
    trainer = started(ctl.start(FORM, max_rate=SLOW), steps)
    assert ctl.pause().ok and trainer.state == RunState.PAUSED
    return trainer


def weights(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(before: dict, module) -> bool:
    return all(torch.equal(before[k], v) for k, v in module.state_dict().items())


def loss_events(trainer) -> list:
    events = trainer.history.snapshot().events
    return events[events["kind"] == "loss"]["detail"].tolist()


# --- the form ------------------------------------------------------------------------------------------------
def test_form_round_trips_a_config_and_names_the_field_of_a_bad_value():
    assert config_from_form(FORM, SMALL) == SMALL
    assert FORM["lr_g"] == f"{SMALL.lr_g:g}" and FORM["loss"] == SMALL.loss
    assert config_from_form({**FORM, "lr_d": " 2e-4 "}, SMALL).lr_d == pytest.approx(2e-4)
    assert config_from_form({}, SMALL) == SMALL  # fields the form lacks come from the base
    for field, value in (("lr_g", "fast"), ("lr_d", "0"), ("batch_size", 0), ("latent_dim", "many"),
                         ("seed", None), ("dataset", "cifar")):
        with pytest.raises(ConfigError) as caught:
            config_from_form({**FORM, field: value}, SMALL)
        assert caught.value.field == field and str(caught.value).startswith(f"{field}:")


def test_followed_settings_show_a_pending_loss_and_the_throttle():
    class Status:
        loss, pending, max_rate = "bce", (("loss", "mse"),), 500.0

    assert form_module.followed_settings(Status) == {"loss": "mse", "max_rate": form_module.MAX_RATE_LIMIT}
    assert form_module.choose_preset(" mode_collapse ") == "mode_collapse"
    with pytest.raises(ValueError, match="unknown preset 'nope'; choose one of default"):
        form_module.choose_preset("nope")


def test_the_controller_imports_no_streamlit():
    for path in ("controller.py", "form.py", "transfer.py", "runs.py"):
        tree = ast.parse((Path(ctl_module.__file__).parent / path).read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        assert not [n for n in names if n.split(".")[0] == "streamlit"], path


# --- start, pause, resume, step, stop, reset ------------------------------------------------------------------
def test_start_trains_and_a_bad_value_names_its_field_and_starts_nothing(ctl, registry):
    refused = ctl.start({**FORM, "lr_d": "0"})
    # In the page's words: the label the form shows, the allowed range in plain words
    assert refused.kind is Kind.ERROR and refused.text == ("Not started: Learning rate D must be a number more "
                                                           "than 0 and at most 1, got 0.0.")
    assert refused.field == "lr_d" and refused.field_text.startswith("Learning rate D must") and not refused.started
    assert ctl.start({**FORM, "lr_g": "1000"}).field == "lr_g"  # no absurd rate: at 1,000 the grid went black
    assert ctl.start(FORM, max_rate=999).field == "max_rate"
    assert registry.current() is None and registry.names() == []

    trainer = started(ctl.start(FORM, max_rate=SLOW), steps=2)
    assert registry.current() is trainer and trainer.state == RunState.RUNNING
    assert trainer.config == SMALL and trainer.status().max_rate == SLOW
    # The same Start again (a click replayed by a slow rerun, a second tab with the same form): no refusal, no run
    again = ctl.start(FORM, max_rate=SLOW)
    assert again.kind is Kind.INFO and not again.started and again.run is trainer, again
    assert again.text == f"{trainer.name} is already running with these settings."
    second = ctl.start({**FORM, "seed": 7})  # another run while one is live: the cap refuses it
    assert second.kind is Kind.ERROR and "limit is 1" in second.text and registry.current() is trainer
    assert registry.names() == [trainer.name]


def test_pause_holds_step_moves_one_network_and_resume_runs_on(ctl):
    trainer = paused_run(ctl)
    held = trainer.step_count
    # Nothing moves, shown by the loop itself rather than a fixed wait: woken by a command that is no step, it went
    # back to sleep at the same count (Trainer.paused_waits). The first Step below is numbered held + 1 too.
    before = trainer.paused_waits
    trainer.set_max_rate(trainer.status().max_rate)
    assert trainer.wait_until(lambda t: t.paused_waits > before, timeout=30), trainer.status()
    assert trainer.step_count == held
    for which, label, d_moves, g_moves in (("d", "D only", True, False), ("g", "G only", False, True),
                                           ("both", "D and G", True, True)):
        g0, d0, before = weights(trainer.G), weights(trainer.D), trainer.step_count
        notice = ctl.step(which)
        assert notice.ok and notice.text == f"Step {before + 1:,} ({label}) done.", notice
        assert trainer.step_count == before + 1 and trainer.state == RunState.PAUSED
        assert same(d0, trainer.D) is not d_moves and same(g0, trainer.G) is not g_moves, which
    assert ctl.pause_or_resume().text.startswith("Resumed") and trainer.state == RunState.RUNNING
    assert trainer.wait_until(lambda t: t.step_count > held + 5, timeout=30)
    stepping = ctl.step()  # only while paused: nothing queued
    assert stepping.kind is Kind.INFO and "Pause the run first" in stepping.text
    assert ctl.pause_or_resume().text.startswith("Paused") and trainer.state == RunState.PAUSED


def test_stop_ends_the_thread_and_a_new_run_may_start(ctl, registry):
    trainer = started(ctl.start(FORM, max_rate=SLOW))
    notice = ctl.stop()
    assert notice.ok and notice.run is trainer and not trainer.is_alive() and trainer.state == RunState.STOPPED
    assert ctl.live() is None and ctl.pause().kind is Kind.INFO
    nxt = started(ctl.start(FORM, max_rate=SLOW))
    assert nxt is not trainer and registry.current() is nxt


def test_reset_forgets_every_run(ctl, registry):
    trainer = started(ctl.start(FORM, max_rate=SLOW))
    assert ctl.reset().kind is Kind.INFO
    assert registry.current() is None and registry.names() == [] and not trainer.is_alive()
    assert ctl.stop().kind is Kind.INFO  # nothing left to stop


def test_continue_picks_up_an_interrupted_run(ctl, registry, runs_dir):
    assert ctl.continue_run().text.startswith("Not continued: there is no interrupted run")
    trainer = started(ctl.start(FORM, max_rate=SLOW), steps=4)
    assert trainer.stop(timeout=10.0, clean=False)  # the server went down: its autosave stays continuable
    later = RunRegistry(max_runs=1, torch_threads=1, metrics_every=0, mode="thread", runs_root=runs_dir)
    try:
        again = TrainController(later, ctl.store, base=SMALL)
        saved_at = later.current().step_count
        assert saved_at >= 4
        notice = again.continue_run(max_rate=SLOW)
        resumed = started(notice, steps=saved_at + 2)
        assert resumed.name == trainer.name and notice.text == f"Continued {trainer.name} from step {saved_at:,}."
    finally:
        assert later.stop_all(timeout=10.0)


# --- live settings ----------------------------------------------------------------------------------------------
def test_the_loss_switches_at_the_next_step_and_is_recorded(ctl):
    assert ctl.set_loss("mse").kind is Kind.INFO  # no run yet: only the form's choice
    trainer = started(ctl.start(FORM, max_rate=SLOW), steps=2)
    assert ctl.set_loss("mse").ok
    assert trainer.wait_until(lambda t: t.loss == "mse", timeout=10)
    assert loss_events(trainer) == ["bce → mse"]
    switch = int(trainer.history.snapshot().events.query("kind == 'loss'")["step"].iloc[0])
    assert trainer.wait_until(lambda t: t.step_count > switch + 1, timeout=10)
    rows = trainer.history.snapshot().scalars
    assert set(rows[rows["step"] >= switch]["loss"]) == {"mse"} and set(rows[rows["step"] < switch]["loss"]) == {"bce"}
    assert ctl.set_loss("nonsense").kind is Kind.ERROR and trainer.loss == "mse"


def test_the_coach_s_advice_is_applied_as_the_presenter_saw_it_and_a_forged_one_changes_nothing(ctl):
    assert ctl.apply_advice((("lr_d", 1e-4),)).kind is Kind.INFO  # no run: nothing to apply
    trainer = paused_run(ctl)
    before = trainer.status()
    for forged in ((), (("lr_d",),), (("weights", 0),), (("lr_d", -1.0),), (("d_steps", "many"),),
                   (("loss", "nonsense"),), (("lr_d", 1e-4), ("loss", "nonsense")), "lr_d"):
        assert ctl.apply_advice(forged).kind is Kind.ERROR, forged
    ctl.step()
    status = trainer.status()
    assert (status.lr_g, status.lr_d, status.d_steps, status.loss) == (before.lr_g, before.lr_d, before.d_steps,
                                                                       before.loss)
    notice = ctl.apply_advice((("lr_d", 1e-4), ("d_steps", 1), ("loss", "bce")))
    assert notice.ok
    assert notice.text == ("Coach's advice applied: Learning rate D → 0.0001, D steps per G step → 1, Loss → bce from "
                           "the next step.")
    ctl.step()
    status = trainer.status()
    assert status.lr_d == pytest.approx(1e-4) and status.d_steps == 1 and status.loss == "bce"
    assert form_module.advice_form((("lr_d", 1e-4), ("d_steps", 1))) == {"lr_d": "0.0001", "d_steps": 1}


def test_a_bad_learning_rate_names_its_field_and_changes_nothing(ctl):
    trainer = paused_run(ctl)
    before = trainer.status()
    for field, text in (("lr_g", "fast"), ("lr_d", "0"), ("lr_g", ""), ("lr_d", "1000")):
        notice = ctl.set_lr(field, text)
        label = {"lr_g": "Learning rate G", "lr_d": "Learning rate D"}[field]
        assert notice.kind is Kind.ERROR and notice.field == field and notice.text.startswith(f"{label} must"), notice
    assert ctl.set_d_steps(0).field == "d_steps"
    status = trainer.status()
    assert (status.lr_g, status.lr_d, status.d_steps, status.pending) == (before.lr_g, before.lr_d,
                                                                          before.d_steps, ())
    assert ctl.set_lr("lr_d", "1e-4").ok and ctl.set_d_steps(2).ok
    ctl.step()  # live changes apply at the next step boundary
    status = trainer.status()
    assert status.lr_d == pytest.approx(1e-4) and status.d_steps == 2 and status.lr_g == before.lr_g
    with pytest.raises(ValueError):
        ctl.set_lr("lr", "1e-4")


def test_max_rate_throttles_the_live_run_and_each_new_one(ctl):
    trainer = started(ctl.start(FORM, max_rate=5))
    assert trainer.status().max_rate == 5
    s0 = trainer.step_count
    assert trainer.wait_until(lambda t: t.step_count >= s0 + 3, timeout=10)
    assert trainer.step_count - s0 < 20  # 5 steps/s, not hundreds
    refused = ctl.set_max_rate(201)
    assert refused.field == "max_rate" and trainer.status().max_rate == 5
    assert ctl.set_max_rate(0).text == "Full speed." and trainer.status().max_rate is None
    assert ctl.set_max_rate(SLOW).ok and trainer.status().max_rate == SLOW


# --- workshop: presets, snapshots, branches, uploads --------------------------------------------------------
def test_a_preset_replaces_the_live_run_and_schedules_its_actions(ctl, registry, monkeypatch):
    first = started(ctl.start(FORM, max_rate=SLOW))
    refused = ctl.start_preset("no-such-preset")
    assert refused.text.startswith("Preset not started: unknown preset") and first.is_alive()
    quick = presets.Preset("quick", "Quick rescue", "Switches to MSE at step 5.",
                           {"model": "mlp", "width": 16, "batch_size": 16, "latent_dim": 8, "device": "cpu",
                            "loss": "minimax"}, (presets.LiveAction(5, "loss", "mse"),))
    monkeypatch.setitem(presets.PRESETS, "quick", quick)
    notice = ctl.start_preset("quick", max_rate=SLOW)
    assert notice.text.endswith("with preset “Quick rescue”; then loss → mse at step 5."), notice
    second = notice.run
    assert second is not first and not first.is_alive() and first.state == RunState.STOPPED
    assert [t.name for t in registry.live_runs()] == [second.name] and second.status().max_rate == SLOW
    assert second.status().scheduled == ((5, "loss", "mse"),)
    assert second.wait_until(lambda t: t.loss == "mse" and t.step_count > 6, timeout=60), second.status()
    assert loss_events(second) == ["minimax → mse"]


def test_the_registry_replaces_the_live_run_under_its_lock(registry):
    first = registry.start(SMALL)
    with pytest.raises(RunLimitError):
        registry.start(SMALL)
    second = registry.start(SMALL, replace=True)
    assert not first.is_alive() and registry.current() is second
    third = registry.adopt(Trainer(SMALL, name="x"), replace=True)
    assert not second.is_alive() and [t.name for t in registry.live_runs()] == [third.name]
    # Three tabs press "Stop run & start preset" at once: each stop-and-start holds the lock, so none of
    # them finds another's new run live (RunLimitError), and exactly one run is left.
    barrier, results = threading.Barrier(3), []

    def press():
        barrier.wait(timeout=10)
        try:
            results.append(registry.start(SMALL, replace=True))
        except RunLimitError as exc:
            results.append(exc)

    tabs = [threading.Thread(target=press) for _ in range(3)]
    for tab in tabs:
        tab.start()
    for tab in tabs:
        tab.join(timeout=60)
    assert len(results) == 3 and all(isinstance(r, Trainer) for r in results), results
    assert [t.name for t in registry.live_runs()] == [registry.current().name]


def test_a_snapshot_of_a_run_still_loading_is_declined_in_words(ctl, registry, monkeypatch):
    class Loading:  # a run whose worker is still reading its data: no optimisers exist yet
        name, state, step_count = "run-9", RunState.LOADING, 0

        def state_dict(self):
            raise AssertionError("a loading run must not be saved")

    monkeypatch.setattr(registry, "current", lambda: Loading())
    notice = ctl.save_snapshot("too-early")
    assert notice.kind is Kind.INFO and notice.text == ("Not saved: run-9 is still loading; save once it has "
                                                        "taken its first step.")
    assert ctl.store.names() == []


def test_a_snapshot_is_saved_and_can_be_branched(ctl, registry):
    assert ctl.save_snapshot("early").text == "No run to save yet: start one first."
    source = paused_run(ctl, steps=8)
    evil = ctl.save_snapshot("../evil")
    assert evil.kind is Kind.ERROR and "Not saved" in evil.text and "not allowed" in evil.text
    saved = ctl.save_snapshot("tiny-bce")
    assert saved.ok and saved.text.startswith(f"Saved snapshot 'tiny-bce' at step {source.step_count:,}.")
    assert ctl.store.names() == ["tiny-bce"] and ctl.store.load("tiny-bce")["step"] == source.step_count
    assert "exists already" in ctl.save_snapshot("tiny-bce").text

    for bad_lr, bad_source in (("0", "tiny-bce"), ("", "missing")):
        refused = ctl.branch(bad_source, "mse", bad_lr)  # refused before anything stops
        assert refused.kind is Kind.ERROR and refused.text.startswith("Not branched"), refused
        assert registry.current() is source and source.is_alive()
    assert "lr_d" in ctl.branch("tiny-bce", "mse", "0").text
    assert ctl.branch("missing", "mse").text == "Not branched: no snapshot called 'missing'"

    notice = ctl.branch("tiny-bce", "mse", "1e-4", max_rate=SLOW)
    branch = started(notice, steps=source.step_count + 2)
    assert not source.is_alive() and registry.current() is branch and branch.name == "tiny-bce-mse"
    status = branch.status()
    assert status.loss == "mse" and status.lr_d == pytest.approx(1e-4) and status.max_rate == SLOW
    assert "branch" in branch.history.snapshot().events["kind"].tolist()


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_an_upload_that_is_not_a_checkpoint_is_refused_and_the_live_run_untouched(ctl, registry, monkeypatch):
    live = started(ctl.start(FORM, max_rate=SLOW))
    assert ctl.load_upload(None).text == "Choose a checkpoint file first."
    text = ctl.load_upload(b"just some text", filename="notes.pt")
    assert text.kind is Kind.ERROR and text.text.startswith("Checkpoint refused: notes.pt: not a readable checkpoint")
    buf = io.BytesIO()
    torch.save({"format": "gan-live-checkpoint/1", "payload": Evil()}, buf)
    assert "asks to run code" in ctl.load_upload(buf.getvalue(), filename="evil.pt").text
    monkeypatch.setattr(snapshots, "MAX_UPLOAD_BYTES", 1000)
    assert "over the upload limit" in ctl.load_upload(b"\0" * 5000, filename="big.pt").text
    assert registry.current() is live and live.is_alive() and registry.names() == [live.name]


def test_an_upload_builds_its_trainer_once_and_continues_in_place_of_the_live_run(ctl, registry, monkeypatch):
    donor = Trainer(SMALL, name="donor")
    donor.start(stop_at_step=7)
    try:
        assert donor.wait_until(lambda t: t.state == RunState.PAUSED, timeout=60), donor.status()
        data = transfer.checkpoint_bytes(donor)
    finally:
        donor.stop(timeout=10.0)
    live = started(ctl.start(FORM, max_rate=SLOW))
    builds = []
    real = transfer.trainer_from_checkpoint
    monkeypatch.setattr(transfer, "trainer_from_checkpoint", lambda *a, **k: builds.append(1) or real(*a, **k))
    upload = io.BytesIO(data)
    upload.name = "donor.pt"
    upload.read(3)  # a file the page has read before: the controller rewinds it
    notice = ctl.load_upload(upload, max_rate=SLOW)
    assert notice.text == "Loaded donor.pt: donor continues from step 7.", notice
    assert len(builds) == 1
    trainer = started(notice, steps=9)
    assert trainer.name == "donor" and registry.current() is trainer and not live.is_alive()
