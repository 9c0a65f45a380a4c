"""The quality metric on known inputs, the collapse alarm, the classifier cache, the monitor, presets."""

import math
import time

import numpy as np
import pytest
import torch

from gan.core.config import Config
from gan.core.data import Dataset, load_dataset
from gan.quality import classifier as clf
from gan.quality.metrics import (
    FEATURE_TRACE,
    Evaluator,
    class_coverage,
    classifier_score,
    collapse_alarm,
    coverage_entropy,
    frechet_distance,
)
from gan.viz.quality_charts import coverage_chart, metrics_chart
from gan.workshop.presets import PRESETS, preset_config, validate_presets


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist5k")


def _evaluator(mnist, ruler):
    """Trained on both cores when the cache is cold (a fresh CI machine: ~45 s on one thread for the two
    rulers); the tests then score on one thread, as the monitor does beside a training run."""
    torch.set_num_threads(2)
    try:
        return Evaluator.for_dataset(mnist, ruler=ruler)
    finally:
        torch.set_num_threads(1)


@pytest.fixture(scope="module")
def evaluator(mnist):
    return _evaluator(mnist, "A")


@pytest.fixture(scope="module")
def judge(mnist):
    return _evaluator(mnist, "B")


# --- pure functions ----------------------------------------------------------------------------
def test_classifier_score_bounds():
    confident_even = np.eye(10)[np.arange(1000) % 10]  # every class, each image certain
    assert classifier_score(confident_even) == pytest.approx(10.0, rel=1e-6)
    one_class = np.eye(10)[np.zeros(1000, int)]
    assert classifier_score(one_class) == pytest.approx(1.0, abs=1e-6)
    unsure = np.full((1000, 10), 0.1)  # every image equally likely to be any digit
    assert classifier_score(unsure) == pytest.approx(1.0, abs=1e-6)


def test_frechet_distance_known_values():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    sigma = a @ a.T + np.eye(4)
    mu = rng.standard_normal(4)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)
    shift = np.array([3.0, 0, 0, 0])
    assert frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(9.0, abs=1e-8)
    # Two isotropic Gaussians: (√s1 - √s2)² per dimension.
    assert frechet_distance(np.zeros(3), 4 * np.eye(3), np.zeros(3), np.eye(3)) == pytest.approx(3.0, abs=1e-8)


def test_coverage_and_entropy():
    probs = np.eye(10)[[0, 0, 1, 1]]
    cov = class_coverage(probs)
    assert cov.tolist() == [0.5, 0.5] + [0.0] * 8
    assert coverage_entropy(cov) == pytest.approx(math.log(2))
    assert coverage_entropy(np.full(10, 0.1)) == pytest.approx(math.log(10))


def test_alarm_fires_on_collapse_only():
    assert not collapse_alarm(np.full(10, 0.1)).firing
    collapsed = np.array([0.9, 0.1] + [0.0] * 8)
    alarm = collapse_alarm(collapsed)
    assert alarm.firing and alarm.covered == 2
    assert "collapse" in alarm.message.lower() and alarm.message.count(".") >= 1
    # Seven classes at 14% each and three absent: covered, but three digits are missing -> still ok
    seven = np.array([1 / 7] * 7 + [0.0] * 3)
    assert not collapse_alarm(seven).firing
    six = np.array([1 / 6] * 6 + [0.0] * 4)
    assert collapse_alarm(six).firing


# --- the metric on real, collapsed and noise images ----------------------------------------------
def test_classifier_is_accurate_on_heldout(evaluator):
    assert evaluator.info["heldout_accuracy"] >= 0.95


def test_real_images_score_high_and_cover_all_classes(evaluator):
    q = evaluator.ceiling
    assert q.score > 8.0
    assert q.alarm.covered == 10 and not q.alarm.firing
    assert q.entropy == pytest.approx(math.log(10), abs=0.05)
    assert q.fd < 5.0  # held-out vs training features: nearly the same distribution


def test_one_repeated_digit_scores_one(evaluator, mnist):
    seven = mnist.images[mnist.labels == 7][:1].repeat(1000, 1, 1, 1)  # (1000, 1, 28, 28)
    q = evaluator.evaluate_images(seven)
    assert q.score == pytest.approx(1.0, abs=0.01)
    assert max(q.coverage) == 1.0 and q.alarm.covered == 1
    assert q.alarm.firing
    assert q.fd > 10 * evaluator.ceiling.fd


