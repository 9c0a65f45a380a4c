"""The coach (gan/core/coach.py): one test per rule on made-up histories with the numbers each rule
reads, the slopes it compares against autograd, robustness to short, broken and switching histories, and the
default run on three recorded seeds (tests/data/run_default_s*.npz, ~5 min of training each) with no alarm.
The failure presets' own diagnoses are checked on their real runs in tests/test_presets.py."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gan.core import coach
from gan.core.coach import diagnose, diverged, grid_similarity, marker_label, replay
from gan.core.diagnosis import ALARMS, Condition
from gan.core.losses import LN2, LOSSES, get_loss
from gan.core.step import Row

DATA = Path(__file__).parent / "data"


def rows(n, *, loss="bce", loss_d=0.6, loss_g=1.0, d_real=0.7, d_fake=0.3, lr_d=2.5e-3, start=1, noise=0.0,
         seed=0):
    """n History rows (step, time, loss_d, loss_g, d_real, d_fake, lr_g, lr_d, loss), with optional noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        e = rng.normal(0, noise, 4) if noise else np.zeros(4)
        out.append(Row.one_step(start + i, 0.0, loss_d + e[0], loss_g + e[1], float(np.clip(d_real + e[2], 0, 1)),
                                float(np.clip(d_fake + e[3], 0, 1)), 5e-3, lr_d, loss))
    return out


