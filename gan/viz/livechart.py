"""Live charts drawn in the browser: compact JSON payloads for pages/_livechart.py, no streamlit.
Must not import streamlit or compute a metric; it only packs data for the browser.

Why: st.altair_chart rebuilds and serialises three Altair charts on the server at every refresh of
every open tab (~25 ms of server CPU each time, on the same cores that train). Here the Vega-Lite
spec of each chart is derived ONCE from the Altair functions in gan/viz/charts.py and gan/quality/metrics.py
(one home per chart: same colours, fonts, titles, tooltips), with each changing dataset replaced by
a named placeholder. A refresh then only produces the data: short column arrays, numbers rounded to
4 significant digits. The browser (static/livechart.js) embeds a spec once per ``key`` and
afterwards swaps the named datasets of the live Vega view.

Payload (a JSON string): ``{"v": 1, "specs": {id: {"key", "spec"}}, "rows": [[cell, ...], ...]}``.
A cell has a relative width ``w`` and one of: ``chart`` (a spec id) with ``data`` (dataset name ->
table), ``image`` (a data URL) or ``text``; optionally ``caption`` and ``alert`` (caption in red).
A table is ``{"cols": {field: [...]}}`` (one row per index), plus optionally
``"melt": {"key": field, "value": field, "cols": {name: [...]}}``, which repeats the rows once per
name, the way Altair's long format does (one row per step and series).
"""

import base64
import functools
import hashlib
import json
import math

import numpy as np
import pandas as pd

from gan.engine.history import Snapshot
from gan.quality import metrics
from gan.viz import charts, markers, quality_charts, sample_history

PAYLOAD_VERSION = 1  # bump with static/livechart.js when the payload's shape changes
SIG_DIGITS = 4  # enough for a chart and a 3-decimal tooltip; keeps each number ~6 characters
LOSS_SERIES = {"loss_d": "D loss", "loss_g": "G loss"}  # history column -> legend label (gan/viz/charts.py's)
PROB_SERIES = {"d_real": "D(real)", "d_fake": "D(fake)"}
EMPTY_TEXT = "The charts appear after the first step."

# Streamlit's own chart theme, the parts that show (st.altair_chart applies it under every chart's
# config): the app's font, left titles with room below them, no ticks or axis lines, and the whole
# chart (title, axes, legend) fitted into the container's width and the spec's height.
STREAMLIT_LOOK = {
    "font": '"Source Sans", sans-serif',
    "autosize": {"type": "fit", "contains": "padding"},
    "title": {"offset": 26},
    "axis": {"ticks": False, "domain": False, "gridColor": "#e6eaf1", "labelPadding": 16, "titlePadding": 16},
    "legend": {"labelPadding": 16, "padding": 8},
    "view": {"stroke": "transparent"},
}


# --- spec templates: built once per process from the Altair chart functions ----------------------
def _template(chart, roles: list[str | None]) -> dict:
    """The chart's Vega-Lite dict with the data of layer i renamed to roles[i] and its values dropped.

    A role of None keeps that layer's values in the spec (constant data, like the 0.5 line).
    """
    spec = chart.to_dict(validate=False)  # validated once in tests/test_livechart.py
    layers = spec["layer"]
    if len(layers) != len(roles):
        raise ValueError(f"expected {len(roles)} layers, the chart has {len(layers)}")
    for layer, role in zip(layers, roles):
        if role is not None:
            layer["data"] = {"name": role}
    used = {layer["data"]["name"] for layer in layers}
    spec["datasets"] = {k: v for k, v in spec.get("datasets", {}).items() if k in used}
    spec["width"] = "container"
    spec["config"] = {**STREAMLIT_LOOK, **spec.get("config", {}),
                      "axis": {**STREAMLIT_LOOK["axis"], **spec.get("config", {}).get("axis", {})},
                      "legend": {**STREAMLIT_LOOK["legend"], **spec.get("config", {}).get("legend", {})},
                      "title": {**STREAMLIT_LOOK["title"], **spec.get("config", {}).get("title", {})}}
    return spec


def _entry(spec: dict) -> dict:
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return {"key": hashlib.sha1(text.encode()).hexdigest()[:10], "spec": spec}