def test_noise_scores_low(evaluator):
    noise = torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    q = evaluator.evaluate_images(noise)
    assert q.score == pytest.approx(1.0, abs=0.01)  # no sample carries a label
    assert q.not_digit == 1.0 and sum(q.coverage) == 0.0
    assert not q.alarm.firing and not q.alarm.judged  # noise is "too early", never "collapse"
    assert "not digits yet" in q.alarm.message
    assert q.fd > 100


# --- "not a digit": the rejection rule ------------------------------------------------------------
def _non_digit_sets(mnist, n=300, seed=12345):
    """Images no digit looks like, made independently of the classifier's training negatives."""
    g = torch.Generator().manual_seed(seed)
    real = mnist.images[torch.randperm(len(mnist), generator=g)[:n]]
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    return {
        "uniform noise": torch.rand(n, 1, 28, 28, generator=g) * 2 - 1,
        "blank": torch.full((n, 1, 28, 28), -1.0),
        "white": torch.full((n, 1, 28, 28), 1.0),
        "shuffled pixels": real.reshape(n, -1)[:, torch.randperm(784, generator=g)].reshape(n, 1, 28, 28),
        "grey disc": torch.where((xx - 14) ** 2 + (yy - 14) ** 2 < 64, 0.2, -1.0).expand(n, 1, 28, 28),
    }


def test_classifier_rejects_noise_blank_and_shuffled_but_keeps_real_digits(evaluator, mnist):
    model = evaluator.reference.model
    held = mnist.images[evaluator.reference.heldout_idx]
    assert (~model.embed(held).is_digit).float().mean() <= 0.01  # at most 1 % of real held-out digits lost
    for kind, images in _non_digit_sets(mnist).items():
        rejected = (~model.embed(images).is_digit).float().mean().item()
        assert rejected >= 0.95, f"{kind}: only {rejected:.0%} rejected"


def test_rejected_samples_count_for_no_class_in_score_coverage_or_alarm(evaluator, mnist):
    """41 % noise beside real digits: the digits keep their classes, the noise fills none."""
    g = torch.Generator().manual_seed(3)
    held_idx = evaluator.reference.heldout_idx  # sorted by class: take a random 590 of them
    held = mnist.images[held_idx[torch.randperm(len(held_idx), generator=g)[:590].numpy()]]
    noise = torch.rand(410, 1, 28, 28, generator=g) * 2 - 1
    q = evaluator.evaluate_images(torch.cat([held, noise]))
    assert q.not_digit == pytest.approx(0.41, abs=0.01)
    assert sum(q.coverage) == pytest.approx(0.59, abs=0.01)
    assert q.alarm.judged and not q.alarm.firing and q.alarm.covered == 10  # the digits are diverse
    assert "41% of the samples are not digits yet" in q.alarm.message
    assert 1.0 < q.score < evaluator.ceiling.score  # noise lowers the score, never raises it
    # A single repeated digit plus noise: collapse is judged on the digits only.
    seven = mnist.images[mnist.labels == 7][:1].repeat(600, 1, 1, 1)
    collapsed = evaluator.evaluate_images(torch.cat([seven, noise[:400]]))
    assert collapsed.alarm.firing and collapsed.alarm.covered == 1


def test_alarm_waits_while_most_samples_are_not_digits():
    mostly_noise = np.array([0.04] * 10)  # 40 % digits, evenly spread; 60 % rejected
    alarm = collapse_alarm(mostly_noise)
    assert not alarm.firing and not alarm.judged and alarm.not_digit == pytest.approx(0.6)
    half = np.array([0.5] + [0.0] * 9)  # half the samples are one digit, half rejected
    assert collapse_alarm(half).firing and collapse_alarm(half).judged


