"""The trainer thread: control, live changes, failure handling. Small models keep each test quick."""

import threading
import time

import numpy as np
import pytest
import torch

from gan.engine.config import Config
from gan.engine.trainer import FAILED, PAUSED, RUNNING, STOPPED, Trainer

SMALL = dict(model="mlp", width=32, batch_size=16, latent_dim=16, sample_every=10, seed=3)


@pytest.fixture
def make_trainer():
    made = []

    def make(**overrides):
        t = Trainer(Config(**{**SMALL, **overrides}))
        made.append(t)
        return t

    yield make
    for t in made:
        t.stop(timeout=5)


def wait_step(t, n, timeout=30):
    assert t.wait_until(lambda tr: tr.step_count >= n or tr.state == FAILED, timeout), t.status()
    assert t.state != FAILED, t.status().reason


def test_start_runs_in_a_background_thread_and_records_history(make_trainer):
    t = make_trainer()
    t.start()
    wait_step(t, 25)
    assert t.state == RUNNING and t.is_alive()
    trainers = [th for th in threading.enumerate() if th.name == f"gan-trainer-{t.name}"]
    assert len(trainers) == 1 and trainers[0].is_alive() and trainers[0] is not threading.current_thread()
    snap = t.history.snapshot()
    assert list(snap.scalars.step[:5]) == [1, 2, 3, 4, 5]
    assert {"loss_d", "loss_g", "d_real", "d_fake", "loss", "lr_g", "lr_d"} <= set(snap.scalars.columns)
    assert snap.d_real_probs.shape == (16,) and snap.d_fake_probs.shape == (16,)
    assert ((snap.d_real_probs >= 0) & (snap.d_real_probs <= 1)).all()
    assert [g.step for g in snap.grids][:3] == [0, 10, 20]  # a grid at start and every sample_every steps
    assert snap.grids[0].images.shape == (64, 28, 28)


def test_pause_stops_the_step_counter_and_resume_continues_it(make_trainer):
    t = make_trainer()
    t.start()
    wait_step(t, 5)
    t.pause()
    held = t.step_count
    assert t.state == PAUSED
    # While paused the counter must not move; give the thread many chances to (it would take ~ms per step).
    assert not t.wait_until(lambda tr: tr.step_count != held, timeout=0.5)
    t.resume()
    wait_step(t, held + 5)
    steps = list(t.history.snapshot().scalars.step)
    assert steps == list(range(1, len(steps) + 1))  # continues exactly where it was: no gap, no repeat


def test_step_n_while_paused_runs_exactly_n_steps(make_trainer):
    t = make_trainer()
    t.start(paused=True)
    assert t.wait_until(lambda tr: tr.state == PAUSED, 30)
    assert t.step_count == 0
    t.step(7)
    wait_step(t, 7)
    assert not t.wait_until(lambda tr: tr.step_count > 7, timeout=0.3)
    assert t.state == PAUSED
    with pytest.raises(ValueError):
        t.step(1, which="both-ish")


def test_step_refused_while_running(make_trainer):
    t = make_trainer()
    t.start()
    wait_step(t, 1)
    with pytest.raises(RuntimeError, match="paused"):
        t.step(1)


def _params(module):
    # Parameters and buffers (BatchNorm running statistics in the DCGAN pair): all of a network's state.
    return [p.detach().clone() for p in (*module.parameters(), *module.buffers())]


def _changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, (*module.parameters(), *module.buffers())))


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
@pytest.mark.parametrize("which, d_moves, g_moves", [("d", True, False), ("g", False, True), ("both", True, True)])
def test_manual_steps_update_only_the_chosen_network(make_trainer, model, which, d_moves, g_moves):
    t = make_trainer(model=model)
    t.start(paused=True)
    assert t.wait_until(lambda tr: tr.state == PAUSED, 30)
    g0, d0 = _params(t.G), _params(t.D)
    t.step(2, which=which)
    wait_step(t, 2)
    assert t.wait_until(lambda tr: tr.last_manual_step and tr.last_manual_step["step"] == 2, 5)
    assert _changed(d0, t.D) is d_moves
    assert _changed(g0, t.G) is g_moves
    assert t.last_manual_step["which"] == which and t.last_manual_step["before"] is not None


