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

from gan.engine.coach import marker_label as coach_label
from gan.engine.history import History, SampleGrid, Snapshot
from gan.engine.losses import LOSSES

# Okabe-Ito blue and vermillion: distinct for colour-blind viewers and on a washed-out projector.
D_COLOR = "#0072B2"
G_COLOR = "#D55E00"
COLORS = {"D": D_COLOR, "G": G_COLOR}
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
                     legend=alt.Legend(orient="right", title=None))  # right: the height goes to the plot


# One config for every chart. Built once: Altair deep-copies chart objects on every .configure_*()
# call and parses "field:Q" shorthands through a slow schema lookup, so charts here are assembled
# from explicit channel objects in a single LayerChart(...) call (~10x cheaper per tick).
CHART_CONFIG = alt.Config(
    axis=alt.AxisConfig(labelFontSize=FONT_SIZE, titleFontSize=FONT_SIZE + 1, labelColor=TEXT_COLOR,
                        titleColor=TEXT_COLOR, gridOpacity=0.5),
    legend=alt.LegendConfig(labelFontSize=FONT_SIZE, labelColor=TEXT_COLOR, symbolSize=200, symbolStrokeWidth=4),
    title=alt.TitleConfig(fontSize=FONT_SIZE + 3, anchor="start", color=TEXT_COLOR),
    view=alt.ViewConfig(strokeWidth=0),
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


def markers(events: pd.DataFrame, limit: int = 50) -> pd.DataFrame:
    """The loss chart's vertical markers, as step + label: every loss switch ("BCE → MSE") and every alarm
    the coach raised ("D wins"; gan.engine.coach), the latest ``limit`` of them."""
    if events.empty:
        return pd.DataFrame({"step": [], "label": [], "y": []})
    marked = events[events["kind"].isin(("loss", "coach"))].tail(limit)
    labels = [" → ".join(loss_label(p.strip()) for p in str(d).split("→")) if k == "loss" else coach_label(d)
              for k, d in zip(marked["kind"], marked["detail"])]
    # Label heights in pixels from the top: the coach's a line below the switches', so the two do not overlap
    # when an alarm is followed by the switch that answers it.
    y = np.where(marked["kind"].to_numpy() == "loss", 4.0, 4.0 + FONT_SIZE + 6)
    return pd.DataFrame({"step": marked["step"].to_numpy(np.float64), "label": labels, "y": y})


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
def _step_x() -> alt.X:
    return alt.X("step", type="quantitative", title="step", scale=alt.Scale(nice=False))


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
    sw = markers(snapshot.events)
    if not sw.empty:  # a vertical marker with a label ("BCE → MSE", "D wins") at every switch and alarm
        base = alt.Chart(sw)
        layers.append(base.mark_rule(color=MARKER_COLOR, strokeWidth=2).encode(
            x=alt.X(**_q("step")), tooltip=[alt.Tooltip("label", type="nominal")]))
        layers.append(base.mark_text(align="left", baseline="top", dx=5, fontSize=FONT_SIZE, fontWeight="bold",
                                     color=MARKER_COLOR).encode(
            x=alt.X(**_q("step")), y=alt.Y("y", type="quantitative", scale=None),
            text=alt.Text("label", type="nominal")))
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
    """(c) Overlaid histograms of the latest batch's D(real) and D(fake) probabilities on [0, 1]."""
    h = histogram(snapshot.d_real_probs, snapshot.d_fake_probs, bins)
    bars = alt.Chart(h).mark_bar(opacity=0.55, binSpacing=0).encode(
        # bin="binned": the rows are bins already, so the bars stand on zero like a histogram's
        x=alt.X(**_q("lo"), bin="binned", title="D output (probability of 'real')", scale=alt.Scale(domain=[0, 1])),
        x2=alt.X2("hi"), y=alt.Y(**_q("count"), title="images", stack=None), color=_color(PROB_SERIES),
        tooltip=[alt.Tooltip("series", type="nominal"), alt.Tooltip(**_q("lo"), format=".2f"),
                 alt.Tooltip(**_q("hi"), format=".2f"), alt.Tooltip(**_q("count"))])
    # A fixed title keeps the spec identical between refreshes (only the data changes), so the
    # browser is not handed a "new" chart each second; the page captions the step instead.
    return _layered([bars, _half_rule("x")], "D outputs on the latest batch")


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
