"""Live quality metrics for a running Trainer, computed in the monitor's own thread.
Must not slow the training step: it copies G at a step boundary and scores in its own thread.

Every ``every`` steps the monitor takes ``trainer.generator_copy()`` (an eval-mode CPU copy of G,
taken at a step boundary, so training only waits for the copy — milliseconds), scores
SAMPLE_COUNT samples from fixed noise with the reference classifier (ruler A, charted) and the independent
judge (ruler B, in the details; see gan/quality/classifier.py) and appends one row. The
training thread never waits for a metric. The history is bounded (``max_points`` rows; older rows
are thinned to every other one), so a run of any length costs the same to draw.

Readers call ``snapshot()`` from any thread; it returns plain copies.
"""

import threading
import time
import traceback
from dataclasses import dataclass, field

import pandas as pd

from gan.engine.status import FailureKind
from gan.engine.trainer import cached_dataset
from gan.quality.classifier import has_classes
from gan.quality.metrics import SAMPLE_COUNT, Evaluator, Quality
from gan.worker.client import WorkerError

ROW_COLUMNS = ("step", "score", "fd", "entropy", "covered", "collapse", "eval_ms", "not_digit", "score_b", "fd_b")
SAVED_COLUMNS = ("step", "score", "fd", "entropy", "covered", "not_digit")  # what a snapshot keeps
PREPARING, READY, FAILED, STOPPED = "preparing", "ready", "failed", "stopped"
# Ruler B scores every JUDGE_EVERY-th evaluation (the first included): its network costs ~5x ruler A's, the
# monitor shares the server's CPU with the viewers, and a second opinion every 2,000 steps is enough.
JUDGE_EVERY = 4


_evaluators: dict[tuple, Evaluator] = {}
_evaluators_lock = threading.Lock()


def shared_evaluator(dataset, n_samples: int = SAMPLE_COUNT, ruler: str = "A") -> Evaluator:
    """One Evaluator per dataset, ruler and process: a restart or a second run does not reload or retrain the
    classifier, and two monitors starting together never train it twice at once."""
    key = (dataset.name, len(dataset), n_samples, ruler)
    with _evaluators_lock:
        if key not in _evaluators:
            _evaluators[key] = Evaluator.for_dataset(dataset, n_samples=n_samples, ruler=ruler)
        return _evaluators[key]


@dataclass
class MonitorSnapshot:
    state: str  # preparing (classifier loading/training) | ready | failed | stopped
    message: str  # what the state means, for a caption
    rows: pd.DataFrame  # ROW_COLUMNS, one row per evaluation, oldest first
    latest: Quality | None  # the newest evaluation (coverage, alarm)
    ceiling: Quality | None  # the same metrics on real held-out images
    info: dict  # classifier facts: held-out accuracy, cache, dataset
    judge: Quality | None = None  # the newest evaluation by ruler B, the independent judge (None until ready)
    judge_ceiling: Quality | None = None  # real held-out images under ruler B
    coverages: dict = field(default_factory=dict)  # step -> (C,) class shares of that evaluation (Replay)

    @property
    def ceiling_row(self) -> dict | None:
        return None if self.ceiling is None else self.ceiling.as_row()


def quality_columns(rows: pd.DataFrame) -> dict | None:
    """The quality rows as plain lists per SAVED_COLUMNS (None when there are none): what a checkpoint
    stores under "metrics" and gan.workshop.snapshots.metrics_frame reads back. Unknown values become NaN."""
    if rows is None or rows.empty:
        return None
    return {c: [float(v) if v is not None else float("nan") for v in rows[c]] for c in SAVED_COLUMNS}


