"""The coach: names what a run is doing in one sentence, with its evidence and one suggested action.
Must not train, draw or keep state: pure functions of the numbers a run already records, so the trainer,
the CLI, the pages and the tests get the same reading from the same numbers (the one memo, RealImages.of,
keeps a pure function of a dataset's images from being computed again at every sample point).

The trainer asks at every sample point (each ``sample_every`` steps) with the latest rows of its history
and the grid it just drew; the answer is a gan.core.diagnosis.Diagnosis, carried in RunStatus and marked
on the loss chart when it changes. The rules, first match wins, each tied to a formula of the Theory page:

1. Diverged — a loss became NaN/inf (the trainer reports it; it has paused and rolled back).
2. G's gradient vanishes — every G loss pushes the fake logit l with a slope that depends only on
   p = D(G(z)) (LossSpec.g_slope): BCE's non-saturating −ln p gives 1 − p, the minimax ln(1 − p) gives p,
   MSE's (p − 1)² gives 2p(1 − p)². When D rejects the fakes (p → 0) BCE's slope goes to 1 but the other
   two go to 0: G stops learning. Fires when the active loss's slope is under VANISHING_RATIO of BCE's.
3. Mode collapse — the fixed-noise samples look alike: their mean pairwise correlation is at least the
   run's threshold, calibrated on the run's OWN real images (RealImages.of: 64 random real images of that
   dataset, + COLLAPSE_MARGIN). On MNIST that is 0.29 + 0.31 = 0.60, above what 64 real digits of ONE
   class give (at most 0.59, ones); Fashion-MNIST's real images are more alike (0.34: the alarm from 0.65),
   your own may be far more so.
   It comes before rule 4 because a collapsed G is often beaten by D too, and the grid is what people see.
4. D is winning — D(real) ≥ WIN_REAL and D(fake) ≤ WIN_FAKE over the window: D separates the two almost
   perfectly, far from the equilibrium D(x) = 0.5, and G's loss climbs (BCE: −ln D(G(z)) ≥ 2.3).
5. Near equilibrium — both losses within EQUILIBRIUM_TOLERANCE of the active loss's equilibrium values
   (BCE ln 2 ≈ 0.693, MSE 0.25) for EQUILIBRIUM_STEPS steps: D can no longer tell real from fake.
6. Learning — none of the above.

A reading follows the active loss at once: the trainer reads again right after a loss switch (not only at the
next sample point), and a window never mixes two losses. Its words name what the run draws (RealImages.noun:
digits, clothes, images), never "digits" on a set that has none.
"""

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gan.core.data import data_noun, to_uint8
from gan.core.diagnosis import Condition, Diagnosis
from gan.core.live import Knob, LiveChange
from gan.core.losses import format_equilibrium, get_loss
from gan.core.step import Row

# Rows are the History's: (step, time, loss_d, loss_g, d_real, d_fake, lr_g, lr_d, loss, ...).

WINDOW = 200  # steps averaged for D(real), D(fake) and the losses: one batch of 32 is too noisy to judge
MIN_STEPS = 100  # fewer steps than this since the start or the last loss switch: too early to tell
ROWS_NEEDED = 500  # the most rows any rule reads (EQUILIBRIUM_STEPS): what the trainer passes in
VANISHING_RATIO = 0.1  # G's slope under a tenth of BCE's on the same D(G(z)): "vanishing"
WIN_REAL, WIN_FAKE = 0.9, 0.1  # D(real) above 0.9 and D(fake) below 0.1: D wins (equilibrium: both 0.5)
COLLAPSE_MARGIN = 0.31  # the alarm: samples this much more alike than the dataset's own real images (MNIST: 0.60)
COLLAPSE_CEILING = 0.95  # ... but never above this: 64 copies of one image (1.0) always count, whatever the data
CALIBRATION_IMAGES, CALIBRATION_DRAWS = 64, 8  # a grid's worth of real images, averaged over 8 seeded draws
COLLAPSE_MIN_STEP = 1000  # an untrained G draws 64 near-identical blobs: judge likeness after this step
EQUILIBRIUM_TOLERANCE = 0.10  # within 10 % of the equilibrium value (0.1 absolute where it is 0: hinge G)
EQUILIBRIUM_STEPS = 500  # ... for this many steps, in 50-step means (one step's loss swings far more)
EQUILIBRIUM_CHUNK = 50


# The loss chart marks each alarm where it starts (event kind "coach", detail the Condition's value).
MARKER_LABELS = {Condition.D_WINNING: "D wins", Condition.VANISHING_GRADIENT: "G's gradient vanishes",
                 Condition.MODE_COLLAPSE: "mode collapse", Condition.DIVERGED: "NaN"}
MARK_AGAIN_AFTER = 1000  # steps before the same alarm is marked again (an alarm near its threshold flickers)


def marker_label(detail: str) -> str:
    """The chart's words for a coach event's detail (a Condition value)."""
    try:
        return MARKER_LABELS.get(Condition(detail), str(detail))
    except ValueError:
        return str(detail)


