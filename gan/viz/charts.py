"""Dashboard charts and sample-grid images: pure functions of a history Snapshot, no streamlit.
Must not import streamlit or read a live run; Snapshot in, chart specs out.

Every chart is built from one ``gan.engine.history.Snapshot`` (at most ~4000 scalar rows whatever the run
length), downsampled to at most ``MAX_POINTS`` rows per series, so building and drawing a chart costs
the same at step 1k and step 1M. One colour means one player on every chart: D is blue, G is orange.
D(real) shares D's blue (real data is D's side of the game) and D(fake) = D(G(z)) shares G's orange
(the fakes are G's images, and G wants that number up) — two colours for the whole dashboard.
"""

import math
import time

import altair as alt
import numpy as np
import pandas as pd

from gan.core.coach import marker_label as coach_label
from gan.core.losses import LOSSES
from gan.core.step import SampleGrid
from gan.engine.history import History, Snapshot

# Okabe-Ito blue and vermillion: distinct for colour-blind viewers and on a washed-out projector.
D_COLOR = "#0072B2"
G_COLOR = "#D55E00"
MARKER_COLOR = "#333333"  # loss-switch markers and the 0.5 lines: neutral, dark for contrast
CURSOR_COLOR = "#8e44ad"  # the replay cursor: neither player's colour, nor the markers' grey

MAX_POINTS = 300  # rows per series sent to the browser: Vega redraws them every refresh, on the same CPU
HIST_BINS = 20
CHART_HEIGHT = 330  # Streamlit sizes the whole chart (title, legend, axes) to this
FONT_SIZE = 16  # axis labels and legends read from the back of a room
TEXT_COLOR = "#111111"  # dark labels: the default mid-grey fades on a projector

# Series names double as legend labels; the colour of each is fixed here, once.
LOSS_SERIES = {"D loss": D_COLOR, "G loss": G_COLOR}
PROB_SERIES = {"D(real)": D_COLOR, "D(fake)": G_COLOR}


def _color(series: dict) -> alt.Color:
    return alt.Color("series", type="nominal", title=None,
                     scale=alt.Scale(domain=list(series), range=list(series.values())),
                     # Above the plot, outside it: no marker label can reach it (they stay inside the plot),
                     # and the plot keeps the full width for the step axis and the labels.
                     legend=alt.Legend(orient="top", title=None))


# One config for every chart. Built once: Altair deep-copies chart objects on every .configure_*()
# call and parses "field:Q" shorthands through a slow schema lookup, so charts here are assembled
# from explicit channel objects in a single LayerChart(...) call (~10x cheaper per tick).
CHART_CONFIG = alt.Config(
    axis=alt.AxisConfig(labelFontSize=FONT_SIZE, titleFontSize=FONT_SIZE + 1, labelColor=TEXT_COLOR,
                        titleColor=TEXT_COLOR, gridOpacity=0.5, labelPadding=6, titlePadding=8),
    legend=alt.LegendConfig(labelFontSize=FONT_SIZE, labelColor=TEXT_COLOR, symbolSize=200, symbolStrokeWidth=4),
    # offset: the legend sits under the title now, so Streamlit's 26 px gap would be wasted height.
    title=alt.TitleConfig(fontSize=FONT_SIZE + 3, anchor="start", color=TEXT_COLOR, offset=8),
    view=alt.ViewConfig(strokeWidth=0),
    # Room above the title: Vega fits the title by its own text metrics, but glyphs from a fallback font (the
    # "↑" of "classifier score (↑, max 10)") stand taller, and a 5 px top cut them off in Chromium.
    padding={"top": 12, "left": 5, "right": 8, "bottom": 5},
)


class DashboardChart(alt.LayerChart):
    """A LayerChart whose to_dict() skips the jsonschema check by default.

    Streamlit calls chart.to_dict() on every refresh, and checking the whole Vega-Lite schema costs
    more than building and serialising the chart together. These specs are fixed in shape, so
    tests/test_charts.py validates them once with to_dict(validate=True) instead.
    """

    def to_dict(self, validate: bool = False, **kwargs) -> dict:
        return super().to_dict(validate=validate, **kwargs)


def _layered(layers: list, title: str) -> DashboardChart:
    return DashboardChart(layer=layers, title=title, height=CHART_HEIGHT, width="container", config=CHART_CONFIG)


