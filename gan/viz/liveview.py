"""One render per tick, shared by every open dashboard: the live panel's text, banners and chart data.
Must not send commands to a run or import streamlit; it reads status and history.

Thirty viewers refresh every second; if each built its own snapshot and charts, the server would do
the same work thirty times. ``LiveView.frame(trainer)`` builds a frozen LiveFrame at most once per new
tick (and at most every MIN_INTERVAL_S while steps stream in), and every session reuses it with the step
of its own refresh; a refresh without anything new costs a lookup and the headline's string. A state change
(Pause, a loss switch, a failure) renders at once, so the presenter's page shows a click's effect on its very
next run.
Pure Python: the page maps Banner kinds to st.info/st.error and mounts the chart payload. The quality panel's
shared frame is gan/viz/qualityview.py's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from enum import Enum

from gan.core.config import OWN
from gan.core.diagnosis import Diagnosis
from gan.core.losses import format_equilibrium, get_loss
from gan.engine.status import FailureKind, PauseCause, RunState, RunStatus
from gan.viz import images, livechart, look

MIN_INTERVAL_S = 0.5  # viewers refresh every 1 s: a frame half a second old is still news to them
STATE_LABELS = {RunState.LOADING: "Loading", RunState.RUNNING: "Running", RunState.PAUSED: "Paused",
                RunState.STOPPED: "Stopped", RunState.FAILED: "Failed", RunState.IDLE: "No run"}


class BannerKind(str, Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Banner:
    kind: BannerKind
    text: str  # what happened, for everyone watching
    icon: str  # a Streamlit material icon name
    action: str = ""  # what to press next: shown to the presenter only (viewers have no buttons)

    def for_viewer(self, presenter: bool) -> str:
        return f"{self.text} {self.action}" if presenter and self.action else self.text


@dataclass(frozen=True)
class LiveFrame:
    """What one refresh of the live panel shows; the same object for every session until the next tick."""

    run: str
    state: RunState
    step: int
    headline: str  # "#### Running · Step 1,234 · 57 steps/s · 1:02 elapsed · cpu · mnist5k" (read at each refresh)
    details: str  # loss, its equilibrium, learning rates, D steps, model
    banners: tuple[Banner, ...]
    charts: str | None  # gan.viz.livechart.dashboard_payload JSON; None before the first step
    built_at: float  # time.monotonic() when rendered
    coach: Diagnosis | None = None  # the coach's latest reading (gan.core.coach), None before the first


def fmt_elapsed(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def banners(status: RunStatus) -> tuple[Banner, ...]:
    """Warnings and the one state banner, chosen by the typed state and pause cause."""
    out = [Banner(BannerKind.WARNING, w, ":material/warning:") for w in status.warnings]
    state, reason, cause = status.state, status.reason, status.pause_cause
    if state == RunState.FAILED:
        out.append(_failure_banner(status.failure, reason))
    elif state == RunState.PAUSED and cause == PauseCause.NAN:
        out.append(Banner(BannerKind.ERROR, f"Training paused: {reason}", ":material/error:"))
    elif state == RunState.PAUSED:
        out.append(Banner(BannerKind.INFO, f"Paused ({reason}).", ":material/pause:",
                          "Press Resume, or Step to advance one step at a time."))
    elif state == RunState.LOADING:
        out.append(Banner(BannerKind.INFO, loading_text(status), ":material/hourglass_top:"))
    elif state == RunState.STOPPED and status.interrupted:
        out.append(Banner(BannerKind.INFO, f"This run was interrupted: {reason}. These are its saved charts.",
                          ":material/history:", "Continue picks it up from its last save."))
    elif state == RunState.STOPPED:
        out.append(Banner(BannerKind.INFO, "Stopped. The charts and the Samples page keep this run.",
                          ":material/stop:", "Start begins a new one."))
    return tuple(out)


# What a failed run's banner says and suggests, by why it failed (FailureKind), never by the reason's words
_FAILURE_ACTIONS = {
    FailureKind.WORKER_DIED: "Continue picks it up from its last autosave; Start begins a new run.",
    FailureKind.NODE_LOST: "It comes back by itself on another node of the cluster, from its last autosave.",
    FailureKind.WORKER_UNRESPONSIVE: "The computer may be too busy: close other programs, then press Start again "
                                     "(Reset clears the dashboard).",
    FailureKind.DATA: "Choose another dataset (mnist5k ships with the app), then press Start.",
}


def _failure_banner(failure: FailureKind, reason: str) -> Banner:
    """The reason says what happened (a dead process names its exit); the action depends on the kind."""
    action = _FAILURE_ACTIONS.get(failure, "Check the settings, then press Start for a new run (or Reset to clear "
                                           "the dashboard).")
    return Banner(BannerKind.ERROR, f"Training failed: {reason}.", ":material/error:", action)


def loading_text(status: RunStatus) -> str:
    """What a loading run waits for, for everyone watching: "Loading run-1 from its save at step 1,234: starting
    the training process…". The run's reason says what it waits for (a worker process still importing torch);
    without one it is loading the data and building the models. Seconds on a busy computer: never say nothing."""
    what = f"Loading {status.name}" + (f" from its save at step {status.step:,}" if status.step else "")
    return f"{what}: {status.reason or 'loading the dataset and building the models'}…"


def headline(status: RunStatus) -> str:
    return (f"#### {STATE_LABELS[status.state]} · Step {status.step:,} · {status.steps_per_sec:.0f} steps/s · "
            f"{fmt_elapsed(status.elapsed)} elapsed · {status.device} · {dataset_label(status.dataset)}")


def dataset_label(dataset: str) -> str:
    """What the headline says a run trains on: the dataset's name, or "your images" for an upload ("own")."""

    return "your images" if dataset == OWN else dataset


