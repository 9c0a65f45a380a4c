"""The quality panel's charts: the score (or FD, entropy) over steps and the class coverage bars.
Must not compute a metric (gan.quality does) or import streamlit.

Owns only chart specs (Altair), pure functions of plain data from gan.quality; never computes a metric.
"""

from gan.quality.metrics import COVERED_SHARE, Alarm
from gan.viz.charts import cursor_rule, step_axis
from gan.viz.look import CHART_CONFIG, MARKER_COLOR

METRIC_LABELS = {"score": "classifier score (↑, max 10)", "fd": "Fréchet distance (↓)",
                 "entropy": "coverage entropy, nats (↑, max 2.30)"}


def metrics_chart(rows, ceiling: dict | None = None, metric: str = "score", height: int = 260,
                  cursor: float | None = None):
    """A line chart of one metric over training steps, with the real held-out value as a dashed rule.

    rows: a DataFrame or list of dicts with columns step and the metric (MetricsMonitor.snapshot()).
    ceiling: {"score": ..., "fd": ..., "entropy": ...} for real held-out images, or None.
    """
    import altair as alt
    import pandas as pd


    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame({"step": pd.Series(dtype=float), metric: pd.Series(dtype=float)})
    df = df[["step", metric]]
    title = METRIC_LABELS.get(metric, metric)
    line = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step", axis=step_axis(tickMinStep=1)),  # steps are integers
        y=alt.Y(f"{metric}:Q", title=title),
        tooltip=["step:Q", alt.Tooltip(f"{metric}:Q", format=".3f")],
    )
    layers = [line]
    if ceiling is not None and metric in ceiling:
        ref = pd.DataFrame({"value": [float(ceiling[metric])], "label": ["real held-out"]})
        layers.append(alt.Chart(ref).mark_rule(strokeDash=[6, 4], color=MARKER_COLOR, strokeWidth=2).encode(
            y="value:Q", tooltip=["label:N", alt.Tooltip("value:Q", format=".3f")]))
    if cursor is not None:  # replay: the step being replayed, drawn as on the dashboard's line charts

        layers.append(cursor_rule(cursor))
    return alt.LayerChart(layer=layers, height=height, title=title, config=CHART_CONFIG)


def coverage_chart(coverage, reference=None, alarm: Alarm | None = None, height: int = 260):
    """Bars: share of generated samples per class; ticks: the real held-out share; red when collapsing."""
    import altair as alt
    import pandas as pd


    cov = [float(c) for c in coverage]
    df = pd.DataFrame({"digit": [str(i) for i in range(len(cov))], "share": cov,
                       "covered": ["yes" if c >= COVERED_SHARE else "no" for c in cov]})
    color = "#d62728" if alarm is not None and alarm.firing else "#4c78a8"
    bars = alt.Chart(df).mark_bar(color=color).encode(
        x=alt.X("digit:N", title="class (classifier's label)", sort=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("share:Q", title="share of samples", axis=alt.Axis(format="%")),
        opacity=alt.Opacity("covered:N", scale=alt.Scale(domain=["yes", "no"], range=[1.0, 0.4]), legend=None),
        tooltip=["digit:N", alt.Tooltip("share:Q", format=".1%")],
    )
    layers = [bars]
    if reference is not None:
        rdf = pd.DataFrame({"digit": [str(i) for i in range(len(reference))],
                            "real": [float(r) for r in reference]})
        layers.append(alt.Chart(rdf).mark_tick(color="black", thickness=2).encode(
            x=alt.X("digit:N", sort=None), y="real:Q", tooltip=["digit:N", alt.Tooltip("real:Q", format=".1%")]))
    rule = alt.Chart(pd.DataFrame({"y": [COVERED_SHARE]})).mark_rule(strokeDash=[3, 3], color=MARKER_COLOR).encode(
        y="y:Q")
    layers.append(rule)
    # Two lines: in a third of a 1280 px page one line was cut off at the chart's right edge.
    return alt.LayerChart(layer=layers, height=height, title=["class coverage", "(ticks: real data)"],
                          config=CHART_CONFIG)