def test_score_ignores_rejected_rows():
    confident = np.eye(10)[np.arange(100) % 10]
    junk = np.eye(10)[np.zeros(100, int)]  # "all zeros" on noise: must not count as class 0
    both = np.concatenate([confident, junk])
    keep = np.array([True] * 100 + [False] * 100)
    assert class_coverage(both, keep).tolist() == [0.05] * 10
    # the junk rows become uniform: they add no label, so the score is below the all-digit 10 ...
    assert classifier_score(both, keep) == pytest.approx(math.exp(0.5 * math.log(10)))
    assert classifier_score(both, keep) < classifier_score(both)  # ... and below junk counted as confident '0's


# --- classifier cache ----------------------------------------------------------------------------
def _small(mnist, n_per_class=40, offset=0):
    idx = torch.cat([torch.nonzero(mnist.labels == c).squeeze(1)[offset:offset + n_per_class] for c in range(10)])
    return Dataset("mnist5k", mnist.images[idx], mnist.labels[idx], "subset")


def test_classifier_cache_missing_stale_and_corrupt(mnist, tmp_path, monkeypatch):
    monkeypatch.setattr(clf, "train_classifier", lambda *a, **k: (clf.ReferenceCNN(10).eval(), 0.5))
    small = _small(mnist)
    first = clf.load_reference(small, directory=tmp_path)
    assert not first.from_cache
    again = clf.load_reference(small, directory=tmp_path)
    assert again.from_cache and again.key == first.key
    other = _small(mnist, offset=100)  # different images: the key changes, the cache is stale
    stale = clf.load_reference(other, directory=tmp_path)
    assert not stale.from_cache and "stale" in stale.note
    path = tmp_path / "classifier-mnist5k.pt"
    path.write_bytes(b"not a torch file")
    broken = clf.load_reference(other, directory=tmp_path)
    assert not broken.from_cache and "unreadable" in broken.note
    assert clf.load_reference(other, directory=tmp_path).from_cache  # rewritten properly


def test_each_ruler_has_its_own_cache_file(mnist, tmp_path, monkeypatch):
    monkeypatch.setattr(clf, "train_classifier", lambda *a, **k: (k["architecture"](10).eval(), 0.5))
    small = _small(mnist)
    a, b = clf.load_reference(small, directory=tmp_path), clf.load_reference(small, directory=tmp_path, ruler="B")
    assert sorted(f.name for f in tmp_path.glob("*.pt")) == ["classifier-mnist5k-B.pt", "classifier-mnist5k.pt"]
    assert a.key != b.key and isinstance(b.model, clf.JudgeCNN) and not isinstance(a.model, clf.JudgeCNN)
    again = clf.load_reference(small, directory=tmp_path, ruler="B")
    assert again.from_cache and isinstance(again.model, clf.JudgeCNN) and again.ruler == "B"
    assert clf.load_reference(small, directory=tmp_path).from_cache  # B's file did not overwrite A's


def test_the_two_rulers_are_independent_and_measure_fd_on_one_scale(mnist, evaluator, judge):
    """Ruler B is another network on another split; both measure FD with the real features' total variance
    scaled to FEATURE_TRACE, and ruler A's scale is its own (its FDs are what they always were)."""
    a, b = evaluator.reference, judge.reference
    assert type(a.model) is clf.ReferenceCNN and type(b.model) is clf.JudgeCNN
    assert set(a.heldout_idx.tolist()) != set(b.heldout_idx.tolist())  # another held-out split
    assert np.bincount(mnist.labels.numpy()[b.heldout_idx]).tolist() == [100] * 10
    assert b.heldout_accuracy >= 0.95
    for ev in (evaluator, judge):
        assert np.trace(ev.real_sigma) == pytest.approx(FEATURE_TRACE, rel=1e-6)
        assert ev.ceiling.score > 9 and ev.ceiling.fd < 5  # real held-out digits: near perfect under both
    assert evaluator.feature_scale == pytest.approx(1.0, abs=0.01)
    assert judge.feature_scale < 0.8  # B's raw features are larger: without the scale its FDs would be inflated
    noise = torch.rand(300, 1, 28, 28) * 2 - 1
    for ev in (evaluator, judge):  # both reject noise: score 1, FD far beyond real digits'
        q = ev.evaluate_images(noise)
        assert q.score == pytest.approx(1.0, abs=0.05) and q.not_digit > 0.9 and q.fd > 50 * ev.ceiling.fd


