"""The loss chart's vertical markers (loss switches, the coach's alarms): their labels, laid out in lanes so that
none overprints another or leaves the plot. Must not build a chart (gan/viz/charts.py draws what this lays out)
or import streamlit; pure functions of the events, the x domain and the plot width (pandas/numpy only).
"""

import math

import numpy as np
import pandas as pd

from gan.core.coach import marker_label as coach_label
from gan.viz.look import FONT_SIZE, loss_label

# Every number is in pixels of the loss chart's plot area (the data rectangle, axes and legend excluded).
MARKER_GAP_PX = 5  # from a marker's rule to its label
MARKER_PAD_PX = 10  # at least this much air between two labels of one lane
LANE_PX = FONT_SIZE + 6  # one lane of labels
LANE_TOP_PX = 4  # the first lane's top, below the plot's top edge
CHAIN_PX = 40  # markers closer than this share one label (_groups)
MARKER_LANES = 3  # at most this many lanes; a label that fits in none is left out (its rule and tooltip stay)
# The narrowest loss plot the layout is made for: the Train page's loss chart at 1280x720 with the sidebar open.
# A layout without overlaps at width W has none at any wider width too (every gap grows with the width), so
# one layout computed here holds for every projector and laptop from 1280 px up.
MARKER_LAYOUT_WIDTH = 420
LOSS_PLOT_HEIGHT = 190  # about the loss plot's height inside CHART_HEIGHT: how much headroom the lanes need
# Conservative advance widths (in em) of the labels' bold 16 px sans font: an estimate never narrower than the
# drawn text (tests/test_projector.py measures the real labels in Chromium), so boxes that do not touch on
# paper do not touch on screen.
_EM = {"upper": 0.70, "lower": 0.58, "digit": 0.58, "space": 0.30, "other": 1.05}


def label_width(text: str, font_size: float = FONT_SIZE) -> float:
    """An upper bound of the drawn width of a marker label in pixels (bold, ``font_size`` px)."""
    def em(c: str) -> float:
        if c == " ":
            return _EM["space"]
        if c.isdigit():
            return _EM["digit"]
        if c.isascii() and c.isalpha():
            return _EM["upper"] if c.isupper() else _EM["lower"]
        return _EM["other"] if not c.isascii() else _EM["lower"]
    return font_size * sum(em(c) for c in text)


def switch_label(detail: str) -> str:
    """A loss switch's drawn label, short enough for a crowded chart: "bce → mse" -> "BCE→MSE"."""
    return "→".join(loss_label(p.strip()) for p in str(detail).split("→"))


def markers(events: pd.DataFrame, limit: int = 50) -> pd.DataFrame:
    """The loss chart's vertical markers: step, kind ("loss" | "coach") and label, for every loss switch
    ("BCE→MSE") and every alarm the coach raised ("D wins"; gan.core.coach), the latest ``limit`` of them."""
    if events.empty:
        return pd.DataFrame({"step": pd.Series(dtype=float), "kind": pd.Series(dtype=object),
                             "label": pd.Series(dtype=object)})
    marked = events[events["kind"].isin(("loss", "coach"))].tail(limit)
    labels = [switch_label(d) if k == "loss" else coach_label(d) for k, d in zip(marked["kind"], marked["detail"])]
    return pd.DataFrame({"step": marked["step"].to_numpy(np.float64), "kind": marked["kind"].to_numpy(object),
                         "label": labels})


LAYOUT_COLUMNS = ("step", "kind", "tip", "label", "lane", "align", "y", "x0", "x1", "y0", "y1")
DRAWN_COLUMNS = ("step", "tip", "label", "align", "y")  # what the chart needs of a laid-out marker


def _groups(marks: pd.DataFrame, lo: float, span: float, width: float) -> list[list]:
    """Runs of markers too close to label one by one, each to be labelled once at its first rule: loss switches
    that follow each other ("BCE→MSE", "MSE→BCE" 10 steps apart: one "BCE→MSE→BCE") and repeats of one alarm
    ("mode collapse" twice: "mode collapse ×2"). Too close: rules less than CHAIN_PX apart, where labels in
    lanes one above the other could not tell which rule is whose."""
    groups: list[list] = []
    for m in marks.sort_values("step", kind="stable").itertuples(index=False):
        if groups:
            last = groups[-1][-1]
            near = (float(m.step) - float(last.step)) / span * width < CHAIN_PX
            chains = (m.kind == last.kind == "loss" and last.label.split("→")[-1] == m.label.split("→")[0]) or (
                m.kind == last.kind == "coach" and m.label == last.label)
            if near and chains:
                groups[-1].append(m)
                continue
        groups.append([m])
    return groups


CHAIN_NAMES = 3  # a run of up to this many switches spells each loss ("BCE→MSE→BCE→MSE"); longer ones count


def _group_label(group: list) -> str:
    if group[0].kind == "loss":
        if len(group) > CHAIN_NAMES:  # a long chain would outgrow the plot: "7 switches, now MSE"
            return f"{len(group)} switches, now {group[-1].label.split('→')[-1]}"
        return "→".join([group[0].label] + [m.label.split("→", 1)[1] for m in group[1:]])
    return group[0].label + (f" ×{len(group)}" if len(group) > 1 else "")


