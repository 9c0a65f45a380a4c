"""Dashboard charts: pure functions of a history Snapshot, no streamlit.
Must not import streamlit or read a live run; Snapshot in, chart specs out.

Every chart is built from one ``gan.engine.history.Snapshot`` (at most ~4000 scalar rows whatever the run
length), downsampled to at most ``MAX_POINTS`` rows per series, so building and drawing a chart costs
the same at step 1k and step 1M. The look (colours, font, config) is gan/viz/look.py's; the loss chart's
marker labels are laid out by gan/viz/markers.py.
"""

import math

import altair as alt
import numpy as np
import pandas as pd

from gan.core.losses import LOSSES
from gan.engine.history import Snapshot
from gan.viz.look import CHART_CONFIG, CHART_HEIGHT, CURSOR_COLOR, D_COLOR, FONT_SIZE, G_COLOR, MARKER_COLOR, TEXT_COLOR
from gan.viz.markers import DRAWN_COLUMNS, MARKER_GAP_PX, loss_markers

MAX_POINTS = 300  # rows per series sent to the browser: Vega redraws them every refresh, on the same CPU
HIST_BINS = 20

# Series names double as legend labels; the colour of each is fixed here, once.
LOSS_SERIES = {"D loss": D_COLOR, "G loss": G_COLOR}
PROB_SERIES = {"D(real)": D_COLOR, "D(fake)": G_COLOR}


def _color(series: dict) -> alt.Color:
    return alt.Color("series", type="nominal", title=None,
                     scale=alt.Scale(domain=list(series), range=list(series.values())),
                     # Above the plot, outside it: no marker label can reach it (they stay inside the plot),
                     # and the plot keeps the full width for the step axis and the labels.
                     legend=alt.Legend(orient="top", title=None))


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
        # A side per label (markers.marker_layout), each drawn twice: a white halo first, so a label stays readable
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