def grid_similarity(images_uint8: np.ndarray) -> float:
    """Mean pairwise Pearson correlation of the images (N, 28, 28): 1 when all are the same image.

    64 random real digits give 0.30 (at most 0.34 over 200 draws); 64 real digits of ONE class at
    most 0.59 (ones). Above 0.7 the grid is nearly one image repeated.
    """
    x = images_uint8.reshape(len(images_uint8), -1).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-9
    c = x @ x.T
    n = len(x)
    return float((c.sum() - np.trace(c)) / (n * (n - 1)))


@dataclass(frozen=True)
class RealImages:
    """What a run trains on, as the coach reads it: the noun it says and how alike its real images are.

    The mode-collapse threshold is placed relative to the dataset's own real images: a grid of Fashion-MNIST
    or of your doodles is more alike than one of digits, and a fixed MNIST number would cry wolf there.
    """

    noun: str  # "digits", "clothes", "images" (data_noun)
    similarity: float  # mean pairwise correlation of 64 random real images of the dataset (grid_similarity)

    @property
    def collapse_threshold(self) -> float:
        return min(self.similarity + COLLAPSE_MARGIN, COLLAPSE_CEILING)

    @classmethod
    def of(cls, dataset) -> "RealImages":
        """The calibration of a gan.core.data.Dataset: computed once per dataset (name, source, size) and
        kept for the process, since the trainer asks at every sample point and every run of a room shares it."""
        key = (dataset.name, dataset.source, len(dataset))
        with _calibration_lock:
            found = _calibrated.get(key)
        if found is None:

            rng = np.random.default_rng(0)  # seeded: the same threshold for the same data, run after run
            n = min(CALIBRATION_IMAGES, len(dataset))
            draws = [to_uint8(dataset.images[np.sort(rng.choice(len(dataset), n, replace=False))].cpu())
                     for _ in range(CALIBRATION_DRAWS)]
            found = cls(data_noun(dataset.name), float(np.mean([grid_similarity(d) for d in draws])))
            with _calibration_lock:
                _calibrated[key] = found
        return found


# MNIST measured the same way (RealImages.of(mnist5k)): what a reading with no dataset at hand (a replay of a
# recorded MNIST run, the preset checks) uses, so it reads as the trainer did; its alarm is at 0.60, as before.
MNIST = RealImages("digits", 0.294)
_calibrated: dict[tuple, RealImages] = {}  # (name, source, size) -> RealImages: a memo of RealImages.of
_calibration_lock = threading.Lock()


def _since_switch(rows: Sequence[Row]) -> list[Row]:
    """The trailing rows that share the last row's loss: a window never mixes two losses."""
    loss = rows[-1].loss
    k = len(rows)
    while k > 0 and rows[k - 1].loss == loss:
        k -= 1
    return list(rows[k:])


def _fmt(x: float) -> str:
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.0f}"


def _weaken_d(d_steps: int, lr_d: float) -> tuple[str, tuple]:
    """Advice that weakens D: one D step per G step first (when it takes more), else a 10x lower rate."""
    if d_steps > 1:
        return f"give D one step per G step (now {d_steps})", (LiveChange(Knob.d_steps, 1),)
    return f"lower D's learning rate to {lr_d / 10:.1e}", (LiveChange(Knob.lr_d, lr_d / 10),)


