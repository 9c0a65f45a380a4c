"""The trainer's run behaviour: control, live changes, failure handling. Small models keep each test quick.

Every behaviour the dashboard relies on is asserted for both kinds of run (``make_run``): a Trainer in this
process ("thread") and a RemoteTrainer whose Trainer lives in the training worker process ("process", the
dashboard's default), through the public interface they share. One worker process serves the whole module;
tests that read a Trainer's objects (t.G, t.opt_g) or inject faults into this process stay in-process only.
"""

import gzip
import hashlib
import struct
import threading
import time

import numpy as np
import pytest
import torch

from gan.core.config import Config
from gan.core.step import Row
from gan.engine.status import PauseCause, RunState
from gan.engine.trainer import Trainer
from gan.worker.client import WorkerClient
from gan.worker.remote import RemoteTrainer

SMALL = dict(model="mlp", width=32, batch_size=16, latent_dim=16, sample_every=10, seed=3)
WAIT_S = 180  # generous bounds: they fail a hung run, never a slow one (a first run took 50 s under load 20)


@pytest.fixture(scope="module")
def worker():
    """ONE training worker process for this module's worker-mode runs (a spawn imports torch: seconds), each run
    under a name of its own. Not pinned: this test process keeps all its cores for the in-process runs."""
    client = WorkerClient(torch_threads=1, pin=False)
    yield client
    client.shutdown()


@pytest.fixture(params=["thread", "process"])
def make_run(request):
    """Runs of the kind under test, built with SMALL's settings and the test's overrides; stopped and forgotten
    (a worker-mode run leaves the worker too) after the test."""
    client = request.getfixturevalue("worker") if request.param == "process" else None
    made = []

    def make(**overrides):
        config = Config(**{**SMALL, **overrides})
        name = f"{request.node.name}-{len(made)}"
        run = Trainer(config, name=name) if client is None else RemoteTrainer(client, config, name=name)
        made.append(run)
        return run

    yield make
    for run in made:
        run.forget(timeout=10)


@pytest.fixture
def make_trainer():
    """In-process Trainers only, for tests that read its objects or replace functions of this process."""
    made = []

    def make(**overrides):
        t = Trainer(Config(**{**SMALL, **overrides}))
        made.append(t)
        return t

    yield make
    for t in made:
        t.stop(timeout=10)


def wait_step(t, n, timeout=WAIT_S):
    """Until n steps are done and in the history (a worker-mode run's history mirror follows its ticks)."""
    assert t.wait_until(lambda tr: (tr.step_count >= n and tr.history.total_steps >= n) or tr.state == RunState.FAILED,
                        timeout), t.status()
    assert t.state != RunState.FAILED, t.status().reason


def wait_paused(t, timeout=WAIT_S):
    assert t.wait_until(lambda tr: tr.state in (RunState.PAUSED, RunState.FAILED), timeout), t.status()
    assert t.state == RunState.PAUSED, t.status().reason


def events(t) -> set:
    return set(t.history.snapshot().events.kind)


def assert_holds(t, held):
    """A paused run takes no step it was not asked for; proven by events, not by watching a fixed time go by.

    In this process: wake the paused loop with a command that is no step (the throttle, unchanged) and wait until
    it has gone back to sleep (Trainer.paused_waits): it looked, and the count is still ``held``. In both kinds:
    the next manual step is numbered held + 1, so no step slipped in before it (a worker-mode run's loop is in
    the other process; this is its proof). Leaves the run paused at held + 1."""
    if isinstance(t, Trainer):
        before = t.paused_waits
        t.set_max_rate(t.status().max_rate)
        assert t.wait_until(lambda tr: tr.paused_waits > before, WAIT_S), t.status()
        assert t.step_count == held and t.state == RunState.PAUSED
    t.step(1, which="d")
    assert t.wait_until(lambda tr: getattr(tr.last_manual_step, 'step', None) == held + 1 or tr.step_count > held + 1,
                        WAIT_S), t.status()
    assert t.last_manual_step.step == held + 1 and t.step_count == held + 1, (t.last_manual_step, t.status())


