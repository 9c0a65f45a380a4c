"""One quality panel per evaluation, shared by every open dashboard: its caption, alarm sentence and chart data.
Must not score anything or import streamlit; it reads a MetricsMonitor's snapshot (gan.quality.monitor).

The quality panel changes only when the monitor scores again (every few hundred steps), so QualityView renders a
QualityFrame once per evaluation and every session reuses it; a replaying session gets one of its own, with every
number taken at its step. The page shows the caption and the alarm and mounts the chart payload.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from gan.core.config import OWN
from gan.core.data import data_noun
from gan.quality import metrics
from gan.viz import livechart


@dataclass(frozen=True)
class QualityFrame:
    """The quality panel for every session, rebuilt only when the monitor scored again or changed state."""

    message: str  # the score caption, or "The first score comes at step 500. …" before it
    failed: bool  # the monitor failed: show message as a warning, no charts
    charts: str | None  # gan.viz.livechart.quality_payload JSON; None before the first score
    alarm: str = ""  # the mode-collapse alarm's sentence (firing or not)
    alarm_firing: bool = False
    title: str = "Quality, scored by a reference classifier trained on real digits"


def not_digits_text(share: float, dataset: str = "mnist5k") -> str:
    """"41% not digits yet": the share of samples the classifier rejects, as the quality panel says it, in the
    words of the run's data ("not clothes yet" on Fashion-MNIST)."""
    if share < 0.005:
        return f"every sample is {data_noun(dataset, one=True)}"
    return f"{share:.0%} not {data_noun(dataset)} yet"


class QualityView:
    """One QualityFrame per evaluation of a run's MetricsMonitor, shared by every session."""

    def __init__(self):
        self._lock = threading.Lock()
        self._cached: tuple | None = None  # (key, frame)

    def frame(self, run_name: str, monitor, cursor: int | None = None) -> QualityFrame:
        """The shared frame; with ``cursor`` (a replaying session) one of its own, with the step marked."""
        if cursor is not None:
            return self._render(monitor, cursor)
        key = (run_name, id(monitor), monitor.evaluations, monitor.state)
        cached = self._cached
        if cached is not None and cached[0] == key:
            return cached[1]
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
            frame = self._render(monitor)
            self._cached = (key, frame)
            return frame

    @staticmethod
    def title(dataset: str) -> str:
        """The panel's heading for a run on ``dataset`` (its config's, known before training starts): it names
        the run's own data from the first frame on, never "digits" for clothes or your images."""

        if dataset == OWN:
            return "Quality of your images' GAN: Fréchet distance against them"
        return f"Quality, scored by a reference classifier trained on real {data_noun(dataset)}"

    @staticmethod
    def _render(monitor, cursor: int | None = None) -> QualityFrame:
        import pandas as pd


        snap = monitor.snapshot()
        dataset = monitor.trainer.dataset_name  # the config's until loaded; mnist5k once the run fell back to it
        title = QualityView.title(dataset)
        if snap.state == "failed":
            return QualityFrame(snap.message, True, None, title=title)
        if snap.rows.empty or snap.latest is None:
            return QualityFrame(f"The first score comes at step {monitor.every:,}. {snap.message}.", False, None,
                                title=title)
        latest, ceiling = snap.latest, snap.ceiling
        if snap.info.get("own_images"):  # your images: FD against them, and why there is no score
            caption = (f"Fréchet distance {latest.fd:.1f} at step {int(snap.rows.step.iloc[-1]):,} against your "
                       f"{snap.info['images']:,} images (your own held-out half: {ceiling.fd:.1f}). The digit "
                       "classifier does not apply to your images, so there is no score or class coverage.")
            payload = livechart.own_images_payload(snap.rows, snap.ceiling_row, cursor=cursor)
            return QualityFrame(caption, False, payload, title=title)
        # Live: the newest evaluation. Replay: the one at (or just before) the cursor, every number and the
        # coverage bars of that step, so nothing on the panel stays live while the rest shows the past.
        shown = snap.rows if cursor is None else snap.rows[snap.rows.step <= cursor]
        if shown.empty:
            payload = livechart.quality_payload(snap.rows, snap.ceiling_row, latest.coverage, ceiling.coverage,
                                                None, alarm_caption=False, cursor=cursor)
            return QualityFrame(f"Replay at step {cursor:,}: no score yet (the first is at step "
                                f"{int(snap.rows.step.iloc[0]):,}).", False, payload, title=title)
        row = shown.iloc[-1]
        step = int(row.step)
        coverage = latest.coverage if cursor is None else snap.coverages.get(step)
        alarm = latest.alarm if cursor is None else (
            None if coverage is None else metrics.collapse_alarm(coverage, noun=data_noun(dataset)))
        when = f"at step {step:,}" if cursor is None else f"Replay at step {step:,}:"
        caption = (f"Classifier score {row.score:.2f} {when} " if cursor is None else
                   f"{when} classifier score {row.score:.2f} ")
        caption += (f"(real held-out {data_noun(dataset)}: {ceiling.score:.2f}) · Fréchet distance {row.fd:.1f} "
                    f"(real: {ceiling.fd:.1f}) · {not_digits_text(float(row.not_digit), dataset)}.")
        if cursor is None:
            caption += f" {snap.message}."
        judged = shown[pd.to_numeric(shown.score_b, errors="coerce").notna()]
        if not judged.empty and snap.judge_ceiling is not None:  # a second ruler keeps the first honest
            j = judged.iloc[-1]
            caption += (f" Independent judge (another classifier, ruler B) at step {int(j.step):,}: score "
                        f"{float(j.score_b):.2f} (real: {snap.judge_ceiling.score:.2f}) · Fréchet distance "
                        f"{float(j.fd_b):.1f} (real: {snap.judge_ceiling.fd:.1f}).")
        if alarm is None:  # replaying a step from before a restart: its class shares were not kept
            text = (f"Class coverage at step {step:,} was not kept (a continued run keeps its curves only); the "
                    f"bars show step {int(snap.rows.step.iloc[-1]):,}.")
            coverage, firing = latest.coverage, False
        else:
            text, firing = (alarm.message if cursor is None else f"At step {step:,}: {alarm.message}"), alarm.firing
        payload = livechart.quality_payload(snap.rows, snap.ceiling_row, coverage, ceiling.coverage,
                                            alarm if alarm is not None else latest.alarm,
                                            alarm_caption=False,  # the page says it, as text
                                            cursor=cursor)
        return QualityFrame(caption, False, payload, text, firing, title)