def test_two_callers_at_once_train_a_classifier_once_and_the_second_reads_it(mnist, tmp_path, monkeypatch):
    """A fresh machine: the presenter's run, a lab worker and the bench ask for the classifier together. The first
    trains it; the others wait on the lock file and read the weights it wrote (before, each trained its own)."""
    import threading
    import types
    from concurrent.futures import ThreadPoolExecutor

    training, release, waiting = threading.Event(), threading.Event(), threading.Event()
    calls = []

    def slow_training(*a, **k):
        calls.append(1)
        training.set()
        assert release.wait(60)
        return clf.ReferenceCNN(10).eval(), 0.5

    def sleep(seconds):  # the lock's poll: the second caller is waiting for the first
        waiting.set()
        time.sleep(seconds)

    monkeypatch.setattr(clf, "train_classifier", slow_training)
    monkeypatch.setattr(clf, "time", types.SimpleNamespace(monotonic=time.monotonic, perf_counter=time.perf_counter,
                                                           sleep=sleep))
    small = _small(mnist)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(clf.load_reference, small, directory=tmp_path)
        assert training.wait(60)
        second = pool.submit(clf.load_reference, small, directory=tmp_path)
        deadline = time.monotonic() + 60
        while not waiting.is_set() and len(calls) < 2 and time.monotonic() < deadline:
            waiting.wait(0.05)
        release.set()
        a, b = first.result(60), second.result(60)
    assert len(calls) == 1 and not a.from_cache and b.from_cache and b.key == a.key


def test_without_fcntl_windows_the_classifier_loads_and_caches_with_no_lock(mnist, tmp_path, monkeypatch):
    monkeypatch.setattr(clf, "train_classifier", lambda *a, **k: (clf.ReferenceCNN(10).eval(), 0.5))
    monkeypatch.setattr(clf, "fcntl", None)
    small = _small(mnist)
    assert not clf.load_reference(small, directory=tmp_path).from_cache
    assert clf.load_reference(small, directory=tmp_path).from_cache
    assert [f.name for f in tmp_path.iterdir()] == ["classifier-mnist5k.pt"]  # no lock file made


def test_classifier_cache_refuses_pickled_objects(mnist, tmp_path, monkeypatch):
    monkeypatch.setattr(clf, "train_classifier", lambda *a, **k: (clf.ReferenceCNN(10).eval(), 0.5))
    small = _small(mnist)
    key = clf.data_key(small.name, small.images, small.labels)
    torch.save({"key": key, "n_classes": 10, "heldout_accuracy": 1.0, "weights": {}, "evil": Config()},
               tmp_path / "classifier-mnist5k.pt")
    ref = clf.load_reference(small, directory=tmp_path)
    assert not ref.from_cache  # weights_only refused the Config object; retrained instead


def test_cache_dir_honours_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert clf.cache_dir() == tmp_path / "gan-live"


def test_stratified_split_holds_out_every_class(mnist):
    labels = mnist.labels.numpy()
    train, held = clf.stratified_split(labels)
    assert len(set(train) & set(held)) == 0 and len(train) + len(held) == len(labels)
    assert np.bincount(labels[held]).tolist() == [100] * 10


# --- the live monitor ----------------------------------------------------------------------------
def test_monitor_records_metrics_while_training(evaluator):
    from gan.engine.status import RunState
    from gan.engine.trainer import Trainer
    from gan.quality.monitor import MetricsMonitor

    trainer = Trainer(Config(model="mlp", width=16, batch_size=16, latent_dim=16, device="cpu"), name="t-monitor")
    monitor = MetricsMonitor(trainer, every=20, evaluator=evaluator, judge=None, n_samples=200, poll_s=0.01).start()
    try:
        # Step by hand, 20 at a time: the monitor skips boundaries a fast run crosses during an
        # evaluation (it never stalls training), so free-running steps would make the count racy.
        trainer.start(paused=True)
        assert trainer.wait_until(lambda t: t.state == RunState.PAUSED, timeout=60)
        assert monitor.wait_for_evaluations(1, timeout=60)  # step 0
        for k in (1, 2):
            trainer.step(20)
            assert trainer.wait_until(lambda t, k=k: t.step_count == 20 * k, timeout=60)
            assert monitor.wait_for_evaluations(k + 1, timeout=60)
        snap = monitor.snapshot()
        assert snap.state == "ready" and "held-out accuracy" in snap.message
        assert snap.rows.step.is_monotonic_increasing and snap.rows.step.iloc[0] == 0
        assert snap.latest is not None  # 40 steps of a tiny G: noise, no digit yet
        assert sum(snap.latest.coverage) + snap.latest.not_digit == pytest.approx(1.0)
        assert snap.rows.not_digit.iloc[-1] == snap.latest.not_digit
        assert snap.ceiling.score > 8
        assert snap.judge is None and snap.rows.score_b.isna().all()  # judge=None: ruler A only
    finally:
        monitor.stop()
        trainer.stop()
    assert not monitor.is_alive()