def test_start_trains_in_the_background_and_records_history(make_run):
    t = make_run()
    t.start()
    wait_step(t, 25)
    assert t.state == RunState.RUNNING and t.is_alive()
    snap = t.history.snapshot()
    assert list(snap.scalars.step[:5]) == [1, 2, 3, 4, 5]
    assert {"loss_d", "loss_g", "d_real", "d_fake", "loss", "lr_g", "lr_d"} <= set(snap.scalars.columns)
    assert snap.d_real_probs.shape == (16,) and snap.d_fake_probs.shape == (16,)
    assert ((snap.d_real_probs >= 0) & (snap.d_real_probs <= 1)).all()
    assert [g.step for g in snap.grids][:3] == [0, 10, 20]  # a grid at start and every sample_every steps
    assert snap.grids[0].images.shape == (64, 28, 28)


def test_an_in_process_run_trains_in_one_background_thread_of_its_own(make_trainer):
    # In-process only: a worker-mode run's thread is in the worker process, not here.
    t = make_trainer()
    t.start()
    wait_step(t, 1)
    trainers = [th for th in threading.enumerate() if th.name == f"gan-trainer-{t.name}"]
    assert len(trainers) == 1 and trainers[0].is_alive() and trainers[0] is not threading.current_thread()


def test_pause_holds_the_step_counter_and_resume_continues_it(make_run):
    t = make_run()
    t.start()
    wait_step(t, 5)
    t.pause()
    held = t.step_count  # final: pause returns after the step in flight
    assert t.state == RunState.PAUSED
    assert_holds(t, held)  # ... and one manual step, to held + 1
    t.resume()
    wait_step(t, held + 6)
    steps = list(t.history.snapshot().scalars.step)
    assert steps == list(range(1, len(steps) + 1))  # continues exactly where it was: no gap, no repeat


def test_step_n_while_paused_runs_exactly_n_steps(make_run):
    t = make_run()
    t.start(paused=True)
    wait_paused(t)
    assert t.step_count == 0
    t.step(7)
    wait_step(t, 7)
    assert_holds(t, 7)  # back asleep at 7; the next manual step is the 8th
    with pytest.raises(ValueError):
        t.step(1, which="both-ish")


def test_step_refused_while_running(make_run):
    t = make_run()
    t.start()
    wait_step(t, 1)
    with pytest.raises(RuntimeError, match="paused"):
        t.step(1)


def _changed(before: dict, after: dict) -> bool:
    """Any parameter or buffer (BatchNorm running statistics in the DCGAN pair) of a state dict differs."""
    return any(not torch.equal(v, after[k]) for k, v in before.items())


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
@pytest.mark.parametrize("which, d_moves, g_moves", [("d", True, False), ("g", False, True), ("both", True, True)])
def test_manual_steps_update_only_the_chosen_network(make_run, model, which, d_moves, g_moves):
    t = make_run(model=model)
    t.start(paused=True)
    wait_paused(t)
    before = t.state_dict()  # the weights as the run holds them (read at a step boundary, in either kind)
    t.step(2, which=which)
    wait_step(t, 2)
    assert t.wait_until(lambda tr: tr.last_manual_step and tr.last_manual_step.step == 2, WAIT_S)
    after = t.state_dict()
    assert _changed(before["D"], after["D"]) is d_moves
    assert _changed(before["G"], after["G"]) is g_moves
    assert t.last_manual_step.which == which and t.last_manual_step.before is not None


def test_loss_switch_at_step_k_is_recorded_at_k_and_changes_the_loss_from_k_on(make_run):
    t = make_run(loss="bce")
    t.start(paused=True)
    wait_paused(t)
    t.step(10)
    wait_step(t, 10)
    t.set_loss("mse")  # applied at the next step boundary: step 11
    t.step(10)
    wait_step(t, 20)
    snap = t.history.snapshot()
    switch = snap.events[snap.events.kind == "loss"]
    assert list(switch.step) == [11] and list(switch.detail) == ["bce → mse"]
    s = snap.scalars.set_index("step")
    assert (s.loc[1:10, "loss"] == "bce").all() and (s.loc[11:20, "loss"] == "mse").all()
    # MSE on probabilities is bounded by 1 and the two regimes differ in value, not just in label.
    assert (s.loc[11:20, ["loss_d", "loss_g"]] <= 1.0).all().all()
    assert t.status().loss == "mse"