def diagnose(rows: Sequence[Row], *, d_steps: int = 1, grid: np.ndarray | None = None,
             real: RealImages = MNIST) -> Diagnosis:
    """Read the latest History rows (oldest first, full resolution; ROWS_NEEDED of them suffice) and the
    latest fixed-noise grid (64, 28, 28) uint8, if any, of a run on ``real`` (RealImages.of its dataset).
    Never raises on a short or non-finite history."""
    if not len(rows):
        return Diagnosis(Condition.WARMING_UP, 0, "Too early to tell", "no steps yet")
    step = int(rows[-1].step)
    run = _since_switch(rows)
    spec = get_loss(run[-1].loss)
    window = np.array([(r.loss_d, r.loss_g, r.d_real, r.d_fake) for r in run[-WINDOW:]], np.float64)  # (n, 4)
    window = window[np.isfinite(window).all(axis=1)]
    if len(window) < MIN_STEPS:
        if len(run) == len(rows):
            since = "the start"
        else:  # the new loss's own equilibrium: what its numbers will be read against from now on
            since = f"the switch to {spec.label} ({format_equilibrium(spec)})"
        steps = f"{len(run)} step" + ("" if len(run) == 1 else "s")
        return Diagnosis(Condition.WARMING_UP, step, "Too early to tell", f"{steps} since {since}")
    loss_d, loss_g, d_real, d_fake = window.mean(axis=0)
    eq_d, eq_g = spec.equilibrium_d, spec.equilibrium_g
    g_eq = "" if eq_g is None else f" (equilibrium {eq_g:.3g})"
    d_eq = "" if eq_d is None else f" (equilibrium {eq_d:.3g})"
    outputs = f"D(real) {d_real:.2f}, D(fake) {d_fake:.2f}"

    # 2. G's gradient vanishes: the active loss's slope against BCE's, per step, averaged over the window.
    bce = get_loss("bce")
    slope = float(np.mean([spec.g_slope(p) for p in window[:, 3]]))
    bce_slope = float(np.mean([bce.g_slope(p) for p in window[:, 3]]))
    if slope < VANISHING_RATIO * bce_slope:
        return Diagnosis(
            Condition.VANISHING_GRADIENT, step, f"G's gradient is vanishing ({spec.label} saturates)",
            f"D(fake) {d_fake:.2f}, so {spec.label}'s push on G is {slope:.3f} per sample where BCE's would be "
            f"{bce_slope:.2f}", "switch to BCE (non-saturating)", (LiveChange(Knob.loss, "bce"),))

    # 3. Mode collapse: the samples of the fixed noise look alike (before "D is winning": a collapsed G
    # is often beaten too, as in the mode_collapse preset, and the grid is what the room sees).
    if grid is not None and len(grid) > 1 and step >= COLLAPSE_MIN_STEP:
        similarity = grid_similarity(grid)
        if similarity >= real.collapse_threshold:
            advice, changes = _weaken_d(d_steps, float(run[-1].lr_d))
            return Diagnosis(Condition.MODE_COLLAPSE, step, "Mode collapse",
                             f"the {len(grid)} samples look alike: similarity {similarity:.2f} (real {real.noun} "
                             f"~{real.similarity:.2f}; the alarm from {real.collapse_threshold:.2f})",
                             f"try to {advice}", changes)

    # 4. D is winning.
    if d_real >= WIN_REAL and d_fake <= WIN_FAKE:
        advice, changes = _weaken_d(d_steps, float(run[-1].lr_d))
        return Diagnosis(Condition.D_WINNING, step, "D is winning",
                         f"{outputs}, G's loss {_fmt(loss_g)}{g_eq}", f"try to {advice}", changes)

    # 5. Near equilibrium: both losses' 50-step means within tolerance for EQUILIBRIUM_STEPS steps.
    if eq_d is not None and eq_g is not None and len(run) >= EQUILIBRIUM_STEPS:
        recent = np.array([(r.loss_d, r.loss_g) for r in run[-EQUILIBRIUM_STEPS:]], np.float64)
        means = recent.reshape(-1, EQUILIBRIUM_CHUNK, 2).mean(axis=1)  # (10, 2)
        tol = np.array([EQUILIBRIUM_TOLERANCE * (abs(e) or 1.0) for e in (eq_d, eq_g)])
        if np.all(np.abs(means - np.array([eq_d, eq_g])) <= tol):
            return Diagnosis(Condition.NEAR_EQUILIBRIUM, step, "Near equilibrium",
                             f"both losses within {EQUILIBRIUM_TOLERANCE:.0%} of their equilibrium values "
                             f"(D {eq_d:.3g}, G {eq_g:.3g}) for {EQUILIBRIUM_STEPS} steps; {outputs}")

    return Diagnosis(Condition.LEARNING, step, "Learning",
                     f"{outputs}; D's loss {_fmt(loss_d)}{d_eq}, G's {_fmt(loss_g)}{g_eq}")


def diverged(step: int, lr_g: float, lr_d: float, loss_d: float, loss_g: float) -> Diagnosis:
    """1. The trainer's non-finite pause, as the coach says it: halve both rates, then Resume."""
    def show(x: float) -> str:
        return "NaN" if math.isnan(x) else ("inf" if math.isinf(x) else _fmt(x))

    return Diagnosis(Condition.DIVERGED, step, "Diverged — paused",
                     f"D's loss {show(loss_d)}, G's {show(loss_g)} at step {step:,}; the weights went back to the "
                     f"last sample point", f"halve both learning rates (G {lr_g / 2:.1e}, D {lr_d / 2:.1e}), then "
                     "Resume", (LiveChange(Knob.lr_g, lr_g / 2), LiveChange(Knob.lr_d, lr_d / 2)))


def replay(rows: Sequence[Row], grids: Sequence, *, every: int = 100, d_steps: int = 1,
           real: RealImages = MNIST) -> list[Diagnosis]:
    """The coach's readings over a recorded run, as the trainer made them: at every ``every``-th step, from
    the rows up to it and the latest grid at or before it. ``grids``: (step, images) pairs or SampleGrids,
    in step order. For tests, the preset checks and looking back at a saved run."""
    steps = np.array([r.step for r in rows])
    pairs = [(g.step, g.images) if hasattr(g, "images") else g for g in grids]
    grid_steps = np.array([s for s, _ in pairs])
    out = []
    for s in range(every, int(steps[-1]) + 1 if len(steps) else 0, every):
        end = int(np.searchsorted(steps, s, side="right"))
        k = int(np.searchsorted(grid_steps, s, side="right")) - 1
        out.append(diagnose(rows[max(0, end - ROWS_NEEDED):end], d_steps=d_steps,
                            grid=pairs[k][1] if k >= 0 else None, real=real))
    return out