def test_monitor_scores_with_the_independent_judge_too(evaluator, judge):
    from gan.engine.status import RunState
    from gan.engine.trainer import Trainer
    from gan.quality.monitor import JUDGE_EVERY, MetricsMonitor

    trainer = Trainer(Config(model="mlp", width=16, batch_size=16, latent_dim=16, device="cpu"), name="t-judge")
    monitor = MetricsMonitor(trainer, every=20, evaluator=evaluator, judge=judge, n_samples=200, poll_s=0.01).start()
    try:
        trainer.start(paused=True)
        assert trainer.wait_until(lambda t: t.state == RunState.PAUSED, timeout=60)
        assert monitor.wait_for_evaluations(1, timeout=60)
        snap = monitor.snapshot()
        G = trainer.generator_copy()
        expect_a, expect_b = evaluator.evaluate_generator(G, 16), judge.evaluate_generator(G, 16)
        row = snap.rows.iloc[-1]
        assert row.score == pytest.approx(expect_a.score) and row.fd == pytest.approx(expect_a.fd)
        assert row.score_b == pytest.approx(expect_b.score) and row.fd_b == pytest.approx(expect_b.fd)
        assert row.fd_b != pytest.approx(row.fd)  # two rulers, two measurements
        assert snap.judge.fd == pytest.approx(expect_b.fd) and snap.judge_ceiling is judge.ceiling
        for k in range(1, JUDGE_EVERY + 1):  # then ruler B scores every JUDGE_EVERY-th evaluation only
            trainer.step(20)
            assert trainer.wait_until(lambda t, k=k: t.step_count == 20 * k, timeout=60)
            assert monitor.wait_for_evaluations(k + 1, timeout=60)
        rows = monitor.snapshot().rows
        assert rows.score_b.notna().tolist() == [True] + [False] * (JUDGE_EVERY - 1) + [True]
        assert monitor.snapshot().judge.fd == pytest.approx(rows.fd_b.iloc[-1])
    finally:
        monitor.stop()
        trainer.stop()


def test_monitor_history_is_bounded(evaluator):
    from gan.quality.monitor import MetricsMonitor

    class FakeTrainer:  # only what the monitor reads; a real G so the metric runs for real
        config = Config(model="mlp", width=16, latent_dim=16)
        data = None
        step_count = 0

        def __init__(self):
            from gan.core.models import build_models

            self.G, _ = build_models("mlp", 16, 16)

        def generator_copy(self):
            return self.G

        def is_alive(self):
            return True

    t = FakeTrainer()
    m = MetricsMonitor(t, every=1, evaluator=evaluator, max_points=8, n_samples=50)
    for step in range(30):
        t.step_count = step
        m._evaluate_once()
    rows = m.snapshot().rows
    assert len(rows) <= 8 and rows.step.iloc[-1] == 29