def test_loss_switch_keeps_the_same_models_and_optimisers(make_trainer):
    # In-process only: the claim is about object identity, which does not cross a process boundary.
    t = make_trainer()
    t.start()
    wait_step(t, 5)
    G, D, og, od = t.G, t.D, t.opt_g, t.opt_d
    t.set_loss("hinge")
    assert t.wait_until(lambda tr: tr.loss == "hinge", WAIT_S)
    wait_step(t, t.step_count + 3)
    assert (t.G, t.D, t.opt_g, t.opt_d) == (G, D, og, od)


def test_live_lr_and_d_steps_changes_reach_the_optimisers(make_run):
    t = make_run()
    t.start()
    wait_step(t, 3)
    t.set_lr(lr_g=1e-3, lr_d=5e-4)
    t.set_d_steps(2)
    assert t.wait_until(lambda tr: tr.status().d_steps == 2 and {"lr_g", "lr_d", "d_steps"} <= events(tr), WAIT_S)
    st, state = t.status(), t.state_dict()
    assert (st.lr_g, st.lr_d) == (1e-3, 5e-4)
    assert [g["lr"] for g in state["opt_g"]["param_groups"]] == [1e-3]
    assert [g["lr"] for g in state["opt_d"]["param_groups"]] == [5e-4]
    with pytest.raises(ValueError):
        t.set_lr(lr_g=-1.0)
    with pytest.raises(ValueError):
        t.set_loss("nope")


def test_stop_ends_the_thread_at_a_step_boundary(make_run):
    t = make_run()
    t.start()
    wait_step(t, 3)
    assert t.stop(timeout=WAIT_S) is True  # the bound catches a thread that never ends, not a slow one
    assert t.wait_until(lambda tr: tr.state == RunState.STOPPED and not tr.is_alive(), WAIT_S), t.status()
    final = t.step_count
    # Between two steps: every step it counted is in the history, none half done.
    assert t.wait_until(lambda tr: tr.history.total_steps == final, WAIT_S), (t.history.total_steps, final)
    assert list(t.history.snapshot().scalars.step)[-1] == final


@pytest.mark.parametrize("how", ["paused", "throttled"])
def test_stop_wakes_a_paused_or_throttled_thread(make_run, how):
    t = make_run()
    t.start()
    wait_step(t, 1)
    if how == "paused":
        t.pause()
    else:
        at = t.step_count
        t.set_max_rate(0.001)  # one step per 1000 s
        wait_step(t, at + 1)  # the step in flight is done: the thread now waits its 1000 s
    # Woken at once, it ends well within the bound; sleeping on, it would not end before 1000 s had passed.
    assert t.stop(timeout=WAIT_S) is True
    assert t.wait_until(lambda tr: tr.state == RunState.STOPPED, WAIT_S), t.status()


def test_the_throttle_holds_the_pace_and_the_run_still_advances(make_run):
    rate, n = 2.0, 5  # half a second a step: far beyond a tiny step's time, even on a machine loaded 10 times over
    t = make_run()
    t.set_max_rate(rate)
    t.start(paused=True)
    wait_paused(t)  # loaded and at step 0: from the resume on, every step is on the clock
    began = time.monotonic()
    t.resume()
    wait_step(t, n)  # lower bound: it advances (within the generous bound)
    took = time.monotonic() - began
    # Upper bound on the pace: after each step the throttle waits 1/rate, so n steps take at least (n-1)/rate
    # (2 s here; a run that ignored it makes 5 tiny steps in a few milliseconds). Load only makes it slower.
    assert took >= (n - 1) / rate, took
    assert t.status().max_rate == rate