@functools.cache
def dashboard_specs() -> dict:
    """{"loss", "d_outputs", "histogram"} -> {"key", "spec"}, from a tiny fabricated run with a switch."""
    snapshot = sample_history.fabricate_history(40, switch_every=20, n_grids=0).snapshot()
    built = charts.build_dashboard_charts(snapshot, cursor=10)
    return {
        # loss: lines, equilibrium segments, marker rules + their labels right and left of the rule, each a
        # halo and a text (all five share the laid-out markers), the invisible headroom point, replay cursor
        "loss": _entry(_template(built["loss"], ["lines", "eq"] + ["switches"] * 5 + ["headroom", "cursor"])),
        "d_outputs": _entry(_template(built["d_outputs"], ["lines", None, "cursor"])),
        "histogram": _entry(_template(built["histogram"], ["bins", None])),
    }


@functools.cache
def quality_specs() -> dict:
    """{"score", "coverage", "coverage_alarm"} -> {"key", "spec"}; the alarm turns the bars red."""
    rows = [{"step": 500, "score": 5.0, "fd": 30.0}, {"step": 1000, "score": 6.0, "fd": 20.0}]
    cov = np.full(10, 0.1)
    ok, firing = (metrics.collapse_alarm(c) for c in (cov, np.eye(10)[0]))
    return {
        "score": _entry(_template(quality_charts.metrics_chart(rows, {"score": 9.0}, "score", cursor=500),
                                  ["line", "ceiling", "cursor"])),
        "fd": _entry(_template(quality_charts.metrics_chart(rows, {"fd": 3.0}, "fd", cursor=500),
                               ["line", "ceiling", "cursor"])),
        "coverage": _entry(_template(quality_charts.coverage_chart(cov, cov, ok), ["bars", "real", None])),
        "coverage_alarm": _entry(_template(quality_charts.coverage_chart(cov, cov, firing), ["bars", "real", None])),
    }


# --- compact numbers ------------------------------------------------------------------------------
def numbers(values, digits: int = SIG_DIGITS) -> list:
    """Floats rounded to `digits` significant digits (NaN/inf -> None, which JSON can carry)."""
    fmt = f".{digits}g"
    return [float(format(x, fmt)) if math.isfinite(x) else None for x in np.asarray(values, np.float64).tolist()]


def steps(values) -> list:
    """Step numbers: whole steps as ints, bucket midpoints (x.5) and block means to 0.1 of a step."""
    return [int(x) if x.is_integer() else round(x, 1) if math.isfinite(x) else None
            for x in np.asarray(values, np.float64).tolist()]


def _cols(df: pd.DataFrame, kinds: dict) -> dict:
    """A table from DataFrame columns; kinds: field -> "step" | "num" | "int" | "str"."""
    conv = {"step": steps, "num": numbers, "int": lambda v: [int(x) for x in v], "str": lambda v: [str(x) for x in v]}
    return {"cols": {f: conv[k](df[f].to_numpy()) for f, k in kinds.items()}}


def _melted(columns: dict, series: dict) -> dict:
    """Lines in Altair's long format (step, value, series), sent wide: one step array, one per series."""
    return {"cols": {"step": steps(columns["step"])},
            "melt": {"key": "series", "value": "value",
                     "cols": {label: numbers(columns[col]) for col, label in series.items()}}}