@pytest.mark.parametrize("kind", ["unresponsive", "died"])
def test_a_busy_training_process_skips_a_point_but_a_dead_one_ends_the_monitor(evaluator, kind):
    """generator_copy of a run in the worker process asks the worker for G's weights: a busy worker that
    misses the timeout costs one point, tried again at the next poll; a dead one ends the monitor, saying why."""
    from gan.engine.status import FailureKind
    from gan.quality.monitor import FAILED, MetricsMonitor
    from gan.worker.client import WorkerError

    failure = FailureKind.WORKER_UNRESPONSIVE if kind == "unresponsive" else FailureKind.WORKER_DIED

    class OnceSlowTrainer:  # only what the monitor reads; a real G so the metric runs for real
        config = Config(model="mlp", width=16, latent_dim=16)
        step_count, state, calls = 5, "running", 0

        def __init__(self):
            from gan.core.models import build_models

            self.G, _ = build_models("mlp", 16, 16)

        def generator_copy(self):
            self.calls += 1
            if self.calls == 1:
                raise WorkerError(failure, "the training worker did not answer GeneratorWeights within 10 s")
            return self.G

        def has_models(self):
            return True

        def is_alive(self):
            return True

    t = OnceSlowTrainer()
    m = MetricsMonitor(t, every=100, evaluator=evaluator, n_samples=50, poll_s=0.01, judge=None).start()
    try:
        if kind == "unresponsive":
            assert m.wait_for_evaluations(1, timeout=60), m.snapshot().message
            assert m.skipped == 1 and t.calls == 2 and m.snapshot().state != FAILED
            assert m.snapshot().rows.step.tolist() == [5]
        else:
            assert not m.wait_for_evaluations(1, timeout=60)  # returns as soon as the monitor has failed
            snap = m.snapshot()
            assert snap.state == FAILED and "did not answer" in snap.message and t.calls == 1
    finally:
        m.stop()


# --- chart specs ----------------------------------------------------------------------------------
def test_chart_specs_are_pure_and_show_the_ceiling():
    rows = [{"step": 0, "score": 1.0, "fd": 500.0, "entropy": 0.5}, {"step": 500, "score": 6.0, "fd": 20.0,
                                                                      "entropy": 2.2}]
    spec = metrics_chart(rows, {"score": 8.9}, "score").to_dict()
    assert len(spec["layer"]) == 2  # the line and the real held-out rule
    empty = metrics_chart([], None, "fd").to_dict()
    assert len(empty["layer"]) == 1
    collapsed = np.array([0.95, 0.05] + [0.0] * 8)
    bars = coverage_chart(collapsed, np.full(10, 0.1), collapse_alarm(collapsed)).to_dict()
    assert bars["layer"][0]["mark"]["color"] == "#d62728"


# --- presets --------------------------------------------------------------------------------------
def test_presets_build_valid_configs():
    validate_presets()
    assert {"default", "textbook"} <= set(PRESETS)
    assert preset_config("default") == Config()
    tb = preset_config("textbook")
    assert (tb.model, tb.lr_g, tb.lr_d, tb.beta1, tb.batch_size) == ("mlp", 2e-4, 2e-4, 0.5, 64)
    for p in PRESETS.values():
        assert p.description.strip().endswith(".") and p.label


def test_a_monitor_started_before_its_run_still_gets_the_judge(evaluator, judge):
    """The bench starts the monitor before the run (its classifier loads first): ruler B must wait for the
    run's dataset, not fail on a run that has none yet and give the judge up for good."""
    from gan.engine.status import RunState
    from gan.engine.trainer import Trainer
    from gan.quality.monitor import MetricsMonitor

    assert judge is not None  # the fixture puts ruler B in the cache that the shared judge loads from
    trainer = Trainer(Config(model="mlp", width=16, batch_size=16, latent_dim=16, device="cpu"), name="t-early")
    monitor = MetricsMonitor(trainer, every=20, evaluator=evaluator, judge=True, n_samples=200, poll_s=0.01).start()
    try:
        trainer.start(paused=True)
        assert trainer.wait_until(lambda t: t.state == RunState.PAUSED, timeout=60)
        assert monitor.wait_for_evaluations(1, timeout=60)  # ruler A at step 0; ruler B loads after it
        for k in (1, 2):
            trainer.step(20)
            assert trainer.wait_until(lambda t, k=k: t.step_count == 20 * k, timeout=60)
            assert monitor.wait_for_evaluations(k + 1, timeout=60)
            if monitor.snapshot().judge is not None:
                break
        snap = monitor.snapshot()
        assert snap.judge is not None, snap.message
        assert snap.rows.score_b.notna().any() and snap.judge_ceiling.score > 8
    finally:
        monitor.stop()
        trainer.stop()