def test_absurd_lr_pauses_with_a_reason_instead_of_training_on_garbage(make_run):
    t = make_run(lr_g=1.0, lr_d=1.0, loss="hinge")  # the highest rate the config takes: diverges by step ~3
    t.start()
    assert t.wait_until(lambda tr: tr.state in (RunState.PAUSED, RunState.FAILED), WAIT_S)
    st = t.status()
    assert st.state == RunState.PAUSED and st.pause_cause == PauseCause.NAN
    assert "became" in st.reason and "at step" in st.reason and "Lower the learning rate" in st.reason
    assert t.wait_until(lambda tr: {"non-finite", "coach"} <= events(tr), WAIT_S), events(t)
    state = t.state_dict()
    for net in ("G", "D", "G_ema"):  # restored to healthy weights, the average of G too
        assert all(torch.isfinite(v).all() for v in state[net].values() if v.is_floating_point()), net
    assert all(torch.isfinite(p).all() for p in t.generator_copy().parameters())
    # The coach says so, marks it on the loss chart, and offers to halve both rates.
    from gan.core.diagnosis import Condition

    d = st.diagnosis
    assert d.condition == Condition.DIVERGED and d.alarm and d.step == st.step + 1
    assert d.changes == (("lr_g", 0.5), ("lr_d", 0.5))
    marks = t.history.snapshot().events
    assert marks[marks.kind == "coach"].detail.tolist() == ["diverged"]
    # Lowering the lr and resuming continues training.
    t.set_lr(lr_g=2e-4, lr_d=2e-4)
    held = t.step_count
    t.resume()
    wait_step(t, held + 5)


def test_exception_in_a_step_moves_the_run_to_failed_with_the_message(make_trainer, monkeypatch):
    # In-process only: the fault is injected by replacing gan_step in this process, out of the worker's reach
    # (no public command makes a step raise there). The worker's reply and tick carry the same RunState.FAILED status.
    t = make_trainer()
    t.start()
    wait_step(t, 2)

    def broken(*args, **kwargs):
        raise RuntimeError("boom in the step")

    monkeypatch.setattr("gan.engine.trainer.gan_step", broken)
    assert t.wait_until(lambda tr: tr.state == RunState.FAILED, WAIT_S)
    assert "boom in the step" in t.status().reason
    assert t.wait_until(lambda tr: not tr.is_alive(), WAIT_S)  # the thread ended; it does not linger
    assert "failed" in events(t)


# --- full MNIST: the download is stubbed (gan.core.data.fetch), so no test depends on the network ------------
def _idx(magic: int, dims: tuple, data: bytes) -> bytes:
    return struct.pack(f">I{len(dims)}I", magic, *dims) + data


def fake_mnist(n: int = 32) -> dict[str, bytes]:
    """torchvision's four MNIST files, gzipped, with n tiny random digits each: what a mirror would serve."""
    rng = np.random.default_rng(0)
    files = {}
    for part in ("train", "t10k"):
        pixels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8).tobytes()
        labels = rng.integers(0, 10, n, dtype=np.uint8).tobytes()
        files[f"{part}-images-idx3-ubyte.gz"] = gzip.compress(_idx(0x803, (n, 28, 28), pixels), mtime=0)
        files[f"{part}-labels-idx1-ubyte.gz"] = gzip.compress(_idx(0x801, (n,), labels), mtime=0)
    return files


@pytest.mark.parametrize("how", ["offline", "corrupt"])
def test_full_mnist_that_cannot_be_downloaded_fails_with_the_reason_or_falls_back(make_trainer, tmp_path,
                                                                                  monkeypatch, how):
    asked = []

    def fetch(url, dest, timeout):
        asked.append((url, timeout))
        if how == "offline":
            raise OSError("no network here")
        dest.write_bytes(b"not the file")  # a mirror that answers with something else: a checksum mismatch

    monkeypatch.setattr("gan.core.data.fetch", fetch)
    monkeypatch.setenv("GAN_LIVE_DOWNLOAD_TIMEOUT", "2")
    t = make_trainer(dataset="mnist", data_dir=str(tmp_path))
    t.start()
    assert t.wait_until(lambda tr: tr.state == RunState.FAILED, WAIT_S), t.status()
    st = t.status()
    assert "could not be downloaded" in st.reason and "mnist5k" in st.reason
    assert ("no network here" if how == "offline" else "checksum mismatch") in st.reason
    assert asked and all(timeout == 2.0 for _, timeout in asked)  # every request with the configured timeout
    fb = make_trainer(dataset="mnist", data_dir=str(tmp_path))
    fb.dataset_fallback = True  # the dashboard's choice: train on mnist5k, and say so
    fb.start()
    wait_step(fb, 2)
    st = fb.status()
    assert st.dataset == "mnist5k" and "mnist5k" in st.warnings[0]