class MetricsMonitor:
    def __init__(self, trainer, every: int = 500, *, evaluator: Evaluator | None = None, max_points: int = 400,
                 n_samples: int = SAMPLE_COUNT, poll_s: float = 0.25, seed: int = 0, initial_rows=(),
                 on_rows=None, judge: Evaluator | None | bool = True):
        if every < 1:
            raise ValueError("every must be at least 1 step")
        self.trainer = trainer
        self.every = int(every)
        self.max_points = max(4, int(max_points))
        self.n_samples = n_samples
        self.poll_s = poll_s
        self.seed = seed  # fixed noise for every evaluation: the curve moves because G moves, not z
        self._evaluator = evaluator
        # Ruler B: an Evaluator, True (load the shared one after ruler A's first point) or None/False (none,
        # e.g. tests that only need ruler A).
        self._judge: Evaluator | None = judge if isinstance(judge, Evaluator) else None
        self._want_judge = judge is True
        self._latest_judge: Quality | None = None
        self._judged = 0  # evaluations since ruler B was ready (it scores every JUDGE_EVERY-th)
        self._lock = threading.Lock()
        # A continued run keeps its quality curve; rows saved before a column existed get None for it.
        self._rows: list[tuple] = [(tuple(r) + (None,) * len(ROW_COLUMNS))[:len(ROW_COLUMNS)] for r in initial_rows]
        self.on_rows = on_rows  # called with all rows after each evaluation (autosave: quality.json)
        self._latest: Quality | None = None
        self._coverages: dict[int, tuple] = {}  # step -> class shares, for the steps still in _rows (Replay)
        self._state, self._message = PREPARING, "Preparing the reference classifier"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.evaluations = 0
        self.skipped = 0  # points skipped because the training process did not answer in time

    # --- control -------------------------------------------------------------------------------
    def start(self) -> "MetricsMonitor":
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name="gan-metrics", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def state(self) -> str:
        """preparing | ready | failed | stopped (see MonitorSnapshot)."""
        return self._state

    # --- reading -------------------------------------------------------------------------------
    def snapshot(self) -> MonitorSnapshot:
        with self._lock:
            rows = list(self._rows)
            latest, state, message, judge = self._latest, self._state, self._message, self._latest_judge
            coverages = dict(self._coverages)
        ev, jd = self._evaluator, self._judge
        return MonitorSnapshot(state, message, pd.DataFrame(rows, columns=list(ROW_COLUMNS)), latest,
                               None if ev is None else ev.ceiling, {} if ev is None else dict(ev.info),
                               judge, None if jd is None else jd.ceiling, coverages)

    def wait_for_evaluations(self, n: int, timeout: float = 30.0) -> bool:
        """Poll until at least n evaluations are recorded; for tests and the bench."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluations >= n or self._state == FAILED:
                break
            time.sleep(0.01)
        return self.evaluations >= n

    # --- the monitor thread --------------------------------------------------------------------
    def _main(self) -> None:
        try:
            if not self._prepare():
                return
            self._loop()
            self._set_state(STOPPED, "Stopped")
        except Exception as exc:  # noqa: BLE001 — never a silent dead thread: the dashboard shows why
            traceback.print_exc()
            self._set_state(FAILED, f"Quality scores unavailable: {type(exc).__name__}: {exc}")

    def _set_state(self, state: str, message: str) -> None:
        with self._lock:
            self._state, self._message = state, message

    def _prepare(self) -> bool:
        """Load ruler A; False when there is nothing to score (stopped meanwhile, or images without labels)."""
        if self._evaluator is None:
            # The trainer loads its dataset in its own thread; wait for it instead of loading twice.
            while self.trainer.data is None and not self._stop.is_set():
                if self.trainer.state in ("failed", "stopped"):
                    raise RuntimeError("the run ended before its dataset was loaded")
                self._stop.wait(self.poll_s)
            if self._stop.is_set():
                return False

            if not has_classes(self.trainer.data):  # your own images (gan.core.own_images): no classes

                digits = cached_dataset("mnist5k", self.trainer.config.data_dir, "cpu")
                self._evaluator = Evaluator.for_own_images(self.trainer.data, digits, self.n_samples)
                self._want_judge = False  # ruler B's score means no more than A's here
                self._set_state(READY, "Fréchet distance against your images (features of the digit "
                                       "network; it cannot score your images)")
                return True
            self._evaluator = shared_evaluator(self.trainer.data, self.n_samples)
        info = self._evaluator.info
        how = "cached" if info.get("from_cache") else f"trained in {info.get('train_seconds', 0):.0f} s"
        self._set_state(READY, f"Reference classifier ({how}): {info.get('heldout_accuracy', 0):.1%} "
                               f"held-out accuracy on {info.get('dataset')}")
        return True

    def _loop(self) -> None:
        last_step = None
        while not self._stop.is_set():
            step = self.trainer.step_count
            due = last_step is None or step >= (last_step // self.every + 1) * self.every
            if due and self.trainer.has_models():
                try:
                    self._evaluate_once()
                except WorkerError as exc:
                    if exc.kind != FailureKind.WORKER_UNRESPONSIVE:
                        raise
                    # A busy training process is not a dead one: this point is skipped and tried again
                    # at the next poll; the run's page already says the process is not answering.
                    self.skipped += 1
                    self._stop.wait(self.poll_s)
                    continue
                last_step = step
                continue
            # Ruler B after A's first point (so the chart's first point is not delayed by it), and so once the
            # run's models, hence its dataset, exist: a monitor started before its run must not give B up.
            if self._want_judge and self._judge is None and last_step is not None:  # a failure costs only B
                self._want_judge = False
                try:
                    self._judge = shared_evaluator(self.trainer.data, self.n_samples, ruler="B")
                except Exception:  # noqa: BLE001 — the chart and the alarm go on with ruler A alone
                    traceback.print_exc()
                continue
            if not self.trainer.is_alive() and last_step == step:
                return  # the run is over and its last state is measured
            self._stop.wait(self.poll_s)

    def _evaluate_once(self) -> None:
        t0 = time.perf_counter()
        G = self.trainer.generator_copy()  # held at a step boundary; training resumes right after
        step = self.trainer.step_count
        q = self._evaluator.evaluate_generator(G, self.trainer.config.latent_dim, seed=self.seed)
        judged = self._judge is not None and self._judged % JUDGE_EVERY == 0
        j = self._judge.evaluate_generator(G, self.trainer.config.latent_dim, seed=self.seed) if judged else None
        if self._judge is not None:
            self._judged += 1
        ms = (time.perf_counter() - t0) * 1000
        row = (step, q.score, q.fd, q.entropy, q.alarm.covered, q.alarm.firing, ms, q.not_digit,
               None if j is None else j.score, None if j is None else j.fd)
        with self._lock:
            if self._rows and self._rows[-1][0] == step:
                self._rows[-1] = row  # paused run: re-measured the same step
            else:
                self._rows.append(row)
            if len(self._rows) > self.max_points:  # thin the older half, keep the newest half intact
                half = len(self._rows) // 2
                self._rows = self._rows[:half:2] + self._rows[half:]
                kept = {r[0] for r in self._rows}
                self._coverages = {k: v for k, v in self._coverages.items() if k in kept}
            self._coverages[step] = q.coverage
            self._latest = q
            if j is not None:
                self._latest_judge = j
            rows = list(self._rows)
        self.evaluations += 1
        if self.on_rows is not None:
            self.on_rows(rows)