def test_loss_switch_at_step_k_is_recorded_at_k_and_changes_the_loss_from_k_on(make_trainer):
    t = make_trainer(loss="bce")
    t.start(paused=True)
    assert t.wait_until(lambda tr: tr.state == PAUSED, 30)
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
    t = make_trainer()
    t.start()
    wait_step(t, 5)
    G, D, og, od = t.G, t.D, t.opt_g, t.opt_d
    t.set_loss("hinge")
    assert t.wait_until(lambda tr: tr.loss == "hinge", 10)
    wait_step(t, t.step_count + 3)
    assert (t.G, t.D, t.opt_g, t.opt_d) == (G, D, og, od)


def test_live_lr_and_d_steps_changes_reach_the_optimisers(make_trainer):
    t = make_trainer()
    t.start()
    wait_step(t, 3)
    t.set_lr(lr_g=1e-3, lr_d=5e-4)
    t.set_d_steps(2)
    assert t.wait_until(lambda tr: tr.status().d_steps == 2, 10)
    assert [g["lr"] for g in t.opt_g.param_groups] == [1e-3]
    assert [g["lr"] for g in t.opt_d.param_groups] == [5e-4]
    kinds = set(t.history.snapshot().events.kind)
    assert {"lr_g", "lr_d", "d_steps"} <= kinds
    with pytest.raises(ValueError):
        t.set_lr(lr_g=-1.0)
    with pytest.raises(ValueError):
        t.set_loss("nope")


def test_stop_joins_the_thread_within_one_second(make_trainer):
    t = make_trainer()
    t.start()
    wait_step(t, 3)
    began = time.monotonic()
    assert t.stop(timeout=1.0) is True
    assert time.monotonic() - began < 1.0
    assert not t.is_alive() and t.state == STOPPED


def test_stop_wakes_a_paused_or_throttled_thread(make_trainer):
    t = make_trainer()
    t.start()
    wait_step(t, 1)
    t.set_max_rate(0.01)  # one step per 100 s: the thread sits in its throttle wait
    began = time.monotonic()
    assert t.stop(timeout=1.0) and time.monotonic() - began < 1.0


def test_throttle_slows_the_run(make_trainer):
    t = make_trainer()
    t.set_max_rate(20)
    t.start()
    wait_step(t, 2)
    first = t.step_count
    began = time.monotonic()
    assert t.wait_until(lambda tr: time.monotonic() - began >= 0.5, 5)
    # At 20 steps/s, half a second allows about 10 steps, far below the unthrottled rate.
    assert t.step_count - first <= 15


def test_absurd_lr_pauses_with_a_reason_instead_of_training_on_garbage(make_trainer):
    t = make_trainer(lr_g=1e6, lr_d=1e6, loss="hinge")
    t.start()
    assert t.wait_until(lambda tr: tr.state in (PAUSED, FAILED), 30)
    st = t.status()
    assert st.state == PAUSED
    assert "became" in st.reason and "at step" in st.reason and "Lower the learning rate" in st.reason
    assert "non-finite" in set(t.history.snapshot().events.kind)
    assert all(torch.isfinite(p).all() for p in t.G.parameters())  # restored to healthy weights
    assert all(torch.isfinite(p).all() for p in t.generator_copy().parameters())  # the average of G too
    # The coach says so, marks it on the loss chart, and offers to halve both rates.
    from gan.engine.protocol import Condition

    d = st.diagnosis
    assert d.condition == Condition.DIVERGED and d.alarm and d.step == st.step + 1
    assert d.changes == (("lr_g", 5e5), ("lr_d", 5e5))
    events = t.history.snapshot().events
    assert events[events.kind == "coach"].detail.tolist() == ["diverged"]
    # Lowering the lr and resuming continues training.
    t.set_lr(lr_g=2e-4, lr_d=2e-4)
    held = t.step_count
    t.resume()
    wait_step(t, held + 5)


def test_exception_in_a_step_moves_the_run_to_failed_with_the_message(make_trainer, monkeypatch):
    t = make_trainer()
    t.start()
    wait_step(t, 2)

    def broken(*args, **kwargs):
        raise RuntimeError("boom in the step")

    monkeypatch.setattr("gan.engine.trainer.gan_step", broken)
    assert t.wait_until(lambda tr: tr.state == FAILED, 10)
    assert "boom in the step" in t.status().reason
    assert t.wait_until(lambda tr: not tr.is_alive(), 5)  # the thread ended; it does not linger
    assert "failed" in set(t.history.snapshot().events.kind)