def test_full_mnist_is_downloaded_checked_and_trained_on(make_trainer, tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    files = fake_mnist()
    monkeypatch.setattr(MNIST, "resources", [(name, hashlib.md5(data).hexdigest()) for name, data in files.items()])
    monkeypatch.setattr("gan.core.data.fetch", lambda url, dest, timeout: dest.write_bytes(
        files[url.rsplit("/", 1)[-1]]))
    t = make_trainer(dataset="mnist", data_dir=str(tmp_path))
    t.start()
    wait_step(t, 2)
    st = t.status()
    assert st.dataset == "mnist" and "downloaded" in st.dataset_source and not st.warnings
    assert len(t.data) == 32  # the served files, decompressed and read by torchvision
    # Once there, the files are read from the data folder: no second download.
    from gan.core.data import load_dataset

    monkeypatch.setattr("gan.core.data.fetch", lambda url, dest, timeout: pytest.fail(f"downloaded {url} again"))
    cached = load_dataset("mnist", data_dir=str(tmp_path))
    assert len(cached) == 32 and "cached" in cached.source


def test_same_seed_same_run(make_run):
    """Same seed: the same losses and the same sample grid (the fixed noise is the seed's, whatever else drew
    random numbers in between); another seed draws another grid."""
    runs, grids = [], []
    for seed in (11, 11, 12):
        t = make_run(seed=seed)
        t.start(paused=True)
        wait_paused(t)
        torch.randn(7)  # this process's own random stream moves on between runs, as in a real server
        t.step(5)
        wait_step(t, 5)
        runs.append(list(t.history.snapshot().scalars.loss_d))
        grids.append(t.history.latest_grid().images)
        assert t.stop(timeout=WAIT_S)
    assert runs[0] == runs[1] and runs[0] != runs[2]
    assert np.array_equal(grids[0], grids[1]) and not np.array_equal(grids[0], grids[2])


def test_scheduled_loss_switch_fires_after_the_given_step(make_run):
    t = make_run(loss="minimax")
    t.schedule(6, "loss", "mse")
    with pytest.raises(ValueError):
        t.schedule(3, "loss", "nope")
    with pytest.raises(ValueError):
        t.schedule(3, "beta1", 0.1)
    t.start(paused=True)
    wait_paused(t)
    t.step(10)
    wait_step(t, 10)
    snap = t.history.snapshot()
    assert list(snap.events[snap.events.kind == "loss"].step) == [7]
    s = snap.scalars.set_index("step")
    assert (s.loc[1:6, "loss"] == "minimax").all() and (s.loc[7:10, "loss"] == "mse").all()
    assert t.status().scheduled == ()


def test_manual_d_step_reports_its_effect_on_the_same_batch(make_run):
    t = make_run(lr_d=5e-3)
    t.start(paused=True)
    wait_paused(t)
    t.step(1, which="d")
    wait_step(t, 1)
    assert t.wait_until(lambda tr: getattr(tr.last_manual_step, 'step', None) == 1, WAIT_S)
    s = t.last_manual_step
    # A D-only step on one batch makes D better on that batch: D(real) up, D(fake) down, loss_d down.
    assert s.after.d_real > s.before.d_real
    assert s.after.d_fake < s.before.d_fake
    assert s.after.loss_d < s.before.loss_d


def test_d_steps_three_makes_three_d_updates_per_g_update(make_run):
    """Counted by the optimisers themselves: Adam's step counter of D runs three times as fast as G's."""
    t = make_run(d_steps=3)
    t.start(paused=True)
    wait_paused(t)
    t.step(20)
    wait_step(t, 20)
    state = t.state_dict()
    d_steps = {int(st["step"]) for st in state["opt_d"]["state"].values()}
    g_steps = {int(st["step"]) for st in state["opt_g"]["state"].values()}
    assert g_steps == {20} and d_steps == {60}


def test_the_divergence_message_names_the_loss_that_went_bad_and_its_value():
    from gan.core.step import DIVERGED, non_finite_reason

    d_nan = non_finite_reason(7, float("nan"), 0.7, 2e-4, 5e-4)
    assert d_nan.startswith("loss_d became nan at step 7 (lr_g=0.0002, lr_d=0.0005); weights were restored")
    assert non_finite_reason(9, 0.69, float("-inf"), 1e-3, 1e-3).startswith("loss_g became -inf at step 9")
    big = 2 * DIVERGED
    assert non_finite_reason(3, 0.69, big, 1.0, 1.0).startswith(f"loss_g became {big:.3g} (diverged) at step 3")
    assert non_finite_reason(3, -big, 0.69, 1.0, 1.0).startswith(f"loss_d became {-big:.3g} (diverged)")
    assert d_nan.endswith("Lower the learning rate and press Resume.")


def test_ema_update_is_the_moving_average_of_the_weights_and_copies_the_buffers():
    from gan.core.models import build_models
    from gan.core.step import ema_update

    (avg, _), (G, _) = build_models("dcgan", 8, 32), build_models("dcgan", 8, 32)
    before = [q.detach().clone() for q in avg.parameters()]
    with torch.no_grad():
        for b in G.buffers():
            b.add_(3)  # BatchNorm's running statistics moved
    ema_update(avg, G, 0.9)
    for a, old, new in zip(avg.parameters(), before, G.parameters()):
        torch.testing.assert_close(a, 0.9 * old + 0.1 * new)
    for a, b in zip(avg.buffers(), G.buffers()):
        assert torch.equal(a, b)


def test_grids_and_copies_of_g_come_from_its_moving_average(make_trainer):
    """With ema > 0 the page's grids and every sampled copy are the average of G, not the raw G; with 0, G."""
    from gan.core.data import to_uint8
    from gan.core.models import build_models, seeded

    t = make_trainer(ema=0.9)
    t.start(stop_at_step=30)
    assert t.wait_until(lambda tr: tr.state == RunState.PAUSED, WAIT_S), t.status()
    state = t.state_dict()
    avg = t.generator_copy()
    assert all(torch.equal(v, state["G_ema"][k]) for k, v in avg.state_dict().items())
    assert any(not torch.equal(v, state["G"][k]) for k, v in state["G_ema"].items())  # not the raw G ...
    with seeded(SMALL["seed"]):
        G0, _ = build_models("mlp", SMALL["latent_dim"], SMALL["width"])
    assert any(not torch.equal(v, G0.state_dict()[k]) for k, v in state["G_ema"].items())  # ... nor the start
    grid = t.history.latest_grid()
    assert grid.step == 30
    with torch.no_grad():
        assert (grid.images == to_uint8(avg(state["fixed_noise"]))).all()

    raw = make_trainer(ema=0.0)
    raw.start(stop_at_step=10)
    assert raw.wait_until(lambda tr: tr.state == RunState.PAUSED, WAIT_S), raw.status()
    assert "G_ema" not in raw.state_dict()
    assert all(torch.equal(v, raw.G.state_dict()[k]) for k, v in raw.generator_copy().state_dict().items())


def test_the_average_of_a_dcgan_g_draws_with_batchnorm_statistics_that_fit_it(make_trainer):
    """The averaged G's BatchNorm running statistics are the raw G's (copied), which do not fit the averaged
    weights. Its grids normalise the fixed noise by the batch's own statistics; its copies (scores, the Samples
    page) get statistics recomputed from their own samples, so any batch, even one frame, draws alike."""
    from gan.core.data import to_uint8
    from gan.core.models import build_models

    t = make_trainer(model="dcgan", ema=0.9, width=32)
    t.start(stop_at_step=20)
    assert t.wait_until(lambda tr: tr.state == RunState.PAUSED, WAIT_S), t.status()
    state = t.state_dict()
    saved, _ = build_models("dcgan", SMALL["latent_dim"], 32)
    saved.load_state_dict(state["G_ema"])  # the average with the raw G's statistics
    noise = state["fixed_noise"]  # (64, latent)
    with torch.no_grad():
        batch_drawn = to_uint8(saved.train()(noise))  # each layer normalised by this batch's statistics
        raw_stats = to_uint8(saved.eval()(noise))
    grid = t.history.latest_grid()
    assert grid.step == 20 and (grid.images == batch_drawn).all() and not (grid.images == raw_stats).all()
    assert all(torch.equal(v, state["G_ema"][k]) for k, v in t.state_dict()["G_ema"].items())  # grid moved nothing

    copy = t.generator_copy()
    assert not copy.training
    params = dict(copy.named_parameters())
    assert all(torch.equal(params[k], v) for k, v in state["G_ema"].items() if k in params)
    bn = copy.project[1]  # BatchNorm1d over the projection, (2c*7*7,)
    assert not torch.equal(bn.running_mean, state["G_ema"]["project.1.running_mean"])
    with torch.no_grad():
        z = torch.randn(4096, SMALL["latent_dim"], generator=torch.Generator().manual_seed(9))
        pre = copy.project[0](z)  # (4096, 2c*7*7): what the BatchNorm sees
        # the mean over its own 1,024 samples: within 5 standard errors of the mean over 4,096 others
        assert ((bn.running_mean - pre.mean(0)).abs() <= 5 * pre.std(0) / 1024**0.5).all()
        assert ((bn.running_var / pre.var(0)).log().abs() < 0.3).all()
        two = copy(z[:2])  # two frames alone draw as they do among 64 others: eval mode, fixed statistics
        torch.testing.assert_close(two, copy(z[:64])[:2])
    assert bn.momentum == 0.1  # the layer's own momentum is back


def test_batch_statistics_and_standing_statistics_leave_g_as_they_found_it():
    from gan.core.models import batch_statistics, build_models, standing_statistics

    G, _ = build_models("dcgan", 8, 32)
    G.eval()
    kept = {k: v.clone() for k, v in G.state_dict().items()}
    z = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), batch_statistics(G):
        inside = G(z)
    assert all(torch.equal(v, kept[k]) for k, v in G.state_dict().items())  # running statistics untouched
    assert not G.training and all(not m.training and m.track_running_stats for m in G.modules()
                                  if isinstance(m, torch.nn.BatchNorm2d))
    with torch.no_grad():
        torch.testing.assert_close(inside, G.train()(z))  # the same as train mode, without its side effects
    mlp, _ = build_models("mlp", 8, 32)  # no BatchNorm: nothing to recompute, weights as they were
    weights = {k: v.clone() for k, v in mlp.state_dict().items()}
    assert standing_statistics(mlp, 8) is mlp and not mlp.training
    assert all(torch.equal(v, weights[k]) for k, v in mlp.state_dict().items())