def _q(field: str, **kw) -> dict:
    return dict(field=field, type="quantitative", **kw)


def loss_label(name: str) -> str:
    spec = LOSSES.get(name)
    return spec.label if spec else str(name)


# --- data preparation (pure, numpy/pandas only) ---------------------------------------------------
def downsample(scalars: pd.DataFrame, max_points: int = MAX_POINTS,
               columns=("step", "loss_d", "loss_g", "d_real", "d_fake")) -> dict[str, np.ndarray]:
    """Column arrays with at most max_points rows: means over blocks of consecutive rows.

    The newest row is kept exact (the live edge of the chart should show the latest step).
    """
    n = len(scalars)
    cols = {c: scalars[c].to_numpy(np.float64) for c in columns}
    if n <= max_points:
        return cols
    k = math.ceil((n - 1) / (max_points - 1))  # rows per block, over all rows but the newest
    starts = np.arange(0, n - 1, k)
    counts = np.diff(np.append(starts, n - 1))
    return {c: np.append(np.add.reduceat(v[:-1], starts) / counts, v[-1]) for c, v in cols.items()}


def loss_segments(scalars: pd.DataFrame) -> pd.DataFrame:
    """Runs of steps under one loss: start, end, loss. O(rows), from the full-resolution loss column."""
    if scalars.empty:
        return pd.DataFrame({"start": [], "end": [], "loss": []})
    losses = scalars["loss"].to_numpy()
    steps = scalars["step"].to_numpy(np.float64)
    change = np.flatnonzero(losses[1:] != losses[:-1]) + 1  # first row of each new loss
    first = np.concatenate([[0], change])
    # A segment ends where the next one starts, so the reference line jumps at the switch.
    ends = np.concatenate([steps[change], [steps[-1]]])
    return pd.DataFrame({"start": steps[first], "end": ends, "loss": losses[first]})


def equilibrium_lines(scalars: pd.DataFrame) -> pd.DataFrame:
    """Horizontal reference segments: (start, end, value, series) for D and G of each loss run."""
    rows = []
    for seg in loss_segments(scalars).itertuples(index=False):
        spec = LOSSES.get(seg.loss)
        if spec is None:
            continue
        for series, value in (("D loss", spec.equilibrium_d), ("G loss", spec.equilibrium_g)):
            if value is not None:
                rows.append((seg.start, seg.end, float(value), series, spec.label))
    return pd.DataFrame(rows, columns=["start", "end", "value", "series", "loss"])


# --- loss-switch and alarm markers: labels laid out so none overprints another or leaves the plot ------
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


def histogram(d_real: np.ndarray, d_fake: np.ndarray, bins: int = HIST_BINS) -> pd.DataFrame:
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for series, probs in (("D(real)", d_real), ("D(fake)", d_fake)):
        counts, _ = np.histogram(np.asarray(probs, np.float64), bins=edges)
        rows.append(pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "count": counts, "series": series}))
    return pd.concat(rows, ignore_index=True)


def _long(columns: dict[str, np.ndarray], mapping: dict) -> pd.DataFrame:
    """Wide -> long for Altair: one row per (step, series)."""
    n = len(columns["step"])
    return pd.DataFrame({
        "step": np.tile(columns["step"], len(mapping)),
        "value": np.concatenate([columns[col] for col in mapping]),
        "series": np.repeat(np.array(list(mapping.values()), dtype=object), n),
    })


# --- charts ---------------------------------------------------------------------------------------
# A tick per ~110 px of plot at most and labels that would touch hidden: at 1280 px the step labels ran
# together ("1,0001,2001,4001,600").
X_TICK_PX = 110


def step_axis(**kw) -> alt.Axis:
    """The step axis of every chart over steps: as many ticks as the width holds, never overlapping labels."""
    return alt.Axis(tickCount={"expr": f"ceil(width / {X_TICK_PX})"}, labelOverlap="greedy", labelSeparation=12,
                    # Flush within 24 px of either end, not only at it: a run that stopped 7 steps past "2,000"
                    # drew that label centred on its tick, half of it past the plot, cut by the chart's cell.
                    format=",d", labelFlush=24, **kw)


def _step_x() -> alt.X:
    return alt.X("step", type="quantitative", title="step", scale=alt.Scale(nice=False), axis=step_axis())