def marker_layout(marks: pd.DataFrame, domain: tuple[float, float], width: float = MARKER_LAYOUT_WIDTH,
                  lanes: int = MARKER_LANES) -> pd.DataFrame:
    """Where each marker's label goes: a pure function of the markers (step, kind, label), the x domain and
    the plot width in pixels.

    Markers too close to label one by one are labelled together at the first (``_groups``). Newest first (the
    switch the presenter just made always gets its label), each label takes the first lane where its box
    keeps MARKER_PAD_PX from every box already there: right of its rule, else left of it (also where the
    right side would leave the plot: no label reaches past the plot into the legend or the next chart). A
    label that fits in no lane is dropped; its rules and tooltips stay.
    Returns LAYOUT_COLUMNS, one row per marker, by step: tip (the marker's own label, for its tooltip), label
    (the drawn text, "" on the other markers of a group), lane (0 = top; -1 and align "none" where nothing is
    drawn), align ("left": text starts right of the rule; "right": it ends left of it), y (the label's top
    in pixels from the plot's top, what the chart draws) and its box x0, x1, y0, y1 in plot pixels.
    """
    lo, hi = float(domain[0]), float(domain[1])
    span = hi - lo if hi > lo else 1.0
    placed: list[list[tuple[float, float]]] = [[] for _ in range(lanes)]
    rows = []
    for group in reversed(_groups(marks, lo, span, width)):
        first = group[0]
        text = _group_label(group)
        x = (float(first.step) - lo) / span * width
        w = label_width(text)
        options = [("left", x + MARKER_GAP_PX, x + MARKER_GAP_PX + w), ("right", x - MARKER_GAP_PX - w,
                                                                          x - MARKER_GAP_PX)]
        options = [o for o in options if o[1] >= 0 and o[2] <= width]  # never outside the plot
        # Right of the rule in any lane before left of it: a label on its usual side reads as the rule's own.
        spot = next(((lane, o) for o in options for lane in range(lanes)
                     if all(o[2] + MARKER_PAD_PX <= a or b + MARKER_PAD_PX <= o[1] for a, b in placed[lane])), None)
        quiet = (-1, "none") + (math.nan,) * 5  # a rule with its tooltip, no text
        for m in group[1:]:
            rows.append((float(m.step), m.kind, m.label, "") + quiet)
        if spot is None:  # no room: the rule alone, its label in the tooltip
            rows.append((float(first.step), first.kind, first.label, "") + quiet)
            continue
        lane, (align, x0, x1) = spot
        placed[lane].append((x0, x1))
        y0 = float(LANE_TOP_PX + lane * LANE_PX)
        rows.append((float(first.step), first.kind, first.label, text, lane, align, y0, x0, x1, y0, y0 + FONT_SIZE))
    out = pd.DataFrame(rows, columns=list(LAYOUT_COLUMNS))
    return out.sort_values("step", kind="stable").reset_index(drop=True)


def x_domain(*steps) -> tuple[float, float]:
    """The loss chart's x domain as Vega computes it (nice=False): the range of every step drawn on it."""
    values = np.concatenate([np.asarray(s, np.float64).ravel() for s in steps if s is not None and len(s)]
                            or [np.zeros(1)])
    return float(np.nanmin(values)), float(np.nanmax(values))


def headroom(values: np.ndarray, used_lanes: int, plot_height: float = LOSS_PLOT_HEIGHT) -> float | None:
    """A y value above the loss lines that leaves ``used_lanes`` lanes of labels free of them, or None.

    An invisible point at this value stretches the y scale so the lines stay below the labels' band.
    """
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if used_lanes <= 0 or not len(values):
        return None
    lo, hi = float(values.min()), float(values.max())
    band = LANE_TOP_PX + used_lanes * LANE_PX + 4
    return hi + max(hi - lo, 1e-3) * band / max(plot_height - band, 1.0)


def loss_markers(lines: pd.DataFrame | dict, eq: pd.DataFrame, events: pd.DataFrame,
                 cursor: float | None = None) -> tuple[pd.DataFrame, float | None]:
    """The laid-out markers of the loss chart and its headroom value, from what the chart draws.

    ``lines``: the drawn line table (columns step and value) or the downsampled columns (step, loss_d, loss_g).
    """
    marks = markers(events)
    if isinstance(lines, dict):
        steps, values = lines["step"], np.concatenate([lines["loss_d"], lines["loss_g"]])
    else:
        steps, values = lines["step"].to_numpy(), lines["value"].to_numpy()
    dom = x_domain(steps, eq["start"].to_numpy(), eq["end"].to_numpy(), marks["step"].to_numpy(),
                   None if cursor is None else [cursor])
    laid = marker_layout(marks, dom)
    used = int(laid["lane"].max()) + 1 if len(laid) else 0  # -1 only: no label drawn, no lane
    return laid, headroom(np.concatenate([values, eq["value"].to_numpy(np.float64)]), used)