def test_the_coach_reads_the_run_at_every_sample_point_as_a_replay_of_its_history_does(make_trainer):
    """The live reading (RunStatus.diagnosis) is the coach's pure function of the history and the latest grid:
    replaying the recorded run gives the same reading at the same step."""
    from gan.core.coach import replay
    from gan.core.diagnosis import Condition

    t = make_trainer(loss="minimax", lr_d=2e-3, d_steps=3, width=16)  # a strong D stalls a minimax G quickly
    t.start(stop_at_step=400)
    assert t.wait_until(lambda tr: tr.state == RunState.PAUSED and tr.step_count == 400, WAIT_S), t.status()
    st = t.status()
    assert st.diagnosis is not None and st.diagnosis.step == 400
    snap = t.history.snapshot()
    readings = replay([Row(*r) for r in snap.scalars.itertuples(index=False, name=None)], snap.grids, every=10,
                      d_steps=3)
    assert readings[-1] == st.diagnosis
    assert [d.step for d in readings] == list(range(10, 401, 10))
    marked = snap.events[snap.events.kind == "coach"]
    firsts = {}
    for d in readings:  # each alarm is marked where it first appears
        if d.alarm:
            firsts.setdefault(d.condition.value, d.step)
    assert dict(zip(marked.detail, marked.step)) == firsts
    assert Condition.VANISHING_GRADIENT.value in firsts, [d.sentence for d in readings[-3:]]