def _dumps(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# --- payloads -------------------------------------------------------------------------------------
def dashboard_payload(snapshot: Snapshot, *, grid_png: bytes | None = None, grid_caption: str = "",
                      hist_caption: str = "", max_points: int = charts.MAX_POINTS, cursor: float | None = None) -> str:
    """The live panel: loss (2/3) + sample grid (1/3), then D outputs + histogram of the latest batch.
    ``cursor``: a step to mark on both line charts (replay); None draws no cursor.

    hist_caption "" gives the dashboard's usual "Histogram of the batch at step N; dashed line: 0.5.".
    Cost is bounded by the snapshot (at most ~4000 rows) and max_points, not by the run's length.
    """
    specs = dashboard_specs()
    s = snapshot.scalars
    grid = {"w": 1, "image": "data:image/png;base64," + base64.b64encode(grid_png).decode("ascii"),
            "caption": grid_caption} if grid_png else None
    if s.empty:
        rows = [[{"w": 2, "text": EMPTY_TEXT}] + ([grid] if grid else [{"w": 1, "text": ""}])]
        return _dumps({"v": PAYLOAD_VERSION, "specs": {}, "rows": rows})

    down = charts.downsample(s, max_points)  # one pass for both line charts
    eq = charts.equilibrium_lines(s)
    switches, top = markers.loss_markers(down, eq, snapshot.events, cursor)
    bins = charts.histogram(snapshot.d_real_probs, snapshot.d_fake_probs)
    marked = _cursor_table(cursor)
    loss = {"w": 2, "chart": "loss", "data": {
        "lines": _melted(down, LOSS_SERIES),
        "eq": _cols(eq, {"start": "step", "end": "step", "value": "num", "series": "str", "loss": "str"}),
        "switches": _cols(switches, dict(zip(markers.DRAWN_COLUMNS, ("step", "str", "str", "str", "num")))),
        "headroom": {"cols": {"value": [] if top is None else numbers([top])}},
        "cursor": marked,
    }}
    d_outputs = {"w": 1, "chart": "d_outputs", "data": {"lines": _melted(down, PROB_SERIES), "cursor": marked}}
    histogram = {"w": 1, "chart": "histogram",
                 "data": {"bins": _cols(bins, {"lo": "num", "hi": "num", "count": "int", "series": "str"})},
                 "caption": hist_caption or f"Histogram of the batch at step {snapshot.probs_step:,}; "
                                            "dashed line: 0.5."}
    rows = [[loss, grid or {"w": 1, "text": ""}], [d_outputs, histogram]]
    return _dumps({"v": PAYLOAD_VERSION, "specs": specs, "rows": rows})


def _cursor_table(cursor: float | None) -> dict:
    """The replay cursor's one-row table (empty when live): the same dataset on every chart that has one."""
    return {"cols": {"step": [] if cursor is None else steps([cursor])}}


def _metric_line(rows, ceiling_row: dict | None, metric: str) -> dict:
    """A quality metric over steps ("line") and the real held-out images' value as its dashed line ("ceiling")."""
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame({"step": [], metric: []})
    has = ceiling_row is not None and metric in ceiling_row
    ceiling = {"cols": {"value": numbers([ceiling_row[metric]]) if has else [],
                        "label": ["real held-out"] if has else []}}
    return {"line": _cols(df, {"step": "step", metric: "num"}), "ceiling": ceiling}


def own_images_payload(rows, ceiling_row: dict | None, caption: str = "", cursor: float | None = None) -> str:
    """The quality panel for your own images: Fréchet distance over steps against them, with your held-out
    images' value as the dashed line (no score or coverage: the classes are MNIST's)."""
    cell = {"w": 1, "chart": "fd", "caption": caption,
            "data": {**_metric_line(rows, ceiling_row, "fd"), "cursor": _cursor_table(cursor)}}
    return _dumps({"v": PAYLOAD_VERSION, "specs": {"fd": quality_specs()["fd"]}, "rows": [[cell]]})


def quality_payload(rows, ceiling_row: dict | None, coverage, ceiling_coverage, alarm: metrics.Alarm | None, *,
                    score_caption: str = "", alarm_caption: bool = True, cursor: float | None = None) -> str:
    """The quality panel: classifier score over steps (2/3) + class coverage (1/3) with the alarm.

    Same charts as quality_charts.metrics_chart(rows, ceiling_row, "score") and quality_charts.coverage_chart(coverage,
    ceiling_coverage, alarm); the alarm's message goes under the coverage chart (red while firing).
    """
    firing = alarm is not None and alarm.firing
    specs = quality_specs()
    cov_id = "coverage_alarm" if firing else "coverage"
    cov = np.asarray(coverage, np.float64)
    ref = [] if ceiling_coverage is None else numbers(ceiling_coverage)
    score = {"w": 2, "chart": "score", "caption": score_caption,
             "data": {**_metric_line(rows, ceiling_row, "score"), "cursor": _cursor_table(cursor)}}
    caption = "" if alarm is None or not alarm_caption else alarm.message
    coverage_cell = {"w": 1, "chart": cov_id, "caption": caption, "alert": firing,
                     "data": {
                         "bars": {"cols": {"digit": [str(i) for i in range(len(cov))], "share": numbers(cov),
                                           "covered": ["yes" if c >= metrics.COVERED_SHARE else "no" for c in cov]}},
                         "real": {"cols": {"digit": [str(i) for i in range(len(ref))], "real": ref}}}}
    return _dumps({"v": PAYLOAD_VERSION, "specs": {"score": specs["score"], cov_id: specs[cov_id]},
                   "rows": [[score, coverage_cell]]})