@pytest.mark.parametrize("dataset, title", [
    ("mnist5k", "Quality, scored by a reference classifier trained on real digits"),
    ("fashion", "Quality, scored by a reference classifier trained on real clothes"),
    ("own", "Quality of your images' GAN: Fréchet distance against them")])
def test_the_quality_heading_names_the_runs_data_before_training_starts(dataset, title):
    """The panel's heading comes from the run's config from the first frame on: an own-images run once read
    "trained on real digits" until its first score."""
    from gan.engine.trainer import Trainer
    from gan.quality.monitor import MetricsMonitor
    from gan.viz.qualityview import QualityView

    config = Config(dataset=dataset, data_path="doodles.zip" if dataset == "own" else "")
    trainer = Trainer(config, name=f"heading-{dataset}")  # not started: nothing is loaded, nothing scored
    frame = QualityView().frame(trainer.name, MetricsMonitor(trainer))
    assert frame.charts is None and frame.message.startswith("The first score comes at step")
    assert frame.title == title


def _stub_monitor(dataset: str):
    """A monitor of a run on `dataset` with three scored steps (100, 200, 300): healthy, collapsed, healthy; the
    judge (ruler B) scored step 100 only. Only what QualityView reads."""
    from types import SimpleNamespace

    import pandas as pd

    from gan.core.data import data_noun
    from gan.quality.metrics import Quality
    from gan.quality.monitor import ROW_COLUMNS, MonitorSnapshot

    noun = data_noun(dataset)
    spread, one = tuple([0.1] * 10), tuple([0.9] + [0.01] * 9)

    def q(score, cov):
        alarm = collapse_alarm(cov, noun=noun)
        return Quality(score, 50.0, cov, alarm.entropy, alarm, 64)

    rows = pd.DataFrame([(100, 5.0, 80.0, 2.3, 10, False, 1.0, 0.0, 4.5, 90.0),
                         (200, 1.5, 120.0, 0.5, 1, True, 1.0, 0.0, None, None),
                         (300, 6.0, 60.0, 2.3, 10, False, 1.0, 0.2, None, None)], columns=list(ROW_COLUMNS))
    snap = MonitorSnapshot("ready", "Reference classifier (cached)", rows, q(6.0, spread), q(9.0, spread), {},
                           q(4.5, spread), q(9.5, spread), {100: spread, 200: one, 300: spread})
    return SimpleNamespace(snapshot=lambda: snap, every=100, evaluations=3, state="ready",
                           trainer=SimpleNamespace(dataset_name=dataset))


@pytest.mark.parametrize("dataset, noun", [("mnist5k", "digits"), ("fashion", "clothes")])
def test_the_quality_panel_replays_every_number_of_the_step_and_names_the_data(dataset, noun):
    """Issue 30: during Replay the caption, the alarm and the coverage bars are the replayed step's (they stayed
    live), the judge's score says which step it is from, and clothes are never called digits."""
    import json

    from gan.viz.qualityview import QualityView

    monitor = _stub_monitor(dataset)
    live = QualityView().frame("run", monitor)
    assert live.message.startswith(f"Classifier score 6.00 at step 300 (real held-out {noun}: 9.00)")
    assert f"20% not {noun} yet" in live.message and "ruler B) at step 100: score 4.50" in live.message
    assert not live.alarm_firing and live.alarm.startswith("No collapse: 10 of 10 classes")

    past = QualityView().frame("run", monitor, cursor=250)  # Replay at 250: the evaluation of step 200
    assert past.message.startswith(f"Replay at step 200: classifier score 1.50 (real held-out {noun}: 9.00)")
    assert f"every sample is {'a digit' if noun == 'digits' else 'a piece of clothing'}" in past.message
    assert past.alarm_firing and past.alarm.startswith("At step 200: Mode collapse: only 1 of 10 classes")
    assert f"the same few {noun}, most often class 0" in past.alarm
    bars = json.loads(past.charts)["rows"][0][1]["data"]["bars"]["cols"]["share"]
    assert bars[0] == pytest.approx(0.9)  # the coverage of step 200, not the live one
    assert "digits" not in (live.message + past.message + past.alarm) or noun == "digits"

    early = QualityView().frame("run", monitor, cursor=50)
    assert early.message == "Replay at step 50: no score yet (the first is at step 100)."