def details(status: RunStatus) -> str:
    spec = get_loss(status.loss)
    return (f"**{spec.label}** loss · {format_equilibrium(spec)} · lr G {status.lr_g:g} · "
            f"lr D {status.lr_d:g} · D steps {status.d_steps} · model {status.model}")


def _identity(status: RunStatus) -> tuple:
    """What must show at once when it changes (a click's effect), unlike steps/s or new rows."""
    moving = status.state in (RunState.RUNNING, RunState.LOADING)  # else a new step is a Step click
    return (status.state, status.pause_cause, status.reason, status.loss, status.lr_g, status.lr_d,
            status.d_steps, status.warnings, None if moving else status.step)


class LiveView:
    """The shared renderer: frame(trainer) for any number of sessions and threads."""

    def __init__(self, min_interval: float = MIN_INTERVAL_S):
        self.min_interval = min_interval
        self._lock = threading.Lock()  # one render at a time; the others wait and reuse it
        self._cached: tuple | None = None  # (frame, (run, identity, history version)): swapped as one
        self._grid: tuple | None = None  # ((run, grid step), png bytes): encoded once per grid

    def frame(self, trainer) -> LiveFrame:
        """The shared frame, with this refresh's own step: the step (the headline) is a string away, the charts
        are the render. While another session renders, a tab that has a frame of this run and state takes it
        (its charts a tick older) rather than wait: waiting lined every tab of a server up behind each render,
        so a new step reached them all in one burst a second, each server on its own beat (bench part ray)."""
        status = trainer.status()
        key = (trainer.name, _identity(status), trainer.history.version)
        cached = self._cached
        if self._fresh(cached, key):
            return self._now(cached[0], status)
        same_view = cached is not None and cached[1][:2] == key[:2]
        if not self._lock.acquire(blocking=not same_view):  # a state change or another run: wait, show it
            return self._now(cached[0], status)
        try:
            cached = self._cached
            if self._fresh(cached, key):
                return self._now(cached[0], status)  # another session rendered it while this one waited
            frame = self._render(trainer, status)
            self._cached = (frame, key)
            return frame
        finally:
            self._lock.release()

    @staticmethod
    def _now(frame: LiveFrame, status: RunStatus) -> LiveFrame:
        """The frame with the status read at this refresh: step, steps/s and time move every refresh."""
        now = headline(status)  # it names the step: the same headline is the same step
        return frame if frame.headline == now else replace(frame, step=status.step, headline=now)

    def _fresh(self, cached: tuple | None, key: tuple) -> bool:
        if cached is None:
            return False
        frame, seen = cached
        if seen[:2] != key[:2]:
            return False  # another run, or a state/setting change: show it now
        return seen[2] == key[2] or time.monotonic() - frame.built_at < self.min_interval

    def _render(self, trainer, status: RunStatus) -> LiveFrame:

        snapshot = trainer.history.snapshot(with_grids=False)  # capped at ~4000 rows at any run length
        payload = None
        if not snapshot.scalars.empty:
            grid = trainer.history.latest_grid()
            png, caption = None, ""
            if grid is not None:
                gkey = (trainer.name, grid.step)
                if self._grid is None or self._grid[0] != gkey:
                    # Scale 1: the browser upscales it crisply (image-rendering: pixelated), and every
                    # viewer's refresh carries a third of the bytes of a scale-3 PNG.
                    self._grid = (gkey, images.grid_png(grid.images, scale=1))
                png = self._grid[1]
                caption = f"Samples from fixed noise at step {grid.step:,} ({look.loss_label(grid.loss)})"
                if trainer.config.ema > 0:  # say what draws them: the average, not the raw G of that step
                    caption += f", drawn by G's weights averaged over ~{round(1 / (1 - trainer.config.ema)):,} steps"
            payload = livechart.dashboard_payload(
                snapshot, grid_png=png, grid_caption=caption,
                hist_caption=f"Histogram of the batch at step {snapshot.probs_step:,}; dashed line: 0.5.")
        return LiveFrame(trainer.name, status.state, status.step, headline(status), details(status),
                         banners(status), payload, time.monotonic(), status.diagnosis)

    def replay_frame(self, trainer, step: int) -> LiveFrame:
        """The dashboard as it was at ``step``, for one session's scrubber: the saved sample point at or before
        it (its grid, its batch's histogram, the coach's reading then) and a cursor at its step on both line
        charts, which keep the whole run. Built per call (only a scrubbing session pays), not shared."""


        status = trainer.status()
        snapshot = trainer.history.snapshot()
        point = replay_point(snapshot.grids, step)
        payload, diagnosis, at = None, None, step
        if point is not None and not snapshot.scalars.empty:
            at, diagnosis = point.step, point.diagnosis
            hist_caption = f"Replay: histogram of the batch at step {point.step:,}; dashed line: 0.5."
            if point.d_real_probs is not None:
                snapshot = replace(snapshot, d_real_probs=point.d_real_probs, d_fake_probs=point.d_fake_probs,
                                   probs_step=point.step)
            else:  # a sample point saved before replay kept histograms (an older checkpoint)
                hist_caption = (f"No histogram was kept for step {point.step:,}: this is the batch at step "
                                f"{snapshot.probs_step:,}.")
            payload = livechart.dashboard_payload(
                snapshot, grid_png=images.grid_png(point.images, scale=1), cursor=point.step,
                grid_caption=(f"Replay: samples from fixed noise at step {point.step:,} "
                              f"({look.loss_label(point.loss)})"),
                hist_caption=hist_caption)
        title = (f"#### Replay · Step {at:,} of {status.step:,} · {STATE_LABELS[status.state].lower()} now · "
                 f"{status.device} · {dataset_label(status.dataset)}")
        return LiveFrame(trainer.name, status.state, at, title, details(status), banners(status), payload,
                         time.monotonic(), diagnosis)


def replay_point(grids, step: int):
    """The saved sample point a replay of ``step`` shows: the last one at or before it (the first if none)."""
    before = [g for g in grids if g.step <= step]
    return before[-1] if before else (grids[0] if grids else None)