def real_digits(one_class: bool = False) -> np.ndarray:
    from gan.core.data import load_dataset

    real = load_dataset("mnist5k").images  # sorted by class, 500 each
    pick = real[:64] if one_class else real[:: len(real) // 64][:64]
    return ((pick.squeeze(1) + 1) * 127.5).round().numpy().astype("uint8")  # (64, 28, 28)


# --- the slopes each rule compares --------------------------------------------------------------
@pytest.mark.parametrize("name", list(LOSSES))
def test_each_g_slope_is_the_autograd_slope_of_its_g_loss(name):
    spec = get_loss(name)
    for logit in (-6.0, -2.0, 0.0, 1.5, 4.0):  # away from logit 0 too, where a sign or factor error shows
        x = torch.tensor([logit], requires_grad=True)
        spec.g_loss(fake_logits=x).backward()
        p = 1 / (1 + math.exp(-logit))
        assert abs(x.grad.item()) == pytest.approx(spec.g_slope(p), rel=1e-5, abs=1e-7), (name, logit)


# --- one test per rule ----------------------------------------------------------------------------
def test_too_few_steps_is_too_early_to_tell():
    assert diagnose([]).condition == Condition.WARMING_UP
    d = diagnose(rows(50))
    assert d.condition == Condition.WARMING_UP and d.evidence == "50 steps since the start" and not d.alarm


def test_a_learning_run_is_called_learning_with_its_numbers():
    d = diagnose(rows(300, noise=0.02))
    assert d.condition == Condition.LEARNING and not d.alarm and d.changes == ()
    assert "D(real) 0.70, D(fake) 0.30" in d.evidence and "(equilibrium 0.693)" in d.evidence
    assert d.step == 300


def test_d_winning_names_the_numbers_and_weakens_d():
    d = diagnose(rows(300, loss_d=0.05, loss_g=4.1, d_real=0.97, d_fake=0.02, lr_d=2e-3))
    assert d.condition == Condition.D_WINNING and d.alarm
    assert d.sentence == ("D is winning: D(real) 0.97, D(fake) 0.02, G's loss 4.10 (equilibrium 0.693) — "
                          "try to lower D's learning rate to 2.0e-04")
    assert d.changes == (("lr_d", pytest.approx(2e-4)),)
    # With several D steps per G step, one D step is the first thing to try.
    d3 = diagnose(rows(300, loss_d=0.05, loss_g=4.1, d_real=0.97, d_fake=0.02), d_steps=3)
    assert d3.changes == (("d_steps", 1),) and "one step per G step (now 3)" in d3.advice
    # Just inside the thresholds is not a win.
    assert diagnose(rows(300, d_real=0.89, d_fake=0.02)).condition == Condition.LEARNING
    assert diagnose(rows(300, d_real=0.97, d_fake=0.11)).condition == Condition.LEARNING


@pytest.mark.parametrize("loss, d_fake, fires", [("minimax", 0.02, True), ("minimax", 0.2, False),
                                                 ("mse", 0.02, True), ("mse", 0.2, False),
                                                 ("bce", 0.001, False), ("hinge", 0.001, False)])
def test_vanishing_gradient_fires_for_saturating_losses_only(loss, d_fake, fires):
    d = diagnose(rows(300, loss=loss, d_real=0.99, d_fake=d_fake))
    if fires:
        assert d.condition == Condition.VANISHING_GRADIENT and d.changes == (("loss", "bce"),)
        slope, bce = get_loss(loss).g_slope(d_fake), 1 - d_fake
        assert f"push on G is {slope:.3f} per sample where BCE's would be {bce:.2f}" in d.evidence
    else:  # BCE and hinge keep G's slope; with D this sure of itself the reading is "D is winning"
        assert d.condition != Condition.VANISHING_GRADIENT
        assert d.condition == (Condition.D_WINNING if d_fake < 0.1 else Condition.LEARNING)


def test_mode_collapse_reads_the_grid_after_the_first_thousand_steps():
    same = np.repeat(real_digits()[:1], 64, axis=0)  # one image, 64 times
    history = rows(300, start=1001)
    d = diagnose(history, grid=same)
    assert d.condition == Condition.MODE_COLLAPSE and d.alarm and "similarity 1.00" in d.evidence
    assert diagnose(history, grid=real_digits()).condition == Condition.LEARNING  # ten classes
    assert diagnose(history, grid=real_digits(one_class=True)).condition == Condition.LEARNING  # one real class
    assert diagnose(rows(300), grid=same).condition == Condition.LEARNING  # step 300: G still draws blobs
    # A collapsed G is often beaten by D too: the grid, what the room sees, is named first.
    beaten = rows(300, start=1001, d_real=0.95, d_fake=0.05)
    assert diagnose(beaten, grid=same).condition == Condition.MODE_COLLAPSE
    assert diagnose(beaten, grid=real_digits()).condition == Condition.D_WINNING


def test_real_digits_are_far_below_the_collapse_threshold():
    assert grid_similarity(real_digits()) < 0.45
    assert grid_similarity(real_digits(one_class=True)) < coach.MNIST.collapse_threshold
    assert grid_similarity(np.repeat(real_digits()[:1], 64, axis=0)) == pytest.approx(1.0)


def test_near_equilibrium_needs_five_hundred_steps_within_ten_percent():
    at = dict(loss_d=LN2 * 1.05, loss_g=LN2 * 0.95, d_real=0.52, d_fake=0.48)
    d = diagnose(rows(600, **at, noise=0.05))
    assert d.condition == Condition.NEAR_EQUILIBRIUM and not d.alarm and d.changes == ()
    assert diagnose(rows(400, **at)).condition == Condition.LEARNING  # not long enough yet
    assert diagnose(rows(600, **{**at, "loss_g": LN2 * 1.15})).condition == Condition.LEARNING  # G 15 % off
    mse = diagnose(rows(600, loss="mse", loss_d=0.26, loss_g=0.24, d_real=0.5, d_fake=0.5))
    assert mse.condition == Condition.NEAR_EQUILIBRIUM and "(D 0.25, G 0.25)" in mse.evidence


def test_diverged_halves_both_rates():
    d = diverged(1234, 5e-3, 2.5e-3, float("nan"), 3.0)
    assert d.condition == Condition.DIVERGED and d.alarm
    assert "D's loss NaN, G's 3.00 at step 1,234" in d.evidence
    assert d.changes == (("lr_g", 2.5e-3), ("lr_d", 1.25e-3))


# --- hostile histories ----------------------------------------------------------------------------
def test_a_window_never_mixes_two_losses():
    # 400 steps of minimax where D won, then 60 of BCE: too early to judge BCE, whatever minimax did.
    history = rows(400, loss="minimax", d_real=0.99, d_fake=0.01) + rows(60, start=401)
    d = diagnose(history)
    assert d.condition == Condition.WARMING_UP
    assert d.evidence == "60 steps since the switch to BCE (equilibrium: D 0.693 · G 0.693)"
    d = diagnose(history + rows(100, start=461))  # 160 BCE steps, all healthy
    assert d.condition == Condition.LEARNING


def test_nans_and_single_steps_never_crash_it():
    assert diagnose(rows(1)).condition == Condition.WARMING_UP
    broken = rows(300)
    broken[100] = Row.one_step(101, 0.0, float("nan"), float("inf"), float("nan"), 0.3, 5e-3, 2.5e-3, "bce")
    assert diagnose(broken).condition == Condition.LEARNING  # the bad row is skipped, not averaged in
    all_nan = [Row.one_step(i, 0.0, *(float("nan"),) * 4, 5e-3, 2.5e-3, "bce") for i in range(1, 301)]
    assert diagnose(all_nan).condition == Condition.WARMING_UP
    assert diagnose(rows(300), grid=np.zeros((1, 28, 28), np.uint8)).condition == Condition.LEARNING


def test_marker_labels_are_short_and_typed():
    assert {marker_label(c.value) for c in ALARMS} == {"D wins", "G's gradient vanishes", "mode collapse", "NaN"}
    assert marker_label("not a condition") == "not a condition"


# --- the default run, recorded: no false alarm in five minutes on three seeds ---------------------
def recorded(name: str):
    z = np.load(DATA / name)
    history = [Row.one_step(int(s), 0.0, float(a), float(b), float(c), float(d), float(g), float(h), str(lo))
               for s, a, b, c, d, g, h, lo in zip(z["step"], z["loss_d"], z["loss_g"], z["d_real"], z["d_fake"],
                                                  z["lr_g"], z["lr_d"], z["loss"])]
    return history, list(zip(z["grid_step"].tolist(), z["grid"]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_default_run_raises_no_alarm_in_five_minutes(seed):
    history, grids = recorded(f"run_default_s{seed}.npz")
    assert history[-1][0] >= 6600 and len(grids) >= 13  # ~5 minutes of one CPU thread
    readings = replay(history, grids)
    assert len(readings) == history[-1][0] // 100
    alarms = [(d.step, d.sentence) for d in readings if d.alarm]
    assert alarms == []
    assert {d.condition for d in readings[2:]} <= {Condition.LEARNING, Condition.NEAR_EQUILIBRIUM}


# --- the coach reads the run's own data: its words and its collapse threshold ---------------------------
def made_dataset(name: str, images_uint8: np.ndarray):
    """A gan.core.data.Dataset of these images, as a run on ``name`` would hold it (no labels needed here)."""
    from gan.core.data import Dataset, to_unit_range

    n = len(images_uint8)
    return Dataset(name, to_unit_range(images_uint8), torch.full((n,), -1, dtype=torch.int64), f"test: {n} {name}")


def doodles(n: int = 200, seed: int = 0) -> np.ndarray:
    """Your own images when they are all much alike: one thick bar each, a little shifted and stretched. Real
    images of such a set are more alike than MNIST's collapse alarm (0.60), without being collapsed at all."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), np.uint8)
    for im in out:
        top, left = rng.integers(4, 8), rng.integers(9, 13)
        im[top:top + int(rng.integers(15, 20)), left:left + int(rng.integers(5, 8))] = 255
    return out


def test_the_collapse_threshold_is_calibrated_on_the_runs_own_real_images():
    from gan.core.data import load_dataset

    mnist = load_dataset("mnist5k")
    calibrated = coach.RealImages.of(mnist)
    assert calibrated is coach.RealImages.of(mnist)  # once per dataset, then kept
    assert calibrated.noun == "digits"
    # MNIST keeps today's alarm (~0.6), and the constant a replay without its dataset uses is that measurement.
    assert calibrated.similarity == pytest.approx(coach.MNIST.similarity, abs=0.002)
    assert 0.59 <= calibrated.collapse_threshold <= 0.62
    ones = ((mnist.images[500:564].squeeze(1) + 1) * 127.5).round().numpy().astype("uint8")  # mnist5k: by class
    assert 0.5 < grid_similarity(ones) < calibrated.collapse_threshold  # one real class is no collapse

    mine = made_dataset("own", doodles())
    own = coach.RealImages.of(mine)
    assert own.noun == "images" and own.similarity > coach.MNIST.collapse_threshold  # far more alike than digits
    assert own.collapse_threshold == pytest.approx(min(own.similarity + coach.COLLAPSE_MARGIN, coach.COLLAPSE_CEILING))
    history = rows(300, start=1001)
    real_grid = doodles(64, seed=1)  # what a G that learned your images well draws: as alike as they are
    assert diagnose(history, grid=real_grid, real=own).condition == Condition.LEARNING
    assert diagnose(history, grid=real_grid).condition == Condition.MODE_COLLAPSE  # MNIST's number: a false alarm
    same = np.repeat(real_grid[:1], 64, axis=0)  # 64 copies of one: collapsed, however alike the data is
    assert diagnose(history, grid=same, real=own).condition == Condition.MODE_COLLAPSE
    assert coach.RealImages("images", 0.9).collapse_threshold == coach.COLLAPSE_CEILING < 1.0


@pytest.mark.parametrize("name, noun", [("mnist5k", "digits"), ("mnist", "digits"), ("fashion", "clothes"),
                                        ("own", "images")])
def test_the_coach_names_the_data_the_run_draws(name, noun):
    real = coach.RealImages.of(made_dataset(name, doodles(100, seed=2)))
    same = np.repeat(doodles(1, seed=3), 64, axis=0)
    d = diagnose(rows(300, start=1001), grid=same, real=real)
    assert d.condition == Condition.MODE_COLLAPSE
    assert f"similarity 1.00 (real {noun} ~{real.similarity:.2f}; the alarm from {real.collapse_threshold:.2f})" \
        in d.evidence
    if noun != "digits":
        assert "digit" not in d.sentence


# --- the coach follows the active loss at once ------------------------------------------------------------
def test_a_reading_right_after_a_switch_quotes_the_new_loss():
    history = rows(300, noise=0.02)  # BCE, read against ln 2 = 0.693
    assert "(equilibrium 0.693)" in diagnose(history).evidence
    d = diagnose(history + rows(1, loss="mse", start=301))
    assert d.condition == Condition.WARMING_UP and d.step == 301
    assert d.evidence == "1 step since the switch to MSE (equilibrium: D 0.25 · G 0.25)"


def test_a_back_and_forth_switch_names_the_latest():
    history = rows(300) + rows(52, loss="mse", start=301)
    assert diagnose(history).evidence.startswith("52 steps since the switch to MSE")
    back = diagnose(history + rows(10, start=353))
    assert back.evidence == "10 steps since the switch to BCE (equilibrium: D 0.693 · G 0.693)"


def test_the_trainers_reading_follows_a_switch_at_once_and_uses_the_runs_own_images(tmp_path, monkeypatch):
    """Between two sample points too: the trainer reads again at the switch, so its status never quotes the old
    loss; and it reads with the calibration of the run's own data (your images here), not MNIST's."""
    from gan.core.config import Config
    from gan.engine.status import RunState
    from gan.engine.trainer import Trainer

    seen = []
    real_diagnose = coach.diagnose
    monkeypatch.setattr(coach, "diagnose", lambda *a, **k: seen.append(k.get("real", coach.MNIST)) or
                        real_diagnose(*a, **k))
    np.savez(tmp_path / "mine.npz", images=real_digits())  # 64 digits of your own: the run calls them "images"
    t = Trainer(Config(dataset="own", data_path=str(tmp_path / "mine.npz"), model="mlp", width=16, batch_size=16,
                       latent_dim=8, sample_every=100, loss="bce"), name="coach-switch")
    try:
        t.start(paused=True)
        assert t.wait_until(lambda tr: tr.state in (RunState.PAUSED, "failed"), 60), t.status()

        def step_to(n):
            t.step(n - t.step_count)
            assert t.wait_until(lambda tr: tr.step_count >= n, 60), t.status()
            return t.status().diagnosis

        assert step_to(200).step == 200  # a sample point
        assert seen and {r.noun for r in seen} == {"images"}
        assert seen[-1] == coach.RealImages.of(t.data)
        t.set_loss("mse")
        d = step_to(201)  # not a sample point
        assert d.step == 201 and d.evidence == "1 step since the switch to MSE (equilibrium: D 0.25 · G 0.25)"
        step_to(252)
        t.set_loss("bce")
        d = step_to(253)
        assert d.step == 253 and d.evidence == "1 step since the switch to BCE (equilibrium: D 0.693 · G 0.693)"
        assert step_to(300).step == 300 and "switch to BCE" in t.status().diagnosis.evidence
    finally:
        t.stop(timeout=10)