def _line_tooltip() -> list:
    return [alt.Tooltip("series", type="nominal"), alt.Tooltip(**_q("step"), format=",.0f"),
            alt.Tooltip(**_q("value"), format=".3f")]


def _half_rule(channel: str) -> alt.Chart:
    """The 0.5 line: where D's outputs sit at equilibrium (it cannot tell real from fake)."""
    enc = {channel: (alt.X if channel == "x" else alt.Y)(channel, type="quantitative")}
    return alt.Chart(pd.DataFrame({channel: [0.5]})).mark_rule(
        color=MARKER_COLOR, strokeDash=[8, 5], strokeWidth=2).encode(**enc)


def cursor_rule(step: float) -> alt.Chart:
    """The replay cursor: a vertical line at the step being replayed (gan.viz.liveview.LiveView.replay_frame)."""
    return alt.Chart(pd.DataFrame({"step": [float(step)]})).mark_rule(
        color=CURSOR_COLOR, strokeWidth=3).encode(x=alt.X(**_q("step")))


def loss_chart(snapshot: Snapshot, max_points: int = MAX_POINTS, cursor: float | None = None) -> alt.LayerChart:
    """(a) G and D loss, dashed equilibrium of the loss active at each step, a marker per switch; with
    ``cursor``, a line at that step (replay)."""
    s = snapshot.scalars
    color = _color(LOSS_SERIES)
    lines = _long(downsample(s, max_points), {"loss_d": "D loss", "loss_g": "G loss"})
    layers = [alt.Chart(lines).mark_line(strokeWidth=2.5).encode(
        x=_step_x(), y=alt.Y(**_q("value"), title="loss", scale=alt.Scale(zero=False)), color=color,
        tooltip=_line_tooltip())]
    eq = equilibrium_lines(s)
    if not eq.empty:  # horizontal dashed segments; each spans the steps its loss was active
        layers.append(alt.Chart(eq).mark_rule(strokeDash=[8, 5], strokeWidth=2).encode(
            x=alt.X(**_q("start")), x2=alt.X2("end"), y=alt.Y(**_q("value")), color=color,
            tooltip=[alt.Tooltip("loss", type="nominal"), alt.Tooltip("series", type="nominal"),
                     alt.Tooltip(**_q("value"), title="equilibrium", format=".3f")]))
    sw, top = loss_markers(lines, eq, snapshot.events, cursor)
    if not sw.empty:  # a vertical marker at every switch and alarm, its label ("BCE→MSE", "D wins") in a lane
        base = alt.Chart(sw[list(DRAWN_COLUMNS)])
        layers.append(base.mark_rule(color=MARKER_COLOR, strokeWidth=2).encode(
            x=alt.X(**_q("step")), tooltip=[alt.Tooltip("tip", type="nominal", title="marker")]))
        # A side per label (marker_layout), each drawn twice: a white halo first, so a label stays readable
        # where a loss line or another marker's rule runs under it, then the text.
        for align, dx in (("left", MARKER_GAP_PX), ("right", -MARKER_GAP_PX)):
            for halo in ({"stroke": "white", "strokeWidth": 5, "strokeJoin": "round", "strokeOpacity": 0.9}, {}):
                layers.append(base.transform_filter(alt.datum.align == align).mark_text(
                    align=align, baseline="top", dx=dx, fontSize=FONT_SIZE, fontWeight="bold", color=MARKER_COLOR,
                    **halo).encode(x=alt.X(**_q("step")), y=alt.Y("y", type="quantitative", scale=None),
                                   text=alt.Text("label", type="nominal")))
    if top is not None:  # invisible: stretches the y scale so the lines stay below the labels' lanes
        layers.append(alt.Chart(pd.DataFrame({"value": [top]})).mark_point(opacity=0).encode(
            y=alt.Y(**_q("value"))))
    if cursor is not None:
        layers.append(cursor_rule(cursor))
    return _layered(layers, "Loss (dashed: equilibrium of the active loss)")


def d_outputs_chart(snapshot: Snapshot, max_points: int = MAX_POINTS, cursor: float | None = None) -> alt.LayerChart:
    """(b) Mean D(real) and D(fake) per step, with the equilibrium line at 0.5."""
    lines = _long(downsample(snapshot.scalars, max_points), {"d_real": "D(real)", "d_fake": "D(fake)"})
    line = alt.Chart(lines).mark_line(strokeWidth=2.5).encode(
        x=_step_x(), y=alt.Y(**_q("value"), title="mean D output", scale=alt.Scale(domain=[0, 1])),
        color=_color(PROB_SERIES), tooltip=_line_tooltip())
    return _layered([line, _half_rule("y")] + ([cursor_rule(cursor)] if cursor is not None else []),
                    "D(real) and D(fake), equilibrium 0.5")