def test_missing_dataset_fails_with_the_reason_or_falls_back(make_trainer, tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_LIVE_DOWNLOAD_TIMEOUT", "2")
    t = make_trainer(dataset="mnist", data_dir=str(tmp_path))
    t.start()
    assert t.wait_until(lambda tr: tr.state == FAILED, 30)
    assert "mnist5k" in t.status().reason
    fb = Trainer(Config(**SMALL, dataset="mnist", data_dir=str(tmp_path)), dataset_fallback=True)
    try:
        fb.start()
        wait_step(fb, 2)
        st = fb.status()
        assert st.dataset == "mnist5k" and "mnist5k" in st.warnings[0]
    finally:
        fb.stop()


def test_same_seed_same_run_on_cpu(make_trainer):
    """Same seed: the same losses and the same sample grid (the fixed noise is the seed's, whatever else drew
    random numbers in between); another seed draws another grid."""
    runs, grids = [], []
    for seed in (11, 11, 12):
        t = make_trainer(seed=seed)
        t.start(paused=True)
        assert t.wait_until(lambda tr: tr.state == PAUSED, 30)
        torch.randn(7)  # the process's own random stream moves on between runs, as in a real server
        t.step(5)
        wait_step(t, 5)
        runs.append(list(t.history.snapshot().scalars.loss_d))
        grids.append(t.history.latest_grid().images)
        t.stop()
    assert runs[0] == runs[1] and runs[0] != runs[2]
    assert np.array_equal(grids[0], grids[1]) and not np.array_equal(grids[0], grids[2])


def test_scheduled_loss_switch_fires_after_the_given_step(make_trainer):
    t = make_trainer(loss="minimax")
    t.schedule(6, "loss", "mse")
    with pytest.raises(ValueError):
        t.schedule(3, "loss", "nope")
    with pytest.raises(ValueError):
        t.schedule(3, "beta1", 0.1)
    t.start(paused=True)
    assert t.wait_until(lambda tr: tr.state == PAUSED, 30)
    t.step(10)
    wait_step(t, 10)
    snap = t.history.snapshot()
    assert list(snap.events[snap.events.kind == "loss"].step) == [7]
    s = snap.scalars.set_index("step")
    assert (s.loc[1:6, "loss"] == "minimax").all() and (s.loc[7:10, "loss"] == "mse").all()
    assert t.status().scheduled == ()


def test_manual_d_step_reports_its_effect_on_the_same_batch(make_trainer):
    t = make_trainer(lr_d=5e-3)
    t.start(paused=True)
    assert t.wait_until(lambda tr: tr.state == PAUSED, 30)
    t.step(1, which="d")
    wait_step(t, 1)
    s = t.last_manual_step
    # A D-only step on one batch makes D better on that batch: D(real) up, D(fake) down, loss_d down.
    assert s["d_real"] > s["before"]["d_real"]
    assert s["d_fake"] < s["before"]["d_fake"]
    assert s["loss_d"] < s["before"]["loss_d"]


def test_d_steps_three_makes_three_d_updates_per_g_update(make_trainer):
    """Counted by the optimisers themselves: Adam's step counter of D runs three times as fast as G's."""
    t = make_trainer(d_steps=3)
    t.start(stop_at_step=20)
    assert t.wait_until(lambda tr: tr.state == PAUSED and tr.step_count >= 20, 60), t.status()
    d_steps = {int(st["step"]) for st in t.opt_d.state_dict()["state"].values()}
    g_steps = {int(st["step"]) for st in t.opt_g.state_dict()["state"].values()}
    assert g_steps == {20} and d_steps == {60}


def test_the_divergence_message_names_the_loss_that_went_bad_and_its_value():
    from gan.engine.step import DIVERGED, non_finite_reason

    d_nan = non_finite_reason(7, float("nan"), 0.7, 2e-4, 5e-4)
    assert d_nan.startswith("loss_d became nan at step 7 (lr_g=0.0002, lr_d=0.0005); weights were restored")
    assert non_finite_reason(9, 0.69, float("-inf"), 1e-3, 1e-3).startswith("loss_g became -inf at step 9")
    big = 2 * DIVERGED
    assert non_finite_reason(3, 0.69, big, 1.0, 1.0).startswith(f"loss_g became {big:.3g} (diverged) at step 3")
    assert non_finite_reason(3, -big, 0.69, 1.0, 1.0).startswith(f"loss_d became {-big:.3g} (diverged)")
    assert d_nan.endswith("Lower the learning rate and press Resume.")


def test_ema_update_is_the_moving_average_of_the_weights_and_copies_the_buffers():
    from gan.engine.models import build_models
    from gan.engine.step import ema_update

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
    from gan.engine.data import to_uint8
    from gan.engine.models import build_models, seeded

    t = make_trainer(ema=0.9)
    t.start(stop_at_step=30)
    assert t.wait_until(lambda tr: tr.state == PAUSED, 60), t.status()
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
    assert raw.wait_until(lambda tr: tr.state == PAUSED, 60), raw.status()
    assert "G_ema" not in raw.state_dict()
    assert all(torch.equal(v, raw.G.state_dict()[k]) for k, v in raw.generator_copy().state_dict().items())


def test_the_average_of_a_dcgan_g_draws_with_batchnorm_statistics_that_fit_it(make_trainer):
    """The averaged G's BatchNorm running statistics are the raw G's (copied), which do not fit the averaged
    weights. Its grids normalise the fixed noise by the batch's own statistics; its copies (scores, the Samples
    page) get statistics recomputed from their own samples, so any batch, even one frame, draws alike."""
    from gan.engine.data import to_uint8
    from gan.engine.models import build_models

    t = make_trainer(model="dcgan", ema=0.9, width=32)
    t.start(stop_at_step=20)
    assert t.wait_until(lambda tr: tr.state == PAUSED, 60), t.status()
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
    from gan.engine.models import batch_statistics, build_models, standing_statistics

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
    from gan.engine.coach import replay
    from gan.engine.protocol import Condition

    t = make_trainer(loss="minimax", lr_d=2e-3, d_steps=3, width=16)  # a strong D stalls a minimax G quickly
    t.start(stop_at_step=400)
    assert t.wait_until(lambda tr: tr.state == PAUSED and tr.step_count == 400, 60), t.status()
    st = t.status()
    assert st.diagnosis is not None and st.diagnosis.step == 400
    snap = t.history.snapshot()
    readings = replay(list(snap.scalars.itertuples(index=False, name=None)), snap.grids, every=10, d_steps=3)
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
    from gan.engine.data import Dataset
    from gan.engine.models import build_models

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
    from gan.engine.losses import LOSSES
    from gan.engine.step import gan_step

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
    from gan.engine.step import DIVERGED, healthy

    assert healthy(DIVERGED * 0.999) and healthy(-DIVERGED * 0.999)
    assert not healthy(DIVERGED) and not healthy(-DIVERGED)
    assert not healthy(float("nan")) and not healthy(float("inf"))


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_a_roll_back_restores_g_d_and_the_average_of_g_to_the_last_good_point(ema):
    """After a NaN the run goes back to the last sample point's weights; the average of G too, or the grid
    people see would keep the bad step folded in."""
    from gan.engine.models import build_models
    from gan.engine.training_state import TrainingState

    state = TrainingState(Config(**{**SMALL, "ema": ema}), "cpu")
    state.attach(*build_models("mlp", SMALL["latent_dim"], SMALL["width"]))
    state.mark_good()
    good = [p.detach().clone() for m in (state.G, state.D, state.sampler) for p in m.parameters()]
    with torch.no_grad():
        for m in (state.G, state.D, state.sampler):
            for p in m.parameters():
                p.fill_(float("nan"))  # the bad step, and the average that took it in
    state.roll_back()
    now = [p for m in (state.G, state.D, state.sampler) for p in m.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(good, now))
    assert (state.G_ema is None) == (ema == 0.0)


def test_live_changes_reach_the_optimisers_and_the_chart_marks_say_old_and_new():
    """A run's Adam starts at the configured rates; a live change sets the optimiser's rate and is marked on the
    charts as "old → new" (what a presenter reads next to the mark), the D-steps change too. Only a loss switch
    asks for an autosave."""
    from gan.engine.models import build_models
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