def _one_step_setup(seed=0):
    """A tiny MLP pair, its optimisers and 64 random 'images': gan_step on its own, without a Trainer."""
    from gan.core.data import Dataset
    from gan.core.models import build_models

    torch.manual_seed(seed)
    G, D = build_models("mlp", 8, 16)
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    data = Dataset("noise", torch.rand(64, 1, 28, 28) * 2 - 1, torch.zeros(64, dtype=torch.long), "test")
    return G, D, opt_g, opt_d, data


def _adam_steps(opt) -> set[int]:
    return {int(s["step"]) for s in opt.state_dict()["state"].values()}


def test_a_bare_gan_step_makes_one_d_and_one_g_update_and_no_d_gradient_for_g():
    """gan_step's defaults are what pytorch/examples' dcgan does per batch: (1) one D update, (2) one G
    update; and G's update does not compute D's weight gradients (D is frozen for that backward)."""
    from gan.core.losses import LOSSES
    from gan.core.step import gan_step

    G, D, opt_g, opt_d, data = _one_step_setup()
    gan_step(G, D, opt_g, opt_d, data, LOSSES["bce"], batch_size=8, latent_dim=8)
    assert _adam_steps(opt_d) == {1} and _adam_steps(opt_g) == {1}

    G, D, opt_g, opt_d, data = _one_step_setup()
    rng = torch.Generator().manual_seed(1)
    gan_step(G, D, opt_g, opt_d, data, LOSSES["bce"], batch_size=8, latent_dim=8, update_d=False, generator=rng)
    assert _adam_steps(opt_d) == set() and _adam_steps(opt_g) == {1}
    assert all(p.grad is None for p in D.parameters())  # G's backward skipped D's weights
    assert all(p.requires_grad for p in D.parameters())  # and D is trainable again afterwards
    # "Step G only" draws one batch of real images and noise, not d_steps of them: the same draws as a
    # generator that made exactly one batch and one noise vector
    twin = torch.Generator().manual_seed(1)
    data.sample(8, twin)
    torch.randn(8, 8, generator=twin)
    assert torch.equal(rng.get_state(), twin.get_state())