def histogram_chart(snapshot: Snapshot, bins: int = HIST_BINS) -> alt.LayerChart:
    """(c) Overlaid histograms of one batch's D(real) and D(fake) probabilities on [0, 1] (the caption says which
    step: the latest, or the replayed one)."""
    h = histogram(snapshot.d_real_probs, snapshot.d_fake_probs, bins)
    bars = alt.Chart(h).mark_bar(opacity=0.55, binSpacing=0).encode(
        # bin="binned": the rows are bins already, so the bars stand on zero like a histogram's
        x=alt.X(**_q("lo"), bin="binned", title="D output (probability of 'real')", scale=alt.Scale(domain=[0, 1]),
                # five labels, not one per bin edge: the 21 edges ran together ("0.00.10.2...") at 1280 px
                axis=alt.Axis(values=[0, 0.25, 0.5, 0.75, 1], format=".2~f", labelOverlap="greedy", labelFlush=True)),
        x2=alt.X2("hi"), y=alt.Y(**_q("count"), title="images", stack=None), color=_color(PROB_SERIES),
        tooltip=[alt.Tooltip("series", type="nominal"), alt.Tooltip(**_q("lo"), format=".2f"),
                 alt.Tooltip(**_q("hi"), format=".2f"), alt.Tooltip(**_q("count"))])
    # A fixed title keeps the spec identical between refreshes (only the data changes), so the
    # browser is not handed a "new" chart each second; the page captions the step instead.
    return _layered([bars, _half_rule("x")], "D outputs on one batch")


def build_dashboard_charts(snapshot: Snapshot, max_points: int = MAX_POINTS, cursor: float | None = None) -> dict:
    """All live charts from one snapshot: {"loss", "d_outputs", "histogram"} -> Altair charts.

    Altair checks some objects against the schema as they are created (its "debug mode"); the
    charts here are fixed in shape and validated in tests, so that per-tick cost is skipped.
    """
    with alt.utils.schemapi.debug_mode(False):
        return {
            "loss": loss_chart(snapshot, max_points, cursor),
            "d_outputs": d_outputs_chart(snapshot, max_points, cursor),
            "histogram": histogram_chart(snapshot),
        }


# --- Compare: one colour per run ---------------------------------------------------------------------
# Categorical colours that stay apart on a washed-out projector and for colour-blind viewers (Okabe-Ito, the
# two light ones last); the live run is near-black and drawn thicker, so it never passes for a snapshot.
RUN_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#999933", "#882255")
LIVE_RUN_COLOR = TEXT_COLOR
RUN_STROKE, LIVE_STROKE = 2.5, 5.0


def run_colors(runs, live: str | None = None) -> dict[str, str]:
    """run name -> colour for the Compare page: the live run LIVE_RUN_COLOR, the others RUN_PALETTE in order
    (repeating past eight runs). Pure, so a run keeps its colour on every chart of the page."""
    others = [r for r in runs if r != live]
    colors = {r: RUN_PALETTE[i % len(RUN_PALETTE)] for i, r in enumerate(others)}
    if live is not None and live in runs:
        colors[live] = LIVE_RUN_COLOR
    return {r: colors[r] for r in runs}


def run_encoding(runs, live: str | None = None) -> dict:
    """color and strokeWidth channels for Compare's lines: run_colors, and the live run thicker."""
    colors = run_colors(runs, live)
    width = alt.StrokeWidth("run", type="nominal", legend=None, scale=alt.Scale(
        domain=list(colors), range=[LIVE_STROKE if r == live else RUN_STROKE for r in colors]))
    return {"color": alt.Color("run", type="nominal", title=None, legend=alt.Legend(orient="top", columns=2),
                               scale=alt.Scale(domain=list(colors), range=list(colors.values()))),
            "strokeWidth": width}