def test_healthy_draws_the_line_at_diverged_exactly():
    from gan.core.step import DIVERGED, healthy

    assert healthy(DIVERGED * 0.999) and healthy(-DIVERGED * 0.999)
    assert not healthy(DIVERGED) and not healthy(-DIVERGED)
    assert not healthy(float("nan")) and not healthy(float("inf"))


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_a_roll_back_restores_g_d_and_the_average_of_g_to_the_last_good_point(ema):
    """After a NaN the run goes back to the last sample point's weights; the average of G too, or the grid
    people see would keep the bad step folded in."""
    from gan.core.models import build_models
    from gan.engine.training_state import TrainingState

    state = TrainingState(Config(**{**SMALL, "ema": ema}), "cpu")
    state.attach(*build_models("mlp", SMALL["latent_dim"], SMALL["width"]))
    state.mark_good()
    good = [p.detach().clone() for m in (state.G, state.D, state.sampling_G) for p in m.parameters()]
    with torch.no_grad():
        for m in (state.G, state.D, state.sampling_G):
            for p in m.parameters():
                p.fill_(float("nan"))  # the bad step, and the average that took it in
    state.roll_back()
    now = [p for m in (state.G, state.D, state.sampling_G) for p in m.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(good, now))
    assert (state.G_ema is None) == (ema == 0.0)


def test_live_changes_reach_the_optimisers_and_the_chart_marks_say_old_and_new():
    """A run's Adam starts at the configured rates; a live change sets the optimiser's rate and is marked on the
    charts as "old → new" (what a presenter reads next to the mark), the D-steps change too. Only a loss switch
    asks for an autosave."""
    from gan.core.models import build_models
    from gan.engine.training_state import TrainingState

    cfg = Config(**{**SMALL, "lr_g": 3e-3, "lr_d": 7e-4})
    state = TrainingState(cfg, "cpu")
    state.attach(*build_models("mlp", SMALL["latent_dim"], SMALL["width"]))
    assert [g["lr"] for g in state.opt_g.param_groups] == [3e-3] * len(state.opt_g.param_groups)
    assert [g["lr"] for g in state.opt_d.param_groups] == [7e-4] * len(state.opt_d.param_groups)
    marks = []
    assert state.apply_changes({"lr_g": 1e-3, "lr_d": 2e-4, "d_steps": 3},
                               lambda kind, text: marks.append((kind, text))) is False
    assert marks == [("lr_g", "0.003 → 0.001"), ("lr_d", "0.0007 → 0.0002"), ("d_steps", "1 → 3")]
    assert {g["lr"] for g in state.opt_g.param_groups} == {1e-3}
    assert {g["lr"] for g in state.opt_d.param_groups} == {2e-4}
    assert (state.lr_g, state.lr_d, state.d_steps) == (1e-3, 2e-4, 3)
    assert state.apply_changes({"loss": "mse"}, lambda kind, text: marks.append((kind, text))) is True
    assert marks[-1] == ("loss", "bce → mse")