# --- sample grids (tiling is gan.viz.images'; these add checks and the projector scale) ---------------
# --- a History of N steps, fast, for benchmarks and tests ------------------------------------------
def fabricate_history(n_steps: int, *, switch_every: int | None = None, recent: int = 2000,
                      max_buckets: int = 2000, n_grids: int = 8, seed: int = 0, exact: bool = False) -> History:
    """A History that looks like a run of n_steps (noisy losses near equilibrium, loss switches).

    Synthetic numbers for measuring chart cost, never shown as training results. With exact=True
    every step goes through History.append (~4 µs/step); otherwise steps older than ``recent`` are
    written straight into buckets the way History folds them, so 1M steps take well under a second.
    """
    rng = np.random.default_rng(seed)
    names = list(LOSSES)
    t0 = time.time() - n_steps / 50.0
    steps = np.arange(1, n_steps + 1)
    loss_idx = (steps - 1) // switch_every % len(names) if switch_every else np.zeros(n_steps, int)
    eq_d = np.array([LOSSES[n].equilibrium_d or 0.0 for n in names])[loss_idx]
    eq_g = np.array([LOSSES[n].equilibrium_g or 0.0 for n in names])[loss_idx]
    loss_d = eq_d + 0.05 * rng.standard_normal(n_steps)
    loss_g = eq_g + 0.2 * rng.standard_normal(n_steps)
    d_real = np.clip(0.55 + 0.05 * rng.standard_normal(n_steps), 0, 1)
    d_fake = np.clip(0.45 + 0.05 * rng.standard_normal(n_steps), 0, 1)
    times = t0 + steps / 50.0
    hist = History(recent=recent, max_buckets=max_buckets)

    old = 0 if exact else max(0, n_steps - recent)
    if old:
        size = 1
        while math.ceil(old / size) > max_buckets:
            size *= 2
        cols = {c: [] for c in ("step", "time", "loss_d", "loss_g", "d_real", "d_fake", "lr_g", "lr_d", "loss",
                                "loss_d_min", "loss_d_max", "loss_g_min", "loss_g_max", "steps_in_row")}
        # Buckets of `size` steps that never span a loss switch (as History guarantees).
        bounds = np.unique(np.concatenate([np.arange(0, old, size), np.flatnonzero(np.diff(loss_idx[:old])) + 1]))
        ends = np.append(bounds[1:], old)
        for name, arr in (("loss_d", loss_d), ("loss_g", loss_g), ("d_real", d_real), ("d_fake", d_fake)):
            cols[name] = (np.add.reduceat(arr[:old], bounds) / (ends - bounds)).tolist()
        for name, arr, fn in (("loss_d_min", loss_d, np.minimum), ("loss_d_max", loss_d, np.maximum),
                              ("loss_g_min", loss_g, np.minimum), ("loss_g_max", loss_g, np.maximum)):
            cols[name] = fn.reduceat(arr[:old], bounds).tolist()
        cols["step"] = ((steps[bounds] + steps[ends - 1]) / 2).tolist()
        cols["time"] = times[ends - 1].tolist()
        cols["lr_g"] = [2e-4] * len(bounds)
        cols["lr_d"] = [2e-4] * len(bounds)
        cols["loss"] = [names[i] for i in loss_idx[bounds]]
        cols["steps_in_row"] = (ends - bounds).tolist()
        events = {"step": [], "time": [], "kind": [], "detail": []}
        import torch  # history state dicts carry grids as a tensor

        hist.load_state_dict({"scalars": cols, "events": events, "grid_steps": [], "grid_losses": [],
                              "grid_images": torch.zeros(0, 28, 28, dtype=torch.uint8), "total_steps": old})
    for i in range(old, n_steps):
        hist.append(int(steps[i]), float(loss_d[i]), float(loss_g[i]), float(d_real[i]), float(d_fake[i]),
                    2e-4, 2e-4, names[loss_idx[i]], when=float(times[i]))
    if switch_every:
        for s in range(switch_every + 1, n_steps + 1, switch_every):
            i = s - 1
            hist.add_event(s, "loss", f"{names[loss_idx[i - 1]]} → {names[loss_idx[i]]}")
    hist.set_probs(rng.beta(5, 4, 64).astype(np.float32), rng.beta(4, 5, 64).astype(np.float32), n_steps)
    for k in range(n_grids):
        step = n_steps * (k + 1) // max(n_grids, 1)
        hist.add_grid(SampleGrid(step, names[loss_idx[max(step - 1, 0)]],
                                 rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)))
    return hist
